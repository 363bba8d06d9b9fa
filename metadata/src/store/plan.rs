//! Backend-neutral pieces shared by both stores, so that offset assignment, idempotency and
//! the shape of results are the same code on PostgreSQL and SQLite.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use uuid::Uuid;

use crate::error::{MetadataError, Result};
use crate::groups::{GroupProtocol, GroupRecord, MemberRecord};
use serde::{Deserialize, Serialize};

use crate::types::{
    ChunkOutcome, CommitResult, ControlMarker, IndexEntry, LogStartTarget, ObjectCommit,
    PartitionInfo, PartitionWatermark, ProducerBatch, ProducerRejection, TopicId, TopicInfo,
    TopicSpec,
};

/// Largest partition count a topic may have; bounds the rows one request can create.
pub(crate) const MAX_PARTITIONS: i32 = 100_000;

/// A Kafka-style cluster id: a random UUID in unpadded base64url (22 characters).
pub(crate) fn new_cluster_id() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = Uuid::new_v4().into_bytes();
    let mut out = String::with_capacity(22);
    for group in bytes.chunks(3) {
        let b = [
            group[0],
            *group.get(1).unwrap_or(&0),
            *group.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=group.len() {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

pub(crate) fn configs_to_json(configs: &BTreeMap<String, String>) -> Result<String> {
    serde_json::to_string(configs)
        .map_err(|e| MetadataError::InvalidRequest(format!("topic configs: {e}")))
}

pub(crate) fn configs_from_json(json: &str) -> Result<BTreeMap<String, String>> {
    serde_json::from_str(json)
        .map_err(|e| MetadataError::Database(format!("corrupt topic configs {json:?}: {e}")))
}

/// Whether a database error is a unique-constraint violation (SQLSTATE 23505 on
/// PostgreSQL, SQLITE_CONSTRAINT_UNIQUE/PRIMARYKEY on SQLite).
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

/// Whether an insert failed because an object key is already recorded (PostgreSQL names
/// the constraint; SQLite only names the column in its message).
pub(crate) fn is_object_key_conflict(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => {
            d.is_unique_violation()
                && (d.constraint() == Some("objects_pkey")
                    || d.message().contains("objects.object_key"))
        }
        _ => false,
    }
}

pub(crate) fn check_new_topic(spec: &TopicSpec) -> Result<()> {
    if !(1..=MAX_PARTITIONS).contains(&spec.partitions) {
        return Err(MetadataError::InvalidPartitions(format!(
            "topic {} needs 1..={MAX_PARTITIONS} partitions, got {}",
            spec.name, spec.partitions
        )));
    }
    Ok(())
}

pub(crate) fn check_partition_increase(name: &str, current: i64, total: i32) -> Result<()> {
    if i64::from(total) <= current || total > MAX_PARTITIONS {
        return Err(MetadataError::InvalidPartitions(format!(
            "topic {name} has {current} partitions; the new total must be larger and at most \
             {MAX_PARTITIONS}, got {total}"
        )));
    }
    Ok(())
}

pub(crate) fn new_topic_info(topic_id: TopicId, spec: &TopicSpec, now_ms: i64) -> TopicInfo {
    TopicInfo {
        id: topic_id,
        name: spec.name.clone(),
        configs: spec.configs.clone(),
        created_at_ms: now_ms,
        partitions: (0..spec.partitions)
            .map(|partition| PartitionInfo {
                partition,
                high_watermark: 0,
                log_start_offset: 0,
                leader_epoch: 0,
            })
            .collect(),
    }
}

/// One row of the topics-join-partitions queries.
pub(crate) type TopicRow = (Uuid, String, String, i64, i32, i64, i64, i32);

/// Groups rows ordered by topic then partition into topics, checking that partitions are
/// numbered 0..n without gaps (data is checked again when read).
pub(crate) fn assemble_topics(rows: Vec<TopicRow>) -> Result<Vec<TopicInfo>> {
    let mut topics: Vec<TopicInfo> = Vec::new();
    for (id, name, configs, created_at_ms, partition, hwm, lso, epoch) in rows {
        if topics.last().is_none_or(|t| t.id != id) {
            topics.push(TopicInfo {
                id,
                name,
                configs: configs_from_json(&configs)?,
                created_at_ms,
                partitions: Vec::new(),
            });
        }
        let Some(topic) = topics.last_mut() else {
            continue;
        };
        if usize::try_from(partition).ok() != Some(topic.partitions.len()) {
            return Err(MetadataError::Database(format!(
                "topic {} has a gap before partition {partition}",
                topic.name
            )));
        }
        topic.partitions.push(PartitionInfo {
            partition,
            high_watermark: hwm,
            log_start_offset: lso,
            leader_epoch: epoch,
        });
    }
    Ok(topics)
}

/// One row of the offset-index queries, in `IndexEntry` field order, then the marker
/// columns (producer, epoch, `control_type`) of control rows, which have no object.
pub(crate) type IndexRow = (
    i64,
    i64,
    Option<String>,
    i64,
    i64,
    i32,
    i64,
    i64,
    Option<i64>,
    Option<i64>,
    Option<i16>,
    Option<String>,
);

pub(crate) fn index_entry(row: IndexRow) -> Result<IndexEntry> {
    let (
        base_offset,
        last_offset,
        object_key,
        byte_offset,
        byte_len,
        batch_count,
        first,
        max,
        size,
        producer_id,
        producer_epoch,
        control_type,
    ) = row;
    let corrupt = || {
        MetadataError::Database(format!(
            "corrupt index entry {base_offset}..={last_offset} in {object_key:?}"
        ))
    };
    if let Some(kind) = control_type {
        let (Some(producer_id), Some(producer_epoch)) = (producer_id, producer_epoch) else {
            return Err(corrupt());
        };
        if last_offset != base_offset {
            return Err(corrupt());
        }
        return Ok(IndexEntry {
            base_offset,
            last_offset,
            object_key: String::new(),
            object_size: 0,
            byte_offset: 0,
            byte_len: 0,
            batch_count: 1,
            first_timestamp_ms: first,
            max_timestamp_ms: max,
            control: Some(ControlMarker {
                producer_id,
                producer_epoch,
                commit: kind == "commit",
            }),
        });
    }
    let (Some(object_key), Some(size)) = (object_key.clone(), size) else {
        return Err(corrupt());
    };
    if last_offset < base_offset || byte_offset < 0 || byte_len < 0 || byte_offset + byte_len > size
    {
        return Err(corrupt());
    }
    Ok(IndexEntry {
        base_offset,
        last_offset,
        object_key,
        object_size: size,
        byte_offset,
        byte_len,
        batch_count,
        first_timestamp_ms: first,
        max_timestamp_ms: max,
        control: None,
    })
}

/// A [`WATERMARKS_SQL`] row: topic, partition, high watermark, log start, aborts, first
/// offset of the oldest open transaction.
pub(crate) type WatermarkRow = (Uuid, i32, i64, i64, i64, Option<i64>);

pub(crate) fn watermark(row: WatermarkRow) -> PartitionWatermark {
    PartitionWatermark {
        topic_id: row.0,
        partition: row.1,
        high_watermark: row.2,
        log_start_offset: row.3,
        last_stable_offset: Some(row.5.unwrap_or(row.2)),
        abort_count: row.4,
    }
}

/// Rejects malformed commits before any database work. A chunk must occupy at least one
/// offset, or its index entry would have `last_offset < base_offset`.
pub fn check_commit(objects: &[ObjectCommit]) -> Result<()> {
    for object in objects {
        if object.object_size < 0 {
            return Err(MetadataError::InvalidRequest(format!(
                "object {} has negative size",
                object.object_key
            )));
        }
        for c in &object.chunks {
            if c.offset_count < 1 || c.byte_offset < 0 || c.byte_len < 0 || c.batch_count < 1 {
                return Err(MetadataError::InvalidRequest(format!(
                    "object {} has a malformed chunk for partition {}: {} offsets, {} \
                     batches, bytes {}+{}",
                    object.object_key,
                    c.partition,
                    c.offset_count,
                    c.batch_count,
                    c.byte_offset,
                    c.byte_len
                )));
            }
        }
    }
    Ok(())
}

/// The distinct object keys of a commit, for the idempotency lookup.
pub(crate) fn distinct_keys(objects: &[ObjectCommit]) -> Vec<&str> {
    let keys: BTreeSet<&str> = objects.iter().map(|o| o.object_key.as_str()).collect();
    keys.into_iter().collect()
}

/// Partitions the new (not yet committed) objects write to, ascending: the lock order.
pub(crate) fn partitions_to_lock(
    objects: &[ObjectCommit],
    existing: &HashMap<String, Option<String>>,
) -> Vec<(Uuid, i32)> {
    let wanted: BTreeSet<(Uuid, i32)> = objects
        .iter()
        .filter(|o| !existing.contains_key(&o.object_key))
        .flat_map(|o| o.chunks.iter().map(|c| (c.topic_id, c.partition)))
        .collect();
    wanted.into_iter().collect()
}

/// An object row to insert.
pub(crate) struct NewObject<'a> {
    pub object_key: &'a str,
    pub size_bytes: i64,
    /// JSON array, one element per chunk: `[base_offset, log_start_offset]` or `null`.
    pub commit_outcomes: String,
}

/// An index row to insert.
pub(crate) struct NewIndexRow<'a> {
    pub topic_id: Uuid,
    pub partition: i32,
    pub base_offset: i64,
    pub last_offset: i64,
    pub object_key: &'a str,
    pub byte_offset: i64,
    pub byte_len: i64,
    pub batch_count: i32,
    pub first_timestamp_ms: i64,
    pub max_timestamp_ms: i64,
}

