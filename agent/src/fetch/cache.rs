//! The zone cache: object blocks (4 MiB) in memory, shared by the agents of one zone.
//!
//! Objects are read in fixed blocks rather than per partition chunk, so a consumer catching
//! up on a multi-partition WAL object costs one GET per block, shared by every partition in
//! it. Each block has one owner among the live agents of the zone (rendezvous hashing over
//! the fleet, see `Fleet::block_owner`); only the owner reads it from the object store
//! (once, single-flight through moka's `try_get_with`) and keeps it. Other agents ask the
//! owner for the byte range they need over the peer endpoint (`peer.rs`), so a block is read
//! from the object store about once per zone whichever agent a consumer talks to. The agent
//! that writes an object pushes each block to its owner before committing it, so tailing
//! consumers in the writer's zone never wait for a GET.
//!
//! Two budgets: blocks of objects written in the last `tail_window_ms` (pushed or read)
//! live in the tail cache; older blocks, read by consumers catching up, live in their own
//! catch-up cache, with a bounded number of GETs in flight and a byte rate (`pace.rs`), so a
//! cold read of a whole topic can neither evict the tail nor take the CPU and object-store
//! bandwidth producers need.
//!
//! When a block's owner does not answer, the agent reads the block itself (into its own
//! catch-up cache) and counts a fallback. Chunks assembled from bytes that did not come
//! from this agent's memory have their batch CRCs checked.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use floe_common::{Metrics, Objects, ObjectsError};
use moka::future::Cache;
use tokio::sync::Semaphore;
use tracing::debug;

use super::pace::Pacer;
use super::peer::{PeerClient, PeerError};
use crate::fleet::Fleet;

/// Block size. Large enough that a GET carries a useful amount (S3 charges per request), small
/// enough that a tailing read of one partition does not pull in a whole large object.
pub const BLOCK_BYTES: u64 = 4 * 1024 * 1024;

/// Longest a write waits for its blocks to reach their owners (in-zone; normally a few ms).
const PUSH_DEADLINE: std::time::Duration = std::time::Duration::from_millis(250);

/// Object-store GETs in flight at once for catch-up reads, per agent.
const CATCHUP_GETS: usize = 8;

/// `(object key, block index, object size)`: the size is part of the key so that a reader
/// that got an object's size wrong can never plant a short block for the others.
type BlockKey = (Arc<str>, u64, u64);
/// A byte range `from..to` of a block.
type RangeKey = (Arc<str>, u64, usize, usize);

/// How long a range fetched from its owner stays at the asking agent.
const RECENT_TTL: std::time::Duration = std::time::Duration::from_secs(5);
/// Memory for those ranges.
const RECENT_BYTES: u64 = 64 * 1024 * 1024;

/// Where blocks are kept, and how the other agents of the zone are reached.
pub struct ChunkCache {
    tail: Cache<BlockKey, Bytes>,
    catchup: Cache<BlockKey, Bytes>,
    catchup_gets: Arc<Semaphore>,
    catchup_pace: Arc<Pacer>,
    recent: Cache<RangeKey, Bytes>,
    tail_window_ms: i64,
    objects: Objects,
    metrics: Arc<Metrics>,
    /// The zone's agents; `None` caches alone (the playground, or no peer endpoint).
    peers: Option<(Arc<Fleet>, PeerClient)>,
    clock: Arc<dyn floe_common::Clock>,
}

/// Budgets of the two caches.
#[derive(Debug, Clone, Copy)]
pub struct Budgets {
    /// Bytes of recently written objects' blocks.
    pub tail_bytes: u64,
    /// Bytes of older blocks read by consumers catching up.
    pub catchup_bytes: u64,
    /// Objects written at most this long ago are the tail.
    pub tail_window_ms: u64,
    /// Object-store bytes per second this agent reads for catch-up blocks (0: unlimited).
    pub catchup_bytes_per_sec: u64,
}

/// The blocks `[first, last]` that hold bytes `start..start+len` of an object.
fn blocks_for(start: u64, len: u64) -> (u64, u64) {
    let first = start / BLOCK_BYTES;
    let last = (start + len.max(1) - 1) / BLOCK_BYTES;
    (first, last)
}

/// Byte range of block `index` within an object of `size` bytes.
pub fn block_range(index: u64, size: u64) -> std::ops::Range<u64> {
    let start = index.saturating_mul(BLOCK_BYTES).min(size);
    start..(start + BLOCK_BYTES).min(size)
}

