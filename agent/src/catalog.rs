//! The agent's view of topics and partition watermarks.
//!
//! Topics are cached from the metadata service and refreshed when the change feed says the
//! catalogue moved (or when a client names a topic the cache does not know). Watermarks are
//! advanced by this agent's own commits at once and by everyone else's through the feed,
//! and every advance wakes waiting long polls. Watermarks only move forward.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use floe_metadata::{Metadata, MetadataError, PartitionWatermark, TopicId, TopicInfo, WatchCursor};
use tokio::sync::{watch, Mutex};
use tokio::time::Instant;
use tracing::{debug, warn};

/// A topic as the agent caches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topic {
    /// Topic id.
    pub id: TopicId,
    /// Topic name.
    pub name: String,
    /// Partition count.
    pub partitions: i32,
    /// Config overrides.
    pub configs: BTreeMap<String, String>,
}

/// Watermarks of one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marks {
    /// High watermark (log end offset).
    pub high_watermark: i64,
    /// Log start offset.
    pub log_start_offset: i64,
    /// Partition epoch reported as leader epoch.
    pub leader_epoch: i32,
    /// Last stable offset as the metadata service last stated it (read_committed readers
    /// read below it). Until it has, the log start offset: nothing is known to be stable.
    pub last_stable_offset: i64,
    /// Aborted transactions so far (the aborted list is re-read when it moves).
    pub abort_count: i64,
}

impl Marks {
    /// The stable offset, never above the high watermark.
    pub fn stable(&self) -> i64 {
        self.last_stable_offset.min(self.high_watermark)
    }
}

#[derive(Default)]
struct Topics {
    by_name: HashMap<String, Arc<Topic>>,
    by_id: HashMap<TopicId, Arc<Topic>>,
}

/// Minimum spacing of refreshes triggered by unknown topic names, so that a client asking
/// for nonexistent topics in a loop cannot turn into a metadata-service storm.
const MISS_REFRESH_SPACING: Duration = Duration::from_millis(20);

/// Topics and watermarks, shared by every connection of the agent.
pub struct Catalog {
    metadata: Arc<dyn Metadata>,
    topics: RwLock<Topics>,
    marks: RwLock<HashMap<(TopicId, i32), Marks>>,
    changed: watch::Sender<u64>,
    last_refresh: Mutex<Option<Instant>>,
}

impl Catalog {
    /// Builds the catalog and loads topics once.
    pub async fn load(metadata: Arc<dyn Metadata>) -> Result<Arc<Self>, MetadataError> {
        let (changed, _) = watch::channel(0);
        let c = Arc::new(Catalog {
            metadata,
            topics: RwLock::default(),
            marks: RwLock::default(),
            changed,
            last_refresh: Mutex::new(None),
        });
        c.refresh().await?;
        Ok(c)
    }

    /// Reads every partition's watermarks once from the metadata service's change feed, last
    /// stable offsets included. An agent does this before it serves: topics alone say nothing
    /// of open transactions, so until the feed has spoken a partition's last stable offset is
    /// its log start, and a read_committed fetch right after a restart would see nothing.
    pub async fn sync_watermarks(&self) -> Result<(), MetadataError> {
        let batch = self
            .metadata
            .watch(WatchCursor::default(), Duration::ZERO)
            .await?;
        self.refresh().await?;
        self.advance(&batch.watermarks);
        Ok(())
    }

    /// Reloads every topic from the metadata service.
    pub async fn refresh(&self) -> Result<(), MetadataError> {
        let started = Instant::now();
        let list = self.metadata.list_topics().await?;
        self.install(list);
        *self.last_refresh.lock().await = Some(started);
        Ok(())
    }

    fn install(&self, list: Vec<TopicInfo>) {
        let mut topics = Topics::default();
        let mut marks = Vec::new();
        for t in list {
            let topic = Arc::new(Topic {
                id: t.id,
                name: t.name.clone(),
                partitions: t.partitions.len() as i32,
                configs: t.configs.clone(),
            });
            for p in &t.partitions {
                marks.push((
                    (t.id, p.partition),
                    Marks {
                        high_watermark: p.high_watermark,
                        log_start_offset: p.log_start_offset,
                        leader_epoch: p.leader_epoch,
                        last_stable_offset: p.log_start_offset,
                        abort_count: 0,
                    },
                ));
            }
            topics.by_id.insert(t.id, topic.clone());
            topics.by_name.insert(t.name, topic);
        }
        {
            let mut m = write(&self.marks);
            m.retain(|(id, _), _| topics.by_id.contains_key(id));
            for (k, v) in marks {
                let e = m.entry(k).or_insert(v);
                e.high_watermark = e.high_watermark.max(v.high_watermark);
                e.log_start_offset = e.log_start_offset.max(v.log_start_offset);
                e.leader_epoch = e.leader_epoch.max(v.leader_epoch);
            }
        }
        *write(&self.topics) = topics;
        self.changed.send_modify(|v| *v += 1);
    }