/// What one commit call writes and returns, computed from the rows it read.
pub(crate) struct CommitPlan<'a> {
    pub results: Vec<CommitResult>,
    pub new_objects: Vec<NewObject<'a>>,
    pub index_rows: Vec<NewIndexRow<'a>>,
    /// New watermarks of the partitions that moved, ascending.
    pub watermarks: Vec<PartitionWatermark>,
    /// Idempotent producers' new states, to upsert into `producer_partitions`.
    pub producer_rows: Vec<(ProducerKey, ProducerState)>,
    /// Transactions whose records start in a partition with this commit:
    /// `(transactional id, topic, partition, first offset)`.
    pub txn_first_offsets: Vec<(String, Uuid, i32, i64)>,
}

/// What the commit path knows of the transactions of the transactional producers in it.
#[derive(Debug, Default)]
pub(crate) struct TxnFacts {
    /// Per transactional producer id: its transaction.
    pub producers: HashMap<i64, super::txn::ProduceTxn>,
    /// Per `(producer id, topic, partition)` in its open transaction: where its records
    /// start there, if they do yet.
    pub partitions: HashMap<(i64, Uuid, i32), Option<i64>>,
}

impl TxnFacts {
    /// Why a transactional append may not go ahead, if it may not.
    fn refusal(
        &self,
        topic_id: Uuid,
        partition: i32,
        p: &ProducerBatch,
    ) -> Option<ProducerRejection> {
        let Some(t) = self.producers.get(&p.producer_id) else {
            return Some(ProducerRejection::InvalidTxnState);
        };
        if p.producer_epoch < t.producer_epoch {
            return Some(ProducerRejection::InvalidProducerEpoch);
        }
        let joined = self
            .partitions
            .contains_key(&(p.producer_id, topic_id, partition));
        if p.producer_epoch != t.producer_epoch || !t.ongoing || !joined {
            return Some(ProducerRejection::InvalidTxnState);
        }
        None
    }
}

