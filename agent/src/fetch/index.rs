//! The agent's cache of the offset index. This agent's own commits are inserted as they
//! happen, so tailing reads never ask the metadata service; anything else is read from the
//! service in pages and kept, up to a bound per partition. Entries are trusted for
//! [`ENTRY_TTL`] only: the compactor replaces entries (segments, cleaned compacted topics),
//! and the replaced objects stay readable for its grace period (minutes), so an agent
//! re-reading within the TTL never serves data that is gone, and sees compaction soon.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use floe_metadata::{IndexEntry, Metadata, MetadataError, TopicId};

/// Entries kept per partition; older ones are dropped first (tailing reads matter most).
const MAX_ENTRIES_PER_PARTITION: usize = 4096;

/// Entries requested per metadata-service round trip.
const PAGE: u32 = 64;

/// How long a cached entry is used before it is read again from the service. Far below the
/// compactor's grace period (5 minutes by default).
pub const ENTRY_TTL: Duration = Duration::from_secs(30);

/// One partition's cached entries by base offset, each with the time it was cached.
type Entries = BTreeMap<i64, (IndexEntry, Instant)>;

/// Cached offset index of every partition this agent served.
pub struct IndexCache {
    metadata: Arc<dyn Metadata>,
    parts: RwLock<HashMap<(TopicId, i32), Entries>>,
    ttl: Duration,
}

impl IndexCache {
    /// An empty cache in front of `metadata`.
    pub fn new(metadata: Arc<dyn Metadata>) -> Self {
        IndexCache {
            metadata,
            parts: RwLock::default(),
            ttl: ENTRY_TTL,
        }
    }

    /// Records an entry (from this agent's own commit).
    pub fn insert(&self, topic_id: TopicId, partition: i32, entry: IndexEntry) {
        let mut parts = self.parts.write().unwrap_or_else(|p| p.into_inner());
        let map = parts.entry((topic_id, partition)).or_default();
        map.insert(entry.base_offset, (entry, Instant::now()));
        while map.len() > MAX_ENTRIES_PER_PARTITION {
            map.pop_first();
        }
    }

    /// Forgets a partition's entries: they named an object that is gone (the compactor
    /// replaced it by a segment and deleted it), so they are read again from the service.
    pub fn forget_partition(&self, topic_id: TopicId, partition: i32) {
        let mut parts = self.parts.write().unwrap_or_else(|p| p.into_inner());
        parts.remove(&(topic_id, partition));
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
        match parts.get(&(topic_id, partition)) {
            Some(map) => {
                // Start at the last entry beginning at or before `offset`: no full scan.
                let start = map
                    .range(..=offset)
                    .next_back()
                    .map_or(i64::MIN, |(k, _)| *k);
                // A run stops at the first entry past its time to live.
                let fresh = map
                    .range(start..)
                    .take_while(|(_, (_, at))| at.elapsed() < self.ttl)
                    .map(|(_, (e, _))| e);
                contiguous_from(fresh, offset, max)
            }
            None => Vec::new(),
        }
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
        if let (Some(first), Some(last)) = (page.first(), page.last()) {
            // The page is the truth for its offsets: entries cached before a compaction
            // changed the boundaries there must not linger beside it.
            let mut parts = self.parts.write().unwrap_or_else(|p| p.into_inner());
            let map = parts.entry((topic_id, partition)).or_default();
            let stale: Vec<i64> = map
                .range(first.base_offset..=last.last_offset)
                .map(|(k, _)| *k)
                .collect();
            for k in stale {
                map.remove(&k);
            }
            let now = Instant::now();
            for e in &page {
                map.insert(e.base_offset, (e.clone(), now));
            }
            while map.len() > MAX_ENTRIES_PER_PARTITION {
                map.pop_first();
            }
        }
        Ok(contiguous_from(page.iter(), offset, max))
    }
}

/// From entries in offset order: the one holding `offset` and those directly after it,
/// stopping at the first gap or after `max`. Empty when no entry holds `offset`.
fn contiguous_from<'a>(
    entries: impl Iterator<Item = &'a IndexEntry>,
    offset: i64,
    max: usize,
) -> Vec<IndexEntry> {
    let mut out: Vec<IndexEntry> = Vec::new();
    for e in entries {
        if out.len() >= max {
            break;
        }
        match out.last() {
            None if e.last_offset < offset => continue,
            None if e.base_offset > offset => break,
            Some(prev) if e.base_offset != prev.last_offset + 1 => break,
            _ => out.push(e.clone()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(base: i64, last: i64) -> IndexEntry {
        IndexEntry {
            base_offset: base,
            last_offset: last,
            object_key: format!("k{base}"),
            object_size: 1,
            byte_offset: 0,
            byte_len: 1,
            batch_count: 1,
            first_timestamp_ms: 0,
            max_timestamp_ms: 0,
            control: None,
        }
    }

    #[test]
    fn run_starts_at_the_entry_holding_the_offset() {
        let es = [entry(0, 9), entry(10, 19), entry(20, 29)];
        let got = contiguous_from(es.iter(), 15, 10);
        assert_eq!(
            got.iter().map(|e| e.base_offset).collect::<Vec<_>>(),
            vec![10, 20]
        );
    }

    #[test]
    fn run_stops_at_a_gap_and_at_max() {
        let es = [entry(0, 9), entry(10, 19), entry(30, 39)];
        assert_eq!(contiguous_from(es.iter(), 0, 10).len(), 2, "gap at 20..29");
        assert_eq!(contiguous_from(es.iter(), 0, 1).len(), 1, "max");
    }

    #[test]
    fn no_run_when_no_entry_holds_the_offset() {
        let es = [entry(10, 19)];
        assert!(
            contiguous_from(es.iter(), 5, 10).is_empty(),
            "below the first entry"
        );
        assert!(
            contiguous_from(es.iter(), 20, 10).is_empty(),
            "past the last entry"
        );
        assert!(contiguous_from([].iter(), 0, 10).is_empty());
    }
}
