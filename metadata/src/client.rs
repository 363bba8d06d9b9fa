//! [`Metadata`] over HTTP: what a stateless agent or compactor uses to reach
//! `floe metadata`. Failures to reach the service become `MetadataError::Unavailable`
//! (retriable); commits are idempotent on the object key, so the caller may retry them.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{MetadataError, Result};
use crate::groups::{GroupCall, GroupReply};
use crate::http::{
    ApiError, ClusterBody, CreatePartitionsBody, IndexQuery, PartitionQuery, TimestampQuery,
    WatchQuery,
};
use crate::service::{Metadata, WatchBatch, WatchCursor};
use crate::types::{
    AgentInfo, CommitResult, CommittedOffset, IndexEntry, ObjectCommit, TopicId, TopicInfo,
    TopicSpec,
};

/// Per-request timeout for everything but `watch`. A commit that times out has an unknown
/// outcome; the caller retries it with the same object key.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// HTTP client of the metadata service.
#[derive(Clone)]
pub struct HttpMetadataClient {
    base: String,
    http: reqwest::Client,
}

impl HttpMetadataClient {
    /// Client for the service at `base_url` (e.g. `http://10.0.0.5:9091`).
    pub fn new(base_url: &str) -> Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .pool_max_idle_per_host(64)
            .build()
            .map_err(|e| MetadataError::Unavailable(e.to_string()))?;
        Ok(HttpMetadataClient {
            base: base_url.trim_end_matches('/').to_string(),
            http,
        })
    }

    async fn send<T: DeserializeOwned>(&self, req: reqwest::RequestBuilder) -> Result<T> {
        let resp = req
            .send()
            .await
            .map_err(|e| MetadataError::Unavailable(e.to_string()))?;
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .map_err(|e| MetadataError::Unavailable(e.to_string()))?;
        if status.is_success() {
            serde_json::from_slice(&body)
                .map_err(|e| MetadataError::Unavailable(format!("bad response body: {e}")))
        } else {
            match serde_json::from_slice::<ApiError>(&body) {
                Ok(err) => Err(err.into()),
                Err(_) => Err(MetadataError::Unavailable(format!(
                    "metadata service answered {status}"
                ))),
            }
        }
    }

    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http
            .get(format!("{}{path}", self.base))
            .timeout(REQUEST_TIMEOUT)
    }

    fn with_body<B: Serialize>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &B,
    ) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .timeout(REQUEST_TIMEOUT)
            .json(body)
    }
}

impl HttpMetadataClient {
    fn group_request(&self, call: &GroupCall) -> reqwest::RequestBuilder {
        // A JoinGroup or SyncGroup waits on the coordinator for up to a rebalance timeout.
        let wait = Duration::from_millis(u64::try_from(call.max_wait_ms()).unwrap_or(0));
        self.http
            .post(format!("{}/v1/groups", self.base))
            .timeout(REQUEST_TIMEOUT + wait)
            .json(call)
    }

    /// A group call forwarded by a metadata process that does not coordinate groups to the
    /// one that does; marked so the receiver never forwards it again.
    pub async fn forward_group(&self, call: GroupCall) -> Result<GroupReply> {
        let req = self.group_request(&call).header(FORWARDED_HEADER, "1");
        self.send(req).await
    }
}

/// Marks a group call forwarded between metadata processes.
pub const FORWARDED_HEADER: &str = "x-floe-forwarded";

/// Percent-encodes a topic name for a URL path segment. Kafka names are `[a-zA-Z0-9._-]`,
/// but the service must not be confused by anything else a client sends.
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[async_trait]
impl Metadata for HttpMetadataClient {
    async fn cluster_id(&self) -> Result<String> {
        let body: ClusterBody = self.send(self.get("/v1/cluster")).await?;
        Ok(body.cluster_id)
    }

    async fn create_topic(&self, spec: TopicSpec) -> Result<TopicInfo> {
        self.send(self.with_body(reqwest::Method::POST, "/v1/topics", &spec))
            .await
    }

