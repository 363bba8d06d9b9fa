//! Memory cache of object blocks, bounded by a byte budget. Objects are read in fixed
//! blocks (4 MiB) rather than per partition chunk, so a consumer catching up on a
//! multi-partition WAL object costs one GET per block, shared by every partition in it,
//! instead of one GET per chunk. A miss fetches its block once even when many fetches want
//! it at the same moment (moka's single-flight `try_get_with`). Chunks assembled from
//! freshly fetched blocks have their batch CRCs re-checked.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use floe_common::{Metrics, Objects, ObjectsError};
use moka::future::Cache;

/// Block size. Large enough that a GET carries a useful amount (S3 charges per request), small
/// enough that a tailing read of one partition does not pull in a whole large object.
pub const BLOCK_BYTES: u64 = 4 * 1024 * 1024;

/// Cache of blocks keyed by `(object key, block index)`.
pub struct ChunkCache {
    cache: Cache<(Arc<str>, u64), Bytes>,
    objects: Objects,
    metrics: Arc<Metrics>,
}

/// The blocks `[first, last]` that hold bytes `start..start+len` of an object.
fn blocks_for(start: u64, len: u64) -> (u64, u64) {
    let first = start / BLOCK_BYTES;
    let last = (start + len.max(1) - 1) / BLOCK_BYTES;
    (first, last)
}

impl ChunkCache {
    /// A cache holding at most `budget_bytes` of block data.
    pub fn new(objects: Objects, metrics: Arc<Metrics>, budget_bytes: u64) -> Self {
        let cache = Cache::builder()
            .max_capacity(budget_bytes)
            .weigher(|_k: &(Arc<str>, u64), v: &Bytes| u32::try_from(v.len()).unwrap_or(u32::MAX))
            .build();
        ChunkCache {
            cache,
            objects,
            metrics,
        }
    }

    /// Puts a whole freshly written object in, block by block (copies, so each cached block
    /// weighs what it holds).
    pub async fn insert_object(&self, key: &str, object: &[u8]) {
        let key: Arc<str> = Arc::from(key);
        for (i, block) in object.chunks(BLOCK_BYTES as usize).enumerate() {
            self.cache
                .insert((key.clone(), i as u64), Bytes::copy_from_slice(block))
                .await;
        }
    }

    async fn block(
        &self,
        key: &Arc<str>,
        index: u64,
        object_size: u64,
    ) -> Result<(Bytes, bool), Arc<ObjectsError>> {
        let k = (key.clone(), index);
        if let Some(b) = self.cache.get(&k).await {
            self.metrics.cache("block", true);
            return Ok((b, false));
        }
        self.metrics.cache("block", false);
        let objects = self.objects.clone();
        let name = key.to_string();
        let start = index * BLOCK_BYTES;
        let end = (start + BLOCK_BYTES).min(object_size);
        let b = self
            .cache
            .try_get_with(k, async move {
                objects.get_range(&name, start..end, "fetch").await
            })
            .await?;
        Ok((b, true))
    }

    /// Bytes `byte_offset..byte_offset+byte_len` of an object of `object_size` bytes, from
    /// cached blocks or from one ranged GET per missing block.
    pub async fn get(
        &self,
        key: &str,
        object_size: i64,
        byte_offset: i64,
        byte_len: i64,
    ) -> Result<Bytes, Arc<ObjectsError>> {
        let (start, len, size) = (
            byte_offset.max(0) as u64,
            byte_len.max(0) as u64,
            object_size.max(0) as u64,
        );
        if start + len > size {
            return Err(Arc::new(ObjectsError::Corrupt(format!(
                "{key}: range {start}+{len} beyond object size {size}"
            ))));
        }
        let key: Arc<str> = Arc::from(key);
        let (first, last) = blocks_for(start, len);
        let mut fetched = false;
        let bytes = if first == last {
            let (b, f) = self.block(&key, first, size).await?;
            fetched |= f;
            let from = (start - first * BLOCK_BYTES) as usize;
            slice(&b, from, len as usize, &key)?
        } else {
            let mut out = BytesMut::with_capacity(len as usize);
            for index in first..=last {
                let (b, f) = self.block(&key, index, size).await?;
                fetched |= f;
                let block_start = index * BLOCK_BYTES;
                let from = start.max(block_start) - block_start;
                let to = (start + len).min(block_start + b.len() as u64) - block_start;
                out.extend_from_slice(&slice(&b, from as usize, (to - from) as usize, &key)?);
            }
            out.freeze()
        };
        if fetched {
            // Data is checked when written and again when read: a corrupt object or a
            // mis-ranged GET must not reach a consumer as valid-looking batches.
            floe_format::batch::split_batches(&bytes)
                .map_err(|e| Arc::new(ObjectsError::Corrupt(format!("{key}: {e}"))))?;
        }
        Ok(bytes)
    }
}

fn slice(block: &Bytes, from: usize, len: usize, key: &str) -> Result<Bytes, Arc<ObjectsError>> {
    if from + len > block.len() {
        return Err(Arc::new(ObjectsError::Corrupt(format!(
            "{key}: block shorter than the object size says"
        ))));
    }
    Ok(block.slice(from..from + len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_map_to_blocks() {
        const B: u64 = BLOCK_BYTES;
        assert_eq!(blocks_for(0, 1), (0, 0));
        assert_eq!(blocks_for(B - 1, 1), (0, 0));
        assert_eq!(blocks_for(B - 1, 2), (0, 1));
        assert_eq!(blocks_for(B, B), (1, 1));
        assert_eq!(blocks_for(10, 3 * B), (0, 3));
    }
}