/// The transactional producers of a commit.
pub(crate) fn txn_producers(objects: &[ObjectCommit]) -> BTreeSet<i64> {
    objects
        .iter()
        .flat_map(|o| o.chunks.iter())
        .filter_map(|c| {
            c.producer
                .filter(|p| p.transactional)
                .map(|p| p.producer_id)
        })
        .collect()
}

/// The `(producer id, topic, partition)` of a commit's transactional chunks.
pub(crate) fn txn_chunks(objects: &[ObjectCommit]) -> BTreeSet<(i64, Uuid, i32)> {
    objects
        .iter()
        .flat_map(|o| o.chunks.iter())
        .filter_map(|c| {
            c.producer
                .filter(|p| p.transactional)
                .map(|p| (p.producer_id, c.topic_id, c.partition))
        })
        .collect()
}

/// `(topic_id, partition, producer_id)`.
pub(crate) type ProducerKey = (Uuid, i32, i64);

/// How many of a producer's latest appends per partition are remembered to recognise
/// retries (Kafka keeps five: `max.in.flight.requests.per.connection` may not exceed it).
const RECENT_APPENDS: usize = 5;

/// An idempotent producer's state in one partition (`producer_partitions`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProducerState {
    pub epoch: i16,
    pub last_sequence: i32,
    pub last_offset: i64,
    /// Latest appends: `(first_sequence, last_sequence, base_offset, last_offset)`.
    pub recent: Vec<(i32, i32, i64, i64)>,
}

impl ProducerState {
    pub(crate) fn recent_json(&self) -> String {
        serde_json::to_string(&self.recent).unwrap_or_else(|_| "[]".into())
    }

    pub(crate) fn from_row(
        epoch: i16,
        last_sequence: i32,
        last_offset: i64,
        recent: &str,
    ) -> Result<Self> {
        let recent = serde_json::from_str(recent).map_err(|e| {
            MetadataError::Database(format!("corrupt producer state {recent:?}: {e}"))
        })?;
        Ok(ProducerState {
            epoch,
            last_sequence,
            last_offset,
            recent,
        })
    }
}

