//! The Produce request handler. It runs in two phases so that pipelined requests on one
//! connection keep their order: `start` validates and appends (awaited by the connection's
//! reader before it reads the next request) and `finish` waits for the commit and builds
//! the response (runs concurrently with later requests).

use std::collections::HashMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::oneshot;
use tracing::debug;

use std::sync::Arc;
use std::time::Instant;

use floe_common::metrics::DirectionLabels;
use floe_common::Metrics;

use floe_metadata::ProducerRejection;

use super::batcher::{AppendError, AppendReply, AppendResult, PartAppend};
use super::validate::validate_records;
use crate::configs::max_message_bytes;
use crate::dispatch::Ctx;

/// A produce request between its append and its answer.
pub struct PendingProduce {
    acks: i16,
    topics: Vec<TopicProduceResponse>,
    /// `(topic position, partition position)` of each appended partition, in append order.
    slots: Vec<(usize, usize)>,
    rx: Option<oneshot::Receiver<AppendReply>>,
    append_error: Option<AppendError>,
    started: Instant,
    metrics: Arc<Metrics>,
}

fn partition_error(
    index: i32,
    err: ResponseError,
    message: Option<String>,
) -> PartitionProduceResponse {
    PartitionProduceResponse::default()
        .with_index(index)
        .with_error_code(err.code())
        .with_base_offset(-1)
        .with_log_append_time_ms(-1)
        .with_log_start_offset(-1)
        .with_error_message(message.map(StrBytes::from_string))
}

/// Validates the request and appends its batches to the open WAL object.
pub async fn start(
    ctx: &Ctx,
    req: ProduceRequest,
    version: i16,
    client_zone: Option<&str>,
) -> PendingProduce {
    let cross_zone = crate::zone::crosses(client_zone, ctx.config.zone.as_deref());
    let started = Instant::now();
    let mut topics = Vec::with_capacity(req.topic_data.len());
    let mut slots = Vec::new();
    let mut parts = Vec::new();
    let mut seen: HashMap<(String, i32), ()> = HashMap::new();
    for td in req.topic_data {
        let by_id = version >= 13;
        let topic = if by_id {
            ctx.catalog
                .lookup_id(td.topic_id)
                .await
                .ok_or(ResponseError::UnknownTopicId)
        } else {
            ctx.topic_or_create(td.name.as_str(), true).await
        };
        let mut resp = TopicProduceResponse::default()
            .with_name(td.name.clone())
            .with_topic_id(td.topic_id);
        for pd in td.partition_data {
            let topic = match &topic {
                Ok(t) => t,
                Err(e) => {
                    resp.partition_responses
                        .push(partition_error(pd.index, *e, None));
                    continue;
                }
            };
            if pd.index < 0 || pd.index >= topic.partitions {
                resp.partition_responses.push(partition_error(
                    pd.index,
                    ResponseError::UnknownTopicOrPartition,
                    None,
                ));
                continue;
            }
            if seen.insert((topic.name.clone(), pd.index), ()).is_some() {
                resp.partition_responses.push(partition_error(
                    pd.index,
                    ResponseError::InvalidRequest,
                    Some("partition listed twice".into()),
                ));
                continue;
            }
            let max = max_message_bytes(&topic.configs, ctx.config.message_max_bytes);
            let keys = crate::configs::is_compacted(&topic.configs);
            match validate_records(pd.records.as_ref(), max, keys) {
                Ok(valid) => {
                    ctx.metrics.produce_bytes.inc_by(valid.bytes.len() as u64);
                    if cross_zone {
                        ctx.metrics
                            .cross_zone_bytes
                            .get_or_create(&DirectionLabels {
                                direction: "produce",
                            })
                            .inc_by(valid.bytes.len() as u64);
                    }
                    slots.push((topics.len(), resp.partition_responses.len()));
                    resp.partition_responses
                        .push(PartitionProduceResponse::default().with_index(pd.index));
                    parts.push(PartAppend {
                        topic_id: topic.id,
                        partition: pd.index,
                        bytes: valid.bytes,
                        headers: valid.headers,
                        producer: valid.producer,
                    });
                }
                Err((err, msg)) => {
                    debug!(topic = %topic.name, partition = pd.index, error = %msg, "produce rejected");
                    resp.partition_responses
                        .push(partition_error(pd.index, err, Some(msg)));
                }
            }
        }
        topics.push(resp);
    }
    let (rx, append_error) = if parts.is_empty() {
        (None, None)
    } else {
        match ctx.batcher.append(parts).await {
            Ok(rx) => (Some(rx), None),
            Err(e) => (None, Some(e)),
        }
    };
    PendingProduce {
        acks: req.acks,
        topics,
        slots,
        rx,
        append_error,
        started,
        metrics: ctx.metrics.clone(),
    }
}

fn append_error_code(e: &AppendError) -> (ResponseError, String) {
    match e {
        AppendError::UnknownTopicOrPartition => (
            ResponseError::UnknownTopicOrPartition,
            "topic deleted".into(),
        ),
        AppendError::Storage(m) => (ResponseError::KafkaStorageError, m.clone()),
        AppendError::Timeout(m) => (ResponseError::RequestTimedOut, m.clone()),
        AppendError::ShuttingDown => (
            ResponseError::NotLeaderOrFollower,
            "agent shutting down".into(),
        ),
        AppendError::Producer(r) => match r {
            ProducerRejection::OutOfOrderSequence => (
                ResponseError::OutOfOrderSequenceNumber,
                "sequence does not follow the producer's last one".into(),
            ),
            ProducerRejection::InvalidProducerEpoch => (
                ResponseError::InvalidProducerEpoch,
                "the producer has a newer epoch".into(),
            ),
            ProducerRejection::InvalidTxnState => (
                ResponseError::InvalidTxnState,
                "the partition is not in an open transaction of this producer".into(),
            ),
        },
    }
}

/// Waits for the commit and builds the response; `None` for `acks=0`, which Kafka never
/// answers (the data still goes through the same durable path).
pub async fn finish(p: PendingProduce) -> Option<ProduceResponse> {
    let PendingProduce {
        acks,
        mut topics,
        slots,
        rx,
        append_error,
        started,
        metrics,
    } = p;
    let results: Vec<AppendResult> = match (rx, append_error) {
        (Some(rx), _) => match rx.await {
            Ok(reply) => {
                let own = started.elapsed().saturating_sub(reply.pipeline);
                metrics
                    .produce_agent_overhead_seconds
                    .observe(own.as_secs_f64());
                reply.results
            }
            Err(_) => vec![Err(AppendError::Storage("agent stopped".into())); slots.len()],
        },
        (None, Some(e)) => vec![Err(e); slots.len()],
        (None, None) => Vec::new(),
    };
    for (&(t, p), r) in slots.iter().zip(results) {
        let slot = &mut topics[t].partition_responses[p];
        match r {
            Ok(a) => {
                slot.error_code = 0;
                slot.base_offset = a.base_offset;
                slot.log_append_time_ms = -1;
                slot.log_start_offset = a.log_start_offset;
            }
            Err(e) => {
                let (err, msg) = append_error_code(&e);
                *slot = partition_error(slot.index, err, Some(msg));
            }
        }
    }
    if acks == 0 {
        return None;
    }
    Some(ProduceResponse::default().with_responses(topics))
}
