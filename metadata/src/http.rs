//! The metadata service's HTTP API (JSON), served by `floe metadata` and used by
//! [`crate::client::HttpMetadataClient`]. Every handler is a thin shell over
//! [`MetadataService`]; errors travel as [`ApiError`] and are rebuilt on the client side.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::MetadataError;
use crate::groups::{GroupCall, GroupReply};
use crate::service::{Metadata, MetadataService, WatchCursor};
use crate::types::{CommittedOffset, ObjectCommit, TopicId, TopicSpec};

/// Longest a watch request may hang; bounds server resources per idle agent.
pub const MAX_WATCH: Duration = Duration::from_secs(30);

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// Error body of every failed call.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiError {
    /// Machine-readable kind: `topic_exists`, `unknown_topic`, `unknown_topic_id`,
    /// `invalid_partitions`, `invalid_request`, `database`, `unavailable`.
    pub kind: String,
    /// The subject (topic name or id) or message.
    pub detail: String,
}

impl From<&MetadataError> for ApiError {
    fn from(e: &MetadataError) -> Self {
        let (kind, detail) = match e {
            MetadataError::TopicExists(n) => ("topic_exists", n.clone()),
            MetadataError::UnknownTopic(n) => ("unknown_topic", n.clone()),
            MetadataError::UnknownTopicId(id) => ("unknown_topic_id", id.to_string()),
            MetadataError::InvalidPartitions(m) => ("invalid_partitions", m.clone()),
            MetadataError::InvalidRequest(m) => ("invalid_request", m.clone()),
            MetadataError::OffsetOutOfRange(m) => ("offset_out_of_range", m.clone()),
            MetadataError::Database(m) => ("database", m.clone()),
            MetadataError::Unavailable(m) => ("unavailable", m.clone()),
        };
        ApiError {
            kind: kind.into(),
            detail,
        }
    }
}

impl From<ApiError> for MetadataError {
    fn from(e: ApiError) -> Self {
        match e.kind.as_str() {
            "topic_exists" => MetadataError::TopicExists(e.detail),
            "unknown_topic" => MetadataError::UnknownTopic(e.detail),
            "unknown_topic_id" => match Uuid::parse_str(&e.detail) {
                Ok(id) => MetadataError::UnknownTopicId(id),
                Err(_) => MetadataError::Unavailable(format!("bad error body: {}", e.detail)),
            },
            "invalid_partitions" => MetadataError::InvalidPartitions(e.detail),
            "invalid_request" => MetadataError::InvalidRequest(e.detail),
            "offset_out_of_range" => MetadataError::OffsetOutOfRange(e.detail),
            "database" => MetadataError::Database(e.detail),
            _ => MetadataError::Unavailable(e.detail),
        }
    }
}

struct HttpError(MetadataError);

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let status = match &self.0 {
            MetadataError::TopicExists(_) => StatusCode::CONFLICT,
            MetadataError::UnknownTopic(_) | MetadataError::UnknownTopicId(_) => {
                StatusCode::NOT_FOUND
            }
            MetadataError::InvalidPartitions(_)
            | MetadataError::InvalidRequest(_)
            | MetadataError::OffsetOutOfRange(_) => StatusCode::BAD_REQUEST,
            MetadataError::Database(_) | MetadataError::Unavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        };
        (status, Json(ApiError::from(&self.0))).into_response()
    }
}

impl From<MetadataError> for HttpError {
    fn from(e: MetadataError) -> Self {
        HttpError(e)
    }
}

type ApiResult<T> = Result<Json<T>, HttpError>;
type Svc = State<Arc<MetadataService>>;

/// Body of `POST /v1/topics/{name}/partitions`.
#[derive(Debug, Serialize, Deserialize)]
pub struct CreatePartitionsBody {
    /// New total partition count.
    pub total: i32,
}

/// Query of `GET /v1/index`.
#[derive(Debug, Serialize, Deserialize)]
pub struct IndexQuery {
    /// Topic id.
    pub topic_id: TopicId,
    /// Partition.
    pub partition: i32,
    /// First offset wanted.
    pub from_offset: i64,
    /// Entry limit.
    pub max_entries: u32,
}

/// Query of `GET /v1/timestamp`.
#[derive(Debug, Serialize, Deserialize)]
pub struct TimestampQuery {
    /// Topic id.
    pub topic_id: TopicId,
    /// Partition.
    pub partition: i32,
    /// Target timestamp (ms).
    pub timestamp_ms: i64,
}

/// Query of `GET /v1/max-timestamp`.
#[derive(Debug, Serialize, Deserialize)]
pub struct PartitionQuery {
    /// Topic id.
    pub topic_id: TopicId,
    /// Partition.
    pub partition: i32,
}

/// Query of `GET /v1/watch`.
#[derive(Debug, Serialize, Deserialize)]
pub struct WatchQuery {
    /// Cursor instance.
    pub instance: Uuid,
    /// Cursor version.
    pub version: u64,
    /// How long to wait for a change (capped at [`MAX_WATCH`]).
    pub timeout_ms: u64,
}

/// Body of `GET /v1/cluster`.
#[derive(Debug, Serialize, Deserialize)]
pub struct ClusterBody {
    /// Cluster id.
    pub cluster_id: String,
}

