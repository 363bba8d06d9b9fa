//! Routes a decoded Kafka request to its handler and owns the request context shared by
//! every handler ([`Ctx`]). Also the one place that says which API versions Floe supports:
//! ApiVersions advertises exactly this table.

use std::sync::Arc;
use std::time::Instant;

use floe_common::{Metrics, Objects};
use floe_metadata::{Metadata, MetadataError, TopicSpec};
use futures::future::BoxFuture;
use futures::FutureExt;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse, RequestKind, ResponseKind};
use tracing::{info, Instrument, Span};

use crate::admin;
use crate::catalog::{Catalog, Topic};
use crate::config::AgentConfig;
use crate::fetch;
use crate::fetch::cache::ChunkCache;
use crate::fetch::index::IndexCache;
use crate::list_offsets;
use crate::membership;
use crate::produce::handle as produce;
use crate::produce::Batcher;

/// Every API Floe serves, with the version range it supports. Anything else is not
/// advertised; clients that call it anyway get their connection closed, as Kafka does for
/// requests it cannot parse.
pub const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 13),
    (ApiKey::Fetch, 4, 17),
    (ApiKey::ListOffsets, 1, 8),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::DescribeCluster, 0, 1),
    (ApiKey::OffsetForLeaderEpoch, 2, 4),
    (ApiKey::DescribeTopicPartitions, 0, 0),
    (ApiKey::SaslHandshake, 0, 1),
    (ApiKey::FindCoordinator, 0, 6),
    (ApiKey::OffsetCommit, 2, 9),
    (ApiKey::OffsetFetch, 1, 9),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::DescribeGroups, 0, 6),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::OffsetDelete, 0, 0),
    (ApiKey::ConsumerGroupHeartbeat, 0, 1),
    (ApiKey::ConsumerGroupDescribe, 0, 1),
    (ApiKey::InitProducerId, 0, 5),
    (ApiKey::AddPartitionsToTxn, 0, 3),
    (ApiKey::AddOffsetsToTxn, 0, 4),
    (ApiKey::EndTxn, 0, 4),
    (ApiKey::TxnOffsetCommit, 0, 4),
    (ApiKey::DescribeTransactions, 0, 0),
    (ApiKey::ListTransactions, 0, 1),
    (ApiKey::DescribeProducers, 0, 0),
];

/// Who sent a request: what group membership records and zone routing needs.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    /// The request header's client.id.
    pub id: String,
    /// The client's address as Kafka shows it in DescribeGroups (`/ip`).
    pub host: String,
    /// The client's zone: named in its `client.id`, else from the configured address ranges
    /// (see `zone.rs`).
    pub zone: Option<String>,
}

/// The version range Floe supports for `key`, if any.
pub fn supported(key: ApiKey) -> Option<(i16, i16)> {
    SUPPORTED
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|(_, min, max)| (*min, *max))
}

/// Shared state of the agent, handed to every handler.
pub struct Ctx {
    /// Settings.
    pub config: AgentConfig,
    /// Metadata service.
    pub metadata: Arc<dyn Metadata>,
    /// Topics and watermarks.
    pub catalog: Arc<Catalog>,
    /// Open WAL object.
    pub batcher: Batcher,
    /// Offset index cache.
    pub index: Arc<IndexCache>,
    /// Chunk cache.
    pub cache: Arc<ChunkCache>,
    /// Object store.
    pub objects: Objects,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Cluster id.
    pub cluster_id: String,
    /// Permits for bytes of request frames being read (see `connection.rs`).
    pub frame_bytes: Arc<tokio::sync::Semaphore>,
    /// Wall clock (commit timestamps).
    pub clock: Arc<dyn floe_common::Clock>,
    /// Flips to true when the agent shuts down (long polls return early).
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    /// The live agents (Metadata answers, partition leaders).
    pub fleet: Arc<crate::fleet::Fleet>,
    /// Zones of client address ranges (`client_zone_cidrs`).
    pub zone_map: crate::zone::ZoneMap,
    /// The `client.rack` each client (address and client.id) last sent in a Fetch, so that
    /// its Metadata requests, which carry no rack, are answered for its zone too.
    pub racks: crate::zone::Racks,
    /// Aborted transactions per partition, for read_committed fetches.
    pub aborted: crate::txn::AbortedCache,
}

