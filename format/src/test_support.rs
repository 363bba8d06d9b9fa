//! Batch builders shared by this crate's unit tests.

use bytes::Bytes;

use crate::batch::Compression;
use crate::records::{encode_batch, BatchSpec, Record};

pub(crate) const ALL_CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

/// `count` records with a null key, an empty key, headers with null and non-null values, and a
/// tombstone, so every nullable path is encoded.
pub(crate) fn records(count: i32) -> Vec<Record> {
    (0..count)
        .map(|i| Record {
            offset_delta: i,
            timestamp_delta: i64::from(i) * 10,
            key: match i % 3 {
                0 => None,
                1 => Some(Bytes::new()),
                _ => Some(Bytes::from(format!("key-{i}"))),
            },
            value: (i % 4 != 3).then(|| Bytes::from(format!("value-{i}-").repeat(8))),
            headers: (0..i % 3)
                .map(|h| {
                    (
                        Bytes::from(format!("h{h}")),
                        (h % 2 == 0).then(|| Bytes::from_static(b"hv")),
                    )
                })
                .collect(),
        })
        .collect()
}

/// A spec for an idempotent producer's batch starting at `base_timestamp`.
pub(crate) fn spec(base_timestamp: i64) -> BatchSpec {
    BatchSpec {
        base_offset: 0,
        partition_leader_epoch: 7,
        attributes_flags: 0,
        base_timestamp,
        max_timestamp: base_timestamp + 1000,
        producer_id: 42,
        producer_epoch: 3,
        base_sequence: 100,
    }
}

/// An encoded batch of `count` records.
pub(crate) fn batch(codec: Compression, count: i32, base_timestamp: i64) -> Bytes {
    encode_batch(&spec(base_timestamp), &records(count), codec).unwrap()
}