fn bounded(budget: u64) -> Cache<BlockKey, Bytes> {
    Cache::builder()
        .max_capacity(budget)
        // Reads scan forward (tailing, or catching up block after block): the block read
        // last is the one wanted next. TinyLFU's admission would turn away a new block while
        // older, more-read ones fill the budget, and the scan would GET it again.
        .eviction_policy(moka::policy::EvictionPolicy::lru())
        .weigher(|_k: &BlockKey, v: &Bytes| u32::try_from(v.len()).unwrap_or(u32::MAX))
        .build()
}

impl ChunkCache {
    /// A cache of this agent alone (no peers).
    pub fn new(objects: Objects, metrics: Arc<Metrics>, budgets: Budgets) -> Self {
        ChunkCache {
            tail: bounded(budgets.tail_bytes),
            catchup: bounded(budgets.catchup_bytes),
            catchup_gets: Arc::new(Semaphore::new(CATCHUP_GETS)),
            catchup_pace: Arc::new(Pacer::new(budgets.catchup_bytes_per_sec)),
            recent: Cache::builder()
                .max_capacity(RECENT_BYTES)
                .weigher(|_k: &RangeKey, v: &Bytes| u32::try_from(v.len()).unwrap_or(u32::MAX))
                .time_to_live(RECENT_TTL)
                .build(),
            tail_window_ms: i64::try_from(budgets.tail_window_ms).unwrap_or(i64::MAX),
            objects,
            metrics,
            peers: None,
            clock: floe_common::clock::system(),
        }
    }

    /// Shares blocks with the agents of this agent's zone in `fleet`.
    pub fn with_peers(mut self, fleet: Arc<Fleet>, client: PeerClient) -> Self {
        self.peers = Some((fleet, client));
        self
    }

    /// Replaces the clock that tells tail blocks from old ones (tests).
    pub fn with_clock(mut self, clock: Arc<dyn floe_common::Clock>) -> Self {
        self.clock = clock;
        self
    }

    fn is_tail(&self, key: &str) -> bool {
        floe_format::keys::wal_written_at_ms(key)
            .is_some_and(|t| self.clock.now_ms().saturating_sub(t) <= self.tail_window_ms)
    }

    /// The owner of a block when it is another agent.
    fn remote_owner(
        &self,
        key: &str,
        index: u64,
    ) -> Option<(floe_metadata::AgentInfo, &PeerClient)> {
        let (fleet, client) = self.peers.as_ref()?;
        fleet.block_owner(key, index).map(|owner| (owner, client))
    }

    /// Puts a freshly written object's blocks where they belong: this agent's own blocks
    /// into its tail cache (copies, so each cached block weighs what it holds), the others
    /// pushed to their owners. Waits for the pushes (they run beside the upload); a failed
    /// push is counted and costs the owner one GET later.
    pub async fn publish(&self, key: &str, object: &Bytes) {
        let key: Arc<str> = Arc::from(key);
        let size = object.len() as u64;
        let blocks = size.div_ceil(BLOCK_BYTES);
        let mut pushes = Vec::new();
        for index in 0..blocks {
            let r = block_range(index, size);
            let block = object.slice(r.start as usize..r.end as usize);
            match self.remote_owner(&key, index) {
                None => {
                    self.tail
                        .insert((key.clone(), index, size), Bytes::copy_from_slice(&block))
                        .await;
                }
                Some((owner, client)) => {
                    let key = key.clone();
                    pushes.push(async move {
                        let len = block.len();
                        match client.push(&owner, &key, index, size, block).await {
                            Ok(()) => self.metrics.peer_bytes("pushed", len),
                            Err(e) => {
                                debug!(%key, index, owner = owner.node_id, error = %e, "block push failed");
                                self.metrics.cache_push_failures.inc();
                            }
                        }
                    });
                }
            }
        }
        // The upload runs beside this and a commit waits for both: a slow or hung owner must
        // not hold produce acknowledgements. Pushes still running at the deadline are
        // abandoned (counted); their owners GET the blocks on first read.
        let n = pushes.len() as u64;
        if tokio::time::timeout(PUSH_DEADLINE, futures::future::join_all(pushes))
            .await
            .is_err()
        {
            debug!(%key, blocks = n, "block pushes past their deadline; abandoned");
            self.metrics.cache_push_failures.inc_by(n);
        }
    }

    /// Counts bytes handed to another agent of the zone.
    pub fn count_served(&self, bytes: usize) {
        self.metrics.peer_bytes("served", bytes);
    }

    /// Stores a block pushed by the agent that wrote it (this agent owns it).
    pub async fn accept_push(&self, key: &str, index: u64, size: u64, block: Bytes) {
        self.metrics.peer_bytes("push_received", block.len());
        let k = (Arc::from(key), index, size);
        if self.is_tail(key) {
            self.tail.insert(k, Bytes::copy_from_slice(&block)).await;
        } else {
            self.catchup.insert(k, Bytes::copy_from_slice(&block)).await;
        }
    }