impl Ctx {
    /// Resolves a topic by name, creating it with the broker defaults when auto-creation is
    /// enabled and `allow_create` (exactly once across racing agents: the store decides).
    pub async fn topic_or_create(
        &self,
        name: &str,
        allow_create: bool,
    ) -> Result<Arc<Topic>, ResponseError> {
        if let Some(t) = self.catalog.lookup(name).await {
            return Ok(t);
        }
        if !allow_create || !self.config.auto_create_topics_enable {
            return Err(ResponseError::UnknownTopicOrPartition);
        }
        if admin::validate_topic_name(name).is_err() || admin::is_internal(name) {
            return Err(ResponseError::InvalidTopicException);
        }
        let spec = TopicSpec {
            name: name.to_string(),
            partitions: self.config.num_partitions,
            configs: Default::default(),
        };
        match self.metadata.create_topic(spec).await {
            Ok(info) => {
                info!(
                    topic = name,
                    partitions = info.partitions.len(),
                    "auto-created topic"
                );
            }
            Err(MetadataError::TopicExists(_)) => {}
            Err(e) => return Err(crate::error::kafka_error(&e)),
        }
        if let Err(e) = self.catalog.refresh().await {
            return Err(crate::error::kafka_error(&e));
        }
        self.catalog
            .by_name(name)
            .ok_or(ResponseError::UnknownTopicOrPartition)
    }
}

/// The ApiVersions answer: exactly [`SUPPORTED`].
pub fn api_versions(error: Option<ResponseError>) -> ApiVersionsResponse {
    let keys = SUPPORTED
        .iter()
        .map(|(k, min, max)| {
            ApiVersion::default()
                .with_api_key(*k as i16)
                .with_min_version(*min)
                .with_max_version(*max)
        })
        .collect();
    ApiVersionsResponse::default()
        .with_error_code(error.map(|e| e.code()).unwrap_or(0))
        .with_api_keys(keys)
}

/// A response still being computed; `None` means "send nothing" (acks=0 produce).
pub type PendingResponse = BoxFuture<'static, Option<ResponseKind>>;

