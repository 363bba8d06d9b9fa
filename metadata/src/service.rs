//! The metadata service as agents and the compactor see it: the [`Metadata`] trait, and
//! [`MetadataService`], its in-process implementation (store + sequencer + change feed).
//! The HTTP server in `http.rs` exposes a `MetadataService`; `client.rs` implements the same
//! trait over HTTP, so an agent does not care whether the service is embedded or remote.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use uuid::Uuid;

use crate::error::Result;
use crate::groups::{GroupCall, GroupReply, GroupRouter, GroupSettings};
use crate::sequencer::{GroupStats, Sequencer};
use crate::store::MetadataStore;
use crate::types::{
    AgentInfo, CommitResult, CommittedOffset, IndexEntry, LifecycleCall, LifecycleReply,
    ObjectCommit, PartitionWatermark, TopicId, TopicInfo, TopicSpec, TxnCall, TxnReply,
};

/// How often timed-out transactions are looked for (Kafka's
/// `transaction.abort.timed.out.transaction.cleanup.interval.ms` is 10 s; a sweep here is one
/// indexed query).
const TXN_SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// One answer of the change feed: what moved since the caller's cursor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchBatch {
    /// Identity of the service instance that produced `version`; a cursor from another
    /// instance (or a restarted one) gets a full snapshot.
    pub instance: Uuid,
    /// Cursor to pass to the next call.
    pub version: u64,
    /// True when this batch is a full snapshot of every partition rather than a delta.
    pub full: bool,
    /// Partitions whose watermarks changed (or all of them when `full`).
    pub watermarks: Vec<PartitionWatermark>,
    /// Generation of the topic catalogue; it changes on create, delete, partition or config
    /// changes, so agents know to refresh their topic cache.
    pub topics_generation: u64,
}

/// Cursor into the change feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct WatchCursor {
    /// Instance the version belongs to (nil for "none yet").
    pub instance: Uuid,
    /// Last version seen.
    pub version: u64,
}

/// Everything an agent or compactor asks of the metadata service.
#[async_trait]
pub trait Metadata: Send + Sync + 'static {
    /// Stable cluster id.
    async fn cluster_id(&self) -> Result<String>;
    /// Creates a topic; see [`MetadataStore::create_topic`].
    async fn create_topic(&self, spec: TopicSpec) -> Result<TopicInfo>;
    /// Deletes a topic by name.
    async fn delete_topic(&self, name: &str) -> Result<TopicId>;
    /// Raises a topic's partition count.
    async fn create_partitions(&self, name: &str, total: i32) -> Result<TopicInfo>;
    /// Replaces a topic's config overrides.
    async fn set_topic_configs(&self, name: &str, configs: BTreeMap<String, String>) -> Result<()>;
    /// All live topics.
    async fn list_topics(&self) -> Result<Vec<TopicInfo>>;
    /// Commits one uploaded WAL object (group-committed with concurrent ones).
    async fn commit_object(&self, commit: ObjectCommit) -> Result<CommitResult>;
    /// Offset index entries from `from_offset`.
    async fn read_index(
        &self,
        topic_id: TopicId,
        partition: i32,
        from_offset: i64,
        max_entries: u32,
    ) -> Result<Vec<IndexEntry>>;
    /// First index entry whose max timestamp is at or after `timestamp_ms`.
    async fn find_by_timestamp(
        &self,
        topic_id: TopicId,
        partition: i32,
        timestamp_ms: i64,
    ) -> Result<Option<IndexEntry>>;
    /// The index entry holding the partition's largest timestamp.
    async fn find_max_timestamp(
        &self,
        topic_id: TopicId,
        partition: i32,
    ) -> Result<Option<IndexEntry>>;
    /// Waits up to `timeout` for changes after `cursor` and returns them (possibly none).
    async fn watch(&self, cursor: WatchCursor, timeout: Duration) -> Result<WatchBatch>;
    /// One call to the group coordinator (JoinGroup waits for the rebalance to complete).
    async fn group(&self, call: GroupCall) -> Result<GroupReply>;
    /// A new idempotent producer id (InitProducerId without a transactional id).
    async fn new_producer_id(&self) -> Result<i64>;
    /// Records an agent's heartbeat and returns the live fleet (itself included).
    async fn agent_heartbeat(&self, agent: AgentInfo) -> Result<Vec<AgentInfo>>;
    /// Removes a stopping agent from the fleet at once.
    async fn agent_leave(&self, node_id: i32, instance: &str) -> Result<()>;
    /// A consumer group's committed offsets.
    async fn fetch_offsets(&self, group_id: &str) -> Result<Vec<CommittedOffset>>;
    /// The object life cycle: log start moves (DeleteRecords, retention), purging deleted
    /// topics, collecting unreferenced objects, compactor leases.
    async fn lifecycle(&self, call: LifecycleCall) -> Result<LifecycleReply>;
    /// The transaction coordinator (InitProducerId with a transactional id, AddPartitions,
    /// AddOffsets, TxnOffsetCommit, EndTxn, the aborted-transaction lists, descriptions).
    async fn txn(&self, call: TxnCall) -> Result<TxnReply>;
}

