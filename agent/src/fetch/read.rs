//! Reads one partition's records from `fetch_offset` within a byte budget. Stored batches
//! carry the producer's placeholder base offset and leader epoch; the real ones are written
//! into each copy here (both fields lie before the CRC'd part, so the batch stays valid).

use bytes::{Bytes, BytesMut};
use floe_format::batch::scan_batches;
use floe_metadata::TopicId;
use thiserror::Error;
use tracing::error;

use super::cache::ChunkCache;
use super::index::IndexCache;

/// Why a partition read failed.
#[derive(Debug, Error)]
pub enum ReadError {
    /// Object store failure (retriable for the client).
    #[error("object store: {0}")]
    Store(String),
    /// An object the index named is gone (replaced by a segment and deleted since the entry
    /// was cached): read the index again.
    #[error("object gone: {0}")]
    Gone(String),
    /// Metadata service failure (retriable).
    #[error("metadata: {0}")]
    Metadata(String),
    /// Stored bytes disagree with the index; never expected.
    #[error("corrupt chunk: {0}")]
    Corrupt(String),
}

/// Entries fetched from the index per step.
const ENTRIES_PER_STEP: usize = 16;

/// What to read: a partition from an offset up to the high watermark.
#[derive(Debug, Clone, Copy)]
pub struct ReadRange {
    /// Topic.
    pub topic_id: TopicId,
    /// Partition.
    pub partition: i32,
    /// First offset wanted.
    pub fetch_offset: i64,
    /// Read nothing at or beyond this offset.
    pub high_watermark: i64,
    /// Partition epoch written into each batch's `partition_leader_epoch`, as a Kafka leader
    /// stamps the batches it appends; consumers use it to validate their position (KIP-320).
    pub leader_epoch: i32,
}

/// [`read_partition_once`], reading the index again once if a cached entry named an object
/// that is gone.
pub async fn read_partition(
    index: &IndexCache,
    cache: &ChunkCache,
    range: ReadRange,
    budget: usize,
    min_one: bool,
) -> Result<Bytes, ReadError> {
    match read_partition_once(index, cache, range, budget, min_one).await {
        Err(ReadError::Gone(_)) => {
            index.forget_partition(range.topic_id, range.partition);
            read_partition_once(index, cache, range, budget, min_one).await
        }
        other => other,
    }
}

/// Reads batches holding offsets `fetch_offset..high_watermark`, stopping before the batch
/// that would exceed `budget` bytes, except that with `min_one` the first batch is returned
/// whatever its size (KIP-74: a consumer must always be able to make progress).
async fn read_partition_once(
    index: &IndexCache,
    cache: &ChunkCache,
    range: ReadRange,
    budget: usize,
    min_one: bool,
) -> Result<Bytes, ReadError> {
    let ReadRange {
        topic_id,
        partition,
        fetch_offset,
        high_watermark,
        leader_epoch,
    } = range;
    let mut out = BytesMut::new();
    let mut offset = fetch_offset;
    'outer: while offset < high_watermark {
        let entries = index
            .entries_from(topic_id, partition, offset, ENTRIES_PER_STEP)
            .await
            .map_err(|e| ReadError::Metadata(e.to_string()))?;
        if entries.is_empty() {
            break;
        }
        for e in entries {
            if e.base_offset >= high_watermark {
                break 'outer;
            }
            if let Some(m) = e.control {
                // A transaction marker has no object: write the control batch Kafka would
                // have in its log at this offset.
                let batch = floe_format::records::control_batch(
                    e.base_offset,
                    m.producer_id,
                    m.producer_epoch,
                    m.commit,
                    e.max_timestamp_ms,
                )
                .map_err(|err| ReadError::Corrupt(err.to_string()))?;
                if out.len() + batch.len() > budget && !(min_one && out.is_empty()) {
                    break 'outer;
                }
                let start = out.len();
                out.extend_from_slice(&batch);
                out[start + 12..start + 16].copy_from_slice(&leader_epoch.to_be_bytes());
                offset = e.last_offset + 1;
                continue;
            }
            if e.byte_len == 0 {
                // A compacted range whose records were all cleaned away.
                offset = e.last_offset + 1;
                continue;
            }
            // Segments carry real offsets; a cleaned (compacted) one may have gaps between
            // and inside its batches. WAL chunks carry the producer's placeholders: their
            // offsets follow from the entry's.
            let real_offsets = floe_format::keys::is_segment(&e.object_key);
            let chunk = cache
                .get(&e.object_key, e.object_size, e.byte_offset, e.byte_len)
                .await
                .map_err(|err| {
                    if err.is_not_found() {
                        ReadError::Gone(err.to_string())
                    } else {
                        ReadError::Store(err.to_string())
                    }
                })?;
            let batches =
                scan_batches(&chunk).map_err(|err| ReadError::Corrupt(err.to_string()))?;
            let mut base = e.base_offset;
            for b in batches {
                if real_offsets {
                    if b.header.base_offset < base {
                        return Err(ReadError::Corrupt(format!(
                            "batches out of order in {}",
                            e.object_key
                        )));
                    }
                    base = b.header.base_offset;
                }
                let last = base + i64::from(b.header.last_offset_delta);
                if last >= offset {
                    let len = b.range.len();
                    if out.len() + len > budget && !(min_one && out.is_empty()) {
                        break 'outer;
                    }
                    let start = out.len();
                    out.extend_from_slice(&chunk[b.range.clone()]);
                    out[start..start + 8].copy_from_slice(&base.to_be_bytes());
                    out[start + 12..start + 16].copy_from_slice(&leader_epoch.to_be_bytes());
                }
                base = last + 1;
            }
            if base != e.last_offset + 1 && !(real_offsets && base <= e.last_offset + 1) {
                error!(key = %e.object_key, expected = e.last_offset + 1, found = base, "chunk offsets disagree with the index");
                return Err(ReadError::Corrupt(format!(
                    "chunk in {} holds unexpected offsets",
                    e.object_key
                )));
            }
            offset = e.last_offset + 1;
        }
    }
    Ok(out.freeze())
}