    /// Block `index` of an object from this agent's memory, or read once from the object
    /// store into the cache its age belongs to. The flag is true when it was read now.
    pub async fn local_block(
        &self,
        key: &Arc<str>,
        index: u64,
        object_size: u64,
    ) -> Result<(Bytes, bool), Arc<ObjectsError>> {
        let k = (key.clone(), index, object_size);
        if let Some(b) = self.tail.get(&k).await {
            self.metrics.cache("tail", true);
            return Ok((b, false));
        }
        if let Some(b) = self.catchup.get(&k).await {
            self.metrics.cache("catchup", true);
            return Ok((b, false));
        }
        let tail = self.is_tail(key);
        self.metrics
            .cache(if tail { "tail" } else { "catchup" }, false);
        let objects = self.objects.clone();
        let name = key.to_string();
        let range = block_range(index, object_size);
        let b = if tail {
            self.tail
                .try_get_with(
                    k,
                    async move { objects.get_range(&name, range, "fetch").await },
                )
                .await?
        } else {
            let gets = self.catchup_gets.clone();
            let pace = self.catchup_pace.clone();
            self.catchup
                .try_get_with(k, async move {
                    pace.pace(range.end - range.start).await;
                    // Closed only if dropped, which this cache never does.
                    let _permit = gets.acquire_owned().await;
                    objects.get_range(&name, range, "fetch").await
                })
                .await?
        };
        Ok((b, true))
    }

    /// Bytes `from..to` of block `index`, from wherever the block lives in the zone. The flag
    /// is true when the bytes did not come from this agent's memory (so they get checked).
    async fn block_part(
        &self,
        key: &Arc<str>,
        index: u64,
        size: u64,
        from: usize,
        to: usize,
    ) -> Result<(Bytes, bool), Arc<ObjectsError>> {
        if let Some((owner, client)) = self.remote_owner(key, index) {
            // A consumer re-reads the same chunk range at each fetch while its partition
            // budget is smaller than the chunk: the range just fetched from the owner is kept
            // for a few seconds, and concurrent readers of it here share one peer request.
            let k = (key.clone(), index, from, to);
            let fetched = self
                .recent
                .try_get_with(k, async {
                    let started = std::time::Instant::now();
                    let b = client.fetch(&owner, key, index, size, from, to).await?;
                    if b.len() != to - from {
                        return Err(PeerError::Status(
                            200,
                            format!("{} bytes, not {}", b.len(), to - from),
                        ));
                    }
                    self.metrics
                        .cache_peer_fetch_seconds
                        .observe(started.elapsed().as_secs_f64());
                    self.metrics.peer_bytes("fetched", b.len());
                    Ok(b)
                })
                .await;
            match fetched {
                Ok(b) => return Ok((b, true)),
                Err(e) => {
                    debug!(%key, index, owner = owner.node_id, error = %e, "block owner did not answer");
                }
            }
            self.metrics.cache_peer_fallbacks.inc();
            let (b, _) = self.local_block(key, index, size).await?;
            return Ok((slice(&b, from, to - from, key)?, true));
        }
        let (b, fresh) = self.local_block(key, index, size).await?;
        Ok((slice(&b, from, to - from, key)?, fresh))
    }

    /// Bytes `byte_offset..byte_offset+byte_len` of an object of `object_size` bytes.
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
        let mut check = false;
        let mut parts = Vec::with_capacity((last - first + 1) as usize);
        for index in first..=last {
            let block_start = index * BLOCK_BYTES;
            let from = start.max(block_start) - block_start;
            let to = (start + len).min(block_start + BLOCK_BYTES).min(size) - block_start;
            let (b, fresh) = self
                .block_part(&key, index, size, from as usize, to as usize)
                .await?;
            check |= fresh;
            parts.push(b);
        }
        let bytes = if parts.len() == 1 {
            parts.pop().unwrap_or_default()
        } else {
            let mut out = BytesMut::with_capacity(len as usize);
            for p in parts {
                out.extend_from_slice(&p);
            }
            out.freeze()
        };
        if check {
            // Data is checked when written and again when read: a corrupt object, a
            // mis-ranged GET or a confused peer must not reach a consumer as valid batches.
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
        assert_eq!(block_range(1, B + 10), B..B + 10);
        assert_eq!(block_range(0, 10), 0..10);
    }
}

#[cfg(test)]
#[path = "cache_tests.rs"]
mod zone_tests;
