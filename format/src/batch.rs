//! Kafka record batch v2 framing. On the write path the agent calls [`split_batches`] on each
//! partition's `records` from a ProduceRequest before appending them to the WAL object; on the read
//! path the fetch code calls [`scan_batches`] and [`rewrite_base_offsets`] on a chunk, because
//! offsets are assigned after upload and the stored `base_offset` is only a placeholder.
//!
//! Layout (all big-endian), from Kafka's `DefaultRecordBatch`:
//!
//! ```text
//! 0  base_offset i64          27 base_timestamp i64
//! 8  batch_length i32         35 max_timestamp i64
//! 12 partition_leader_epoch   43 producer_id i64
//! 16 magic i8                 51 producer_epoch i16
//! 17 crc u32                  53 base_sequence i32
//! 21 attributes i16           57 records_count i32
//! 23 last_offset_delta i32    61 records...
//! ```

use std::ops::Range;

use crate::error::FormatError;

/// Size of the v2 batch header, up to and including `records_count`.
pub const BATCH_HEADER_LEN: usize = 61;

/// `base_offset` and `batch_length`: the part of a batch that `batch_length` does not count.
const LOG_OVERHEAD: usize = 12;
const MAGIC_OFFSET: usize = 16;
/// The CRC covers everything from `attributes` to the end of the batch, so rewriting
/// `base_offset` (and `partition_leader_epoch`) never invalidates it.
pub(crate) const CRC_START: usize = 21;
pub(crate) const CRC_OFFSET: usize = 17;
/// The only supported magic: record batch v2 (Kafka 0.11+).
pub const MAGIC_V2: i8 = 2;

/// Attribute bits 0-2: compression codec.
pub const ATTR_COMPRESSION_MASK: i16 = 0x07;
/// Attribute bit 3: timestamps are the broker's log-append time rather than create time.
pub const ATTR_LOG_APPEND_TIME: i16 = 0x08;
/// Attribute bit 4: the batch belongs to a transaction.
pub const ATTR_TRANSACTIONAL: i16 = 0x10;
/// Attribute bit 5: the batch holds a control record (transaction marker).
pub const ATTR_CONTROL: i16 = 0x20;
/// Attribute bit 6 (KIP-534): `base_timestamp` holds the batch's delete horizon, set by the log
/// cleaner when it first keeps the batch's tombstones; records' timestamp deltas are relative
/// to it, so their timestamps are unchanged.
pub const ATTR_DELETE_HORIZON: i16 = 0x40;

/// The fixed-size header of a record batch v2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// First offset of the batch; a placeholder until the fetch path rewrites it.
    pub base_offset: i64,
    /// Length of the batch in bytes after this field.
    pub batch_length: i32,
    /// Leader epoch stamped by the broker.
    pub partition_leader_epoch: i32,
    /// Format version; 2 for everything Floe accepts.
    pub magic: i8,
    /// CRC-32C from `attributes` to the end of the batch.
    pub crc: u32,
    /// Codec, timestamp type, transactional and control bits.
    pub attributes: i16,
    /// Offset of the last record relative to `base_offset`.
    pub last_offset_delta: i32,
    /// Timestamp of the first record.
    pub base_timestamp: i64,
    /// Largest timestamp in the batch.
    pub max_timestamp: i64,
    /// Idempotent producer id, or -1.
    pub producer_id: i64,
    /// Idempotent producer epoch, or -1.
    pub producer_epoch: i16,
    /// Sequence number of the first record, or -1.
    pub base_sequence: i32,
    /// Number of records in the batch.
    pub records_count: i32,
}

/// Compression codec of a batch's records section (attribute bits 0-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Codec 0.
    None,
    /// Codec 1: gzip.
    Gzip,
    /// Codec 2: snappy, raw or xerial-framed.
    Snappy,
    /// Codec 3: LZ4 frame format.
    Lz4,
    /// Codec 4: zstd.
    Zstd,
}