/// Builds the router of the metadata HTTP API.
pub fn router(service: Arc<MetadataService>) -> Router {
    Router::new()
        .route("/v1/cluster", get(cluster))
        .route("/v1/topics", get(list_topics).post(create_topic))
        .route("/v1/topics/{name}", axum::routing::delete(delete_topic))
        .route("/v1/topics/{name}/partitions", post(create_partitions))
        .route("/v1/topics/{name}/configs", put(set_configs))
        .route("/v1/commit", post(commit))
        .route("/v1/index", get(read_index))
        .route("/v1/timestamp", get(find_by_timestamp))
        .route("/v1/max-timestamp", get(find_max_timestamp))
        .route("/v1/watch", get(watch))
        .route("/v1/groups/{group}/offsets", get(fetch_offsets))
        .route("/v1/groups", post(group_call))
        .route("/v1/producers", post(new_producer_id))
        .route("/v1/lifecycle", post(lifecycle))
        .route("/v1/txn", post(txn))
        .route("/v1/agents/heartbeat", post(agent_heartbeat))
        .route("/v1/agents/leave", post(agent_leave))
        // A commit lists every chunk of a WAL object: ~200 bytes of JSON per partition, so
        // axum's 2 MB default would cap an object at ~10,000 partitions.
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(service)
}

async fn cluster(State(s): Svc) -> ApiResult<ClusterBody> {
    Ok(Json(ClusterBody {
        cluster_id: s.cluster_id().await?,
    }))
}

async fn list_topics(State(s): Svc) -> ApiResult<Vec<crate::types::TopicInfo>> {
    Ok(Json(s.list_topics().await?))
}

async fn create_topic(
    State(s): Svc,
    Json(spec): Json<TopicSpec>,
) -> ApiResult<crate::types::TopicInfo> {
    Ok(Json(s.create_topic(spec).await?))
}

async fn delete_topic(State(s): Svc, Path(name): Path<String>) -> ApiResult<TopicId> {
    Ok(Json(s.delete_topic(&name).await?))
}

async fn create_partitions(
    State(s): Svc,
    Path(name): Path<String>,
    Json(body): Json<CreatePartitionsBody>,
) -> ApiResult<crate::types::TopicInfo> {
    Ok(Json(s.create_partitions(&name, body.total).await?))
}

async fn set_configs(
    State(s): Svc,
    Path(name): Path<String>,
    Json(configs): Json<BTreeMap<String, String>>,
) -> ApiResult<()> {
    Ok(Json(s.set_topic_configs(&name, configs).await?))
}

async fn commit(
    State(s): Svc,
    Json(c): Json<ObjectCommit>,
) -> ApiResult<crate::types::CommitResult> {
    Ok(Json(s.commit_object(c).await?))
}

async fn read_index(
    State(s): Svc,
    Query(q): Query<IndexQuery>,
) -> ApiResult<Vec<crate::types::IndexEntry>> {
    Ok(Json(
        s.read_index(q.topic_id, q.partition, q.from_offset, q.max_entries)
            .await?,
    ))
}

async fn find_by_timestamp(
    State(s): Svc,
    Query(q): Query<TimestampQuery>,
) -> ApiResult<Option<crate::types::IndexEntry>> {
    Ok(Json(
        s.find_by_timestamp(q.topic_id, q.partition, q.timestamp_ms)
            .await?,
    ))
}

async fn watch(
    State(s): Svc,
    Query(q): Query<WatchQuery>,
) -> ApiResult<crate::service::WatchBatch> {
    let timeout = Duration::from_millis(q.timeout_ms).min(MAX_WATCH);
    let cursor = WatchCursor {
        instance: q.instance,
        version: q.version,
    };
    Ok(Json(s.watch(cursor, timeout).await?))
}

async fn agent_heartbeat(
    State(s): Svc,
    Json(agent): Json<crate::types::AgentInfo>,
) -> ApiResult<Vec<crate::types::AgentInfo>> {
    Ok(Json(s.agent_heartbeat(agent).await?))
}

/// Body of `POST /v1/agents/leave`.
#[derive(Debug, Serialize, Deserialize)]
pub struct AgentLeaveBody {
    /// Node id.
    pub node_id: i32,
    /// The leaving run's instance.
    pub instance: String,
}

async fn agent_leave(State(s): Svc, Json(b): Json<AgentLeaveBody>) -> ApiResult<()> {
    Ok(Json(s.agent_leave(b.node_id, &b.instance).await?))
}

async fn lifecycle(
    State(s): Svc,
    Json(call): Json<crate::types::LifecycleCall>,
) -> ApiResult<crate::types::LifecycleReply> {
    Ok(Json(s.lifecycle(call).await?))
}

async fn txn(
    State(s): Svc,
    Json(call): Json<crate::types::TxnCall>,
) -> ApiResult<crate::types::TxnReply> {
    Ok(Json(s.txn(call).await?))
}

async fn new_producer_id(State(s): Svc) -> ApiResult<i64> {
    Ok(Json(s.new_producer_id().await?))
}

async fn group_call(
    State(s): Svc,
    headers: axum::http::HeaderMap,
    Json(call): Json<GroupCall>,
) -> ApiResult<GroupReply> {
    let forwarded = headers.contains_key(crate::client::FORWARDED_HEADER);
    Ok(Json(s.group_routed(call, forwarded).await?))
}

async fn fetch_offsets(
    State(s): Svc,
    Path(group): Path<String>,
) -> ApiResult<Vec<CommittedOffset>> {
    Ok(Json(s.fetch_offsets(&group).await?))
}

async fn find_max_timestamp(
    State(s): Svc,
    Query(q): Query<PartitionQuery>,
) -> ApiResult<Option<crate::types::IndexEntry>> {
    Ok(Json(s.find_max_timestamp(q.topic_id, q.partition).await?))
}