/// What the sequencer does with an idempotent append.
enum Verdict {
    Append,
    Duplicate(i64),
    Reject(ProducerRejection),
}

/// Kafka's rules (`ProducerAppendInfo.checkSequence`): without state for the producer any
/// sequence is accepted (KIP-360: its state may be gone with a deleted topic); a newer epoch
/// starts at sequence 0, an older one is fenced, a repeat of one of the latest appends is a
/// duplicate, anything else must follow the last sequence (which wraps from `i32::MAX` to 0).
fn check_sequence(state: Option<&ProducerState>, b: &ProducerBatch) -> Verdict {
    let Some(s) = state else {
        return Verdict::Append;
    };
    if b.producer_epoch < s.epoch {
        return Verdict::Reject(ProducerRejection::InvalidProducerEpoch);
    }
    if b.producer_epoch > s.epoch {
        return if b.first_sequence == 0 {
            Verdict::Append
        } else {
            Verdict::Reject(ProducerRejection::OutOfOrderSequence)
        };
    }
    if let Some(r) = s
        .recent
        .iter()
        .find(|r| r.0 == b.first_sequence && r.1 == b.last_sequence)
    {
        return Verdict::Duplicate(r.2);
    }
    let next = if s.last_sequence == i32::MAX {
        0
    } else {
        s.last_sequence + 1
    };
    if b.first_sequence == next {
        Verdict::Append
    } else {
        Verdict::Reject(ProducerRejection::OutOfOrderSequence)
    }
}

/// The producers whose state a commit of `objects` needs.
pub(crate) fn producer_keys(objects: &[ObjectCommit]) -> Vec<ProducerKey> {
    let keys: BTreeSet<ProducerKey> = objects
        .iter()
        .flat_map(|o| o.chunks.iter())
        .filter_map(|c| c.producer.map(|p| (c.topic_id, c.partition, p.producer_id)))
        .collect();
    keys.into_iter().collect()
}

/// A chunk's outcome as `objects.commit_outcomes` keeps it: `[base, log start]` when
/// committed, `null` for an unknown partition (the version 1 forms), or an object for an
/// idempotent producer's duplicate or refusal.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum StoredOutcome {
    Committed(i64, i64),
    Duplicate { duplicate: (i64, i64) },
    Rejected { rejected: ProducerRejection },
}

type Outcomes = Vec<Option<StoredOutcome>>;

fn encode_outcomes(chunks: &[ChunkOutcome]) -> Result<String> {
    let outcomes: Outcomes = chunks
        .iter()
        .map(|c| match c {
            ChunkOutcome::Committed {
                base_offset,
                log_start_offset,
            } => Some(StoredOutcome::Committed(*base_offset, *log_start_offset)),
            ChunkOutcome::UnknownTopicOrPartition => None,
            ChunkOutcome::Duplicate {
                base_offset,
                log_start_offset,
            } => Some(StoredOutcome::Duplicate {
                duplicate: (*base_offset, *log_start_offset),
            }),
            ChunkOutcome::Rejected(r) => Some(StoredOutcome::Rejected { rejected: *r }),
        })
        .collect();
    serde_json::to_string(&outcomes)
        .map_err(|e| MetadataError::Database(format!("encoding commit outcomes: {e}")))
}

fn decode_outcomes(object: &ObjectCommit, json: Option<&str>) -> Result<CommitResult> {
    let json = json.ok_or_else(|| {
        // A segment (or other non-WAL) object under this key: not a retry of ours.
        MetadataError::InvalidRequest(format!(
            "object key {} is already used by a non-WAL object",
            object.object_key
        ))
    })?;
    let outcomes: Outcomes = serde_json::from_str(json).map_err(|e| {
        MetadataError::Database(format!(
            "corrupt commit outcomes of {}: {e}",
            object.object_key
        ))
    })?;
    if outcomes.len() != object.chunks.len() {
        // Same key, different content: a key collision, not a retry.
        return Err(MetadataError::InvalidRequest(format!(
            "object {} was committed with {} chunks, retried with {}",
            object.object_key,
            outcomes.len(),
            object.chunks.len()
        )));
    }
    Ok(CommitResult {
        chunks: outcomes
            .into_iter()
            .map(|o| match o {
                Some(StoredOutcome::Committed(base_offset, log_start_offset)) => {
                    ChunkOutcome::Committed {
                        base_offset,
                        log_start_offset,
                    }
                }
                Some(StoredOutcome::Duplicate {
                    duplicate: (base_offset, log_start_offset),
                }) => ChunkOutcome::Duplicate {
                    base_offset,
                    log_start_offset,
                },
                Some(StoredOutcome::Rejected { rejected }) => ChunkOutcome::Rejected(rejected),
                None => ChunkOutcome::UnknownTopicOrPartition,
            })
            .collect(),
        watermarks: Vec::new(),
    })
}