impl Compression {
    /// Kafka's codec id, as stored in attribute bits 0-2.
    pub fn id(self) -> i16 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }

    /// Reads the codec from batch attributes; ids 5 to 7 are unassigned and rejected.
    pub fn from_attributes(attributes: i16) -> Result<Compression, FormatError> {
        match attributes & ATTR_COMPRESSION_MASK {
            0 => Ok(Compression::None),
            1 => Ok(Compression::Gzip),
            2 => Ok(Compression::Snappy),
            3 => Ok(Compression::Lz4),
            4 => Ok(Compression::Zstd),
            other => Err(FormatError::UnknownCompression(other)),
        }
    }
}

impl BatchHeader {
    /// Parses the 61-byte header at the start of `buf`. Checks neither the CRC nor any field:
    /// validation is [`split_batches`]' job.
    pub fn parse(buf: &[u8]) -> Result<BatchHeader, FormatError> {
        let Some(h) = buf.first_chunk::<BATCH_HEADER_LEN>() else {
            return Err(FormatError::Truncated {
                needed: BATCH_HEADER_LEN,
                available: buf.len(),
            });
        };
        Ok(BatchHeader {
            base_offset: i64::from_be_bytes(array(h, 0)),
            batch_length: i32::from_be_bytes(array(h, 8)),
            partition_leader_epoch: i32::from_be_bytes(array(h, 12)),
            magic: i8::from_be_bytes(array(h, 16)),
            crc: u32::from_be_bytes(array(h, 17)),
            attributes: i16::from_be_bytes(array(h, 21)),
            last_offset_delta: i32::from_be_bytes(array(h, 23)),
            base_timestamp: i64::from_be_bytes(array(h, 27)),
            max_timestamp: i64::from_be_bytes(array(h, 35)),
            producer_id: i64::from_be_bytes(array(h, 43)),
            producer_epoch: i16::from_be_bytes(array(h, 51)),
            base_sequence: i32::from_be_bytes(array(h, 53)),
            records_count: i32::from_be_bytes(array(h, 57)),
        })
    }

    /// The records section's codec; codec ids 5 to 7 are an error.
    pub fn compression(&self) -> Result<Compression, FormatError> {
        Compression::from_attributes(self.attributes)
    }

    /// True when the batch is part of a transaction.
    pub fn is_transactional(&self) -> bool {
        self.attributes & ATTR_TRANSACTIONAL != 0
    }

    /// True when the batch holds a transaction marker rather than user records.
    pub fn is_control(&self) -> bool {
        self.attributes & ATTR_CONTROL != 0
    }

    /// The delete horizon (KIP-534): once the clock passes it, the cleaner may remove the
    /// batch's tombstones. `None` until a cleaner first kept them.
    pub fn delete_horizon_ms(&self) -> Option<i64> {
        (self.attributes & ATTR_DELETE_HORIZON != 0).then_some(self.base_timestamp)
    }

    /// True when timestamps are log-append time rather than create time.
    pub fn has_log_append_time(&self) -> bool {
        self.attributes & ATTR_LOG_APPEND_TIME != 0
    }

    /// Offsets the batch occupies. Kafka counts offsets, not records: compaction can leave a
    /// batch with fewer records than offsets.
    pub fn offset_count(&self) -> i64 {
        i64::from(self.last_offset_delta) + 1
    }

    /// Length of the whole batch including `base_offset` and `batch_length`. A negative
    /// `batch_length` (only possible on an unvalidated header) yields 12.
    pub fn total_len(&self) -> usize {
        usize::try_from(self.batch_length)
            .unwrap_or(0)
            .saturating_add(LOG_OVERHEAD)
    }
}

/// Copies `N` bytes at `at` out of the fixed-size header; the offsets are constants within it.
fn array<const N: usize>(h: &[u8; BATCH_HEADER_LEN], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&h[at..at + N]);
    out
}

/// One batch found in a buffer: its parsed header and its byte range in that buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchRef {
    /// The batch's header.
    pub header: BatchHeader,
    /// Where the whole batch (header included) sits in the scanned buffer.
    pub range: Range<usize>,
}

