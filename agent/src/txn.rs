//! The transaction coordinator's Kafka APIs. Like groups, transactions are coordinated by
//! whichever agent is asked (FindCoordinator with key type 1 names the agent itself): the
//! state lives in the metadata store, and each call is one metadata-service call that runs
//! in one database transaction (decision 0009).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use kafka_protocol::messages::list_transactions_response::TransactionState as ListedState;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, AddPartitionsToTxnRequest,
    AddPartitionsToTxnResponse, DescribeProducersRequest, DescribeProducersResponse,
    DescribeTransactionsRequest, DescribeTransactionsResponse, EndTxnRequest, EndTxnResponse,
    InitProducerIdResponse, ListTransactionsRequest, ListTransactionsResponse, ProducerId,
    ResponseKind, TopicName, TransactionalId, TxnOffsetCommitRequest, TxnOffsetCommitResponse,
};
use kafka_protocol::protocol::StrBytes;
use tracing::warn;

use crate::dispatch::Ctx;
use crate::membership;
use std::sync::Arc;

use floe_metadata::groups::{CommitOffsets, GroupCall, GroupReply};
use floe_metadata::{
    AbortedTxn, CommittedOffset, TopicId, TxnCall, TxnProducer, TxnRefusal, TxnReply,
};

/// The Kafka error for a refusal.
pub fn refusal_error(r: TxnRefusal) -> ResponseError {
    match r {
        TxnRefusal::InvalidProducerIdMapping => ResponseError::InvalidProducerIdMapping,
        TxnRefusal::ProducerFenced => ResponseError::ProducerFenced,
        TxnRefusal::InvalidTxnState => ResponseError::InvalidTxnState,
        TxnRefusal::InvalidTransactionTimeout => ResponseError::InvalidTransactionTimeout,
        TxnRefusal::UnknownTopicOrPartition => ResponseError::UnknownTopicOrPartition,
        TxnRefusal::OperationNotAttempted => ResponseError::OperationNotAttempted,
    }
}

/// KIP-588 gave fencing its own error, PRODUCER_FENCED, from InitProducerId v4,
/// AddPartitionsToTxn v2, AddOffsetsToTxn v2 and EndTxn v2 on; TxnOffsetCommit never got it.
/// Clients speaking older versions (KafkaJS 2.x sends EndTxn v1) do not know the code and
/// treat it as unknown, so they get INVALID_PRODUCER_EPOCH, the fencing error of their
/// version, exactly as Kafka answers them.
pub fn fencing_for_version(resp: &mut ResponseKind, version: i16) {
    let fenced = ResponseError::ProducerFenced.code();
    let old = ResponseError::InvalidProducerEpoch.code();
    let downgrade = |code: &mut i16| {
        if *code == fenced {
            *code = old;
        }
    };
    match resp {
        ResponseKind::InitProducerId(r) if version < 4 => downgrade(&mut r.error_code),
        ResponseKind::AddPartitionsToTxn(r) if version < 2 => r
            .results_by_topic_v3_and_below
            .iter_mut()
            .flat_map(|t| t.results_by_partition.iter_mut())
            .for_each(|p| downgrade(&mut p.partition_error_code)),
        ResponseKind::AddOffsetsToTxn(r) if version < 2 => downgrade(&mut r.error_code),
        ResponseKind::EndTxn(r) if version < 2 => downgrade(&mut r.error_code),
        ResponseKind::TxnOffsetCommit(r) => r
            .topics
            .iter_mut()
            .flat_map(|t| t.partitions.iter_mut())
            .for_each(|p| downgrade(&mut p.error_code)),
        _ => {}
    }
}

/// One coordinator call; a metadata failure is COORDINATOR_NOT_AVAILABLE (retriable: the
/// client retries, and every call is safe to repeat).
async fn call(ctx: &Ctx, c: TxnCall) -> Result<TxnReply, ResponseError> {
    match ctx.metadata.txn(c).await {
        Ok(TxnReply::Refused(r)) => Err(refusal_error(r)),
        Ok(reply) => Ok(reply),
        Err(e) => {
            warn!(error = %e, "transaction coordinator call failed");
            Err(ResponseError::CoordinatorNotAvailable)
        }
    }
}