impl<'a> CommitPlan<'a> {
    /// Assigns offsets object by object, chunk by chunk, starting from the locked
    /// `(high_watermark, log_start_offset)` of each live partition. Objects found in
    /// `existing` (and repeats of a key within the slice) get their recorded outcomes.
    pub(crate) fn build(
        objects: &'a [ObjectCommit],
        existing: &HashMap<String, Option<String>>,
        partitions: &BTreeMap<(Uuid, i32), (i64, i64)>,
        producers: &HashMap<ProducerKey, ProducerState>,
        txns: &TxnFacts,
    ) -> Result<Self> {
        let mut next: BTreeMap<(Uuid, i32), (i64, i64)> = partitions.clone();
        let mut seen: HashMap<&str, CommitResult> = HashMap::new();
        let mut states: HashMap<ProducerKey, ProducerState> = producers.clone();
        let mut touched: BTreeSet<ProducerKey> = BTreeSet::new();
        let mut plan = CommitPlan {
            results: Vec::with_capacity(objects.len()),
            new_objects: Vec::new(),
            index_rows: Vec::new(),
            watermarks: Vec::new(),
            producer_rows: Vec::new(),
            txn_first_offsets: Vec::new(),
        };
        let mut txn_started: BTreeSet<(i64, Uuid, i32)> = BTreeSet::new();
        for object in objects {
            let key = object.object_key.as_str();
            if let Some(done) = seen.get(key) {
                if done.chunks.len() != object.chunks.len() {
                    return Err(MetadataError::InvalidRequest(format!(
                        "object {key} appears twice with different chunks"
                    )));
                }
                plan.results.push(done.clone());
                continue;
            }
            if let Some(json) = existing.get(key) {
                let result = decode_outcomes(object, json.as_deref())?;
                seen.insert(key, result.clone());
                plan.results.push(result);
                continue;
            }
            let mut chunks = Vec::with_capacity(object.chunks.len());
            for c in &object.chunks {
                let Some((hwm, lso)) = next.get_mut(&(c.topic_id, c.partition)) else {
                    chunks.push(ChunkOutcome::UnknownTopicOrPartition);
                    continue;
                };
                if let Some(p) = &c.producer {
                    let key = (c.topic_id, c.partition, p.producer_id);
                    match check_sequence(states.get(&key), p) {
                        Verdict::Append => {}
                        Verdict::Duplicate(base_offset) => {
                            chunks.push(ChunkOutcome::Duplicate {
                                base_offset,
                                log_start_offset: *lso,
                            });
                            continue;
                        }
                        Verdict::Reject(r) => {
                            chunks.push(ChunkOutcome::Rejected(r));
                            continue;
                        }
                    }
                    if p.transactional {
                        if let Some(r) = txns.refusal(c.topic_id, c.partition, p) {
                            chunks.push(ChunkOutcome::Rejected(r));
                            continue;
                        }
                    }
                }
                let base_offset = *hwm;
                *hwm = base_offset.checked_add(c.offset_count).ok_or_else(|| {
                    MetadataError::InvalidRequest(format!(
                        "offsets of partition {} would overflow",
                        c.partition
                    ))
                })?;
                plan.index_rows.push(NewIndexRow {
                    topic_id: c.topic_id,
                    partition: c.partition,
                    base_offset,
                    last_offset: *hwm - 1,
                    object_key: key,
                    byte_offset: c.byte_offset,
                    byte_len: c.byte_len,
                    batch_count: c.batch_count,
                    first_timestamp_ms: c.first_timestamp_ms,
                    max_timestamp_ms: c.max_timestamp_ms,
                });
                chunks.push(ChunkOutcome::Committed {
                    base_offset,
                    log_start_offset: *lso,
                });
                if let Some(p) = c.producer.filter(|p| p.transactional) {
                    let k = (p.producer_id, c.topic_id, c.partition);
                    let unset = matches!(txns.partitions.get(&k), Some(None));
                    if unset && txn_started.insert(k) {
                        if let Some(t) = txns.producers.get(&p.producer_id) {
                            plan.txn_first_offsets.push((
                                t.transactional_id.clone(),
                                c.topic_id,
                                c.partition,
                                base_offset,
                            ));
                        }
                    }
                }
                if let Some(p) = &c.producer {
                    let key = (c.topic_id, c.partition, p.producer_id);
                    let last_offset = *hwm - 1;
                    let state = states.entry(key).or_insert(ProducerState {
                        epoch: p.producer_epoch,
                        last_sequence: -1,
                        last_offset,
                        recent: Vec::new(),
                    });
                    if state.epoch != p.producer_epoch {
                        state.recent.clear();
                    }
                    state.epoch = p.producer_epoch;
                    state.last_sequence = p.last_sequence;
                    state.last_offset = last_offset;
                    state.recent.push((
                        p.first_sequence,
                        p.last_sequence,
                        base_offset,
                        last_offset,
                    ));
                    let excess = state.recent.len().saturating_sub(RECENT_APPENDS);
                    state.recent.drain(..excess);
                    touched.insert(key);
                }
            }
            plan.new_objects.push(NewObject {
                object_key: key,
                size_bytes: object.object_size,
                commit_outcomes: encode_outcomes(&chunks)?,
            });
            let result = CommitResult {
                chunks,
                watermarks: Vec::new(),
            };
            seen.insert(key, result.clone());
            plan.results.push(result);
        }
        plan.producer_rows = touched
            .into_iter()
            .filter_map(|k| states.remove(&k).map(|s| (k, s)))
            .collect();
        for (&(topic_id, partition), &(hwm, lso)) in &next {
            if partitions
                .get(&(topic_id, partition))
                .is_some_and(|&(old, _)| old != hwm)
            {
                // The backend states the stable offset and abort count once it has written.
                plan.watermarks.push(PartitionWatermark {
                    topic_id,
                    partition,
                    high_watermark: hwm,
                    log_start_offset: lso,
                    last_stable_offset: None,
                    abort_count: 0,
                });
            }
        }
        Ok(plan)
    }
}

