//! The Fetch request: resolves topics (by name, or by id from v13), reads each partition
//! within `partition_max_bytes` and the response's `max_bytes` (stored, compressed bytes),
//! and long-polls: when less than `min_bytes` is ready it waits up to `max_wait_ms`, woken
//! by watermark changes (this agent's commits at once, other agents' through the metadata
//! change feed), never by polling the database.

use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{FetchRequest, FetchResponse, ProducerId};
use tokio::time::Instant;
use tracing::warn;

use super::read::{read_partition, ReadError, ReadRange};
use crate::dispatch::{ClientInfo, Ctx};
use floe_metadata::AgentInfo;

/// Longest long poll honoured, whatever the client asks.
const MAX_WAIT_CAP: Duration = Duration::from_secs(60);

/// Kafka's FETCH_SESSION_ID_NOT_FOUND.
fn session_error(req: &FetchRequest) -> Option<ResponseError> {
    // Floe declines fetch sessions (answers session id 0), so clients send full requests.
    // A client that nevertheless names a session gets Kafka's answer for an unknown one.
    if req.session_id != 0 {
        return Some(ResponseError::FetchSessionIdNotFound);
    }
    if req.session_epoch > 0 {
        return Some(ResponseError::InvalidFetchSessionEpoch);
    }
    None
}

/// Handles a Fetch request.
pub async fn handle(
    ctx: &Ctx,
    req: FetchRequest,
    version: i16,
    client: &ClientInfo,
) -> FetchResponse {
    // client.rack (Fetch v11+) names the client's zone more precisely than client.id.
    let rack = (version >= 11)
        .then(|| req.rack_id.trim())
        .filter(|r| !r.is_empty());
    if let Some(rack) = rack {
        ctx.racks.remember(&client.host, &client.id, rack).await;
    }
    // KIP-392: a client of another zone that has live agents is sent to one of them (the
    // same one Metadata names as leader there) instead of being served across zones.
    let steer = rack
        .filter(|r| Some(*r) != ctx.config.zone.as_deref())
        .map(|r| ctx.fleet.in_zone(r))
        .filter(|agents| !agents.is_empty());
    let zone = crate::zone::rack_or(rack, client.zone.clone());
    let cross_zone = crate::zone::crosses(zone.as_deref(), ctx.config.zone.as_deref());
    let count = |bytes: usize| {
        ctx.metrics.fetch_bytes.inc_by(bytes as u64);
        if cross_zone {
            ctx.metrics
                .cross_zone_bytes
                .get_or_create(&floe_common::metrics::DirectionLabels { direction: "fetch" })
                .inc_by(bytes as u64);
        }
    };
    if let Some(err) = session_error(&req) {
        return FetchResponse::default().with_error_code(err.code());
    }
    let deadline =
        Instant::now() + Duration::from_millis(req.max_wait_ms.max(0) as u64).min(MAX_WAIT_CAP);
    let min_bytes = req.min_bytes.max(0) as usize;
    let mut changes = ctx.catalog.subscribe();
    loop {
        changes.borrow_and_update();
        let (resp, bytes, any_error) = gather(ctx, &req, version, steer.as_deref()).await;
        let now = Instant::now();
        // A steered client waits for nothing here: it fetches from its own zone next.
        if bytes >= min_bytes || any_error || steer.is_some() || now >= deadline {
            count(bytes);
            return resp;
        }
        let mut shutdown = ctx.shutdown.clone();
        let woken = tokio::select! {
            r = tokio::time::timeout(deadline - now, changes.changed()) => matches!(r, Ok(Ok(()))),
            // Shutting down: answer with what is there instead of holding the drain.
            _ = shutdown.wait_for(|s| *s) => false,
        };
        if !woken {
            // Deadline: answer with whatever is there (re-read: a change may have raced).
            let (resp, bytes, _) = gather(ctx, &req, version, steer.as_deref()).await;
            count(bytes);
            return resp;
        }
    }
}