    /// The cached topic of that name.
    pub fn by_name(&self, name: &str) -> Option<Arc<Topic>> {
        read(&self.topics).by_name.get(name).cloned()
    }

    /// The cached topic of that id.
    pub fn by_id(&self, id: TopicId) -> Option<Arc<Topic>> {
        read(&self.topics).by_id.get(&id).cloned()
    }

    /// Every cached topic, by name.
    pub fn all(&self) -> Vec<Arc<Topic>> {
        let mut v: Vec<_> = read(&self.topics).by_name.values().cloned().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// The topic of that name, refreshing the cache once if it is unknown (another agent may
    /// have created it a moment ago).
    pub async fn lookup(&self, name: &str) -> Option<Arc<Topic>> {
        if let Some(t) = self.by_name(name) {
            return Some(t);
        }
        self.refresh_on_miss().await;
        self.by_name(name)
    }

    /// Same as [`Catalog::lookup`] by topic id.
    pub async fn lookup_id(&self, id: TopicId) -> Option<Arc<Topic>> {
        if let Some(t) = self.by_id(id) {
            return Some(t);
        }
        self.refresh_on_miss().await;
        self.by_id(id)
    }

    async fn refresh_on_miss(&self) {
        let asked = Instant::now();
        let mut last = self.last_refresh.lock().await;
        // Misses that queued behind a refresh that started after they asked are answered by
        // it; the spacing bounds the load a client looping on unknown names can cause.
        if last.is_some_and(|t| t >= asked || t.elapsed() < MISS_REFRESH_SPACING) {
            return;
        }
        let started = Instant::now();
        match self.metadata.list_topics().await {
            Ok(list) => {
                self.install(list);
                *last = Some(started);
            }
            Err(e) => debug!(error = %e, "topic refresh failed"),
        }
    }

    /// Current watermarks of a partition.
    pub fn marks(&self, id: TopicId, partition: i32) -> Option<Marks> {
        read(&self.marks).get(&(id, partition)).copied()
    }

    /// Moves watermarks forward and wakes long polls.
    pub fn advance(&self, updates: &[PartitionWatermark]) {
        let mut moved = false;
        {
            let mut m = write(&self.marks);
            for u in updates {
                let e = m.entry((u.topic_id, u.partition)).or_insert(Marks {
                    high_watermark: 0,
                    log_start_offset: 0,
                    leader_epoch: 0,
                    last_stable_offset: 0,
                    abort_count: 0,
                });
                // Everything only moves forward; an unstated stable offset (this agent's own
                // commit) leaves it to the metadata service.
                let lso = u.last_stable_offset.filter(|l| *l > e.last_stable_offset);
                if u.high_watermark > e.high_watermark
                    || u.log_start_offset > e.log_start_offset
                    || u.abort_count > e.abort_count
                    || lso.is_some()
                {
                    e.high_watermark = e.high_watermark.max(u.high_watermark);
                    e.log_start_offset = e.log_start_offset.max(u.log_start_offset);
                    e.abort_count = e.abort_count.max(u.abort_count);
                    if let Some(l) = lso {
                        e.last_stable_offset = l;
                    }
                    moved = true;
                }
            }
        }
        if moved {
            self.changed.send_modify(|v| *v += 1);
        }
    }

    /// A receiver that changes whenever any watermark or topic moves.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Follows the metadata service's change feed until `shutdown` fires.
    pub fn spawn_feed(
        self: &Arc<Self>,
        mut shutdown: watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut cursor = WatchCursor::default();
            let mut generation = None;
            let mut backoff = Duration::from_millis(100);
            loop {
                let call = this.metadata.watch(cursor, Duration::from_secs(10));
                let batch = tokio::select! {
                    r = call => r,
                    _ = shutdown.changed() => return,
                };
                match batch {
                    Ok(b) => {
                        backoff = Duration::from_millis(100);
                        cursor = WatchCursor {
                            instance: b.instance,
                            version: b.version,
                        };
                        if generation != Some(b.topics_generation) || b.full {
                            generation = Some(b.topics_generation);
                            if let Err(e) = this.refresh().await {
                                warn!(error = %e, "topic refresh failed");
                            }
                        }
                        this.advance(&b.watermarks);
                    }
                    Err(e) => {
                        warn!(error = %e, "metadata change feed failed; retrying");
                        tokio::select! {
                            _ = tokio::time::sleep(backoff) => {},
                            _ = shutdown.changed() => return,
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                }
            }
        })
    }
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}