/// Milliseconds since the Unix epoch, from the injected clock.
pub type NowMs = Arc<dyn Fn() -> i64 + Send + Sync>;

/// Observer of sequencer timings (the binary turns them into Prometheus metrics).
pub type StatsHook = Arc<dyn Fn(GroupStats) + Send + Sync>;

#[derive(Default)]
struct Feed {
    version: u64,
    topics_generation: u64,
    /// Latest watermark per partition and the version at which it last changed.
    partitions: HashMap<(TopicId, i32), (PartitionWatermark, u64)>,
}

/// Settings of the service.
#[derive(Debug, Clone)]
pub struct ServiceSettings {
    /// How often a watcher with nothing new re-reads watermarks from the database. Commits
    /// through this instance wake watchers at once; commits through *another* instance on the
    /// same PostgreSQL arrive by NOTIFY, and this re-read is the backstop (and the only way
    /// on a backend without notifications).
    pub foreign_refresh: Duration,
    /// Group coordinator limits.
    pub groups: GroupSettings,
    /// How long an agent stays in Metadata answers after its last heartbeat.
    pub agent_timeout: Duration,
    /// Kafka's `producer.id.expiration.ms`: an idempotent producer idle this long is
    /// forgotten (checked hourly).
    pub producer_expiration: Duration,
    /// Kafka's `transactional.id.expiration.ms`: a transactional id without an open
    /// transaction and unused this long is forgotten (checked hourly).
    pub transactional_id_expiration: Duration,
    /// This process's metadata API address (`http://10.0.0.5:9091`), where the others
    /// forward group calls when this process coordinates groups. Needed when several
    /// processes share a PostgreSQL database.
    pub advertise_url: Option<String>,
}

