//! The records inside one v2 batch. The write path never needs them (batches are stored as the
//! producer sent them); they are decoded for exact ListOffsets-by-timestamp, for keys during
//! compaction, and encoded for synthesised control batches, compaction output and tests.
//!
//! Record layout (Kafka's `DefaultRecord`), varints zigzag-encoded:
//!
//! ```text
//! length varint, attributes i8, timestamp_delta varlong, offset_delta varint,
//! key_length varint (-1 = null), key, value_length varint (-1 = null), value,
//! header_count varint, then per header: key_length varint, key, value_length varint (-1 = null), value
//! ```

use bytes::{BufMut, Bytes, BytesMut};

use crate::batch::{
    self, BatchHeader, Compression, ATTR_COMPRESSION_MASK, ATTR_DELETE_HORIZON, BATCH_HEADER_LEN,
    CRC_OFFSET, CRC_START, MAGIC_V2,
};
use crate::codec;
use crate::error::FormatError;
use crate::varint::{put_varint, put_varlong, varint_len, Reader};

/// Smallest possible record: a one-byte varint for each of length, timestamp delta, offset delta,
/// key length, value length and header count, plus the attributes byte. Bounds preallocation
/// against a hostile `records_count`.
const MIN_RECORD_LEN: usize = 7;
/// Smallest possible header: key length and value length varints.
const MIN_HEADER_LEN: usize = 2;

/// One record of a batch, with offsets and timestamps relative to the batch header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Offset relative to the batch's `base_offset`.
    pub offset_delta: i32,
    /// Timestamp relative to the batch's `base_timestamp`.
    pub timestamp_delta: i64,
    /// Record key; `None` is Kafka's null key, distinct from an empty one.
    pub key: Option<Bytes>,
    /// Record value; `None` is a tombstone.
    pub value: Option<Bytes>,
    /// Record headers in order; header keys are never null, values may be.
    pub headers: Vec<(Bytes, Option<Bytes>)>,
}

/// A transaction marker as Kafka writes it: one control batch (transactional and control
/// bits) of one record whose key is `(version 0, type)` (0 abort, 1 commit) and whose value
/// is `(version 0, coordinator epoch)`.
pub fn control_batch(
    offset: i64,
    producer_id: i64,
    producer_epoch: i16,
    commit: bool,
    timestamp_ms: i64,
) -> Result<Bytes, FormatError> {
    let mut key = Vec::with_capacity(4);
    key.extend_from_slice(&0i16.to_be_bytes());
    key.extend_from_slice(&i16::from(commit).to_be_bytes());
    let mut value = Vec::with_capacity(6);
    value.extend_from_slice(&0i16.to_be_bytes());
    value.extend_from_slice(&0i32.to_be_bytes());
    encode_batch(
        &BatchSpec {
            base_offset: offset,
            partition_leader_epoch: -1,
            attributes_flags: TRANSACTIONAL_FLAG | CONTROL_FLAG,
            base_timestamp: timestamp_ms,
            max_timestamp: timestamp_ms,
            producer_id,
            producer_epoch,
            base_sequence: -1,
        },
        &[Record {
            offset_delta: 0,
            timestamp_delta: 0,
            key: Some(Bytes::from(key)),
            value: Some(Bytes::from(value)),
            headers: Vec::new(),
        }],
        Compression::None,
    )
}

/// Attribute bit of transactional batches.
pub const TRANSACTIONAL_FLAG: i16 = 0x10;
/// Attribute bit of control batches.
pub const CONTROL_FLAG: i16 = 0x20;