/// Starts handling a request from `client`. Produce appends happen before this returns, which is what
/// keeps pipelined produce requests of one connection in order; everything else runs in
/// the returned future.
pub async fn start(
    ctx: Arc<Ctx>,
    request: RequestKind,
    version: i16,
    span: Span,
    client: ClientInfo,
) -> PendingResponse {
    let started = Instant::now();
    let metrics = ctx.metrics.clone();
    let api = api_name(&request);
    let fut: PendingResponse = match request {
        RequestKind::Produce(req) => {
            let pending = produce::start(&ctx, req, version, client.zone.as_deref())
                .instrument(span.clone())
                .await;
            async move { produce::finish(pending).await.map(ResponseKind::Produce) }.boxed()
        }
        RequestKind::Fetch(req) => async move {
            Some(ResponseKind::Fetch(
                fetch::handle::handle(&ctx, req, version, &client).await,
            ))
        }
        .boxed(),
        RequestKind::ListOffsets(req) => async move {
            Some(ResponseKind::ListOffsets(
                list_offsets::handle(&ctx, req, version).await,
            ))
        }
        .boxed(),
        RequestKind::Metadata(req) => async move {
            Some(ResponseKind::Metadata(
                admin::metadata(&ctx, req, version, &client).await,
            ))
        }
        .boxed(),
        RequestKind::ApiVersions(_) => {
            async move { Some(ResponseKind::ApiVersions(api_versions(None))) }.boxed()
        }
        RequestKind::CreateTopics(req) => async move {
            Some(ResponseKind::CreateTopics(
                admin::create_topics(&ctx, req, version).await,
            ))
        }
        .boxed(),
        RequestKind::DeleteRecords(req) => async move {
            Some(ResponseKind::DeleteRecords(
                crate::delete_records::handle(&ctx, req).await,
            ))
        }
        .boxed(),
        RequestKind::DeleteTopics(req) => async move {
            Some(ResponseKind::DeleteTopics(
                admin::delete_topics(&ctx, req, version).await,
            ))
        }
        .boxed(),
        RequestKind::CreatePartitions(req) => async move {
            Some(ResponseKind::CreatePartitions(
                admin::create_partitions(&ctx, req).await,
            ))
        }
        .boxed(),
        RequestKind::DescribeConfigs(req) => async move {
            Some(ResponseKind::DescribeConfigs(
                admin::describe_configs(&ctx, req, version).await,
            ))
        }
        .boxed(),
        RequestKind::AlterConfigs(req) => async move {
            Some(ResponseKind::AlterConfigs(
                admin::alter_configs(&ctx, req).await,
            ))
        }
        .boxed(),
        RequestKind::IncrementalAlterConfigs(req) => async move {
            Some(ResponseKind::IncrementalAlterConfigs(
                admin::incremental_alter_configs(&ctx, req).await,
            ))
        }
        .boxed(),
        RequestKind::DescribeCluster(req) => async move {
            Some(ResponseKind::DescribeCluster(admin::describe_cluster(
                &ctx, req, &client,
            )))
        }
        .boxed(),
        RequestKind::OffsetForLeaderEpoch(req) => async move {
            Some(ResponseKind::OffsetForLeaderEpoch(
                crate::epochs::handle(&ctx, req).await,
            ))
        }
        .boxed(),
        RequestKind::DescribeTopicPartitions(req) => async move {
            Some(ResponseKind::DescribeTopicPartitions(
                admin::describe_topic_partitions(&ctx, req, &client).await,
            ))
        }
        .boxed(),
        RequestKind::SaslHandshake(_) => {
            async move { Some(ResponseKind::SaslHandshake(admin::sasl_handshake())) }.boxed()
        }
        RequestKind::FindCoordinator(req) => async move {
            Some(ResponseKind::FindCoordinator(
                crate::groups::find_coordinator(&ctx, req, version),
            ))
        }
        .boxed(),
        RequestKind::OffsetCommit(req) => async move {
            Some(ResponseKind::OffsetCommit(
                crate::groups::offset_commit(&ctx, req).await,
            ))
        }
        .boxed(),
        RequestKind::OffsetFetch(req) => async move {
            Some(ResponseKind::OffsetFetch(
                crate::groups::offset_fetch(&ctx, req, version).await,
            ))
        }
        .boxed(),
        RequestKind::JoinGroup(req) => async move {
            Some(ResponseKind::JoinGroup(
                membership::join_group(&ctx, req, version, &client).await,
            ))
        }
        .boxed(),
        RequestKind::SyncGroup(req) => async move {
            Some(ResponseKind::SyncGroup(
                membership::sync_group(&ctx, req, version).await,
            ))
        }
        .boxed(),
        RequestKind::Heartbeat(req) => async move {
            Some(ResponseKind::Heartbeat(
                membership::heartbeat(&ctx, req).await,
            ))
        }
        .boxed(),
        RequestKind::LeaveGroup(req) => async move {
            Some(ResponseKind::LeaveGroup(
                membership::leave_group(&ctx, req, version).await,
            ))
        }
        .boxed(),
        RequestKind::DescribeGroups(req) => async move {
            Some(ResponseKind::DescribeGroups(
                membership::describe_groups(&ctx, req, version).await,
            ))
        }
        .boxed(),
        RequestKind::ListGroups(req) => async move {
            Some(ResponseKind::ListGroups(
                membership::list_groups(&ctx, req, version).await,
            ))
        }
        .boxed(),
        RequestKind::DeleteGroups(req) => async move {
            Some(ResponseKind::DeleteGroups(
                membership::delete_groups(&ctx, req).await,
            ))
        }
        .boxed(),
        RequestKind::OffsetDelete(req) => async move {
            Some(ResponseKind::OffsetDelete(
                membership::offset_delete(&ctx, req).await,
            ))
        }
        .boxed(),
        RequestKind::InitProducerId(req) => async move {
            Some(ResponseKind::InitProducerId(
                crate::produce::producers::init_producer_id(&ctx, req).await,
            ))
        }
        .boxed(),
        RequestKind::AddPartitionsToTxn(req) => async move {
            Some(ResponseKind::AddPartitionsToTxn(
                crate::txn::add_partitions(&ctx, req).await,
            ))
        }
        .boxed(),
        RequestKind::AddOffsetsToTxn(req) => async move {
            Some(ResponseKind::AddOffsetsToTxn(
                crate::txn::add_offsets(&ctx, req).await,
            ))
        }
        .boxed(),
        RequestKind::EndTxn(req) => {
            async move { Some(ResponseKind::EndTxn(crate::txn::end_txn(&ctx, req).await)) }.boxed()
        }
        RequestKind::TxnOffsetCommit(req) => async move {
            Some(ResponseKind::TxnOffsetCommit(
                crate::txn::txn_offset_commit(&ctx, req).await,
            ))
        }
        .boxed(),
        RequestKind::DescribeTransactions(req) => async move {
            Some(ResponseKind::DescribeTransactions(
                crate::txn::describe(&ctx, req).await,
            ))
        }
        .boxed(),
        RequestKind::ListTransactions(req) => async move {
            Some(ResponseKind::ListTransactions(
                crate::txn::list(&ctx, req).await,
            ))
        }
        .boxed(),
        RequestKind::DescribeProducers(req) => async move {
            Some(ResponseKind::DescribeProducers(
                crate::txn::describe_producers(&ctx, req).await,
            ))
        }
        .boxed(),
        RequestKind::ConsumerGroupHeartbeat(req) => async move {
            Some(ResponseKind::ConsumerGroupHeartbeat(
                membership::consumer_group_heartbeat(&ctx, req, version, &client).await,
            ))
        }
        .boxed(),
        RequestKind::ConsumerGroupDescribe(req) => async move {
            Some(ResponseKind::ConsumerGroupDescribe(
                membership::consumer_group_describe(&ctx, req).await,
            ))
        }
        .boxed(),
        // The connection refuses unsupported keys before decoding; this arm is a safety net.
        _ => async move { None }.boxed(),
    };
    async move {
        let mut resp = fut.await;
        if let Some(r) = resp.as_mut() {
            crate::txn::fencing_for_version(r, version);
        }
        let error = resp.as_ref().map(first_error).unwrap_or(0);
        let name = if error == 0 {
            "NONE".to_string()
        } else {
            format!(
                "{:?}",
                ResponseError::try_from_code(error).unwrap_or(ResponseError::UnknownServerError)
            )
        };
        metrics.request(api, version, &name, started.elapsed().as_secs_f64());
        resp
    }
    .instrument(span)
    .boxed()
}