impl Default for ServiceSettings {
    fn default() -> Self {
        ServiceSettings {
            foreign_refresh: Duration::from_millis(500),
            groups: GroupSettings::default(),
            advertise_url: None,
            agent_timeout: Duration::from_secs(6),
            producer_expiration: Duration::from_secs(24 * 3600),
            transactional_id_expiration: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// In-process metadata service.
pub struct MetadataService {
    store: Arc<dyn MetadataStore>,
    sequencer: Sequencer,
    instance: Uuid,
    feed: Arc<Mutex<Feed>>,
    changed: watch::Sender<u64>,
    now_ms: NowMs,
    closing: std::sync::atomic::AtomicBool,
    /// Transactions this process aborted after their `transaction.timeout.ms`.
    txns_timed_out: std::sync::atomic::AtomicU64,
    settings: ServiceSettings,
    groups: Arc<GroupRouter>,
    /// Bumped by changes made through this instance (commits, and topic changes, which set
    /// the flag); a task turns them into NOTIFYs.
    local_changes: watch::Sender<(u64, bool)>,
}

impl MetadataService {
    /// Starts the service (and its sequencer task) over `store` with default settings.
    pub async fn start(
        store: Arc<dyn MetadataStore>,
        now_ms: NowMs,
        stats: StatsHook,
    ) -> Result<Arc<Self>> {
        Self::start_with(store, now_ms, stats, ServiceSettings::default()).await
    }

    /// Starts the service with explicit settings.
    pub async fn start_with(
        store: Arc<dyn MetadataStore>,
        now_ms: NowMs,
        stats: StatsHook,
        settings: ServiceSettings,
    ) -> Result<Arc<Self>> {
        let feed = Arc::new(Mutex::new(Feed::default()));
        let (changed, _) = watch::channel(0u64);
        let (local_changes, _) = watch::channel((0u64, false));
        let changed_for_seq = changed.clone();
        let local_for_seq = local_changes.clone();
        let feed_for_seq = feed.clone();
        let clock = now_ms.clone();
        let sequencer = Sequencer::start(
            store.clone(),
            move || clock(),
            move |marks| {
                apply_marks(&feed_for_seq, &changed_for_seq, marks);
                local_for_seq.send_modify(|v| v.0 += 1);
            },
            move |s| stats(s),
        );
        let instance = Uuid::new_v4();
        let groups = GroupRouter::start(
            store.clone(),
            now_ms.clone(),
            settings.groups,
            settings.advertise_url.clone(),
            instance.to_string(),
        )
        .await?;
        let service = Arc::new(MetadataService {
            store,
            groups,
            sequencer,
            instance,
            feed,
            changed,
            now_ms,
            closing: std::sync::atomic::AtomicBool::new(false),
            txns_timed_out: std::sync::atomic::AtomicU64::new(0),
            settings,
            local_changes,
        });
        service.spawn_change_relay().await?;
        service.refresh_from_store().await?;
        service.spawn_producer_expiry();
        service.spawn_txn_timeouts();
        Ok(service)
    }

    /// Relays changes between metadata processes sharing the database: local changes go out
    /// as notifications (coalesced: one in flight at a time), and notifications from other
    /// processes trigger a re-read of the watermarks and topics.
    async fn spawn_change_relay(self: &Arc<Self>) -> Result<()> {
        let Some(mut incoming) = self.store.change_notifications().await? else {
            return Ok(());
        };
        // Payload: "<instance>:d" after commits, "<instance>:t" after topic changes, or
        // empty when the listener lost its connection (anything may have changed).
        let me = self.instance.to_string();
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            while let Some(first) = incoming.recv().await {
                // Several notifications queued: one refresh covers them all.
                let (mut foreign, mut topics) = (false, false);
                let mut note = |p: &str| {
                    let (origin, kind) = p.split_once(':').unwrap_or(("", "t"));
                    if origin != me {
                        foreign = true;
                        topics |= kind != "d";
                    }
                };
                note(&first);
                while let Ok(p) = incoming.try_recv() {
                    note(&p);
                }
                let Some(service) = weak.upgrade() else {
                    return;
                };
                if foreign {
                    if let Err(e) = service.refresh_from_store().await {
                        tracing::warn!(error = %e, "refresh after a change notification failed");
                    }
                    if topics {
                        // Configs or partitions changed elsewhere: agents re-read topics.
                        let mut feed = lock(&service.feed);
                        feed.version += 1;
                        feed.topics_generation += 1;
                        let v = feed.version;
                        drop(feed);
                        service.changed.send_replace(v);
                    }
                }
            }
        });
        let mut local = self.local_changes.subscribe();
        let weak = Arc::downgrade(self);
        let me = self.instance.to_string();
        tokio::spawn(async move {
            // Ends when the service (the only sender) is dropped.
            while local.changed().await.is_ok() {
                local.borrow_and_update();
                let Some(service) = weak.upgrade() else {
                    return;
                };
                // Take the topics flag without waking ourselves again.
                let mut topics = false;
                service.local_changes.send_if_modified(|v| {
                    topics = std::mem::replace(&mut v.1, false);
                    false
                });
                let payload = format!("{me}:{}", if topics { 't' } else { 'd' });
                if let Err(e) = service.store.notify_change(&payload).await {
                    tracing::warn!(error = %e, "change notification failed");
                }
            }
        });
        Ok(())
    }

    /// Answers every waiting and future `watch` at once, so an HTTP server shutting down is
    /// not held by agents' long polls.
    pub fn close_watches(&self) {
        self.closing
            .store(true, std::sync::atomic::Ordering::Release);
        self.changed.send_modify(|_| {});
    }

    /// Forgets idle idempotent producers and transactional ids once an hour (every metadata process does it; the
    /// deletes are idempotent).
    fn spawn_producer_expiry(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                let Some(s) = weak.upgrade() else { return };
                let keep =
                    i64::try_from(s.settings.producer_expiration.as_millis()).unwrap_or(i64::MAX);
                let before = (s.now_ms)().saturating_sub(keep);
                match s.store.expire_producers(before).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(states = n, "expired idle idempotent producers"),
                    Err(e) => tracing::warn!(error = %e, "expiring producers failed"),
                }
                let keep = i64::try_from(s.settings.transactional_id_expiration.as_millis())
                    .unwrap_or(i64::MAX);
                let call = TxnCall::ExpireIds {
                    idle_before_ms: (s.now_ms)().saturating_sub(keep),
                };
                match s.txn(call).await {
                    Ok(TxnReply::Count(0)) => {}
                    Ok(TxnReply::Count(n)) => {
                        tracing::info!(ids = n, "expired idle transactional ids")
                    }
                    Ok(other) => tracing::warn!(reply = ?other, "unexpected expiry reply"),
                    Err(e) => tracing::warn!(error = %e, "expiring transactional ids failed"),
                }
            }
        });
    }

    /// Aborts transactions open past their timeout, every second (every metadata process
    /// does it; each abort re-checks the transaction under its row lock).
    fn spawn_txn_timeouts(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(TXN_SWEEP_INTERVAL).await;
                let Some(s) = weak.upgrade() else { return };
                if s.closing.load(std::sync::atomic::Ordering::Acquire) {
                    return;
                }
                match s.txn(TxnCall::AbortExpired).await {
                    Ok(TxnReply::Count(0)) => {}
                    Ok(TxnReply::Count(n)) => {
                        s.txns_timed_out
                            .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                        tracing::info!(transactions = n, "aborted timed-out transactions");
                    }
                    Ok(other) => tracing::warn!(reply = ?other, "unexpected timeout reply"),
                    Err(e) => tracing::warn!(error = %e, "aborting timed-out transactions failed"),
                }
            }
        });
    }

    /// A group call as the HTTP API receives it: `forwarded` when another metadata process
    /// sent it here because this one holds the coordinator lease.
    pub async fn group_routed(&self, call: GroupCall, forwarded: bool) -> Result<GroupReply> {
        self.groups.call(call, forwarded).await
    }

    /// Releases the group-coordinator lease (at shutdown), so another process takes over.
    pub async fn step_down_groups(&self) {
        self.groups.step_down().await;
    }

    /// Transactions this process has aborted after their timeout, since it started.
    pub fn transactions_timed_out(&self) -> u64 {
        self.txns_timed_out
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The group router (tests and tools).
    pub fn groups(&self) -> &Arc<GroupRouter> {
        &self.groups
    }

    /// The underlying store (for the compactor and tools).
    pub fn store(&self) -> &Arc<dyn MetadataStore> {
        &self.store
    }

    async fn refresh_from_store(&self) -> Result<()> {
        let marks = self.store.watermarks().await?;
        apply_marks(&self.feed, &self.changed, &marks);
        // Partitions of deleted topics must leave the feed's snapshot.
        let live: std::collections::HashSet<_> =
            marks.iter().map(|m| (m.topic_id, m.partition)).collect();
        let mut feed = lock(&self.feed);
        let before = feed.partitions.len();
        feed.partitions.retain(|k, _| live.contains(k));
        if feed.partitions.len() != before {
            feed.version += 1;
            feed.topics_generation += 1;
            let v = feed.version;
            drop(feed);
            self.changed.send_replace(v);
        }
        Ok(())
    }

    fn topics_changed(&self) {
        self.local_changes.send_modify(|v| *v = (v.0 + 1, true));
        let mut feed = lock(&self.feed);
        feed.version += 1;
        feed.topics_generation += 1;
        let v = feed.version;
        drop(feed);
        self.changed.send_replace(v);
    }

    fn collect(&self, cursor: WatchCursor) -> Option<WatchBatch> {
        let feed = lock(&self.feed);
        let full = cursor.instance != self.instance || cursor.version > feed.version;
        if !full && cursor.version == feed.version {
            return None;
        }
        let watermarks = feed
            .partitions
            .values()
            .filter(|(_, v)| full || *v > cursor.version)
            .map(|(m, _)| *m)
            .collect();
        Some(WatchBatch {
            instance: self.instance,
            version: feed.version,
            full,
            watermarks,
            topics_generation: feed.topics_generation,
        })
    }
}