/// Header fields of a batch to encode; the rest (`batch_length`, `crc`, `magic`,
/// `last_offset_delta`, `records_count`, codec bits) are derived from the records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSpec {
    /// First offset of the batch.
    pub base_offset: i64,
    /// Leader epoch, -1 when unknown.
    pub partition_leader_epoch: i32,
    /// Transactional (0x10), control (0x20) and log-append-time (0x08) bits; codec bits here are
    /// ignored and set from the `compression` argument.
    pub attributes_flags: i16,
    /// Timestamp the records' `timestamp_delta` is relative to.
    pub base_timestamp: i64,
    /// Largest timestamp in the batch.
    pub max_timestamp: i64,
    /// Idempotent producer id, -1 for none.
    pub producer_id: i64,
    /// Idempotent producer epoch, -1 for none.
    pub producer_epoch: i16,
    /// Sequence of the first record, -1 for none.
    pub base_sequence: i32,
}

impl Default for BatchSpec {
    /// Kafka's "none" values: no producer, no sequence, no leader epoch, no timestamp.
    fn default() -> Self {
        BatchSpec {
            base_offset: 0,
            partition_leader_epoch: -1,
            attributes_flags: 0,
            base_timestamp: -1,
            max_timestamp: -1,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
        }
    }
}

/// Decodes (decompressing as needed) all records of one whole batch at the start of `batch`.
/// `max_uncompressed_bytes` bounds the decompressed records section, so a decompression bomb
/// fails with [`FormatError::TooLarge`]. The CRC is not checked: callers that need it have run
/// [`batch::split_batches`].
pub fn decode_records(
    batch: &[u8],
    max_uncompressed_bytes: usize,
) -> Result<Vec<Record>, FormatError> {
    let header = batch::frame(batch)?;
    if header.records_count < 0 {
        return Err(FormatError::InvalidRecordsCount(header.records_count));
    }
    let compressed = &batch[BATCH_HEADER_LEN..header.total_len()];
    let data = Bytes::from(codec::decompress(
        header.compression()?,
        compressed,
        max_uncompressed_bytes,
    )?);

    let count = header.records_count as usize;
    let mut records = Vec::with_capacity(count.min(data.len() / MIN_RECORD_LEN));
    let mut reader = Reader::new(&data);
    for _ in 0..count {
        let len = reader.varint()?;
        let len =
            usize::try_from(len).map_err(|_| FormatError::InvalidRecord("negative length"))?;
        let range = reader.skip(len)?;
        records.push(decode_record(&data.slice(range))?);
    }
    if reader.remaining() != 0 {
        // Kafka rejects this too: the declared count and the bytes must agree.
        return Err(FormatError::InvalidRecordsCount(header.records_count));
    }
    Ok(records)
}

/// Decodes one record body (everything after its length prefix); every byte must be used.
fn decode_record(body: &Bytes) -> Result<Record, FormatError> {
    let mut r = Reader::new(body);
    let _attributes = r.u8()?;
    let timestamp_delta = r.varlong()?;
    let offset_delta = r.varint()?;
    let key = nullable(&mut r, body)?;
    let value = nullable(&mut r, body)?;
    let header_count = usize::try_from(r.varint()?)
        .map_err(|_| FormatError::InvalidRecord("negative header count"))?;
    let mut headers = Vec::with_capacity(header_count.min(r.remaining() / MIN_HEADER_LEN));
    for _ in 0..header_count {
        let key = nullable(&mut r, body)?.ok_or(FormatError::InvalidRecord("null header key"))?;
        let value = nullable(&mut r, body)?;
        headers.push((key, value));
    }
    if r.remaining() != 0 {
        return Err(FormatError::InvalidRecord("length does not match content"));
    }
    Ok(Record {
        offset_delta,
        timestamp_delta,
        key,
        value,
        headers,
    })
}

/// Reads a varint length followed by that many bytes; -1 means null.
fn nullable(r: &mut Reader<'_>, body: &Bytes) -> Result<Option<Bytes>, FormatError> {
    match r.varint()? {
        -1 => Ok(None),
        len => {
            let len = usize::try_from(len).map_err(|_| FormatError::InvalidRecord("bad length"))?;
            Ok(Some(body.slice(r.skip(len)?)))
        }
    }
}