async fn gather(
    ctx: &Ctx,
    req: &FetchRequest,
    version: i16,
    steer: Option<&[AgentInfo]>,
) -> (FetchResponse, usize, bool) {
    let read_committed = req.isolation_level == 1;
    let mut total = 0usize;
    let mut any_error = false;
    // A soft limit: at most this much, except the first batch of the response (KIP-74), so
    // 0 means "one batch".
    let max_bytes = req.max_bytes.max(0) as usize;
    let mut responses = Vec::with_capacity(req.topics.len());
    for ft in &req.topics {
        let topic = if version >= 13 {
            ctx.catalog.lookup_id(ft.topic_id).await
        } else {
            ctx.catalog.lookup(ft.topic.as_str()).await
        };
        let mut tr = FetchableTopicResponse::default();
        if version >= 13 {
            tr.topic_id = ft.topic_id;
        } else {
            tr.topic = ft.topic.clone();
        }
        for fp in &ft.partitions {
            let mut pd = PartitionData::default()
                .with_partition_index(fp.partition)
                .with_high_watermark(-1)
                .with_last_stable_offset(-1)
                .with_log_start_offset(-1);
            let Some(topic) = &topic else {
                any_error = true;
                let err = if version >= 13 {
                    ResponseError::UnknownTopicId
                } else {
                    ResponseError::UnknownTopicOrPartition
                };
                tr.partitions.push(pd.with_error_code(err.code()));
                continue;
            };
            let marks = if fp.partition >= 0 && fp.partition < topic.partitions {
                ctx.catalog.marks(topic.id, fp.partition)
            } else {
                None
            };
            let Some(marks) = marks else {
                any_error = true;
                tr.partitions
                    .push(pd.with_error_code(ResponseError::UnknownTopicOrPartition.code()));
                continue;
            };
            pd.high_watermark = marks.high_watermark;
            pd.last_stable_offset = marks.stable();
            pd.log_start_offset = marks.log_start_offset;
            // read_committed readers see nothing of open transactions: they read up to the
            // last stable offset and are told which producers' ranges were aborted.
            let read_to = if read_committed {
                marks.stable()
            } else {
                marks.high_watermark
            };
            if read_committed {
                match ctx
                    .aborted
                    .get(ctx, topic.id, fp.partition, marks.abort_count)
                    .await
                {
                    Ok(list) => {
                        pd.aborted_transactions = Some(
                            list.iter()
                                .filter(|a| {
                                    a.last_offset >= fp.fetch_offset && a.first_offset < read_to
                                })
                                .map(|a| {
                                    AbortedTransaction::default()
                                        .with_producer_id(ProducerId(a.producer_id))
                                        .with_first_offset(a.first_offset)
                                })
                                .collect(),
                        );
                    }
                    Err(e) => {
                        any_error = true;
                        tr.partitions.push(pd.with_error_code(e.code()));
                        continue;
                    }
                }
            }
            if let Err(e) = crate::epochs::check_current_epoch(fp.current_leader_epoch, &marks) {
                any_error = true;
                tr.partitions.push(pd.with_error_code(e.code()));
                continue;
            }
            if fp.fetch_offset < marks.log_start_offset || fp.fetch_offset > marks.high_watermark {
                any_error = true;
                tr.partitions
                    .push(pd.with_error_code(ResponseError::OffsetOutOfRange.code()));
                continue;
            }
            if let Some(replica) =
                steer.and_then(|a| crate::fleet::leader(a, topic.id, fp.partition))
            {
                ctx.metrics.fetch_preferred_replica.inc();
                pd.preferred_read_replica = kafka_protocol::messages::BrokerId(replica);
                pd.records = Some(bytes::Bytes::new());
                tr.partitions.push(pd);
                continue;
            }
            let remaining = max_bytes.saturating_sub(total);
            let budget = (fp.partition_max_bytes.max(0) as usize).min(remaining);
            if fp.fetch_offset < read_to && (budget > 0 || total == 0) {
                match read_partition(
                    &ctx.index,
                    &ctx.cache,
                    ReadRange {
                        topic_id: topic.id,
                        partition: fp.partition,
                        fetch_offset: fp.fetch_offset,
                        high_watermark: read_to,
                        leader_epoch: marks.leader_epoch,
                    },
                    budget,
                    total == 0,
                )
                .await
                {
                    Ok(records) => {
                        total += records.len();
                        pd.records = Some(records);
                    }
                    Err(e) => {
                        warn!(topic = %topic.name, partition = fp.partition, error = %e, "fetch read failed");
                        any_error = true;
                        let code = match e {
                            ReadError::Store(_) | ReadError::Gone(_) | ReadError::Metadata(_) => {
                                ResponseError::KafkaStorageError
                            }
                            ReadError::Corrupt(_) => ResponseError::CorruptMessage,
                        };
                        pd.error_code = code.code();
                    }
                }
            } else {
                pd.records = Some(bytes::Bytes::new());
            }
            tr.partitions.push(pd);
        }
        responses.push(tr);
    }
    let resp = FetchResponse::default()
        .with_session_id(0)
        .with_responses(responses);
    (resp, total, any_error)
}
