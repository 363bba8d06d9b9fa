//! The compactor role: the life cycle of every object.
//!
//! Each pass (every `interval`), by the one compactor that holds the `lifecycle` lease in the
//! metadata store (others stand by and take over when it lapses):
//! 1. **Retention.** For every partition of a topic whose `cleanup.policy` includes `delete`,
//!    the log start moves past whole index entries older than `retention.ms` and past the
//!    oldest entries beyond `retention.bytes` (Kafka's defaults: 7 days, unlimited).
//! 2. **Deleted topics.** Topics deleted more than `grace` ago lose their index entries.
//! 3. **Unreferenced objects.** Objects that no index entry has referenced for `grace` (so
//!    that readers that found them just before are done) are deleted from the object store
//!    and then forgotten by the metadata.
//! 4. **Orphans** (every `orphan_interval`): objects in the store that the metadata does not
//!    know (an agent crashed between upload and commit) and older than `grace` are deleted.
//!    `grace` must exceed the agents' commit timeout (30 s), so an upload whose commit is
//!    still being retried is never taken for an orphan.
//!
//! Every step is idempotent: a compactor killed mid-pass leaves objects either referenced
//! and present, or unreferenced and awaiting the next pass; never referenced and deleted.
//!
//! Also each pass, after retention: WAL chunks older than `segment_delay` are folded into
//! per-partition segments (`segments.rs`), which frees the WAL objects.
//!
//! Then compacted topics are cleaned (`clean.rs`): each key's latest record survives.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use floe_common::metrics::{OutcomeLabels, ReasonLabels};
use floe_common::{Clock, Metrics, Objects, ObjectsError};
use floe_metadata::{
    LifecycleCall, LifecycleReply, LogStartTarget, Metadata, MetadataError, TopicInfo,
};
use futures::StreamExt;
use thiserror::Error;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, info_span, warn, Instrument};

/// Kafka's default `retention.ms` (7 days).
pub const DEFAULT_RETENTION_MS: i64 = 7 * 24 * 3600 * 1000;

/// Object-store key prefixes the compactor owns.
const OBJECT_DIRS: &[&str] = &["wal", "seg"];

/// Objects handled per metadata round trip.
const BATCH: u32 = 1000;