fn code(r: Result<(), ResponseError>) -> i16 {
    r.err().map_or(0, |e| e.code())
}

fn producer(id: &TransactionalId, pid: ProducerId, epoch: i16) -> TxnProducer {
    TxnProducer {
        transactional_id: id.to_string(),
        producer_id: pid.0,
        producer_epoch: epoch,
    }
}

/// InitProducerId with a transactional id.
pub async fn init_producer_id(
    ctx: &Ctx,
    transactional_id: &str,
    timeout_ms: i32,
    expected: Option<(i64, i16)>,
) -> InitProducerIdResponse {
    let c = TxnCall::InitProducer {
        transactional_id: transactional_id.to_string(),
        timeout_ms,
        expected,
    };
    match call(ctx, c).await {
        Ok(TxnReply::Producer {
            producer_id,
            producer_epoch,
        }) => InitProducerIdResponse::default()
            .with_producer_id(ProducerId(producer_id))
            .with_producer_epoch(producer_epoch),
        other => InitProducerIdResponse::default()
            .with_error_code(unexpected(other).code())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1),
    }
}

/// The error for a reply of the wrong kind (never expected) or a failed call.
fn unexpected(r: Result<TxnReply, ResponseError>) -> ResponseError {
    match r {
        Err(e) => e,
        Ok(other) => {
            warn!(reply = ?other, "unexpected transaction coordinator reply");
            ResponseError::UnknownServerError
        }
    }
}

/// AddPartitionsToTxn v0–3 (clients; v4+ is broker to broker and not advertised: produce
/// requests are checked against the transaction where their offsets are assigned).
pub async fn add_partitions(
    ctx: &Ctx,
    req: AddPartitionsToTxnRequest,
) -> AddPartitionsToTxnResponse {
    let mut wanted = Vec::new();
    let mut unknown = Vec::new();
    for t in &req.v3_and_below_topics {
        let topic = ctx.catalog.lookup(t.name.as_str()).await;
        for &p in &t.partitions {
            match &topic {
                Some(topic) if p >= 0 && p < topic.partitions => {
                    wanted.push((t.name.clone(), p, topic.id))
                }
                _ => unknown.push((t.name.clone(), p)),
            }
        }
    }
    let mut results: Vec<(TopicName, i32, i16)> = Vec::new();
    if !unknown.is_empty() {
        // Kafka adds none then: the known ones were not attempted.
        for (name, p) in unknown {
            results.push((name, p, ResponseError::UnknownTopicOrPartition.code()));
        }
        for (name, p, _) in wanted {
            results.push((name, p, ResponseError::OperationNotAttempted.code()));
        }
    } else {
        let c = TxnCall::AddPartitions {
            producer: producer(
                &req.v3_and_below_transactional_id,
                req.v3_and_below_producer_id,
                req.v3_and_below_producer_epoch,
            ),
            partitions: wanted.iter().map(|(_, p, id)| (*id, *p)).collect(),
        };
        match call(ctx, c).await {
            Ok(TxnReply::Partitions(codes)) => {
                for ((name, p, _), r) in wanted.into_iter().zip(codes) {
                    results.push((name, p, r.map_or(0, |r| refusal_error(r).code())));
                }
            }
            other => {
                let e = unexpected(other).code();
                for (name, p, _) in wanted {
                    results.push((name, p, e));
                }
            }
        }
    }
    let mut topics: Vec<AddPartitionsToTxnTopicResult> = Vec::new();
    for (name, p, e) in results {
        let r = AddPartitionsToTxnPartitionResult::default()
            .with_partition_index(p)
            .with_partition_error_code(e);
        match topics.iter_mut().find(|t| t.name == name) {
            Some(t) => t.results_by_partition.push(r),
            None => topics.push(
                AddPartitionsToTxnTopicResult::default()
                    .with_name(name)
                    .with_results_by_partition(vec![r]),
            ),
        }
    }
    AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(topics)
}