/// Every live topic with its partitions, in name order (the same SQL on both backends).
pub(crate) const LIST_TOPICS_SQL: &str = "SELECT t.topic_id, t.name, t.configs, t.created_at_ms,
        p.partition, p.high_watermark, p.log_start_offset, p.leader_epoch
     FROM topics t JOIN partitions p ON p.topic_id = t.topic_id
     WHERE t.deleted_at_ms IS NULL
     ORDER BY t.name, p.partition";

/// Watermarks of every partition of every live topic (the same SQL on both backends).
pub(crate) const WATERMARKS_SQL: &str =
    "SELECT p.topic_id, p.partition, p.high_watermark, p.log_start_offset, p.abort_count,
            (SELECT min(tp.first_offset) FROM transaction_partitions tp
             WHERE tp.topic_id = p.topic_id AND tp.partition = p.partition)
     FROM partitions p JOIN topics t ON t.topic_id = p.topic_id
     WHERE t.deleted_at_ms IS NULL
     ORDER BY p.topic_id, p.partition";

/// A `consumer_groups` row: id, type, protocol type, protocol name, state, generation,
/// leader, assignment epoch, updated_at_ms.
pub(crate) type GroupRow = (
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    i32,
    Option<String>,
    i32,
    i64,
);

/// A `group_members` row: group id, member id, instance id, client id, host, session
/// timeout, rebalance timeout, protocols (JSON), assignment, rack, member epoch,
/// subscription, assigned partitions.
pub(crate) type MemberRow = (
    String,
    String,
    Option<String>,
    String,
    String,
    i32,
    i32,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Option<String>,
    i32,
    Option<String>,
    Option<String>,
);

pub(crate) const CONSUMER_LAG_SQL: &str = "SELECT o.group_id, t.name, o.partition, \
     CASE WHEN p.high_watermark > o.committed_offset \
          THEN p.high_watermark - o.committed_offset ELSE 0 END \
     FROM group_offsets o \
     JOIN topics t ON t.topic_id = o.topic_id AND t.deleted_at_ms IS NULL \
     JOIN partitions p ON p.topic_id = o.topic_id AND p.partition = o.partition \
     ORDER BY o.group_id, t.name, o.partition";

pub(crate) const LOAD_GROUPS_SQL: &str = "SELECT group_id, group_type, protocol_type, \
     protocol_name, state, generation_id, leader_member_id, assignment_epoch, updated_at_ms \
     FROM consumer_groups ORDER BY group_id";