fn lock(feed: &Mutex<Feed>) -> std::sync::MutexGuard<'_, Feed> {
    // A poisoned feed only means a panic elsewhere mid-update; the data is still a valid map.
    feed.lock().unwrap_or_else(|p| p.into_inner())
}

/// Merges `new` into `old`; true if anything moved. Every field only moves forward (the
/// stable offset too: a new transaction starts at or after the high watermark), so a stale
/// read must not move them back, and an unstated stable offset leaves it alone.
pub fn merge_mark(old: &mut PartitionWatermark, new: &PartitionWatermark) -> bool {
    let lso_moved = match (old.last_stable_offset, new.last_stable_offset) {
        (Some(a), Some(b)) => b > a,
        (None, Some(_)) => true,
        _ => false,
    };
    let moved = new.high_watermark > old.high_watermark
        || new.log_start_offset > old.log_start_offset
        || new.abort_count > old.abort_count
        || lso_moved;
    if moved {
        old.high_watermark = old.high_watermark.max(new.high_watermark);
        old.log_start_offset = old.log_start_offset.max(new.log_start_offset);
        old.abort_count = old.abort_count.max(new.abort_count);
        if lso_moved {
            old.last_stable_offset = new.last_stable_offset;
        }
    }
    moved
}

fn apply_marks(feed: &Mutex<Feed>, changed: &watch::Sender<u64>, marks: &[PartitionWatermark]) {
    let mut f = lock(feed);
    let mut moved = false;
    let next = f.version + 1;
    let mut new_partition = false;
    for m in marks {
        match f.partitions.get_mut(&(m.topic_id, m.partition)) {
            Some((old, v)) => {
                if merge_mark(old, m) {
                    *v = next;
                    moved = true;
                }
            }
            None => {
                f.partitions.insert((m.topic_id, m.partition), (*m, next));
                moved = true;
                new_partition = true;
            }
        }
    }
    if moved {
        f.version = next;
        if new_partition {
            f.topics_generation += 1;
        }
        drop(f);
        changed.send_replace(next);
    }
}