/// AddOffsetsToTxn v0–4.
pub async fn add_offsets(ctx: &Ctx, req: AddOffsetsToTxnRequest) -> AddOffsetsToTxnResponse {
    let c = TxnCall::AddOffsets {
        producer: producer(&req.transactional_id, req.producer_id, req.producer_epoch),
        group_id: req.group_id.to_string(),
    };
    let r = match call(ctx, c).await {
        Ok(TxnReply::Done) => Ok(()),
        other => Err(unexpected(other)),
    };
    AddOffsetsToTxnResponse::default().with_error_code(code(r))
}

/// TxnOffsetCommit v0–4: the offsets become the group's when the transaction commits.
pub async fn txn_offset_commit(ctx: &Ctx, req: TxnOffsetCommitRequest) -> TxnOffsetCommitResponse {
    let now = floe_common::clock::system().now_ms();
    let mut offsets = Vec::new();
    let mut unknown = Vec::new();
    for t in &req.topics {
        let topic = ctx.catalog.lookup(t.name.as_str()).await;
        for p in &t.partitions {
            match &topic {
                Some(topic) if p.partition_index >= 0 && p.partition_index < topic.partitions => {
                    offsets.push(CommittedOffset {
                        topic_id: topic.id,
                        partition: p.partition_index,
                        offset: p.committed_offset,
                        leader_epoch: (p.committed_leader_epoch >= 0)
                            .then_some(p.committed_leader_epoch),
                        metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
                        commit_timestamp_ms: now,
                    })
                }
                _ => unknown.push((t.name.clone(), p.partition_index)),
            }
        }
    }
    let result = if !unknown.is_empty() {
        Err(ResponseError::UnknownTopicOrPartition)
    } else if req.group_id.is_empty() {
        Err(ResponseError::InvalidGroupId)
    } else if let Err(e) = txn_member_check(ctx, &req).await {
        Err(e)
    } else {
        let c = TxnCall::CommitOffsets {
            producer: producer(&req.transactional_id, req.producer_id, req.producer_epoch),
            group_id: req.group_id.to_string(),
            offsets,
        };
        match call(ctx, c).await {
            Ok(TxnReply::Done) => Ok(()),
            other => Err(unexpected(other)),
        }
    };
    let topics = req
        .topics
        .iter()
        .map(|t| {
            TxnOffsetCommitResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| {
                            let e = if unknown.contains(&(t.name.clone(), p.partition_index)) {
                                ResponseError::UnknownTopicOrPartition.code()
                            } else {
                                code(result)
                            };
                            TxnOffsetCommitResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(e)
                        })
                        .collect(),
                )
        })
        .collect();
    TxnOffsetCommitResponse::default().with_topics(topics)
}

/// KIP-447: a TxnOffsetCommit that names its consumer's group membership (v3+) is fenced as
/// the group coordinator fences OffsetCommit, so a zombie consumer whose partitions moved to
/// another member cannot commit their offsets through its still-valid producer.
async fn txn_member_check(ctx: &Ctx, req: &TxnOffsetCommitRequest) -> Result<(), ResponseError> {
    let check = CommitOffsets {
        group_id: req.group_id.to_string(),
        generation_id: req.generation_id,
        member_id: req.member_id.to_string(),
        group_instance_id: req.group_instance_id.as_ref().map(|i| i.to_string()),
        offsets: Vec::new(),
        transactional: true,
    };
    match membership::call(ctx, GroupCall::CommitOffsets(check)).await {
        Ok(GroupReply::Done(None)) => Ok(()),
        Ok(GroupReply::Done(Some(e))) | Err(e) => Err(membership::response_error(e)),
        Ok(other) => {
            warn!(reply = ?other, "unexpected group coordinator reply");
            Err(ResponseError::CoordinatorNotAvailable)
        }
    }
}

