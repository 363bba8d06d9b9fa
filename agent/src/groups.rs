//! FindCoordinator, OffsetCommit and OffsetFetch. Groups are coordinated by the metadata
//! service (see `membership.rs`), so every agent is a valid coordinator: FindCoordinator
//! answers with the agent asked, which is in the client's zone, and an agent's death loses
//! nothing. Commits are checked against the group's membership by the coordinator; fetches
//! read the store directly.

use std::collections::{HashMap, HashSet};

use floe_metadata::groups::{CommitOffsets, GroupCall, GroupError, GroupReply};
use floe_metadata::{CommittedOffset, TxnCall, TxnReply};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{
    BrokerId, FindCoordinatorRequest, FindCoordinatorResponse, OffsetCommitRequest,
    OffsetCommitResponse, OffsetFetchRequest, OffsetFetchResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use tracing::warn;

use crate::dispatch::Ctx;
use crate::membership;

/// Kafka's `offset.metadata.max.bytes`.
const MAX_OFFSET_METADATA: usize = 4096;

const KEY_GROUP: i8 = 0;
/// FindCoordinator key type of a transactional id.
const KEY_TRANSACTION: i8 = 1;

fn s(v: impl Into<String>) -> StrBytes {
    StrBytes::from_string(v.into())
}

/// The coordinator answer for one key: this agent for groups; an error otherwise.
fn coordinator_for(key: &str, key_type: i8) -> Result<(), (ResponseError, &'static str)> {
    match key_type {
        KEY_GROUP if key.is_empty() => Err((ResponseError::InvalidGroupId, "empty group id")),
        KEY_GROUP => Ok(()),
        // Transactions, like groups, are coordinated by any agent.
        KEY_TRANSACTION if key.is_empty() => {
            Err((ResponseError::InvalidRequest, "empty transactional id"))
        }
        KEY_TRANSACTION => Ok(()),
        _ => Err((
            ResponseError::InvalidRequest,
            "unsupported coordinator key type",
        )),
    }
}

/// FindCoordinator: groups are coordinated by whichever agent is asked (their state is in
/// the metadata store). v4+ batches keys.
pub fn find_coordinator(
    ctx: &Ctx,
    req: FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    let (host, port) = ctx.config.advertised();
    let node = BrokerId(ctx.config.node_id);
    if version >= 4 {
        let coordinators = req
            .coordinator_keys
            .iter()
            .map(|k| {
                let c = Coordinator::default().with_key(k.clone());
                match coordinator_for(k.as_str(), req.key_type) {
                    Ok(()) => c
                        .with_node_id(node)
                        .with_host(s(host.clone()))
                        .with_port(port),
                    Err((e, m)) => c
                        .with_node_id(BrokerId(-1))
                        .with_port(-1)
                        .with_error_code(e.code())
                        .with_error_message(Some(s(m))),
                }
            })
            .collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    match coordinator_for(req.key.as_str(), req.key_type) {
        Ok(()) => FindCoordinatorResponse::default()
            .with_node_id(node)
            .with_host(s(host))
            .with_port(port),
        Err((e, m)) => {
            let r = FindCoordinatorResponse::default()
                .with_error_code(e.code())
                .with_node_id(BrokerId(-1))
                .with_port(-1);
            // error_message exists from v1.
            if version >= 1 {
                r.with_error_message(Some(s(m)))
            } else {
                r
            }
        }
    }
}

/// OffsetCommit v2–9: from a group member (checked against its generation by the
/// coordinator) or from a consumer that assigns itself (generation -1, no member id).
pub async fn offset_commit(ctx: &Ctx, req: OffsetCommitRequest) -> OffsetCommitResponse {
    let group = req.group_id.to_string();
    let refuse_all = group
        .is_empty()
        .then_some(ResponseError::InvalidGroupId.code());
    let now = ctx.clock.now_ms();
    let mut topics = Vec::with_capacity(req.topics.len());
    let mut to_store = Vec::new();
    let mut slots = Vec::new();
    for t in req.topics {
        let topic = ctx.catalog.lookup(t.name.as_str()).await;
        let mut tr = OffsetCommitResponseTopic::default().with_name(t.name.clone());
        for p in t.partitions {
            let code = if let Some(e) = refuse_all {
                e
            } else if p
                .committed_metadata
                .as_ref()
                .is_some_and(|m| m.len() > MAX_OFFSET_METADATA)
            {
                ResponseError::OffsetMetadataTooLarge.code()
            } else {
                match &topic {
                    Some(t) if p.partition_index >= 0 && p.partition_index < t.partitions => {
                        slots.push((topics.len(), tr.partitions.len()));
                        to_store.push(CommittedOffset {
                            topic_id: t.id,
                            partition: p.partition_index,
                            offset: p.committed_offset,
                            leader_epoch: (p.committed_leader_epoch >= 0)
                                .then_some(p.committed_leader_epoch),
                            metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
                            commit_timestamp_ms: now,
                        });
                        0
                    }
                    _ => ResponseError::UnknownTopicOrPartition.code(),
                }
            };
            tr.partitions.push(
                OffsetCommitResponsePartition::default()
                    .with_partition_index(p.partition_index)
                    .with_error_code(code),
            );
        }
        topics.push(tr);
    }
    if refuse_all.is_none() {
        let commit = CommitOffsets {
            group_id: group,
            generation_id: req.generation_id_or_member_epoch,
            member_id: req.member_id.to_string(),
            group_instance_id: req.group_instance_id.as_ref().map(|i| i.to_string()),
            offsets: to_store,
            transactional: false,
        };
        // Every partition shares the membership verdict (and a store failure).
        let error = match membership::call(ctx, GroupCall::CommitOffsets(commit)).await {
            Ok(GroupReply::Done(e)) => e,
            Ok(_) => Some(GroupError::CoordinatorNotAvailable),
            Err(e) => Some(e),
        };
        if error.is_some() {
            let c = membership::code(error);
            for (t, p) in slots {
                topics[t].partitions[p].error_code = c;
            }
        }
    }
    OffsetCommitResponse::default().with_topics(topics)
}

type Committed = HashMap<(String, i32), CommittedOffset>;

/// A group's committed offsets keyed by topic name (topics deleted since are gone).
async fn committed(ctx: &Ctx, group: &str) -> Result<Committed, ResponseError> {
    let offsets = ctx.metadata.fetch_offsets(group).await.map_err(|e| {
        warn!(group, error = %e, "offset fetch failed");
        ResponseError::CoordinatorNotAvailable
    })?;
    let mut out = HashMap::new();
    for o in offsets {
        if let Some(t) = ctx.catalog.lookup_id(o.topic_id).await {
            out.insert((t.name.clone(), o.partition), o);
        }
    }
    Ok(out)
}

/// The partitions of `group` whose offsets an open transaction is about to commit (KIP-447):
/// a consumer that asks for stable offsets gets UNSTABLE_OFFSET_COMMIT for them and retries,
/// so it cannot start from an offset the transaction is moving.
async fn unstable(
    ctx: &Ctx,
    group: &str,
    require_stable: bool,
) -> Result<HashSet<(String, i32)>, ResponseError> {
    if !require_stable {
        return Ok(HashSet::new());
    }
    let call = TxnCall::PendingOffsets {
        group_id: group.to_string(),
    };
    let pending = match ctx.metadata.txn(call).await {
        Ok(TxnReply::Pending(p)) => p,
        Ok(other) => {
            warn!(group, reply = ?other, "unexpected pending-offsets reply");
            return Err(ResponseError::UnknownServerError);
        }
        Err(e) => {
            warn!(group, error = %e, "pending-offsets lookup failed");
            return Err(ResponseError::CoordinatorNotAvailable);
        }
    };
    let mut out = HashSet::new();
    for (topic_id, p) in pending {
        if let Some(t) = ctx.catalog.lookup_id(topic_id).await {
            out.insert((t.name.clone(), p));
        }
    }
    Ok(out)
}

/// Both lookups of OffsetFetch for one group.
async fn committed_and_unstable(
    ctx: &Ctx,
    group: &str,
    require_stable: bool,
) -> Result<(Committed, HashSet<(String, i32)>), ResponseError> {
    Ok((
        committed(ctx, group).await?,
        unstable(ctx, group, require_stable).await?,
    ))
}

/// The error code of a partition: UNSTABLE_OFFSET_COMMIT while a transaction holds it.
fn stability(unstable: &HashSet<(String, i32)>, topic: &str, partition: i32) -> i16 {
    if unstable.contains(&(topic.to_string(), partition)) {
        ResponseError::UnstableOffsetCommit.code()
    } else {
        0
    }
}

/// `(topic, partitions)` wanted: the ones named, or every committed one when `None`.
fn wanted(
    named: Option<Vec<(String, Vec<i32>)>>,
    committed: &Committed,
) -> Vec<(String, Vec<i32>)> {
    match named {
        Some(v) => v,
        None => {
            let mut by_topic: std::collections::BTreeMap<String, Vec<i32>> = Default::default();
            for (t, p) in committed.keys() {
                by_topic.entry(t.clone()).or_default().push(*p);
            }
            by_topic
                .into_iter()
                .map(|(t, mut ps)| {
                    ps.sort_unstable();
                    (t, ps)
                })
                .collect()
        }
    }
}

/// `(offset, leader epoch, metadata)` of one partition; -1 and "" when nothing is committed.
fn lookup(committed: &Committed, topic: &str, partition: i32) -> (i64, i32, String) {
    match committed.get(&(topic.to_string(), partition)) {
        Some(o) => (
            o.offset,
            o.leader_epoch.unwrap_or(-1),
            o.metadata.clone().unwrap_or_default(),
        ),
        None => (-1, -1, String::new()),
    }
}

/// OffsetFetch: one group (v1–v7) or many (v8+).
pub async fn offset_fetch(ctx: &Ctx, req: OffsetFetchRequest, version: i16) -> OffsetFetchResponse {
    if version >= 8 {
        let mut groups = Vec::with_capacity(req.groups.len());
        for g in req.groups {
            let group = g.group_id.to_string();
            let named = g.topics.map(|ts| {
                ts.into_iter()
                    .map(|t| (t.name.to_string(), t.partition_indexes))
                    .collect()
            });
            let resp = OffsetFetchResponseGroup::default().with_group_id(g.group_id);
            let resp = match committed_and_unstable(ctx, &group, req.require_stable).await {
                Err(e) => resp.with_error_code(e.code()),
                Ok((c, unstable)) => resp.with_topics(
                    wanted(named, &c)
                        .into_iter()
                        .map(|(t, ps)| {
                            let partitions = ps
                                .into_iter()
                                .map(|p| {
                                    let (offset, epoch, meta) = lookup(&c, &t, p);
                                    OffsetFetchResponsePartitions::default()
                                        .with_partition_index(p)
                                        .with_committed_offset(offset)
                                        .with_committed_leader_epoch(epoch)
                                        .with_metadata(Some(s(meta)))
                                        .with_error_code(stability(&unstable, &t, p))
                                })
                                .collect();
                            OffsetFetchResponseTopics::default()
                                .with_name(TopicName(s(t)))
                                .with_partitions(partitions)
                        })
                        .collect(),
                ),
            };
            groups.push(resp);
        }
        return OffsetFetchResponse::default().with_groups(groups);
    }
    let group = req.group_id.to_string();
    let named = req.topics.map(|ts| {
        ts.into_iter()
            .map(|t| (t.name.to_string(), t.partition_indexes))
            .collect()
    });
    // require_stable exists from v7.
    let require_stable = version >= 7 && req.require_stable;
    let (c, unstable) = match committed_and_unstable(ctx, &group, require_stable).await {
        Ok(found) => found,
        // v2+ has a top-level error; v1 can only say it per partition.
        Err(e) if version >= 2 => return OffsetFetchResponse::default().with_error_code(e.code()),
        Err(_) => (HashMap::new(), HashSet::new()),
    };
    let topics = wanted(named, &c)
        .into_iter()
        .map(|(t, ps)| {
            let partitions = ps
                .into_iter()
                .map(|p| {
                    let (offset, epoch, meta) = lookup(&c, &t, p);
                    let r = OffsetFetchResponsePartition::default()
                        .with_partition_index(p)
                        .with_committed_offset(offset)
                        .with_metadata(Some(s(meta)))
                        .with_error_code(stability(&unstable, &t, p));
                    // committed_leader_epoch exists from v5.
                    if version >= 5 {
                        r.with_committed_leader_epoch(epoch)
                    } else {
                        r
                    }
                })
                .collect();
            OffsetFetchResponseTopic::default()
                .with_name(TopicName(s(t)))
                .with_partitions(partitions)
        })
        .collect();
    OffsetFetchResponse::default().with_topics(topics)
}
