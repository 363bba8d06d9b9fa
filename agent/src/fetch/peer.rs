//! The peer endpoint of the zone cache: agents of a zone ask a block's owner for the bytes
//! they need, and the agent that wrote an object pushes each block to its owner. Plain HTTP
//! on the internal cache port, reachable only between the agents of a zone (the security
//! group / network policy says so; nothing here is secret, the bytes are the same records
//! any consumer can fetch).
//!
//! - `GET /v1/blocks?key=K&index=I&size=S&from=F&to=T`: bytes `F..T` of block `I` of object
//!   `K` (of `S` bytes), from the owner's memory or read once from the object store.
//! - `PUT /v1/blocks?key=K&index=I&size=S` with the block as body: the owner keeps it.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes as AxumBytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use floe_metadata::AgentInfo;
use serde::Deserialize;
use thiserror::Error;

use super::cache::{block_range, ChunkCache, BLOCK_BYTES};

/// Longest wait for a peer's answer: an owner's GET from the object store can take a while.
const PEER_TIMEOUT: Duration = Duration::from_secs(10);
/// A dead owner refuses at once; an unreachable one must not hold a fetch for long.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// Why a peer call failed.
#[derive(Debug, Error)]
pub enum PeerError {
    /// The owner has no cache address.
    #[error("agent {0} has no cache address")]
    NoAddress(i32),
    /// Transport failure or timeout.
    #[error("peer request: {0}")]
    Http(String),
    /// The owner answered with an error.
    #[error("peer answered {0}: {1}")]
    Status(u16, String),
}

/// Calls other agents' peer endpoints.
#[derive(Clone)]
pub struct PeerClient {
    http: reqwest::Client,
}

impl PeerClient {
    /// A client with the peer timeouts.
    pub fn new() -> Result<Self, PeerError> {
        let http = reqwest::Client::builder()
            .timeout(PEER_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|e| PeerError::Http(e.to_string()))?;
        Ok(PeerClient { http })
    }

    fn url(owner: &AgentInfo) -> Result<String, PeerError> {
        let base = owner
            .cache_url
            .as_deref()
            .ok_or(PeerError::NoAddress(owner.node_id))?;
        Ok(format!("{}/v1/blocks", base.trim_end_matches('/')))
    }

    /// Bytes `from..to` of block `index` of object `key` (of `size` bytes) from its owner.
    pub async fn fetch(
        &self,
        owner: &AgentInfo,
        key: &str,
        index: u64,
        size: u64,
        from: usize,
        to: usize,
    ) -> Result<Bytes, PeerError> {
        let resp = self
            .http
            .get(Self::url(owner)?)
            .query(&[
                ("key", key.to_string()),
                ("index", index.to_string()),
                ("size", size.to_string()),
                ("from", from.to_string()),
                ("to", to.to_string()),
            ])
            .send()
            .await
            .map_err(|e| PeerError::Http(e.to_string()))?;
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .map_err(|e| PeerError::Http(e.to_string()))?;
        if !status.is_success() {
            return Err(PeerError::Status(
                status.as_u16(),
                String::from_utf8_lossy(&body).into_owned(),
            ));
        }
        Ok(body)
    }

    /// Hands block `index` of a freshly written object to its owner.
    pub async fn push(
        &self,
        owner: &AgentInfo,
        key: &str,
        index: u64,
        size: u64,
        block: Bytes,
    ) -> Result<(), PeerError> {
        let resp = self
            .http
            .put(Self::url(owner)?)
            .query(&[
                ("key", key.to_string()),
                ("index", index.to_string()),
                ("size", size.to_string()),
            ])
            .body(block)
            .send()
            .await
            .map_err(|e| PeerError::Http(e.to_string()))?;
        let status = resp.status();
        if !status.is_success() {
            let text = resp.text().await.unwrap_or_default();
            return Err(PeerError::Status(status.as_u16(), text));
        }
        Ok(())
    }
}

#[derive(Debug, Deserialize)]
struct BlockQuery {
    key: String,
    index: u64,
    size: Option<u64>,
    from: Option<usize>,
    to: Option<usize>,
}

fn bad(msg: impl Into<String>) -> Response {
    (StatusCode::BAD_REQUEST, msg.into()).into_response()
}

/// Object keys the endpoint serves: what agents and compactors write, nothing that could
/// step outside the store prefix.
fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 1024
        && !key.starts_with('/')
        && key
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
        && key.chars().all(|c| c.is_ascii_graphic())
}

async fn get_block(State(cache): State<Arc<ChunkCache>>, Query(q): Query<BlockQuery>) -> Response {
    if !valid_key(&q.key) {
        return bad("bad key");
    }
    let (Some(size), Some(from), Some(to)) = (q.size, q.from, q.to) else {
        return bad("size, from and to are required");
    };
    let range = block_range(q.index, size);
    if range.is_empty() || from > to || (to as u64) > range.end - range.start {
        return bad("range outside the block");
    }
    let key: Arc<str> = Arc::from(q.key.as_str());
    match cache.local_block(&key, q.index, size).await {
        Ok((block, _)) if block.len() >= to => {
            let part = block.slice(from..to);
            cache.count_served(part.len());
            (StatusCode::OK, part).into_response()
        }
        Ok(_) => (StatusCode::BAD_GATEWAY, "block shorter than the size given").into_response(),
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}

async fn put_block(
    State(cache): State<Arc<ChunkCache>>,
    Query(q): Query<BlockQuery>,
    body: AxumBytes,
) -> Response {
    if !valid_key(&q.key) {
        return bad("bad key");
    }
    let Some(size) = q.size else {
        return bad("size is required");
    };
    // The block must be exactly what the object of that size holds at that index.
    let range = block_range(q.index, size);
    if body.is_empty() || body.len() as u64 != range.end - range.start {
        return bad("block length disagrees with the object size");
    }
    cache.accept_push(&q.key, q.index, size, body).await;
    StatusCode::NO_CONTENT.into_response()
}

/// The peer endpoint's routes.
pub fn router(cache: Arc<ChunkCache>) -> Router {
    Router::new()
        .route("/v1/blocks", get(get_block).put(put_block))
        .layer(DefaultBodyLimit::max(BLOCK_BYTES as usize + 1024))
        .with_state(cache)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_cannot_leave_the_prefix() {
        assert!(valid_key("wal/00ff/1-1764567890123-abc.wal"));
        assert!(!valid_key(""));
        assert!(!valid_key("/etc/passwd"));
        assert!(!valid_key("wal/../../x"));
        assert!(!valid_key("wal//x"));
        assert!(!valid_key("wal/a b"));
    }
}