/// Splits a ProduceRequest partition's `records` bytes into whole v2 batches and validates each:
/// complete (a truncated trailing batch is an error, unlike on the fetch side), magic == 2
/// (otherwise [`FormatError::UnsupportedMagic`]), `batch_length` large enough for the header,
/// CRC-32C (Castagnoli) over bytes from `attributes` to the batch end matches
/// ([`FormatError::CrcMismatch`]), `last_offset_delta >= 0`, `records_count >= 0`, valid
/// compression codec. Empty input is an error too ([`FormatError::Empty`]).
pub fn split_batches(buf: &[u8]) -> Result<Vec<BatchRef>, FormatError> {
    if buf.is_empty() {
        return Err(FormatError::Empty);
    }
    let batches = scan_batches(buf)?;
    for batch in &batches {
        let header = &batch.header;
        let computed = crc32c::crc32c(&buf[batch.range.start + CRC_START..batch.range.end]);
        if computed != header.crc {
            return Err(FormatError::CrcMismatch {
                stored: header.crc,
                computed,
            });
        }
        if header.last_offset_delta < 0 {
            return Err(FormatError::InvalidLastOffsetDelta(
                header.last_offset_delta,
            ));
        }
        if header.records_count < 0 {
            return Err(FormatError::InvalidRecordsCount(header.records_count));
        }
        header.compression()?;
    }
    Ok(batches)
}

/// Walks the headers of consecutive batches WITHOUT CRC or field checks, for the read path
/// where the data was validated on write. Checks only the framing: magic 2 and whole batches
/// (a truncated trailing batch is an error). Empty input yields no batches.
pub fn scan_batches(buf: &[u8]) -> Result<Vec<BatchRef>, FormatError> {
    let mut batches = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let rest = &buf[pos..];
        let header = frame(rest)?;
        let end = pos + header.total_len();
        batches.push(BatchRef {
            header,
            range: pos..end,
        });
        pos = end;
    }
    Ok(batches)
}

/// Checks that `rest` starts with a whole v2 batch and returns its header.
pub(crate) fn frame(rest: &[u8]) -> Result<BatchHeader, FormatError> {
    let Some(length) = rest.get(8..LOG_OVERHEAD) else {
        return Err(FormatError::Truncated {
            needed: LOG_OVERHEAD,
            available: rest.len(),
        });
    };
    // Checked before the length because magic 0 and 1 frame their length differently: an old
    // client should hear "unsupported magic", not "bad length".
    if let Some(&magic) = rest.get(MAGIC_OFFSET) {
        let magic = magic as i8;
        if magic != MAGIC_V2 {
            return Err(FormatError::UnsupportedMagic(magic));
        }
    }
    let batch_length = i32::from_be_bytes([length[0], length[1], length[2], length[3]]);
    const MIN_BATCH_LENGTH: i32 = (BATCH_HEADER_LEN - LOG_OVERHEAD) as i32;
    if batch_length < MIN_BATCH_LENGTH {
        return Err(FormatError::InvalidBatchLength(batch_length));
    }
    let header = BatchHeader::parse(rest)?;
    let total = header.total_len();
    if rest.len() < total {
        return Err(FormatError::Truncated {
            needed: total,
            available: rest.len(),
        });
    }
    Ok(header)
}

