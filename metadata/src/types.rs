//! Data that crosses the metadata service's seams: what the agent commits, what the
//! store returns, and what travels over the HTTP API. Plain serde structs, no behaviour.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A topic's durable identity: a UUID minted at creation. A deleted and re-created topic
/// gets a new one, so stale clients can be told apart (`UNKNOWN_TOPIC_ID`).
pub type TopicId = Uuid;

/// What CreateTopics asks for once defaults have been applied by the caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicSpec {
    /// Kafka topic name, already validated by the caller.
    pub name: String,
    /// Number of partitions, at least 1.
    pub partitions: i32,
    /// Topic-level config overrides (Kafka names, e.g. `retention.ms`). Only explicitly set
    /// keys are stored; defaults are applied when read.
    pub configs: BTreeMap<String, String>,
}

/// A live topic as the store knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicInfo {
    /// Topic UUID.
    pub id: TopicId,
    /// Topic name.
    pub name: String,
    /// Config overrides (explicitly set keys only).
    pub configs: BTreeMap<String, String>,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_at_ms: i64,
    /// Partitions in ascending order, `partitions[i].partition == i`.
    pub partitions: Vec<PartitionInfo>,
}

/// Per-partition offsets as of the read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionInfo {
    /// Partition index.
    pub partition: i32,
    /// Offset the next committed record will get (Kafka's high watermark / log end offset).
    pub high_watermark: i64,
    /// First offset still readable.
    pub log_start_offset: i64,
    /// Monotonic epoch of the partition, returned to clients as the leader epoch.
    pub leader_epoch: i32,
}

/// One partition's contiguous run of record batches inside a WAL object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkCommit {
    /// Topic the chunk belongs to.
    pub topic_id: TopicId,
    /// Partition index.
    pub partition: i32,
    /// Byte position of the chunk's first batch in the object.
    pub byte_offset: i64,
    /// Length of the chunk in bytes (whole batches only).
    pub byte_len: i64,
    /// Number of offsets the chunk occupies: the sum over its batches of `last_offset_delta + 1`.
    pub offset_count: i64,
    /// Number of record batches in the chunk.
    pub batch_count: i32,
    /// Smallest `base_timestamp` among the chunk's batches (ms).
    pub first_timestamp_ms: i64,
    /// Largest `max_timestamp` among the chunk's batches (ms).
    pub max_timestamp_ms: i64,
    /// The idempotent producer that wrote the chunk (its batches only), whose sequence the
    /// sequencer checks before assigning offsets (and, for a transactional one, its
    /// transaction).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub producer: Option<ProducerBatch>,
}

/// An idempotent producer's append: its id, epoch and the sequence numbers of its first and
/// last record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducerBatch {
    /// Producer id from InitProducerId.
    pub producer_id: i64,
    /// Producer epoch.
    pub producer_epoch: i16,
    /// Sequence of the first record.
    pub first_sequence: i32,
    /// Sequence of the last record.
    pub last_sequence: i32,
    /// The batches are part of a transaction: the partition must be in the producer's open
    /// transaction.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub transactional: bool,
}

/// Why the sequencer refused an idempotent producer's chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProducerRejection {
    /// The sequence does not follow the producer's last one (OUT_OF_ORDER_SEQUENCE_NUMBER).
    OutOfOrderSequence,
    /// An older epoch of a producer that has moved on (INVALID_PRODUCER_EPOCH).
    InvalidProducerEpoch,
    /// Transactional records outside an open transaction of theirs that holds the partition
    /// (INVALID_TXN_STATE).
    InvalidTxnState,
}

/// The single call an agent makes after uploading a WAL object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectCommit {
    /// Object-store key of the uploaded object; committing the same key twice is idempotent.
    pub object_key: String,
    /// Total object size in bytes.
    pub object_size: i64,
    /// Chunks in the order they appear in the object.
    pub chunks: Vec<ChunkCommit>,
}

/// What became of one chunk of a commit, in the same order as [`ObjectCommit::chunks`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChunkOutcome {
    /// The chunk is visible at `base_offset ..= base_offset + offset_count - 1`.
    Committed {
        /// Offset assigned to the first record of the chunk.
        base_offset: i64,
        /// The partition's log start offset at commit time.
        log_start_offset: i64,
    },
    /// The topic or partition no longer exists (deleted between produce and commit).
    UnknownTopicOrPartition,
    /// A retry of an idempotent append that is already committed: nothing new is assigned,
    /// and the producer is told where the original landed.
    Duplicate {
        /// Offset of the original's first record.
        base_offset: i64,
        /// The partition's log start offset at commit time.
        log_start_offset: i64,
    },
    /// The producer's sequence or epoch was refused; nothing was assigned.
    Rejected(ProducerRejection),
}

