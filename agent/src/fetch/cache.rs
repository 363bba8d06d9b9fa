//! Memory cache of record chunks (one partition's byte range in an object), bounded by a
//! byte budget. Batch CRCs are verified on every read from the object store. A miss reads the range from the object store once even when many fetches
//! want it at the same moment (moka's single-flight `try_get_with`).

use std::sync::Arc;

use bytes::Bytes;
use floe_common::{Metrics, Objects};
use moka::future::Cache;

/// Cache of chunks keyed by `(object key, byte offset)`.
pub struct ChunkCache {
    cache: Cache<(Arc<str>, i64), Bytes>,
    objects: Objects,
    metrics: Arc<Metrics>,
}

impl ChunkCache {
    /// A cache holding at most `budget_bytes` of chunk data.
    pub fn new(objects: Objects, metrics: Arc<Metrics>, budget_bytes: u64) -> Self {
        let cache = Cache::builder()
            .max_capacity(budget_bytes)
            .weigher(|_k: &(Arc<str>, i64), v: &Bytes| u32::try_from(v.len()).unwrap_or(u32::MAX))
            .build();
        ChunkCache {
            cache,
            objects,
            metrics,
        }
    }

    /// Puts a chunk in (the writer does this right after upload).
    pub async fn insert(&self, key: &str, byte_offset: i64, bytes: Bytes) {
        self.cache
            .insert((Arc::from(key), byte_offset), bytes)
            .await;
    }

    /// The chunk's bytes, from memory or from one ranged GET.
    pub async fn get(
        &self,
        key: &str,
        byte_offset: i64,
        byte_len: i64,
    ) -> Result<Bytes, Arc<floe_common::ObjectsError>> {
        let k = (Arc::<str>::from(key), byte_offset);
        if let Some(b) = self.cache.get(&k).await {
            if b.len() as i64 == byte_len {
                self.metrics.cache("chunk", true);
                return Ok(b);
            }
        }
        self.metrics.cache("chunk", false);
        let objects = self.objects.clone();
        let key = key.to_string();
        let start = byte_offset.max(0) as u64;
        let end = start + byte_len.max(0) as u64;
        self.cache
            .try_get_with(k, async move {
                objects.get_range(&key, start..end, "fetch").await
            })
            .await
    }
}