    async fn delete_topic(&self, name: &str) -> Result<TopicId> {
        let path = format!("{}/v1/topics/{}", self.base, encode_segment(name));
        self.send(self.http.delete(path).timeout(REQUEST_TIMEOUT))
            .await
    }

    async fn create_partitions(&self, name: &str, total: i32) -> Result<TopicInfo> {
        let path = format!("/v1/topics/{}/partitions", encode_segment(name));
        self.send(self.with_body(
            reqwest::Method::POST,
            &path,
            &CreatePartitionsBody { total },
        ))
        .await
    }

    async fn set_topic_configs(&self, name: &str, configs: BTreeMap<String, String>) -> Result<()> {
        let path = format!("/v1/topics/{}/configs", encode_segment(name));
        self.send(self.with_body(reqwest::Method::PUT, &path, &configs))
            .await
    }

    async fn list_topics(&self) -> Result<Vec<TopicInfo>> {
        self.send(self.get("/v1/topics")).await
    }

    async fn commit_object(&self, commit: ObjectCommit) -> Result<CommitResult> {
        self.send(self.with_body(reqwest::Method::POST, "/v1/commit", &commit))
            .await
    }

    async fn read_index(
        &self,
        topic_id: TopicId,
        partition: i32,
        from_offset: i64,
        max_entries: u32,
    ) -> Result<Vec<IndexEntry>> {
        let q = IndexQuery {
            topic_id,
            partition,
            from_offset,
            max_entries,
        };
        self.send(self.get("/v1/index").query(&q)).await
    }

    async fn find_by_timestamp(
        &self,
        topic_id: TopicId,
        partition: i32,
        timestamp_ms: i64,
    ) -> Result<Option<IndexEntry>> {
        let q = TimestampQuery {
            topic_id,
            partition,
            timestamp_ms,
        };
        self.send(self.get("/v1/timestamp").query(&q)).await
    }

    async fn find_max_timestamp(
        &self,
        topic_id: TopicId,
        partition: i32,
    ) -> Result<Option<IndexEntry>> {
        let q = PartitionQuery {
            topic_id,
            partition,
        };
        self.send(self.get("/v1/max-timestamp").query(&q)).await
    }

    async fn group(&self, call: GroupCall) -> Result<GroupReply> {
        self.send(self.group_request(&call)).await
    }

    async fn agent_heartbeat(&self, agent: AgentInfo) -> Result<Vec<AgentInfo>> {
        self.send(self.with_body(reqwest::Method::POST, "/v1/agents/heartbeat", &agent))
            .await
    }

    async fn agent_leave(&self, node_id: i32, instance: &str) -> Result<()> {
        let body = crate::http::AgentLeaveBody {
            node_id,
            instance: instance.to_string(),
        };
        self.send(self.with_body(reqwest::Method::POST, "/v1/agents/leave", &body))
            .await
    }

    async fn lifecycle(
        &self,
        call: crate::types::LifecycleCall,
    ) -> Result<crate::types::LifecycleReply> {
        self.send(self.with_body(reqwest::Method::POST, "/v1/lifecycle", &call))
            .await
    }

    async fn txn(&self, call: crate::types::TxnCall) -> Result<crate::types::TxnReply> {
        self.send(self.with_body(reqwest::Method::POST, "/v1/txn", &call))
            .await
    }

    async fn new_producer_id(&self) -> Result<i64> {
        self.send(self.with_body(reqwest::Method::POST, "/v1/producers", &()))
            .await
    }

    async fn fetch_offsets(&self, group_id: &str) -> Result<Vec<CommittedOffset>> {
        let path = format!("/v1/groups/{}/offsets", encode_segment(group_id));
        self.send(self.get(&path)).await
    }

    async fn watch(&self, cursor: WatchCursor, timeout: Duration) -> Result<WatchBatch> {
        let q = WatchQuery {
            instance: cursor.instance,
            version: cursor.version,
            timeout_ms: timeout.as_millis() as u64,
        };
        let req = self
            .http
            .get(format!("{}/v1/watch", self.base))
            .query(&q)
            .timeout(timeout + REQUEST_TIMEOUT);
        self.send(req).await
    }
}