#[async_trait]
impl Metadata for MetadataService {
    async fn cluster_id(&self) -> Result<String> {
        self.store.cluster_id().await
    }

    async fn create_topic(&self, spec: TopicSpec) -> Result<TopicInfo> {
        let now = (self.now_ms)();
        let info = self.store.create_topic(&spec, now).await?;
        let marks: Vec<_> = info
            .partitions
            .iter()
            .map(|p| PartitionWatermark {
                topic_id: info.id,
                partition: p.partition,
                high_watermark: p.high_watermark,
                log_start_offset: p.log_start_offset,
                last_stable_offset: Some(p.high_watermark),
                abort_count: 0,
            })
            .collect();
        apply_marks(&self.feed, &self.changed, &marks);
        self.topics_changed();
        Ok(info)
    }

    async fn delete_topic(&self, name: &str) -> Result<TopicId> {
        let id = self.store.delete_topic(name).await?;
        lock(&self.feed).partitions.retain(|(t, _), _| *t != id);
        self.topics_changed();
        Ok(id)
    }

    async fn create_partitions(&self, name: &str, total: i32) -> Result<TopicInfo> {
        let info = self.store.create_partitions(name, total).await?;
        self.refresh_from_store().await?;
        self.topics_changed();
        Ok(info)
    }

    async fn set_topic_configs(&self, name: &str, configs: BTreeMap<String, String>) -> Result<()> {
        self.store.set_topic_configs(name, &configs).await?;
        self.topics_changed();
        Ok(())
    }

    async fn list_topics(&self) -> Result<Vec<TopicInfo>> {
        self.store.list_topics().await
    }

    async fn commit_object(&self, commit: ObjectCommit) -> Result<CommitResult> {
        // A malformed commit must fail alone, not the group commit it would have joined.
        crate::store::check_commit(std::slice::from_ref(&commit))?;
        self.sequencer.commit(commit).await
    }

    async fn read_index(
        &self,
        topic_id: TopicId,
        partition: i32,
        from_offset: i64,
        max_entries: u32,
    ) -> Result<Vec<IndexEntry>> {
        self.store
            .read_index(topic_id, partition, from_offset, max_entries)
            .await
    }

