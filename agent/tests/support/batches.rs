//! Record batches as a producer builds them (through `floe_format::records::encode_batch`),
//! and decoding of fetched batches back into offsets, timestamps and values.

use bytes::Bytes;
use floe_format::batch::{scan_batches, BatchHeader, Compression};
use floe_format::records::{decode_records, encode_batch, BatchSpec, Record};

/// One record as a consumer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumed {
    /// Absolute offset.
    pub offset: i64,
    /// Absolute timestamp.
    pub timestamp: i64,
    /// Key.
    pub key: Option<Bytes>,
    /// Value.
    pub value: Option<Bytes>,
}

/// A fetched batch: its header, its bytes and its records.
#[derive(Debug, Clone)]
pub struct FetchedBatch {
    /// Header (base offset as rewritten by the agent).
    pub header: BatchHeader,
    /// The whole batch.
    pub bytes: Bytes,
    /// Its records.
    pub records: Vec<Consumed>,
}

/// A batch of `values.len()` records with keys `k0..`, timestamps `base_timestamp + 10 * i`,
/// and a placeholder base offset of 0 as a producer sends it.
pub fn batch(base_timestamp: i64, values: &[String], compression: Compression) -> Bytes {
    let records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(i, v)| Record {
            offset_delta: i as i32,
            timestamp_delta: 10 * i as i64,
            key: Some(Bytes::from(format!("k{i}"))),
            value: Some(Bytes::from(v.clone())),
            headers: Vec::new(),
        })
        .collect();
    let spec = BatchSpec {
        base_timestamp,
        max_timestamp: base_timestamp + 10 * (values.len().max(1) as i64 - 1),
        ..BatchSpec::default()
    };
    encode_batch(&spec, &records, compression).expect("encoding a test batch")
}

/// `n` values `"{prefix}-{i}"`.
pub fn values(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

/// A one-record uncompressed batch.
pub fn single(timestamp: i64, value: &str) -> Bytes {
    batch(timestamp, &[value.to_string()], Compression::None)
}

/// Splits fetched `records` bytes into batches and decodes every record.
pub fn decode_fetched(records: &Bytes) -> Vec<FetchedBatch> {
    scan_batches(records)
        .expect("fetched bytes are whole v2 batches")
        .into_iter()
        .map(|b| {
            let h = b.header;
            let bytes = records.slice(b.range.clone());
            let records = decode_records(&bytes, 64 << 20)
                .expect("decoding fetched records")
                .into_iter()
                .map(|r| Consumed {
                    offset: h.base_offset + i64::from(r.offset_delta),
                    timestamp: h.base_timestamp + r.timestamp_delta,
                    key: r.key,
                    value: r.value,
                })
                .collect();
            FetchedBatch {
                header: h,
                bytes,
                records,
            }
        })
        .collect()
}

/// Every record value of fetched bytes, as strings.
pub fn fetched_values(records: &Bytes) -> Vec<String> {
    decode_fetched(records)
        .iter()
        .flat_map(|b| b.records.iter())
        .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned())
        .collect()
}
