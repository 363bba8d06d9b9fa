//! The durable store behind the metadata service. One trait, two implementations
//! (PostgreSQL for production, SQLite for the embedded playground) with identical
//! behaviour, proven by the conformance suite in `store/tests.rs`.

use std::collections::BTreeMap;

use async_trait::async_trait;

use crate::error::Result;
use crate::groups::GroupRecord;
use crate::types::{
    AgentInfo, CollectableObject, CommitResult, CommittedOffset, IndexEntry, LogStartTarget,
    ObjectCommit, PartitionWatermark, SegmentSwap, TopicId, TopicInfo, TopicSpec, TxnCall,
    TxnReply,
};

/// Durable metadata: topics, partitions and the offset index.
///
/// Every method is one database transaction. Implementations must be safe to use from many
/// processes against one database at once (several `floe metadata` instances on one
/// PostgreSQL): offsets come from the database, never from process memory.
#[async_trait]
pub trait MetadataStore: Send + Sync + 'static {
    /// The cluster id, minted once when the database is first migrated and stable after.
    async fn cluster_id(&self) -> Result<String>;

    /// Creates a topic with a fresh UUID and `spec.partitions` empty partitions.
    /// Fails with `TopicExists` if a live topic has the name; exactly one of many racing
    /// creators succeeds.
    async fn create_topic(&self, spec: &TopicSpec, now_ms: i64) -> Result<TopicInfo>;

    /// Deletes a live topic by name, returning its id. Its index entries stop being visible
    /// at once; the compactor later deletes the objects. Fails with `UnknownTopic`.
    async fn delete_topic(&self, name: &str) -> Result<TopicId>;

    /// Raises a topic's partition count to `total`. Fails with `UnknownTopic`, or with
    /// `InvalidPartitions` if `total` is not larger than the current count.
    async fn create_partitions(&self, name: &str, total: i32) -> Result<TopicInfo>;

    /// Replaces a topic's config overrides with `configs`. Fails with `UnknownTopic`.
    async fn set_topic_configs(&self, name: &str, configs: &BTreeMap<String, String>)
        -> Result<()>;

    /// All live topics with their partitions' current watermarks, ordered by name.
    async fn list_topics(&self) -> Result<Vec<TopicInfo>>;

    /// Commits a group of uploaded objects in ONE database transaction (group commit).
    ///
    /// For each object, in slice order, and each chunk in chunk order, assigns the next
    /// contiguous offsets of the chunk's partition and inserts its index entry. Partition rows
    /// are locked in ascending `(topic_id, partition)` order so concurrent groups from other
    /// processes cannot deadlock. A chunk of an unknown or deleted partition yields
    /// `ChunkOutcome::UnknownTopicOrPartition` and does not affect the others.
    ///
    /// Idempotent on `object_key`: an object already committed (by an earlier attempt whose
    /// reply was lost) returns its original outcomes and assigns nothing new.
    ///
    /// Returns one result per input object, in order, plus the new watermarks of every
    /// partition that moved.
    async fn commit_objects(
        &self,
        objects: &[ObjectCommit],
        now_ms: i64,
    ) -> Result<(Vec<CommitResult>, Vec<PartitionWatermark>)>;

    /// Index entries of a partition that hold offsets at or after `from_offset`, in offset
    /// order (the first entry may start before `from_offset`), at most `max_entries`.
    async fn read_index(
        &self,
        topic_id: TopicId,
        partition: i32,
        from_offset: i64,
        max_entries: u32,
    ) -> Result<Vec<IndexEntry>>;

    /// The first index entry of a partition (in offset order, not below the log start offset)
    /// whose `max_timestamp_ms >= timestamp_ms`, if any.
    async fn find_by_timestamp(
        &self,
        topic_id: TopicId,
        partition: i32,
        timestamp_ms: i64,
    ) -> Result<Option<IndexEntry>>;

    /// The index entry holding the partition's largest timestamp (the lowest offset among
    /// ties), not below the log start offset, if the partition has any data. Scans the
    /// partition's entries: ListOffsets with MAX_TIMESTAMP (KIP-734) is rare.
    async fn find_max_timestamp(
        &self,
        topic_id: TopicId,
        partition: i32,
    ) -> Result<Option<IndexEntry>>;

    /// Watermarks of every partition of every live topic.
    async fn watermarks(&self) -> Result<Vec<PartitionWatermark>>;

    /// Tells other metadata processes sharing this database that watermarks or topics
    /// changed (`origin` names the sender). PostgreSQL sends a NOTIFY; SQLite, used by one
    /// process only, has nobody to tell.
    async fn notify_change(&self, _origin: &str) -> Result<()> {
        Ok(())
    }

    /// A stream of change notifications from any process (payload: the sender's `origin`,
    /// or empty after a lost connection, when changes may have been missed). `None` when
    /// the backend has no notifications.
    async fn change_notifications(&self) -> Result<Option<tokio::sync::mpsc::Receiver<String>>> {
        Ok(None)
    }

    /// Stores a consumer group's committed offsets (insert or replace per partition), in one
    /// transaction, creating the group's row if this is its first commit. Offsets of deleted
    /// topics are refused by the caller; the store does not check.
    async fn commit_offsets(&self, group_id: &str, offsets: &[CommittedOffset]) -> Result<()>;

    /// A group's committed offsets of live topics, ordered by topic and partition.
    async fn fetch_offsets(&self, group_id: &str) -> Result<Vec<CommittedOffset>>;

    /// Writes a classic group's state and members (replacing the stored members), creating
    /// its row if needed.
    async fn save_group(&self, group: &GroupRecord) -> Result<()>;

    /// Every stored group (those that only hold offsets too), with members, by group id.
    async fn load_groups(&self) -> Result<Vec<GroupRecord>>;

    /// Deletes a group: its row, members and committed offsets.
    async fn delete_group(&self, group_id: &str) -> Result<()>;

    /// Deletes some committed offsets of a group.
    async fn delete_offsets(&self, group_id: &str, partitions: &[(TopicId, i32)]) -> Result<()>;

    /// Deletes the group's offsets committed before `committed_before_ms` and returns how
    /// many remain (offsets of deleted topics are deleted regardless).
    async fn expire_offsets(&self, group_id: &str, committed_before_ms: i64) -> Result<u64>;

    /// Tries to take the group-coordinator lease: at most one process sharing the database
    /// holds it. PostgreSQL: a session advisory lock on a dedicated connection, released when
    /// the holder's connection ends. SQLite (one process): always granted.
    async fn lead_groups(&self) -> Result<Option<Box<dyn GroupLease>>>;

    /// Records the HTTP address of the lease holder, for the other processes.
    async fn set_group_leader(&self, url: &str, instance: &str, now_ms: i64) -> Result<()>;

    /// The recorded lease holder's HTTP address and instance, if any.
    async fn group_leader(&self) -> Result<Option<(String, String)>>;

    /// Allocates a new idempotent producer id (epoch 0), unique across every process
    /// sharing the database.
    async fn new_producer_id(&self, now_ms: i64) -> Result<i64>;

    /// Records an agent's heartbeat (insert or replace its row).
    async fn agent_heartbeat(&self, agent: &AgentInfo, now_ms: i64) -> Result<()>;

    /// Agents whose last heartbeat is at or after `since_ms`, by node id.
    async fn live_agents(&self, since_ms: i64) -> Result<Vec<AgentInfo>>;

    /// Removes an agent that is shutting down, if `instance` is still the registered one.
    async fn remove_agent(&self, node_id: i32, instance: &str) -> Result<()>;

    /// Forgets idempotent producers idle since before `before_ms` (Kafka's
    /// `producer.id.expiration.ms`): their per-partition states and then their ids. Returns
    /// the partition states removed.
    async fn expire_producers(&self, before_ms: i64) -> Result<u64>;

    /// Every committed offset of a live topic with its lag behind the high watermark:
    /// `(group, topic name, partition, lag)`, lag never below zero.
    async fn consumer_lag(&self) -> Result<Vec<(String, String, i32, i64)>>;

    /// Moves a live partition's log start offset forward (never back, never past the high
    /// watermark) to `target`, and drops the index entries wholly below it, in one
    /// transaction. Fails with `UnknownTopicId` for an unknown or deleted partition and with
    /// `OffsetOutOfRange` for an offset beyond the high watermark or below -1.
    async fn advance_log_start(
        &self,
        topic_id: TopicId,
        partition: i32,
        target: LogStartTarget,
    ) -> Result<PartitionWatermark>;

    /// Removes every trace of topics deleted before `deleted_before_ms` (index entries,
    /// partitions, producer states, the topic row), so their objects become unreferenced.
    /// Returns the topics removed.
    async fn purge_deleted_topics(&self, deleted_before_ms: i64) -> Result<u64>;

    /// Marks objects that no index entry references as unreferenced since `now_ms`, and
    /// returns up to `limit` objects unreferenced for at least `grace_ms` (oldest first):
    /// readers that found them just before may still be reading them until then.
    async fn collectable_objects(
        &self,
        now_ms: i64,
        grace_ms: i64,
        limit: u32,
    ) -> Result<Vec<CollectableObject>>;

    /// Forgets unreferenced objects once deleted from the object store. Live objects are
    /// never forgotten. Returns the rows removed.
    async fn forget_objects(&self, keys: &[String]) -> Result<u64>;

    /// Which of `keys` the metadata knows (referenced or awaiting deletion).
    async fn known_objects(&self, keys: &[String]) -> Result<Vec<String>>;

    /// Replaces the index entries `swap.replaced` of a live partition by `swap.rows` into the
    /// new segment object, in one transaction, if the index still holds exactly those
    /// entries (false, and nothing changed, otherwise). The replaced objects are left to the
    /// unreferenced-object collection.
    async fn swap_segment(&self, swap: &SegmentSwap, now_ms: i64) -> Result<bool>;

    /// Takes or renews the lease `name` for `holder` until `now_ms + ttl_ms`. True when
    /// `holder` holds it: it was free, expired, or already `holder`'s.
    async fn try_lease(&self, name: &str, holder: &str, now_ms: i64, ttl_ms: i64) -> Result<bool>;

    /// Runs a transaction coordinator call in one database transaction (`AbortExpired`: one
    /// per expired transaction). Returns the reply and the watermarks its markers moved.
    async fn txn(&self, call: &TxnCall, now_ms: i64)
        -> Result<(TxnReply, Vec<PartitionWatermark>)>;
}

/// A held group-coordinator lease.
#[async_trait]
pub trait GroupLease: Send + Sync {
    /// Whether the lease is still held (the database still sees its connection).
    async fn alive(&mut self) -> bool;
}

/// The lease of a backend used by one process only.
pub(crate) struct SoleLease;

#[async_trait]
impl GroupLease for SoleLease {
    async fn alive(&mut self) -> bool {
        true
    }
}

mod plan;
mod postgres;
mod sqlite;
pub mod txn;
mod txn_sql;

/// Transactions the timeout sweep aborts per call at most.
const EXPIRED_PER_SWEEP: i64 = 100;

pub use plan::check_commit;

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

#[cfg(test)]
mod tests;