fn api_name(r: &RequestKind) -> &'static str {
    match r {
        RequestKind::Produce(_) => "Produce",
        RequestKind::Fetch(_) => "Fetch",
        RequestKind::ListOffsets(_) => "ListOffsets",
        RequestKind::Metadata(_) => "Metadata",
        RequestKind::ApiVersions(_) => "ApiVersions",
        RequestKind::CreateTopics(_) => "CreateTopics",
        RequestKind::DeleteTopics(_) => "DeleteTopics",
        RequestKind::DeleteRecords(_) => "DeleteRecords",
        RequestKind::CreatePartitions(_) => "CreatePartitions",
        RequestKind::DescribeConfigs(_) => "DescribeConfigs",
        RequestKind::AlterConfigs(_) => "AlterConfigs",
        RequestKind::IncrementalAlterConfigs(_) => "IncrementalAlterConfigs",
        RequestKind::DescribeCluster(_) => "DescribeCluster",
        RequestKind::OffsetForLeaderEpoch(_) => "OffsetForLeaderEpoch",
        RequestKind::DescribeTopicPartitions(_) => "DescribeTopicPartitions",
        RequestKind::SaslHandshake(_) => "SaslHandshake",
        RequestKind::FindCoordinator(_) => "FindCoordinator",
        RequestKind::OffsetCommit(_) => "OffsetCommit",
        RequestKind::OffsetFetch(_) => "OffsetFetch",
        RequestKind::JoinGroup(_) => "JoinGroup",
        RequestKind::SyncGroup(_) => "SyncGroup",
        RequestKind::Heartbeat(_) => "Heartbeat",
        RequestKind::LeaveGroup(_) => "LeaveGroup",
        RequestKind::DescribeGroups(_) => "DescribeGroups",
        RequestKind::ListGroups(_) => "ListGroups",
        RequestKind::DeleteGroups(_) => "DeleteGroups",
        RequestKind::OffsetDelete(_) => "OffsetDelete",
        RequestKind::ConsumerGroupHeartbeat(_) => "ConsumerGroupHeartbeat",
        RequestKind::InitProducerId(_) => "InitProducerId",
        RequestKind::ConsumerGroupDescribe(_) => "ConsumerGroupDescribe",
        RequestKind::AddPartitionsToTxn(_) => "AddPartitionsToTxn",
        RequestKind::AddOffsetsToTxn(_) => "AddOffsetsToTxn",
        RequestKind::EndTxn(_) => "EndTxn",
        RequestKind::TxnOffsetCommit(_) => "TxnOffsetCommit",
        RequestKind::DescribeTransactions(_) => "DescribeTransactions",
        RequestKind::ListTransactions(_) => "ListTransactions",
        RequestKind::DescribeProducers(_) => "DescribeProducers",
        _ => "Other",
    }
}