/// Encodes a complete v2 batch with correct `batch_length` and CRC. `last_offset_delta` is the
/// last record's `offset_delta` (0 for no records); snappy is written xerial-framed like the Java
/// client does.
pub fn encode_batch(
    spec: &BatchSpec,
    records: &[Record],
    compression: Compression,
) -> Result<Bytes, FormatError> {
    let too_large = FormatError::TooLarge {
        limit: i32::MAX as usize,
    };
    let records_count = i32::try_from(records.len()).map_err(|_| too_large.clone())?;
    let mut section = Vec::new();
    let mut body = Vec::new();
    for record in records {
        body.clear();
        encode_record(record, &mut body)?;
        let len = i32::try_from(body.len()).map_err(|_| too_large.clone())?;
        put_varint(&mut section, len);
        section.extend_from_slice(&body);
    }
    let section = codec::compress(compression, &section)?;
    let total = BATCH_HEADER_LEN + section.len();
    let batch_length = i32::try_from(total - 12).map_err(|_| too_large)?;

    let mut out = BytesMut::with_capacity(total);
    out.put_i64(spec.base_offset);
    out.put_i32(batch_length);
    out.put_i32(spec.partition_leader_epoch);
    out.put_i8(MAGIC_V2);
    out.put_u32(0); // CRC, patched below once the covered bytes exist.
    out.put_i16((spec.attributes_flags & !ATTR_COMPRESSION_MASK) | compression.id());
    out.put_i32(records.last().map_or(0, |r| r.offset_delta));
    out.put_i64(spec.base_timestamp);
    out.put_i64(spec.max_timestamp);
    out.put_i64(spec.producer_id);
    out.put_i16(spec.producer_epoch);
    out.put_i32(spec.base_sequence);
    out.put_i32(records_count);
    out.extend_from_slice(&section);
    let crc = crc32c::crc32c(&out[CRC_START..]);
    out[CRC_OFFSET..CRC_START].copy_from_slice(&crc.to_be_bytes());
    debug_assert_eq!(
        BatchHeader::parse(&out).map(|h| h.total_len()),
        Ok(out.len())
    );
    Ok(out.freeze())
}

fn encode_record(record: &Record, out: &mut Vec<u8>) -> Result<(), FormatError> {
    out.put_u8(0); // Record attributes: unused by Kafka.
    put_varlong(out, record.timestamp_delta);
    put_varint(out, record.offset_delta);
    put_nullable(out, record.key.as_deref())?;
    put_nullable(out, record.value.as_deref())?;
    let header_count = i32::try_from(record.headers.len()).map_err(|_| FormatError::TooLarge {
        limit: i32::MAX as usize,
    })?;
    put_varint(out, header_count);
    for (key, value) in &record.headers {
        put_nullable(out, Some(key))?;
        put_nullable(out, value.as_deref())?;
    }
    Ok(())
}