pub(crate) const LOAD_MEMBERS_SQL: &str = "SELECT group_id, member_id, group_instance_id, \
     client_id, client_host, session_timeout_ms, rebalance_timeout_ms, protocols, assignment, \
     rack_id, member_epoch, subscription, assigned_partitions \
     FROM group_members ORDER BY group_id, member_id";

/// The protocols of a member as stored (JSON, in the `protocols` column).
pub(crate) fn protocols_to_json(protocols: &[GroupProtocol]) -> Result<Vec<u8>> {
    serde_json::to_vec(protocols)
        .map_err(|e| MetadataError::InvalidRequest(format!("group protocols: {e}")))
}

/// Joins group and member rows into records.
pub(crate) fn assemble_groups(
    groups: Vec<GroupRow>,
    members: Vec<MemberRow>,
) -> Result<Vec<GroupRecord>> {
    let mut by_group: HashMap<String, Vec<MemberRecord>> = HashMap::new();
    for row in members {
        let (group_id, member_id, instance, client_id, host, session, rebalance) =
            (row.0, row.1, row.2, row.3, row.4, row.5, row.6);
        let protocols = match row.7 {
            Some(p) => serde_json::from_slice(&p).map_err(|e| {
                MetadataError::Database(format!("corrupt protocols of {group_id}/{member_id}: {e}"))
            })?,
            None => Vec::new(),
        };
        by_group.entry(group_id).or_default().push(MemberRecord {
            member_id,
            group_instance_id: instance,
            client_id,
            client_host: host,
            session_timeout_ms: session,
            rebalance_timeout_ms: rebalance,
            protocols,
            assignment: row.8.unwrap_or_default(),
            rack_id: row.9,
            member_epoch: row.10,
            subscription: row.11,
            assigned_partitions: row.12,
        });
    }
    Ok(groups
        .into_iter()
        .map(|row| {
            let members = by_group.remove(&row.0).unwrap_or_default();
            GroupRecord {
                group_id: row.0,
                group_type: row.1,
                protocol_type: row.2,
                protocol_name: row.3,
                state: row.4,
                generation_id: row.5,
                leader: row.6,
                assignment_epoch: row.7,
                state_since_ms: row.8,
                members,
            }
        })
        .collect())
}

#[cfg(test)]
mod unit {
    use super::*;
    use crate::types::ChunkCommit;

    fn chunk(topic_id: Uuid, partition: i32, offset_count: i64) -> ChunkCommit {
        ChunkCommit {
            topic_id,
            partition,
            byte_offset: 0,
            byte_len: 10,
            offset_count,
            batch_count: 1,
            first_timestamp_ms: 0,
            max_timestamp_ms: 0,
            producer: None,
        }
    }

    #[test]
    fn cluster_id_is_22_base64url_chars() {
        let id = new_cluster_id();
        assert_eq!(id.len(), 22);
        assert!(id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_ne!(id, new_cluster_id());
    }

    #[test]
    fn plan_assigns_in_slice_then_chunk_order() {
        let t = Uuid::new_v4();
        let objects = vec![
            ObjectCommit {
                object_key: "a".into(),
                object_size: 10,
                chunks: vec![chunk(t, 0, 3), chunk(t, 1, 2), chunk(t, 0, 1)],
            },
            ObjectCommit {
                object_key: "b".into(),
                object_size: 10,
                chunks: vec![chunk(t, 0, 5)],
            },
            ObjectCommit {
                object_key: "a".into(),
                object_size: 10,
                chunks: vec![chunk(t, 0, 3), chunk(t, 1, 2), chunk(t, 0, 1)],
            },
        ];
        let parts = BTreeMap::from([((t, 0), (10, 2)), ((t, 1), (0, 0))]);
        let plan = CommitPlan::build(
            &objects,
            &HashMap::new(),
            &parts,
            &HashMap::new(),
            &TxnFacts::default(),
        )
        .unwrap();
        let bases: Vec<_> = plan
            .index_rows
            .iter()
            .map(|r| (r.partition, r.base_offset, r.last_offset))
            .collect();
        assert_eq!(
            bases,
            vec![(0, 10, 12), (1, 0, 1), (0, 13, 13), (0, 14, 18)]
        );
        assert_eq!(plan.results[0], plan.results[2]);
        assert_eq!(plan.new_objects.len(), 2);
        assert_eq!(plan.watermarks.len(), 2);
        assert_eq!(plan.watermarks[0].high_watermark, 19);
        assert_eq!(plan.new_objects[0].commit_outcomes, "[[10,2],[0,0],[13,2]]");
    }

    #[test]
    fn plan_replays_recorded_outcomes() {
        let t = Uuid::new_v4();
        let objects = vec![ObjectCommit {
            object_key: "a".into(),
            object_size: 10,
            chunks: vec![chunk(t, 0, 3), chunk(t, 9, 2)],
        }];
        let existing = HashMap::from([("a".to_string(), Some("[[7,0],null]".to_string()))]);
        assert!(partitions_to_lock(&objects, &existing).is_empty());
        let plan = CommitPlan::build(
            &objects,
            &existing,
            &BTreeMap::new(),
            &HashMap::new(),
            &TxnFacts::default(),
        )
        .unwrap();
        assert!(plan.new_objects.is_empty() && plan.index_rows.is_empty());
        assert_eq!(
            plan.results[0].chunks,
            vec![
                ChunkOutcome::Committed {
                    base_offset: 7,
                    log_start_offset: 0
                },
                ChunkOutcome::UnknownTopicOrPartition
            ]
        );
    }
}

/// What a backend read about a partition to move its log start (`advance_log_start`).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LogFacts {
    /// Current log start offset.
    pub log_start: i64,
    /// High watermark.
    pub high_watermark: i64,
    /// Base offset of the first live entry holding a timestamp at or after the retention
    /// cut-off (asked only for time retention).
    pub first_unexpired: Option<i64>,
    /// Base offset of the newest live entry at which the bytes counted from the newest
    /// (itself included) reach the limit: everything before it can go while at least the
    /// limit stays, as Kafka deletes segments (asked only for byte retention).
    pub first_within_bytes: Option<i64>,
}