/// The first non-zero error code in a response, for the per-error request counter.
fn first_error(r: &ResponseKind) -> i16 {
    fn first(it: impl Iterator<Item = i16>) -> i16 {
        let mut it = it;
        it.find(|c| *c != 0).unwrap_or(0)
    }
    match r {
        ResponseKind::Produce(p) => first(
            p.responses
                .iter()
                .flat_map(|t| t.partition_responses.iter().map(|p| p.error_code)),
        ),
        ResponseKind::Fetch(f) => {
            if f.error_code != 0 {
                f.error_code
            } else {
                first(
                    f.responses
                        .iter()
                        .flat_map(|t| t.partitions.iter().map(|p| p.error_code)),
                )
            }
        }
        ResponseKind::ListOffsets(l) => first(
            l.topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code)),
        ),
        ResponseKind::Metadata(m) => first(m.topics.iter().map(|t| t.error_code)),
        ResponseKind::ApiVersions(a) => a.error_code,
        ResponseKind::CreateTopics(c) => first(c.topics.iter().map(|t| t.error_code)),
        ResponseKind::DeleteTopics(d) => first(d.responses.iter().map(|t| t.error_code)),
        ResponseKind::DeleteRecords(d) => first(
            d.topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code)),
        ),
        ResponseKind::CreatePartitions(c) => first(c.results.iter().map(|t| t.error_code)),
        ResponseKind::DescribeConfigs(d) => first(d.results.iter().map(|t| t.error_code)),
        ResponseKind::AlterConfigs(a) => first(a.responses.iter().map(|t| t.error_code)),
        ResponseKind::IncrementalAlterConfigs(a) => first(a.responses.iter().map(|t| t.error_code)),
        ResponseKind::DescribeCluster(d) => d.error_code,
        ResponseKind::OffsetForLeaderEpoch(o) => first(
            o.topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code)),
        ),
        ResponseKind::DescribeTopicPartitions(d) => first(d.topics.iter().map(|t| t.error_code)),
        ResponseKind::SaslHandshake(s) => s.error_code,
        ResponseKind::FindCoordinator(f) => {
            if f.error_code != 0 {
                f.error_code
            } else {
                first(f.coordinators.iter().map(|c| c.error_code))
            }
        }
        ResponseKind::OffsetCommit(o) => first(
            o.topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code)),
        ),
        ResponseKind::OffsetFetch(o) => {
            if o.error_code != 0 {
                o.error_code
            } else {
                first(o.groups.iter().map(|g| g.error_code))
            }
        }
        ResponseKind::JoinGroup(j) => j.error_code,
        ResponseKind::InitProducerId(i) => i.error_code,
        ResponseKind::AddOffsetsToTxn(r) => r.error_code,
        ResponseKind::EndTxn(r) => r.error_code,
        ResponseKind::AddPartitionsToTxn(r) => {
            first(r.results_by_topic_v3_and_below.iter().flat_map(|t| {
                t.results_by_partition
                    .iter()
                    .map(|p| p.partition_error_code)
            }))
        }
        ResponseKind::TxnOffsetCommit(r) => first(
            r.topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code)),
        ),
        ResponseKind::ListTransactions(r) => r.error_code,
        ResponseKind::ConsumerGroupHeartbeat(h) => h.error_code,
        ResponseKind::ConsumerGroupDescribe(d) => first(d.groups.iter().map(|g| g.error_code)),
        ResponseKind::SyncGroup(s) => s.error_code,
        ResponseKind::Heartbeat(h) => h.error_code,
        ResponseKind::LeaveGroup(l) => {
            if l.error_code != 0 {
                l.error_code
            } else {
                first(l.members.iter().map(|m| m.error_code))
            }
        }
        ResponseKind::DescribeGroups(d) => first(d.groups.iter().map(|g| g.error_code)),
        ResponseKind::ListGroups(l) => l.error_code,
        ResponseKind::DeleteGroups(d) => first(d.results.iter().map(|r| r.error_code)),
        ResponseKind::OffsetDelete(o) => {
            if o.error_code != 0 {
                o.error_code
            } else {
                first(
                    o.topics
                        .iter()
                        .flat_map(|t| t.partitions.iter().map(|p| p.error_code)),
                )
            }
        }
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `docs/compatibility.md` says which versions are served; it must say exactly what
    /// [`SUPPORTED`] advertises, and list every API key the protocol crate knows.
    #[test]
    fn compatibility_table_matches_the_code() {
        let doc = include_str!("../../docs/compatibility.md");
        let mut documented = std::collections::BTreeMap::new();
        for line in doc
            .lines()
            .filter(|l| l.starts_with("| ") && !l.starts_with("| key"))
        {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let Ok(key) = cells[1].parse::<i16>() else {
                continue;
            };
            documented.insert(key, cells[4].to_string());
        }
        for key in ApiKey::iter() {
            let served = supported(key)
                .map(|(min, max)| {
                    if min == max {
                        format!("{min}")
                    } else {
                        format!("{min}–{max}")
                    }
                })
                .unwrap_or_else(|| "—".to_string());
            assert_eq!(
                documented.get(&(key as i16)),
                Some(&served),
                "docs/compatibility.md row for {key:?}"
            );
        }
    }
}