/// Result of one [`ObjectCommit`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitResult {
    /// Per-chunk outcomes in chunk order.
    pub chunks: Vec<ChunkOutcome>,
    /// Watermarks of the object's partitions after the commit, stable offsets included
    /// (filled in by the sequencer), so the committing agent knows them at once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub watermarks: Vec<PartitionWatermark>,
}

/// One row of the offset index: where the records `base_offset ..= last_offset` live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexEntry {
    /// First offset covered.
    pub base_offset: i64,
    /// Last offset covered (inclusive).
    pub last_offset: i64,
    /// Object holding the bytes.
    pub object_key: String,
    /// Size of that object in bytes (readers fetch it in fixed-size blocks).
    pub object_size: i64,
    /// Byte position of the first batch in the object.
    pub byte_offset: i64,
    /// Length in bytes.
    pub byte_len: i64,
    /// Number of record batches.
    pub batch_count: i32,
    /// Smallest batch base timestamp (ms).
    pub first_timestamp_ms: i64,
    /// Largest batch max timestamp (ms).
    pub max_timestamp_ms: i64,
    /// A transaction marker: no object, the reader writes the control batch itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control: Option<ControlMarker>,
}

/// A commit or abort marker in a partition's log (one control record at `base_offset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlMarker {
    /// The transactional producer.
    pub producer_id: i64,
    /// Its epoch when the transaction ended.
    pub producer_epoch: i16,
    /// Commit (true) or abort.
    pub commit: bool,
}

/// A partition's watermarks, as broadcast to agents so long polls wake without polling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionWatermark {
    /// Topic.
    pub topic_id: TopicId,
    /// Partition index.
    pub partition: i32,
    /// New high watermark.
    pub high_watermark: i64,
    /// Current log start offset.
    pub log_start_offset: i64,
    /// Last stable offset: the first offset of the oldest open transaction with records in
    /// the partition, else the high watermark. `None` from senders that do not know it (an
    /// agent reporting its own commit); the metadata store always states it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_stable_offset: Option<i64>,
    /// Transactions aborted in the partition so far; readers re-read their list of aborted
    /// transactions when it moves.
    #[serde(default)]
    pub abort_count: i64,
}

/// One partition's committed offset in a consumer group (OffsetCommit / OffsetFetch).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommittedOffset {
    /// Topic.
    pub topic_id: TopicId,
    /// Partition.
    pub partition: i32,
    /// The committed offset: the next record the group will read.
    pub offset: i64,
    /// Leader epoch of the last consumed record, when the client sent one.
    pub leader_epoch: Option<i32>,
    /// Client metadata string.
    pub metadata: Option<String>,
    /// When it was committed (ms).
    pub commit_timestamp_ms: i64,
}

/// One agent of the fleet, as it registers itself and as Metadata answers list it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentInfo {
    /// Kafka node id (stable across restarts of the agent).
    pub node_id: i32,
    /// Availability zone, if known.
    pub zone: Option<String>,
    /// Advertised Kafka host.
    pub host: String,
    /// Advertised Kafka port.
    pub port: i32,
    /// Internal address for peers (the zone cache), if any.
    pub cache_url: Option<String>,
    /// Identity of this run of the agent process.
    pub instance: String,
    /// When this run started (ms).
    pub started_at_ms: i64,
}

/// Where DeleteRecords or retention moves a partition's log start offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogStartTarget {
    /// DeleteRecords: this offset; -1 means the high watermark.
    Offset(i64),
    /// Retention, in whole index entries from the start: past every entry up to the first
    /// holding a timestamp at or after `expire_before_ms` (`retention.ms`), and past the
    /// oldest entries as long as at least `max_bytes` remain (`retention.bytes`, Kafka's
    /// rule for segments).
    Retention {
        /// Entries whose every timestamp is older than this have expired.
        expire_before_ms: Option<i64>,
        /// Bytes to keep, counted from the newest entry.
        max_bytes: Option<i64>,
    },
}

/// An object nothing references any more, unreferenced for longer than the grace period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectableObject {
    /// Object key.
    pub key: String,
    /// Size in bytes.
    pub size: i64,
}