fn put_nullable(out: &mut Vec<u8>, bytes: Option<&[u8]>) -> Result<(), FormatError> {
    match bytes {
        None => put_varint(out, -1),
        Some(bytes) => {
            let len = i32::try_from(bytes.len()).map_err(|_| FormatError::TooLarge {
                limit: i32::MAX as usize,
            })?;
            out.reserve(varint_len(len) + bytes.len());
            put_varint(out, len);
            out.extend_from_slice(bytes);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{split_batches, ATTR_CONTROL, ATTR_TRANSACTIONAL};
    use crate::test_support::{records, spec, ALL_CODECS};

    #[test]
    fn roundtrip_every_codec() {
        let expected = records(50);
        for codec in ALL_CODECS {
            let batch = encode_batch(&spec(5), &expected, codec).unwrap();
            let refs = split_batches(&batch).unwrap();
            assert_eq!(refs.len(), 1);
            assert_eq!(refs[0].header.compression(), Ok(codec));
            assert_eq!(
                decode_records(&batch, 1 << 20).unwrap(),
                expected,
                "{codec:?}"
            );
        }
    }

    #[test]
    fn empty_batch_roundtrip() {
        let batch = encode_batch(&BatchSpec::default(), &[], Compression::None).unwrap();
        let header = split_batches(&batch).unwrap()[0].header;
        assert_eq!(header.records_count, 0);
        assert_eq!(header.producer_id, -1);
        assert_eq!(decode_records(&batch, 0).unwrap(), vec![]);
    }

    #[test]
    fn flags_kept_and_codec_bits_replaced() {
        let spec = BatchSpec {
            attributes_flags: ATTR_TRANSACTIONAL | ATTR_CONTROL | 0x07,
            ..spec(0)
        };
        let batch = encode_batch(&spec, &records(1), Compression::Gzip).unwrap();
        let header = BatchHeader::parse(&batch).unwrap();
        assert!(header.is_transactional() && header.is_control());
        assert_eq!(header.compression(), Ok(Compression::Gzip));
    }

    /// Rebuilds a batch around a hand-made records section, with a valid header and CRC.
    fn batch_with_section(codec: Compression, records_count: i32, section: &[u8]) -> Vec<u8> {
        let template = encode_batch(&spec(0), &[], codec).unwrap();
        let mut out = template[..BATCH_HEADER_LEN].to_vec();
        out[57..61].copy_from_slice(&records_count.to_be_bytes());
        out.extend_from_slice(section);
        let batch_length = (out.len() - 12) as i32;
        out[8..12].copy_from_slice(&batch_length.to_be_bytes());
        let crc = crc32c::crc32c(&out[CRC_START..]);
        out[CRC_OFFSET..CRC_START].copy_from_slice(&crc.to_be_bytes());
        out
    }

    #[test]
    fn raw_and_xerial_snappy_batches_decode_alike() {
        let expected = records(20);
        let mut section = Vec::new();
        for record in &expected {
            let mut body = Vec::new();
            encode_record(record, &mut body).unwrap();
            put_varint(&mut section, body.len() as i32);
            section.extend_from_slice(&body);
        }
        // librdkafka-style: one raw snappy block, no xerial framing.
        let raw = snap::raw::Encoder::new().compress_vec(&section).unwrap();
        let raw_batch = batch_with_section(Compression::Snappy, 20, &raw);
        split_batches(&raw_batch).unwrap();
        assert_eq!(decode_records(&raw_batch, 1 << 20).unwrap(), expected);
        // Java-style, as encode_batch writes it.
        let xerial = encode_batch(&spec(0), &expected, Compression::Snappy).unwrap();
        assert_eq!(
            &xerial[BATCH_HEADER_LEN..BATCH_HEADER_LEN + 8],
            b"\x82SNAPPY\0"
        );
        assert_eq!(decode_records(&xerial, 1 << 20).unwrap(), expected);
    }

    #[test]
    fn decompression_bomb_bounded() {
        let huge = Record {
            offset_delta: 0,
            timestamp_delta: 0,
            key: None,
            value: Some(Bytes::from(vec![0u8; 4 << 20])),
            headers: vec![],
        };
        for codec in ALL_CODECS {
            let batch = encode_batch(&spec(0), std::slice::from_ref(&huge), codec).unwrap();
            assert_eq!(
                decode_records(&batch, 1 << 20),
                Err(FormatError::TooLarge { limit: 1 << 20 }),
                "{codec:?}"
            );
            assert_eq!(decode_records(&batch, 5 << 20).unwrap().len(), 1);
        }
    }

    #[test]
    fn records_count_must_match_content() {
        let batch = encode_batch(&spec(0), &records(3), Compression::None).unwrap();
        let section = &batch[BATCH_HEADER_LEN..];
        // Fewer records declared than present.
        assert_eq!(
            decode_records(&batch_with_section(Compression::None, 2, section), 1 << 20),
            Err(FormatError::InvalidRecordsCount(2))
        );
        // More declared than present, and a hostile count that must not preallocate.
        for count in [4, i32::MAX] {
            assert!(matches!(
                decode_records(
                    &batch_with_section(Compression::None, count, section),
                    1 << 20
                ),
                Err(FormatError::Truncated { .. })
            ));
        }
        assert_eq!(
            decode_records(&batch_with_section(Compression::None, -1, section), 1 << 20),
            Err(FormatError::InvalidRecordsCount(-1))
        );
    }

    #[test]
    fn malformed_records_rejected() {
        let cases: [(&[u8], &str); 5] = [
            // Negative record length.
            (&[0x01], "negative"),
            // Key length -2.
            (&[0x0a, 0, 0, 0, 0x03, 0, 0, 0, 0, 0, 0], "key"),
            // Negative header count.
            (
                &[0x0c, 0, 0, 0, 0x01, 0x01, 0x01, 0, 0, 0, 0, 0, 0],
                "headers",
            ),
            // Null header key.
            (
                &[0x0e, 0, 0, 0, 0x01, 0x01, 0x02, 0x01, 0, 0, 0, 0, 0, 0, 0],
                "null key",
            ),
            // Record length larger than its fields (trailing byte inside the record).
            (&[0x0e, 0, 0, 0, 0x01, 0x01, 0x00, 0x00], "length"),
        ];
        for (section, what) in cases {
            let batch = batch_with_section(Compression::None, 1, section);
            let err = decode_records(&batch, 1 << 20).unwrap_err();
            assert!(
                matches!(err, FormatError::InvalidRecord(_)),
                "{what}: {err}"
            );
        }
    }
}

/// What [`retain_records`] made of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retained {
    /// Every record kept: use the batch as it is.
    All,
    /// Some records kept: the batch re-encoded with only them.
    Some(Bytes),
    /// No record kept.
    None,
}

/// Keeps the records of one v2 batch for which `keep(offset, record)` is true (`offset` is
/// the record's absolute offset, from the batch's stored base offset). A batch with records
/// dropped is re-encoded with the same codec, base offset, base timestamp, producer fields
/// and `last_offset_delta`, and the largest timestamp of the records kept (so its offset span, and an idempotent producer's sequence range, stay
/// what they were, as Kafka's log cleaner does); the kept records keep their offset deltas,
/// leaving gaps. Decompressing more than `max_uncompressed_bytes` is an error.
pub fn retain_records(
    batch: &[u8],
    max_uncompressed_bytes: usize,
    mut keep: impl FnMut(i64, &Record) -> bool,
) -> Result<Retained, FormatError> {
    let header = batch::frame(batch)?;
    let records = decode_records(batch, max_uncompressed_bytes)?;
    let total = records.len();
    let kept: Vec<Record> = records
        .into_iter()
        .filter(|r| keep(header.base_offset + i64::from(r.offset_delta), r))
        .collect();
    if kept.len() == total {
        return Ok(Retained::All);
    }
    if kept.is_empty() {
        return Ok(Retained::None);
    }
    // The largest timestamp of the records left, as Kafka's cleaner rebuilds it (a lookup by
    // time must find a record at or after a batch's max timestamp).
    let max_timestamp = if header.has_log_append_time() {
        header.max_timestamp
    } else {
        kept.iter()
            .map(|r| header.base_timestamp.saturating_add(r.timestamp_delta))
            .max()
            .unwrap_or(header.max_timestamp)
    };
    let spec = BatchSpec {
        max_timestamp,
        ..spec_of(&header)
    };
    rebuild(&header, &spec, &kept).map(Retained::Some)
}

/// Sets a batch's delete horizon (KIP-534), as Kafka's log cleaner does the first time it
/// keeps a batch's tombstones: attribute bit 6 set, `base_timestamp` becomes the horizon and
/// every record's timestamp delta is rebased onto it, so record timestamps (and the batch's
/// max timestamp, offsets and producer fields) stay what they were. A consumer computes the
/// same timestamps either way. Decompressing more than `max_uncompressed_bytes` is an error.
pub fn set_delete_horizon(
    batch: &[u8],
    max_uncompressed_bytes: usize,
    horizon_ms: i64,
) -> Result<Bytes, FormatError> {
    let header = batch::frame(batch)?;
    let records: Vec<Record> = decode_records(batch, max_uncompressed_bytes)?
        .into_iter()
        .map(|mut r| {
            let timestamp = header.base_timestamp.saturating_add(r.timestamp_delta);
            r.timestamp_delta = timestamp.saturating_sub(horizon_ms);
            r
        })
        .collect();
    let spec = BatchSpec {
        attributes_flags: (header.attributes & !ATTR_COMPRESSION_MASK) | ATTR_DELETE_HORIZON,
        base_timestamp: horizon_ms,
        ..spec_of(&header)
    };
    rebuild(&header, &spec, &records)
}

/// The encodable header fields of a parsed batch.
fn spec_of(header: &BatchHeader) -> BatchSpec {
    BatchSpec {
        base_offset: header.base_offset,
        partition_leader_epoch: header.partition_leader_epoch,
        attributes_flags: header.attributes & !ATTR_COMPRESSION_MASK,
        base_timestamp: header.base_timestamp,
        max_timestamp: header.max_timestamp,
        producer_id: header.producer_id,
        producer_epoch: header.producer_epoch,
        base_sequence: header.base_sequence,
    }
}

/// Encodes `records` as a batch with `header`'s codec and `last_offset_delta`, so the batch's
/// offset span stays what it was even when its last records were dropped.
fn rebuild(
    header: &BatchHeader,
    spec: &BatchSpec,
    records: &[Record],
) -> Result<Bytes, FormatError> {
    let encoded = encode_batch(spec, records, header.compression()?)?;
    let mut out = BytesMut::from(&encoded[..]);
    // last_offset_delta sits right after the attributes, inside the CRC'd part.
    const LAST_OFFSET_DELTA: usize = CRC_START + 2;
    out[LAST_OFFSET_DELTA..LAST_OFFSET_DELTA + 4]
        .copy_from_slice(&header.last_offset_delta.to_be_bytes());
    let crc = crc32c::crc32c(&out[CRC_START..]);
    out[CRC_OFFSET..CRC_START].copy_from_slice(&crc.to_be_bytes());
    Ok(out.freeze())
}

#[cfg(test)]
mod retain_tests {
    use super::*;
    use crate::batch::split_batches;

    #[test]
    fn dropped_records_leave_gaps_and_the_span_stays() {
        for codec in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let records: Vec<Record> = (0..5)
                .map(|i| Record {
                    offset_delta: i,
                    timestamp_delta: i64::from(i),
                    key: Some(Bytes::from(vec![b'k', i as u8 % 2])),
                    value: (i != 3).then(|| Bytes::from(vec![i as u8; 10])),
                    headers: Vec::new(),
                })
                .collect();
            let spec = BatchSpec {
                base_offset: 100,
                producer_id: 7,
                producer_epoch: 1,
                base_sequence: 40,
                base_timestamp: 1000,
                max_timestamp: 1004,
                ..BatchSpec::default()
            };
            let batch = encode_batch(&spec, &records, codec).expect("encode");
            assert_eq!(
                retain_records(&batch, 1 << 20, |_, _| true),
                Ok(Retained::All)
            );
            assert_eq!(
                retain_records(&batch, 1 << 20, |_, _| false),
                Ok(Retained::None)
            );
            let Ok(Retained::Some(out)) =
                retain_records(&batch, 1 << 20, |off, _| off == 101 || off == 103)
            else {
                panic!("expected a re-encoded batch");
            };
            let b = &split_batches(&out).expect("valid, CRC included")[0];
            assert_eq!(b.header.base_offset, 100);
            assert_eq!(b.header.last_offset_delta, 4, "span kept");
            assert_eq!((b.header.producer_id, b.header.base_sequence), (7, 40));
            assert_eq!(b.header.compression().expect("codec"), codec);
            let kept = decode_records(&out, 1 << 20).expect("decode");
            assert_eq!(
                kept.iter().map(|r| r.offset_delta).collect::<Vec<_>>(),
                vec![1, 3]
            );
            assert_eq!(kept[1].value, None, "a tombstone stays a tombstone");
            assert_eq!(
                b.header.max_timestamp, 1003,
                "max timestamp of the records kept"
            );
        }
    }

    #[test]
    fn a_delete_horizon_keeps_every_record_timestamp() {
        for codec in [Compression::None, Compression::Lz4] {
            let records: Vec<Record> = (0..3)
                .map(|i| Record {
                    offset_delta: i * 2,
                    timestamp_delta: i64::from(i) * 10,
                    key: Some(Bytes::from(vec![b'k', i as u8])),
                    value: (i != 1).then(|| Bytes::from_static(b"v")),
                    headers: vec![(Bytes::from_static(b"h"), None)],
                })
                .collect();
            let spec = BatchSpec {
                base_offset: 50,
                base_timestamp: 5_000,
                max_timestamp: 5_020,
                producer_id: 3,
                producer_epoch: 1,
                base_sequence: 9,
                ..BatchSpec::default()
            };
            let batch = encode_batch(&spec, &records, codec).expect("encode");
            let before = split_batches(&batch).expect("valid")[0].header;
            assert_eq!(before.delete_horizon_ms(), None);
            let out = set_delete_horizon(&batch, 1 << 20, 90_000).expect("horizon");
            let h = split_batches(&out).expect("valid, CRC included")[0].header;
            assert_eq!(h.delete_horizon_ms(), Some(90_000));
            assert_eq!(h.compression().expect("codec"), codec);
            assert_eq!(
                (h.base_offset, h.last_offset_delta, h.max_timestamp),
                (50, 4, 5_020)
            );
            assert_eq!(
                (h.producer_id, h.producer_epoch, h.base_sequence),
                (3, 1, 9)
            );
            let timestamps = |b: &[u8], h: &BatchHeader| {
                decode_records(b, 1 << 20)
                    .expect("decode")
                    .into_iter()
                    .map(|r| {
                        (
                            r.offset_delta,
                            h.base_timestamp + r.timestamp_delta,
                            r.key,
                            r.value,
                        )
                    })
                    .collect::<Vec<_>>()
            };
            assert_eq!(timestamps(&out, &h), timestamps(&batch, &before));
            // Dropping records later keeps the horizon and the timestamps.
            let Ok(Retained::Some(kept)) = retain_records(&out, 1 << 20, |off, _| off != 50) else {
                panic!("expected a re-encoded batch");
            };
            let k = split_batches(&kept).expect("valid")[0].header;
            assert_eq!(k.delete_horizon_ms(), Some(90_000));
            assert_eq!(timestamps(&kept, &k), timestamps(&batch, &before)[1..]);
        }
    }

    #[test]
    fn control_batches_look_like_kafkas_markers() {
        let b = control_batch(41, 7, 3, true, 1_000).expect("marker");
        let batches = crate::batch::scan_batches(&b).expect("valid");
        assert_eq!(batches.len(), 1);
        let h = &batches[0].header;
        assert!(h.is_control() && h.is_transactional());
        assert_eq!((h.base_offset, h.producer_id, h.producer_epoch), (41, 7, 3));
        let records = decode_records(&b[batches[0].range.clone()], 1 << 20).expect("records");
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].key.as_deref(), Some(&[0u8, 0, 0, 1][..]));
        let abort = control_batch(0, 7, 3, false, 1_000).expect("marker");
        let records = decode_records(&abort, 1 << 20).expect("records");
        assert_eq!(records[0].key.as_deref(), Some(&[0u8, 0, 0, 0][..]));
    }
}