    async fn find_by_timestamp(
        &self,
        topic_id: TopicId,
        partition: i32,
        timestamp_ms: i64,
    ) -> Result<Option<IndexEntry>> {
        self.store
            .find_by_timestamp(topic_id, partition, timestamp_ms)
            .await
    }

    async fn find_max_timestamp(
        &self,
        topic_id: TopicId,
        partition: i32,
    ) -> Result<Option<IndexEntry>> {
        self.store.find_max_timestamp(topic_id, partition).await
    }

    async fn group(&self, call: GroupCall) -> Result<GroupReply> {
        self.groups.call(call, false).await
    }

    async fn new_producer_id(&self) -> Result<i64> {
        self.store.new_producer_id((self.now_ms)()).await
    }

    async fn agent_heartbeat(&self, agent: AgentInfo) -> Result<Vec<AgentInfo>> {
        let now = (self.now_ms)();
        self.store.agent_heartbeat(&agent, now).await?;
        let timeout = i64::try_from(self.settings.agent_timeout.as_millis()).unwrap_or(i64::MAX);
        self.store.live_agents(now.saturating_sub(timeout)).await
    }

    async fn agent_leave(&self, node_id: i32, instance: &str) -> Result<()> {
        self.store.remove_agent(node_id, instance).await
    }

    async fn txn(&self, call: TxnCall) -> Result<TxnReply> {
        let (reply, marks) = self.store.txn(&call, (self.now_ms)()).await?;
        if !marks.is_empty() {
            // Markers moved watermarks: agents learn them through the change feed.
            apply_marks(&self.feed, &self.changed, &marks);
            self.local_changes.send_modify(|v| v.0 += 1);
        }
        Ok(reply)
    }

    async fn lifecycle(&self, call: LifecycleCall) -> Result<LifecycleReply> {
        let store = &self.store;
        let now = (self.now_ms)();
        Ok(match call {
            LifecycleCall::AdvanceLogStart {
                topic_id,
                partition,
                target,
            } => {
                let mark = store.advance_log_start(topic_id, partition, target).await?;
                // Agents and other metadata processes learn the new log start as they learn
                // commits: through the change feed.
                apply_marks(&self.feed, &self.changed, std::slice::from_ref(&mark));
                self.local_changes.send_modify(|v| v.0 += 1);
                LifecycleReply::Watermark(mark)
            }
            LifecycleCall::PurgeDeletedTopics { grace_ms } => LifecycleReply::Count(
                store
                    .purge_deleted_topics(now.saturating_sub(grace_ms.max(0)))
                    .await?,
            ),
            LifecycleCall::CollectableObjects { grace_ms, limit } => LifecycleReply::Objects(
                store
                    .collectable_objects(now, grace_ms.max(0), limit)
                    .await?,
            ),
            LifecycleCall::ForgetObjects { keys } => {
                LifecycleReply::Count(store.forget_objects(&keys).await?)
            }
            LifecycleCall::KnownObjects { keys } => {
                LifecycleReply::Keys(store.known_objects(&keys).await?)
            }
            LifecycleCall::SwapSegment(swap) => {
                LifecycleReply::Granted(store.swap_segment(&swap, now).await?)
            }
            LifecycleCall::Lease {
                name,
                holder,
                ttl_ms,
            } => LifecycleReply::Granted(store.try_lease(&name, &holder, now, ttl_ms).await?),
        })
    }

    async fn fetch_offsets(&self, group_id: &str) -> Result<Vec<CommittedOffset>> {
        self.store.fetch_offsets(group_id).await
    }

    async fn watch(&self, cursor: WatchCursor, timeout: Duration) -> Result<WatchBatch> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut rx = self.changed.subscribe();
        loop {
            if let Some(batch) = self.collect(cursor) {
                return Ok(batch);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline || self.closing.load(std::sync::atomic::Ordering::Acquire) {
                let feed = lock(&self.feed);
                return Ok(WatchBatch {
                    instance: self.instance,
                    version: feed.version,
                    full: false,
                    watermarks: Vec::new(),
                    topics_generation: feed.topics_generation,
                });
            }
            let wait = (deadline - now).min(self.settings.foreign_refresh);
            match tokio::time::timeout(wait, rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => {
                    return Err(crate::MetadataError::Unavailable("service stopped".into()))
                }
                Err(_) => self.refresh_from_store().await?,
            }
        }
    }
}