/// The object life cycle's operations on the metadata (the compactor's, and DeleteRecords).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LifecycleCall {
    /// Moves a partition's log start; answered with `Watermark`.
    AdvanceLogStart {
        /// Topic.
        topic_id: TopicId,
        /// Partition.
        partition: i32,
        /// Where to.
        target: LogStartTarget,
    },
    /// Removes topics deleted more than `grace_ms` ago; answered with `Count`.
    PurgeDeletedTopics {
        /// Grace period after deletion.
        grace_ms: i64,
    },
    /// Objects unreferenced for at least `grace_ms`; answered with `Objects`.
    CollectableObjects {
        /// Grace period after the last reference went.
        grace_ms: i64,
        /// Most objects returned.
        limit: u32,
    },
    /// Forgets deleted objects; answered with `Count`.
    ForgetObjects {
        /// Keys deleted from the object store.
        keys: Vec<String>,
    },
    /// Which keys the metadata knows; answered with `Keys`.
    KnownObjects {
        /// Keys listed in the object store.
        keys: Vec<String>,
    },
    /// Replaces index entries by a segment; answered with `Granted` (false: the entries
    /// changed meanwhile and nothing was swapped).
    SwapSegment(SegmentSwap),
    /// Takes or renews a lease; answered with `Granted`.
    Lease {
        /// Lease name.
        name: String,
        /// Holder (a compactor instance).
        holder: String,
        /// Lifetime from now.
        ttl_ms: i64,
    },
}

/// A segment object replacing consecutive index entries of one partition (compaction).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentSwap {
    /// Topic.
    pub topic_id: TopicId,
    /// Partition.
    pub partition: i32,
    /// The entries replaced, exactly as read: `(base_offset, last_offset, object_key)` in
    /// offset order. The swap happens only if the index still holds exactly these.
    pub replaced: Vec<(i64, i64, String)>,
    /// The uploaded segment.
    pub object_key: String,
    /// Its size in bytes.
    pub object_size: i64,
    /// The new entries, into the segment, covering the same offsets in order.
    pub rows: Vec<IndexEntry>,
}

/// Answers to [`LifecycleCall`]s.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LifecycleReply {
    /// A partition's watermarks after the call.
    Watermark(PartitionWatermark),
    /// Rows or topics affected.
    Count(u64),
    /// Collectable objects.
    Objects(Vec<CollectableObject>),
    /// Object keys.
    Keys(Vec<String>),
    /// Whether the lease is held.
    Granted(bool),
}

/// A transactional producer as it names itself in coordinator calls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnProducer {
    /// The producer's `transactional.id`.
    pub transactional_id: String,
    /// Producer id from InitProducerId.
    pub producer_id: i64,
    /// Producer epoch from InitProducerId.
    pub producer_epoch: i16,
}

/// The transaction coordinator's operations (one database transaction each).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnCall {
    /// InitProducerId with a transactional id: aborts the id's open transaction, bumps its
    /// epoch (fencing older producers) and returns `Producer`. `expected` is the caller's
    /// current producer id and epoch (KIP-360), if it has one.
    InitProducer {
        /// The `transactional.id`.
        transactional_id: String,
        /// `transaction.timeout.ms`.
        timeout_ms: i32,
        /// `(producer id, epoch)` the producer holds, when re-initialising.
        expected: Option<(i64, i16)>,
    },
    /// AddPartitionsToTxn; answered with `Partitions`.
    AddPartitions {
        /// Who asks.
        producer: TxnProducer,
        /// Partitions joining the transaction.
        partitions: Vec<(TopicId, i32)>,
    },
    /// AddOffsetsToTxn; answered with `Done`.
    AddOffsets {
        /// Who asks.
        producer: TxnProducer,
        /// The consumer group whose offsets will be committed in the transaction.
        group_id: String,
    },
    /// TxnOffsetCommit: offsets that become the group's when the transaction commits;
    /// answered with `Done`.
    CommitOffsets {
        /// Who asks.
        producer: TxnProducer,
        /// The group.
        group_id: String,
        /// The offsets.
        offsets: Vec<CommittedOffset>,
    },
    /// EndTxn: writes a commit or abort marker into every partition of the transaction;
    /// answered with `Ended`.
    End {
        /// Who asks.
        producer: TxnProducer,
        /// Commit (true) or abort.
        commit: bool,
    },
    /// Aborts transactions open longer than their timeout (bumping their epochs); answered
    /// with `Count`, the transactions it aborted.
    AbortExpired,
    /// The aborted transactions of a partition whose marker is at or after `from_offset`;
    /// answered with `Aborted`.
    Aborted {
        /// Topic.
        topic_id: TopicId,
        /// Partition.
        partition: i32,
        /// Lowest marker offset of interest (the log start offset, usually).
        from_offset: i64,
    },
    /// Forgets transactional ids without an open transaction, unused since before
    /// `idle_before_ms` (Kafka's `transactional.id.expiration.ms`); answered with `Count`.
    ExpireIds {
        /// Last use before which an id is forgotten.
        idle_before_ms: i64,
    },
    /// A partition's watermarks with its last stable offset (the compactor cleans only
    /// below it); answered with `Watermark`.
    Watermark {
        /// Topic.
        topic_id: TopicId,
        /// Partition.
        partition: i32,
    },
    /// The partitions of a group with offsets in an open transaction (KIP-447: OffsetFetch
    /// with `require_stable`); answered with `Pending`.
    PendingOffsets {
        /// The group.
        group_id: String,
    },
    /// DescribeTransactions; answered with `Described`.
    Describe {
        /// Transactional ids.
        transactional_ids: Vec<String>,
    },
    /// ListTransactions; answered with `Described` (without partitions).
    List,
    /// DescribeProducers of one partition; answered with `Producers`.
    Producers {
        /// Topic.
        topic_id: TopicId,
        /// Partition.
        partition: i32,
    },
}