/// EndTxn v0–4: commit or abort markers in every partition of the transaction.
pub async fn end_txn(ctx: &Ctx, req: EndTxnRequest) -> EndTxnResponse {
    let c = TxnCall::End {
        producer: producer(&req.transactional_id, req.producer_id, req.producer_epoch),
        commit: req.committed,
    };
    let r = match call(ctx, c).await {
        Ok(TxnReply::Ended(marks)) => {
            // This agent's readers need not wait for the change feed.
            ctx.catalog.advance(&marks);
            let outcome = if req.committed { "commit" } else { "abort" };
            ctx.metrics
                .transactions_ended
                .get_or_create(&floe_common::metrics::OutcomeLabels { outcome })
                .inc();
            Ok(())
        }
        other => Err(unexpected(other)),
    };
    EndTxnResponse::default()
        .with_error_code(code(r))
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1)
}

/// DescribeTransactions v0.
pub async fn describe(ctx: &Ctx, req: DescribeTransactionsRequest) -> DescribeTransactionsResponse {
    let ids: Vec<String> = req
        .transactional_ids
        .iter()
        .map(|t| t.to_string())
        .collect();
    let found = match call(
        ctx,
        TxnCall::Describe {
            transactional_ids: ids.clone(),
        },
    )
    .await
    {
        Ok(TxnReply::Described(d)) => Ok(d),
        other => Err(unexpected(other)),
    };
    let states = ids
        .into_iter()
        .map(|id| {
            let base = TransactionState::default()
                .with_transactional_id(TransactionalId(StrBytes::from_string(id.clone())))
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1)
                .with_transaction_state(StrBytes::from_static_str(""))
                .with_transaction_start_time_ms(-1);
            let d = match &found {
                Err(e) => return base.with_error_code(e.code()),
                Ok(all) => all.iter().find(|d| d.transactional_id == id),
            };
            let Some(d) = d else {
                return base.with_error_code(ResponseError::TransactionalIdNotFound.code());
            };
            let mut topics: Vec<TopicData> = Vec::new();
            for (topic_id, p) in &d.partitions {
                let Some(name) = ctx.catalog.by_id(*topic_id).map(|t| t.name.clone()) else {
                    continue;
                };
                let name = TopicName(StrBytes::from_string(name));
                match topics.iter_mut().find(|t| t.topic == name) {
                    Some(t) => t.partitions.push(*p),
                    None => topics.push(
                        TopicData::default()
                            .with_topic(name)
                            .with_partitions(vec![*p]),
                    ),
                }
            }
            base.with_transaction_state(StrBytes::from_string(d.state.clone()))
                .with_producer_id(ProducerId(d.producer_id))
                .with_producer_epoch(d.producer_epoch)
                .with_transaction_timeout_ms(d.timeout_ms)
                .with_transaction_start_time_ms(d.start_ms)
                .with_topics(topics)
        })
        .collect();
    DescribeTransactionsResponse::default().with_transaction_states(states)
}

/// The states ListTransactions may filter on.
const KNOWN_STATES: [&str; 7] = [
    "Empty",
    "Ongoing",
    "PrepareCommit",
    "PrepareAbort",
    "CompleteCommit",
    "CompleteAbort",
    "Dead",
];

/// ListTransactions v0–1.
pub async fn list(ctx: &Ctx, req: ListTransactionsRequest) -> ListTransactionsResponse {
    let all = match call(ctx, TxnCall::List).await {
        Ok(TxnReply::Described(d)) => d,
        other => {
            return ListTransactionsResponse::default().with_error_code(unexpected(other).code())
        }
    };
    let unknown: Vec<StrBytes> = req
        .state_filters
        .iter()
        .filter(|s| !KNOWN_STATES.contains(&s.as_str()))
        .cloned()
        .collect();
    let now = floe_common::clock::system().now_ms();
    let states = all
        .into_iter()
        .filter(|d| {
            req.state_filters.is_empty() || req.state_filters.iter().any(|s| s.as_str() == d.state)
        })
        .filter(|d| {
            req.producer_id_filters.is_empty()
                || req.producer_id_filters.contains(&ProducerId(d.producer_id))
        })
        // v1 (KIP-994): transactions open for longer than the filter.
        .filter(|d| {
            req.duration_filter < 0 || (d.start_ms >= 0 && now - d.start_ms > req.duration_filter)
        })
        .map(|d| {
            ListedState::default()
                .with_transactional_id(TransactionalId(StrBytes::from_string(d.transactional_id)))
                .with_producer_id(ProducerId(d.producer_id))
                .with_transaction_state(StrBytes::from_string(d.state))
        })
        .collect();
    ListTransactionsResponse::default()
        .with_unknown_state_filters(unknown)
        .with_transaction_states(states)
}