/// Why a pass failed (it is retried at the next interval).
#[derive(Debug, Error)]
pub enum CompactorError {
    /// The metadata service failed or answered unexpectedly.
    #[error("metadata: {0}")]
    Metadata(#[from] MetadataError),
    /// The object store failed.
    #[error("object store: {0}")]
    Objects(#[from] ObjectsError),
    /// The metadata service answered a call with the wrong kind of reply.
    #[error("unexpected metadata reply: {0}")]
    Reply(String),
    /// A transaction marker could not be encoded (never expected).
    #[error("marker: {0}")]
    Marker(String),
}

/// Compactor settings.
#[derive(Debug, Clone)]
pub struct CompactorSettings {
    /// Time between passes.
    pub interval: Duration,
    /// How long an unreferenced object (or a deleted topic) is kept before deletion, and the
    /// age below which an unknown object is not yet an orphan.
    pub grace: Duration,
    /// Time between orphan scans (each LISTs the whole prefix).
    pub orphan_interval: Duration,
    /// Target size of a segment; segments below half of it are folded again with what
    /// follows them.
    pub segment_bytes: u64,
    /// WAL chunks younger than this are left alone (tailing reads hit them in the zone cache).
    pub segment_delay: Duration,
}

impl Default for CompactorSettings {
    fn default() -> Self {
        CompactorSettings {
            interval: Duration::from_secs(30),
            grace: Duration::from_secs(300),
            orphan_interval: Duration::from_secs(600),
            segment_bytes: 32 * 1024 * 1024,
            segment_delay: Duration::from_secs(300),
        }
    }
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassReport {
    /// Whether this compactor held the lease (did the work).
    pub leader: bool,
    /// Partitions whose log start retention moved.
    pub retention_moves: u64,
    /// Deleted topics purged.
    pub topics_purged: u64,
    /// Segments written and swapped in.
    pub segments: segments::SegmentReport,
    /// Compacted topics cleaned.
    pub cleaned: clean::CleanReport,
    /// Unreferenced objects deleted.
    pub unreferenced_deleted: u64,
    /// Orphans deleted.
    pub orphans_deleted: u64,
}

/// The compactor.
pub struct Compactor {
    metadata: Arc<dyn Metadata>,
    objects: Objects,
    metrics: Arc<Metrics>,
    settings: CompactorSettings,
    clock: Arc<dyn Clock>,
    /// Lease holder name: unique per process.
    instance: String,
}

pub(crate) fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Retention of a topic from its overrides and Kafka's defaults: `(retention.ms,
/// retention.bytes)`, each `None` when unlimited; both `None` when `cleanup.policy` has no
/// `delete`. Unparsable values count as the default (configs are validated when set).
pub fn retention_of(configs: &BTreeMap<String, String>) -> (Option<i64>, Option<i64>) {
    let policy = configs
        .get("cleanup.policy")
        .map(String::as_str)
        .unwrap_or("delete");
    if !policy.split(',').any(|p| p.trim() == "delete") {
        return (None, None);
    }
    let num = |key: &str, default: i64| {
        configs
            .get(key)
            .and_then(|v| v.trim().parse::<i64>().ok())
            .unwrap_or(default)
    };
    let time = num("retention.ms", DEFAULT_RETENTION_MS);
    let bytes = num("retention.bytes", -1);
    ((time >= 0).then_some(time), (bytes >= 0).then_some(bytes))
}

impl Compactor {
    /// A compactor over `metadata` and `objects`.
    pub fn new(
        metadata: Arc<dyn Metadata>,
        objects: Objects,
        metrics: Arc<Metrics>,
        settings: CompactorSettings,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Compactor {
            metadata,
            objects,
            metrics,
            settings,
            clock,
            instance: format!("compactor-{}", uuid::Uuid::new_v4().simple()),
        }
    }

    async fn call(&self, call: LifecycleCall) -> Result<LifecycleReply, CompactorError> {
        Ok(self.metadata.lifecycle(call).await?)
    }

    /// Runs passes every `interval` until `shutdown` flips.
    pub fn spawn(self, mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut last_orphans: Option<Instant> = None;
            loop {
                let orphans =
                    last_orphans.is_none_or(|t| t.elapsed() >= self.settings.orphan_interval);
                let started = Instant::now();
                let span = info_span!("compactor_pass", orphans);
                let outcome = match self.run_once(orphans).instrument(span).await {
                    Ok(report) if report.leader => {
                        if orphans {
                            last_orphans = Some(Instant::now());
                        }
                        if report
                            != (PassReport {
                                leader: true,
                                ..PassReport::default()
                            })
                        {
                            info!(?report, "compactor pass");
                        }
                        "ok"
                    }
                    Ok(_) => "standby",
                    Err(e) => {
                        warn!(error = %e, "compactor pass failed; retrying at the next interval");
                        "error"
                    }
                };
                self.metrics
                    .compactor_passes
                    .get_or_create(&OutcomeLabels { outcome })
                    .inc();
                self.metrics
                    .compactor_pass_seconds
                    .observe(started.elapsed().as_secs_f64());
                tokio::select! {
                    _ = tokio::time::sleep(self.settings.interval) => {}
                    _ = shutdown.changed() => break,
                }
            }
        })
    }

    /// Takes or renews the `lifecycle` lease. It outlives a few missed renewals, so a slow
    /// step keeps it, and a dead compactor's work moves to another within about three
    /// intervals. Long steps renew it between partitions and stop when it is lost.
    pub(crate) async fn still_leader(&self) -> Result<bool, CompactorError> {
        let ttl = ms(self.settings.interval.saturating_mul(3)).max(ms(Duration::from_secs(10)));
        match self
            .call(LifecycleCall::Lease {
                name: "lifecycle".into(),
                holder: self.instance.clone(),
                ttl_ms: ttl,
            })
            .await?
        {
            LifecycleReply::Granted(g) => Ok(g),
            other => Err(CompactorError::Reply(format!("{other:?}"))),
        }
    }

    /// One pass; `orphans` also scans the object store for orphans.
    pub async fn run_once(&self, orphans: bool) -> Result<PassReport, CompactorError> {
        let granted = self.still_leader().await?;
        self.metrics.compactor_leader.set(i64::from(granted));
        let mut report = PassReport {
            leader: granted,
            ..PassReport::default()
        };
        if !granted {
            // The holder reports the backlogs; a stand-by must not repeat stale ones.
            self.metrics.compactor_backlog_objects.set(0);
            self.metrics.compactor_backlog_bytes.set(0);
            return Ok(report);
        }
        report.retention_moves = self.retention().await?;
        report.segments = self.fold_segments().await?;
        report.cleaned = self.clean_compacted().await?;
        report.topics_purged = match self
            .call(LifecycleCall::PurgeDeletedTopics {
                grace_ms: ms(self.settings.grace),
            })
            .await?
        {
            LifecycleReply::Count(n) => n,
            other => return Err(CompactorError::Reply(format!("{other:?}"))),
        };
        report.unreferenced_deleted = self.collect().await?;
        if orphans {
            report.orphans_deleted = self.orphans().await?;
        }
        Ok(report)
    }

    async fn retention(&self) -> Result<u64, CompactorError> {
        let now = self.clock.now_ms();
        let topics: Vec<TopicInfo> = self.metadata.list_topics().await?;
        let mut moved = 0;
        for topic in topics {
            let (time, bytes) = retention_of(&topic.configs);
            if time.is_none() && bytes.is_none() {
                continue;
            }
            for p in &topic.partitions {
                if p.log_start_offset >= p.high_watermark {
                    continue;
                }
                let call = LifecycleCall::AdvanceLogStart {
                    topic_id: topic.id,
                    partition: p.partition,
                    target: LogStartTarget::Retention {
                        expire_before_ms: time.map(|t| now.saturating_sub(t)),
                        max_bytes: bytes,
                    },
                };
                match self.call(call).await {
                    Ok(LifecycleReply::Watermark(m)) if m.log_start_offset > p.log_start_offset => {
                        moved += 1;
                        self.metrics.compactor_retention_moves.inc();
                    }
                    Ok(_) => {}
                    // Deleted meanwhile: nothing to retain.
                    Err(CompactorError::Metadata(MetadataError::UnknownTopicId(_))) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(moved)
    }

    async fn collect(&self) -> Result<u64, CompactorError> {
        let mut deleted = 0;
        loop {
            let objects = match self
                .call(LifecycleCall::CollectableObjects {
                    grace_ms: ms(self.settings.grace),
                    limit: BATCH,
                })
                .await?
            {
                LifecycleReply::Objects(o) => o,
                other => return Err(CompactorError::Reply(format!("{other:?}"))),
            };
            let full = objects.len() as u32 == BATCH;
            self.metrics
                .compactor_backlog_objects
                .set(objects.len() as i64);
            if objects.is_empty() {
                return Ok(deleted);
            }
            let mut gone = Vec::with_capacity(objects.len());
            for o in &objects {
                // Deleted from the store first: a crash before `forget` only means the next
                // pass deletes it again (a missing object is not an error).
                self.objects.delete(&o.key, "compaction").await?;
                self.count_deleted("unreferenced", o.size.max(0) as u64);
                gone.push(o.key.clone());
            }
            self.call(LifecycleCall::ForgetObjects { keys: gone })
                .await?;
            deleted += objects.len() as u64;
            if !full {
                self.metrics.compactor_backlog_objects.set(0);
                return Ok(deleted);
            }
        }
    }

    async fn orphans(&self) -> Result<u64, CompactorError> {
        let cutoff = self.clock.now_ms().saturating_sub(ms(self.settings.grace));
        let mut deleted = 0;
        for dir in OBJECT_DIRS {
            let mut listed = std::pin::pin!(self.objects.list(dir, "compaction"));
            let mut batch = Vec::with_capacity(BATCH as usize);
            loop {
                let next = listed.next().await;
                let done = next.is_none();
                if let Some(item) = next {
                    let o = item?;
                    if o.last_modified_ms < cutoff {
                        batch.push(o);
                    }
                }
                if batch.len() >= BATCH as usize || (done && !batch.is_empty()) {
                    deleted += self.delete_unknown(std::mem::take(&mut batch)).await?;
                }
                if done {
                    break;
                }
            }
        }
        Ok(deleted)
    }

    /// Deletes the objects of `batch` that the metadata does not know.
    async fn delete_unknown(&self, batch: Vec<floe_common::Listed>) -> Result<u64, CompactorError> {
        let keys: Vec<String> = batch.iter().map(|o| o.key.clone()).collect();
        let known = match self.call(LifecycleCall::KnownObjects { keys }).await? {
            LifecycleReply::Keys(k) => k,
            other => return Err(CompactorError::Reply(format!("{other:?}"))),
        };
        let known: std::collections::HashSet<String> = known.into_iter().collect();
        let mut deleted = 0;
        for o in batch.iter().filter(|o| !known.contains(&o.key)) {
            warn!(key = %o.key, bytes = o.size, "deleting orphan object (uploaded, never committed)");
            self.objects.delete(&o.key, "compaction").await?;
            self.count_deleted("orphan", o.size);
            deleted += 1;
        }
        Ok(deleted)
    }

    fn count_deleted(&self, reason: &'static str, bytes: u64) {
        let l = ReasonLabels { reason };
        self.metrics
            .compactor_objects_deleted
            .get_or_create(&l)
            .inc();
        self.metrics
            .compactor_bytes_deleted
            .get_or_create(&l)
            .inc_by(bytes);
    }
}

mod clean;
mod segments;

pub use clean::{compaction_of, CompactionConfig};

#[cfg(test)]
mod tests;