/// Why the coordinator refused a call (each is a Kafka error code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnRefusal {
    /// INVALID_PRODUCER_ID_MAPPING: the transactional id is unknown or has another producer.
    InvalidProducerIdMapping,
    /// PRODUCER_FENCED: a newer producer with the same transactional id exists.
    ProducerFenced,
    /// INVALID_TXN_STATE: the call does not fit the transaction's state.
    InvalidTxnState,
    /// INVALID_TRANSACTION_TIMEOUT.
    InvalidTransactionTimeout,
    /// UNKNOWN_TOPIC_OR_PARTITION (AddPartitions: for the unknown ones; the others get
    /// OPERATION_NOT_ATTEMPTED).
    UnknownTopicOrPartition,
    /// OPERATION_NOT_ATTEMPTED: another part of the request failed.
    OperationNotAttempted,
}

/// A transaction's state as DescribeTransactions and ListTransactions report it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnDescription {
    /// The `transactional.id`.
    pub transactional_id: String,
    /// Kafka's state name (`Empty`, `Ongoing`, `CompleteCommit`, `CompleteAbort`).
    pub state: String,
    /// Producer id.
    pub producer_id: i64,
    /// Producer epoch.
    pub producer_epoch: i16,
    /// `transaction.timeout.ms`.
    pub timeout_ms: i32,
    /// When the open transaction started (-1: none open).
    pub start_ms: i64,
    /// Partitions of the open transaction.
    pub partitions: Vec<(TopicId, i32)>,
}

/// An aborted transaction's range in one partition (Fetch's `aborted_transactions`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AbortedTxn {
    /// Producer id.
    pub producer_id: i64,
    /// First offset of the transaction's data in the partition.
    pub first_offset: i64,
    /// Offset of its abort marker.
    pub last_offset: i64,
}

/// A producer with state in a partition (DescribeProducers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducerListing {
    /// Producer id.
    pub producer_id: i64,
    /// Producer epoch.
    pub producer_epoch: i16,
    /// Last sequence appended.
    pub last_sequence: i32,
    /// Timestamp of the last append (ms).
    pub last_timestamp_ms: i64,
    /// First offset of its open transaction in the partition (-1: none).
    pub current_txn_start_offset: i64,
}

/// Answers to [`TxnCall`]s.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnReply {
    /// The producer id and epoch to use.
    Producer {
        /// Producer id.
        producer_id: i64,
        /// Producer epoch.
        producer_epoch: i16,
    },
    /// Per partition of an AddPartitions call, in order: `None` when added.
    Partitions(Vec<Option<TxnRefusal>>),
    /// The call was applied.
    Done,
    /// Markers written: the new watermarks of the partitions they went to.
    Ended(Vec<PartitionWatermark>),
    /// Aborted transactions.
    Aborted(Vec<AbortedTxn>),
    /// Transactions.
    Described(Vec<TxnDescription>),
    /// Producers of a partition.
    Producers(Vec<ProducerListing>),
    /// Partitions with offsets awaiting a transaction's end.
    Pending(Vec<(TopicId, i32)>),
    /// A partition's watermarks (`None`: unknown partition).
    Watermark(Option<PartitionWatermark>),
    /// How many: transactional ids expired, transactions aborted by timeout.
    Count(u64),
    /// The call was refused.
    Refused(TxnRefusal),
}