/// Overwrites `base_offset` of consecutive whole batches in `chunk`: the first batch gets
/// `base_offset`, each next one the previous plus the previous [`BatchHeader::offset_count`].
/// The CRC does not cover `base_offset`, so it stays valid. Returns the offset after the last
/// batch. The whole chunk is checked before anything is written, so an error leaves it untouched.
pub fn rewrite_base_offsets(chunk: &mut [u8], base_offset: i64) -> Result<i64, FormatError> {
    let batches = scan_batches(chunk)?;
    let mut starts = Vec::with_capacity(batches.len());
    let mut next = base_offset;
    for batch in &batches {
        if batch.header.last_offset_delta < 0 {
            return Err(FormatError::InvalidLastOffsetDelta(
                batch.header.last_offset_delta,
            ));
        }
        starts.push((batch.range.start, next));
        next = next
            .checked_add(batch.header.offset_count())
            .ok_or(FormatError::OffsetOverflow)?;
    }
    for (start, offset) in starts {
        chunk[start..start + 8].copy_from_slice(&offset.to_be_bytes());
    }
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{batch, ALL_CODECS};

    fn concat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    #[test]
    fn split_accepts_batches_of_every_codec() {
        let parts: Vec<_> = ALL_CODECS.iter().map(|&c| batch(c, 5, 1_000)).collect();
        let buf = concat(&parts.iter().map(|b| &b[..]).collect::<Vec<_>>());
        let refs = split_batches(&buf).unwrap();
        assert_eq!(refs.len(), ALL_CODECS.len());
        let mut pos = 0;
        for ((r, codec), part) in refs.iter().zip(ALL_CODECS).zip(&parts) {
            assert_eq!(r.range, pos..pos + part.len());
            assert_eq!(r.header.compression(), Ok(codec));
            assert_eq!(r.header.total_len(), part.len());
            assert_eq!(r.header.magic, 2);
            assert_eq!(r.header.records_count, 5);
            assert_eq!(r.header.last_offset_delta, 4);
            assert_eq!(r.header.offset_count(), 5);
            assert_eq!(r.header.producer_id, 42);
            assert_eq!(r.header.base_sequence, 100);
            pos = r.range.end;
        }
        assert_eq!(scan_batches(&buf).unwrap(), refs);
    }

    #[test]
    fn attribute_bits() {
        let mut header = BatchHeader::parse(&batch(Compression::Lz4, 1, 0)).unwrap();
        assert!(!header.is_transactional() && !header.is_control());
        assert!(!header.has_log_append_time());
        header.attributes |= ATTR_TRANSACTIONAL | ATTR_CONTROL | ATTR_LOG_APPEND_TIME;
        assert!(header.is_transactional() && header.is_control());
        assert!(header.has_log_append_time());
        assert_eq!(header.compression(), Ok(Compression::Lz4));
        for codec in 5..=7 {
            header.attributes = codec;
            assert_eq!(
                header.compression(),
                Err(FormatError::UnknownCompression(codec))
            );
        }
    }

    #[test]
    fn empty_input_is_an_error_on_write_but_not_on_read() {
        assert_eq!(split_batches(&[]), Err(FormatError::Empty));
        assert_eq!(scan_batches(&[]), Ok(vec![]));
    }

    #[test]
    fn crc_mismatch_detected_anywhere_under_the_crc() {
        let good = batch(Compression::None, 3, 0).to_vec();
        for at in CRC_START..good.len() {
            let mut bad = good.clone();
            bad[at] ^= 0x01;
            assert!(
                matches!(split_batches(&bad), Err(FormatError::CrcMismatch { .. })),
                "flip at {at}"
            );
        }
        // The CRC field itself.
        let mut bad = good.clone();
        bad[CRC_OFFSET] ^= 0x80;
        assert!(matches!(
            split_batches(&bad),
            Err(FormatError::CrcMismatch { .. })
        ));
        // base_offset and partition_leader_epoch are outside the CRC by design.
        let mut moved = good.clone();
        moved[3] ^= 0xff;
        moved[13] ^= 0xff;
        assert!(split_batches(&moved).is_ok());
    }

    #[test]
    fn truncated_trailing_batch_rejected() {
        let one = batch(Compression::Gzip, 2, 0);
        let two = concat(&[&one, &one]);
        for cut in 1..one.len() {
            let err = split_batches(&two[..one.len() + cut]).unwrap_err();
            assert!(
                matches!(err, FormatError::Truncated { .. }),
                "cut {cut}: {err}"
            );
            assert!(matches!(
                scan_batches(&two[..one.len() + cut]),
                Err(FormatError::Truncated { .. })
            ));
        }
    }

    #[test]
    fn old_magic_rejected() {
        for magic in [0u8, 1, 3, 0xff] {
            let mut buf = batch(Compression::None, 1, 0).to_vec();
            buf[MAGIC_OFFSET] = magic;
            assert_eq!(
                split_batches(&buf),
                Err(FormatError::UnsupportedMagic(magic as i8))
            );
        }
        // A magic-1 message set is shorter than a v2 header; the magic still decides the error.
        let mut v1 = vec![0u8; 30];
        v1[8..12].copy_from_slice(&18i32.to_be_bytes());
        v1[MAGIC_OFFSET] = 1;
        assert_eq!(split_batches(&v1), Err(FormatError::UnsupportedMagic(1)));
    }

    #[test]
    fn bad_batch_lengths_rejected() {
        let mut buf = batch(Compression::None, 1, 0).to_vec();
        for length in [i32::MIN, -1, 0, 48] {
            buf[8..12].copy_from_slice(&length.to_be_bytes());
            assert_eq!(
                split_batches(&buf),
                Err(FormatError::InvalidBatchLength(length))
            );
        }
        buf[8..12].copy_from_slice(&i32::MAX.to_be_bytes());
        assert_eq!(
            split_batches(&buf),
            Err(FormatError::Truncated {
                needed: i32::MAX as usize + 12,
                available: buf.len()
            })
        );
    }

    /// Re-encodes a header field and fixes the CRC, to reach checks behind the CRC check.
    fn with_field(at: usize, value: &[u8]) -> Vec<u8> {
        let mut buf = batch(Compression::None, 2, 0).to_vec();
        buf[at..at + value.len()].copy_from_slice(value);
        let crc = crc32c::crc32c(&buf[CRC_START..]);
        buf[CRC_OFFSET..CRC_START].copy_from_slice(&crc.to_be_bytes());
        buf
    }

    #[test]
    fn negative_counts_and_unknown_codec_rejected() {
        assert_eq!(
            split_batches(&with_field(23, &(-2i32).to_be_bytes())),
            Err(FormatError::InvalidLastOffsetDelta(-2))
        );
        assert_eq!(
            split_batches(&with_field(57, &(-1i32).to_be_bytes())),
            Err(FormatError::InvalidRecordsCount(-1))
        );
        assert_eq!(
            split_batches(&with_field(21, &6i16.to_be_bytes())),
            Err(FormatError::UnknownCompression(6))
        );
    }

    #[test]
    fn header_parse_needs_61_bytes() {
        let buf = batch(Compression::None, 1, 0);
        assert!(BatchHeader::parse(&buf[..BATCH_HEADER_LEN]).is_ok());
        assert_eq!(
            BatchHeader::parse(&buf[..60]),
            Err(FormatError::Truncated {
                needed: 61,
                available: 60
            })
        );
    }

    #[test]
    fn rewrite_base_offsets_chains_offset_counts() {
        let parts = [
            batch(Compression::None, 3, 0),
            batch(Compression::Zstd, 1, 0),
            batch(Compression::Snappy, 10, 0),
        ];
        let mut chunk = concat(&[&parts[0], &parts[1], &parts[2]]);
        assert_eq!(rewrite_base_offsets(&mut chunk, 1000), Ok(1014));
        let refs = split_batches(&chunk).expect("crc must survive the rewrite");
        let bases: Vec<_> = refs.iter().map(|r| r.header.base_offset).collect();
        assert_eq!(bases, [1000, 1003, 1004]);
        // Idempotent: the read path may rewrite a cached chunk again.
        assert_eq!(rewrite_base_offsets(&mut chunk, 1000), Ok(1014));
        assert_eq!(rewrite_base_offsets(&mut [], 5), Ok(5));
    }

    #[test]
    fn rewrite_leaves_malformed_chunk_untouched() {
        let one = batch(Compression::None, 3, 0);
        let mut chunk = concat(&[&one, &one[..20]]);
        let before = chunk.clone();
        assert!(rewrite_base_offsets(&mut chunk, 77).is_err());
        assert_eq!(chunk, before);
        let mut chunk = one.to_vec();
        assert_eq!(
            rewrite_base_offsets(&mut chunk, i64::MAX - 1),
            Err(FormatError::OffsetOverflow)
        );
    }
}
