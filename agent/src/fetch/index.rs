//! The agent's cache of the offset index. This agent's own commits are inserted as they
//! happen, so tailing reads never ask the metadata service; anything else is read from the
//! service in pages and kept, up to a bound per partition.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use floe_metadata::{IndexEntry, Metadata, MetadataError, TopicId};

/// Entries kept per partition; older ones are dropped first (tailing reads matter most).
const MAX_ENTRIES_PER_PARTITION: usize = 4096;

/// Entries requested per metadata-service round trip.
const PAGE: u32 = 64;

/// Cached offset index of every partition this agent served.
pub struct IndexCache {
    metadata: Arc<dyn Metadata>,
    parts: RwLock<HashMap<(TopicId, i32), BTreeMap<i64, IndexEntry>>>,
}

impl IndexCache {
    /// An empty cache in front of `metadata`.
    pub fn new(metadata: Arc<dyn Metadata>) -> Self {
        IndexCache {
            metadata,
            parts: RwLock::default(),
        }
    }

    /// Records an entry (from this agent's own commit).
    pub fn insert(&self, topic_id: TopicId, partition: i32, entry: IndexEntry) {
        let mut parts = self.parts.write().unwrap_or_else(|p| p.into_inner());
        let map = parts.entry((topic_id, partition)).or_default();
        map.insert(entry.base_offset, entry);
        while map.len() > MAX_ENTRIES_PER_PARTITION {
            map.pop_first();
        }
    }

    /// Forgets a topic (deleted).
    pub fn forget_topic(&self, topic_id: TopicId) {
        let mut parts = self.parts.write().unwrap_or_else(|p| p.into_inner());
        parts.retain(|(t, _), _| *t != topic_id);
    }

    /// The run of contiguous cached entries starting with the one holding `offset`.
    fn cached_run(
        &self,
        topic_id: TopicId,
        partition: i32,
        offset: i64,
        max: usize,
    ) -> Vec<IndexEntry> {
        let parts = self.parts.read().unwrap_or_else(|p| p.into_inner());
        let Some(map) = parts.get(&(topic_id, partition)) else {
            return Vec::new();
        };
        let mut out: Vec<IndexEntry> = Vec::new();
        let Some((_, first)) = map.range(..=offset).next_back() else {
            return out;
        };
        if first.last_offset < offset {
            return out;
        }
        let mut next = first.base_offset;
        for (_, e) in map.range(first.base_offset..) {
            if e.base_offset != next || out.len() >= max {
                break;
            }
            next = e.last_offset + 1;
            out.push(e.clone());
        }
        out
    }

    /// Entries holding `offset` and after, in order and contiguous, at most `max`. Empty if
    /// the partition has no entry at `offset` (below the log start, or not yet committed).
    pub async fn entries_from(
        &self,
        topic_id: TopicId,
        partition: i32,
        offset: i64,
        max: usize,
    ) -> Result<Vec<IndexEntry>, MetadataError> {
        let run = self.cached_run(topic_id, partition, offset, max);
        if !run.is_empty() {
            return Ok(run);
        }
        let page = self
            .metadata
            .read_index(topic_id, partition, offset, PAGE)
            .await?;
        for e in &page {
            self.insert(topic_id, partition, e.clone());
        }
        let mut out = Vec::new();
        let mut next = None;
        for e in page {
            if e.last_offset < offset {
                continue;
            }
            if out.is_empty() && e.base_offset > offset {
                break;
            }
            if next.is_some_and(|n| n != e.base_offset) || out.len() >= max {
                break;
            }
            next = Some(e.last_offset + 1);
            out.push(e);
        }
        Ok(out)
    }
}