/// The log start offset `target` asks for, given `facts`: never behind the current one,
/// never past the high watermark.
pub(crate) fn new_log_start(facts: LogFacts, target: LogStartTarget) -> Result<i64> {
    let LogFacts {
        log_start,
        high_watermark: hw,
        ..
    } = facts;
    let wanted = match target {
        LogStartTarget::Offset(-1) => hw,
        LogStartTarget::Offset(o) if o < -1 || o > hw => {
            return Err(MetadataError::OffsetOutOfRange(format!(
                "offset {o} outside -1..={hw}"
            )))
        }
        LogStartTarget::Offset(o) => o,
        LogStartTarget::Retention {
            expire_before_ms,
            max_bytes,
        } => {
            // Every entry expired: the log empties up to the high watermark.
            let by_time = expire_before_ms.map(|_| facts.first_unexpired.unwrap_or(hw));
            // Less than the limit in all: nothing goes.
            let by_bytes = max_bytes.map(|_| facts.first_within_bytes.unwrap_or(log_start));
            by_time
                .unwrap_or(log_start)
                .max(by_bytes.unwrap_or(log_start))
        }
    };
    Ok(wanted.max(log_start).min(hw))
}

/// Tables whose rows a partition forgets once the log start passes their `last_offset`:
/// the offset index, and aborted transactions (Fetch lists only those reaching the fetch
/// offset, which is never below the log start).
pub(crate) const BELOW_LOG_START_TABLES: [&str; 2] = ["offset_index", "aborted_transactions"];

/// Tables holding rows of a topic, children first: what purging a deleted topic removes.
pub(crate) const TOPIC_TABLES: [&str; 5] = [
    "offset_index",
    "producer_partitions",
    "aborted_transactions",
    "partitions",
    "topics",
];

/// Checks that a segment swap's new rows cover exactly the replaced entries' offsets,
/// contiguously and in order, inside the segment.
pub(crate) fn check_swap(swap: &crate::types::SegmentSwap) -> Result<()> {
    let bad = |m: &str| Err(MetadataError::InvalidRequest(format!("segment swap: {m}")));
    let (Some(first), Some(last)) = (swap.replaced.first(), swap.replaced.last()) else {
        return bad("nothing replaced");
    };
    let (Some(r0), Some(rn)) = (swap.rows.first(), swap.rows.last()) else {
        return bad("no rows");
    };
    if r0.base_offset != first.0 || rn.last_offset != last.1 {
        return bad("rows do not cover the replaced offsets");
    }
    for w in swap.rows.windows(2) {
        if w[1].base_offset != w[0].last_offset + 1 {
            return bad("rows not contiguous");
        }
    }
    for r in &swap.rows {
        // A row may hold no bytes: a compacted range whose records were all cleaned away.
        if r.last_offset < r.base_offset
            || r.byte_offset < 0
            || r.byte_len < 0
            || r.byte_offset + r.byte_len > swap.object_size
            || r.object_key != swap.object_key
        {
            return bad("row outside the segment");
        }
    }
    Ok(())
}