/// DescribeProducers v0: the producers with state in each partition.
pub async fn describe_producers(
    ctx: &Ctx,
    req: DescribeProducersRequest,
) -> DescribeProducersResponse {
    let mut topics = Vec::new();
    for t in &req.topics {
        let topic = ctx.catalog.lookup(t.name.as_str()).await;
        let mut parts = Vec::new();
        for &p in &t.partition_indexes {
            let base = PartitionResponse::default().with_partition_index(p);
            let Some(topic) = topic
                .as_ref()
                .filter(|topic| p >= 0 && p < topic.partitions)
            else {
                parts.push(base.with_error_code(ResponseError::UnknownTopicOrPartition.code()));
                continue;
            };
            let c = TxnCall::Producers {
                topic_id: topic.id,
                partition: p,
            };
            parts.push(match call(ctx, c).await {
                Ok(TxnReply::Producers(list)) => base.with_active_producers(
                    list.into_iter()
                        .map(|l| {
                            ProducerState::default()
                                .with_producer_id(ProducerId(l.producer_id))
                                .with_producer_epoch(i32::from(l.producer_epoch))
                                .with_last_sequence(l.last_sequence)
                                .with_last_timestamp(l.last_timestamp_ms)
                                .with_coordinator_epoch(0)
                                .with_current_txn_start_offset(l.current_txn_start_offset)
                        })
                        .collect(),
                ),
                other => base.with_error_code(unexpected(other).code()),
            });
        }
        topics.push(
            TopicResponse::default()
                .with_name(t.name.clone())
                .with_partitions(parts),
        );
    }
    DescribeProducersResponse::default().with_topics(topics)
}

/// Each partition's aborted transactions, as read_committed fetches return them. Aborts are
/// rare: the list is read from the metadata service when the partition's abort count (in
/// its watermarks) moves, and kept until then.
#[derive(Default)]
pub struct AbortedCache {
    lists: std::sync::Mutex<AbortedLists>,
}

/// Per partition: the abort count the list was read at, and the list.
type AbortedLists = std::collections::HashMap<(TopicId, i32), (i64, Arc<Vec<AbortedTxn>>)>;

impl AbortedCache {
    /// The aborted transactions of a partition whose abort count is `aborts`.
    pub async fn get(
        &self,
        ctx: &Ctx,
        topic_id: TopicId,
        partition: i32,
        aborts: i64,
    ) -> Result<Arc<Vec<AbortedTxn>>, ResponseError> {
        if aborts == 0 {
            return Ok(Arc::new(Vec::new()));
        }
        if let Some((n, list)) = self.lock().get(&(topic_id, partition)) {
            if *n >= aborts {
                return Ok(list.clone());
            }
        }
        let c = TxnCall::Aborted {
            topic_id,
            partition,
            from_offset: 0,
        };
        let list = match call(ctx, c).await {
            Ok(TxnReply::Aborted(list)) => Arc::new(list),
            other => return Err(unexpected(other)),
        };
        // The list read holds at least `aborts` aborts (the count came with a watermark the
        // store had written before this read).
        self.lock()
            .insert((topic_id, partition), (aborts, list.clone()));
        Ok(list)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, AbortedLists> {
        // A poisoned map is still a valid cache.
        self.lists.lock().unwrap_or_else(|p| p.into_inner())
    }
}
