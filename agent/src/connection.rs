//! One client connection: frames in, responses out, in order.
//!
//! The reader decodes a frame, starts its handler (produce appends happen here, in arrival
//! order) and queues the pending response; the writer sends responses in request order.
//! Up to `max_inflight_requests_per_connection` requests are in flight, so a producer with
//! many requests outstanding is not starved by the flush window. Coordinator requests
//! ([`in_order`]) of one connection still take effect one after another, in arrival order.
//! A bad frame (negative or oversized length, undecodable bytes, an API the agent does not
//! serve) closes this connection only, with a log line; the agent keeps serving everyone
//! else.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{debug, error, info_span, warn};

use crate::dispatch::{self, Ctx};

/// Why a connection was closed by the agent.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// Length prefix out of bounds.
    #[error("frame length {0} outside 1..={1}")]
    BadLength(i64, usize),
    /// Bytes that are not a Kafka request.
    #[error("undecodable request: {0}")]
    Undecodable(String),
    /// An API key or version the agent does not serve.
    #[error("unsupported api key {0} version {1}")]
    Unsupported(i16, i16),
}

/// Encodes `header` + `body` as one length-prefixed frame.
pub fn encode_frame(
    correlation_id: i32,
    header_version: i16,
    body: &ResponseKind,
    version: i16,
) -> Result<Bytes, String> {
    let mut buf = BytesMut::with_capacity(256);
    buf.put_i32(0);
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut buf, header_version)
        .map_err(|e| e.to_string())?;
    body.encode(&mut buf, version).map_err(|e| e.to_string())?;
    let len = (buf.len() - 4) as i32;
    buf[0..4].copy_from_slice(&len.to_be_bytes());
    Ok(buf.freeze())
}

/// Serves one connection until the client closes it, a bad frame arrives, or shutdown.
pub async fn serve(
    ctx: Arc<Ctx>,
    stream: TcpStream,
    peer: SocketAddr,
    mut shutdown: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let (mut rd, wr) = stream.into_split();
    let (tx, rx) =
        mpsc::channel::<JoinHandle<Option<Bytes>>>(ctx.config.max_inflight_requests_per_connection);
    let writer = tokio::spawn(write_loop(wr, rx));
    let max = ctx.config.max_request_bytes;
    let body_timeout = std::time::Duration::from_millis(ctx.config.frame_body_timeout_ms);
    // Finishes when the last in-order request started on this connection has taken effect.
    let mut last_in_order: Option<oneshot::Receiver<()>> = None;
    loop {
        let len = tokio::select! {
            r = rd.read_i32() => match r {
                Ok(n) => n,
                Err(_) => break, // closed by the client
            },
            _ = shutdown.changed() => break,
        };
        if len <= 0 || len as i64 > max as i64 {
            ctx.metrics.bad_frames.inc();
            warn!(%peer, len, max, "closing connection: bad frame length");
            break;
        }
        // Bytes of frames being read, across connections, are bounded like Kafka's
        // `queued.max.request.bytes`, and a body must arrive within `frame_body_timeout_ms`: a
        // client announcing 100 MiB and sending nothing cannot pin memory for long.
        let Ok(permit) = ctx.frame_bytes.clone().acquire_many_owned(len as u32).await else {
            break;
        };
        let mut buf = vec![0u8; len as usize];
        match tokio::time::timeout(body_timeout, rd.read_exact(&mut buf)).await {
            Ok(Ok(_)) => {}
            Ok(Err(_)) => break,
            Err(_) => {
                ctx.metrics.bad_frames.inc();
                warn!(%peer, len, "closing connection: frame body not received in time");
                break;
            }
        }
        drop(permit);
        match decode(&ctx, Bytes::from(buf)) {
            Ok(Decoded::Request {
                header,
                request,
                key,
                version,
            }) => {
                let client_id = header
                    .client_id
                    .as_ref()
                    .map(|c| c.to_string())
                    .unwrap_or_default();
                let span = info_span!("request", api = ?key, version, correlation_id = header.correlation_id, client_id = %client_id, %peer);
                let host = format!("/{}", peer.ip());
                // client.rack (remembered from the client's Fetches) wins, then client.id,
                // then the address ranges.
                let zone = match ctx.racks.of(&host, &client_id).await {
                    Some(rack) => Some(rack),
                    None => crate::zone::zone_from_client_id(&client_id)
                        .or_else(|| ctx.zone_map.lookup(peer.ip()))
                        .map(str::to_string),
                };
                let client = dispatch::ClientInfo {
                    zone,
                    host,
                    id: client_id,
                };
                let pending = dispatch::start(ctx.clone(), *request, version, span, client).await;
                let cid = header.correlation_id;
                let header_version = key.response_header_version(version);
                let (after, done) = if in_order(key) {
                    let (done, finished) = oneshot::channel::<()>();
                    (last_in_order.replace(finished), Some(done))
                } else {
                    (None, None)
                };
                let handle = tokio::spawn(async move {
                    if let Some(previous) = after {
                        // Err: the previous one's task ended without a word; it is done too.
                        let _ = previous.await;
                    }
                    let resp = pending.await;
                    drop(done);
                    let resp = resp?;
                    match encode_frame(cid, header_version, &resp, version) {
                        Ok(b) => Some(b),
                        Err(e) => {
                            error!(api = ?key, version, error = %e, "response encoding failed");
                            None
                        }
                    }
                });
                if tx.send(handle).await.is_err() {
                    break;
                }
            }
            Ok(Decoded::Immediate(bytes)) => {
                if tx
                    .send(tokio::spawn(async move { Some(bytes) }))
                    .await
                    .is_err()
                {
                    break;
                }
            }
            Err(e) => {
                ctx.metrics.bad_frames.inc();
                warn!(%peer, error = %e, "closing connection");
                break;
            }
        }
    }
    drop(tx);
    let _ = writer.await;
    debug!(%peer, "connection closed");
}

/// Requests that act on coordinator state the previous one may have changed. Kafka handles
/// a connection's requests one at a time and clients count on it: librdkafka sends EndTxn
/// right behind AddPartitionsToTxn when it aborts a transaction at once, and a consumer's
/// OffsetFetch must see the OffsetCommit it sent before. Produce keeps its pipelining (its
/// appends are ordered where they are queued) and so do Fetch's long polls.
fn in_order(key: ApiKey) -> bool {
    matches!(
        key,
        ApiKey::InitProducerId
            | ApiKey::AddPartitionsToTxn
            | ApiKey::AddOffsetsToTxn
            | ApiKey::TxnOffsetCommit
            | ApiKey::EndTxn
            | ApiKey::OffsetCommit
            | ApiKey::OffsetFetch
    )
}

async fn write_loop(
    wr: tokio::net::tcp::OwnedWriteHalf,
    mut rx: mpsc::Receiver<JoinHandle<Option<Bytes>>>,
) {
    let mut wr = BufWriter::new(wr);
    while let Some(handle) = rx.recv().await {
        // A handler that panicked leaves no answer for its correlation id; closing the
        // connection makes the client retry instead of waiting for it forever.
        let Ok(resp) = handle.await else {
            tracing::error!("request handler failed; closing the connection");
            return;
        };
        if let Some(bytes) = resp {
            if wr.write_all(&bytes).await.is_err() {
                return;
            }
        }
        // Flush when nothing else is ready, batching writes of pipelined responses.
        if rx.is_empty() && wr.flush().await.is_err() {
            return;
        }
    }
    let _ = wr.flush().await;
}

enum Decoded {
    Request {
        header: RequestHeader,
        request: Box<RequestKind>,
        key: ApiKey,
        version: i16,
    },
    /// A response that needs no handler (ApiVersions with a version the agent lacks).
    Immediate(Bytes),
}

fn decode(_ctx: &Ctx, mut frame: Bytes) -> Result<Decoded, FrameError> {
    if frame.len() < 8 {
        return Err(FrameError::Undecodable(
            "frame shorter than a request header".into(),
        ));
    }
    let api_key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let key = ApiKey::try_from(api_key).map_err(|_| FrameError::Unsupported(api_key, version))?;
    let Some((min, max)) = dispatch::supported(key) else {
        return Err(FrameError::Unsupported(api_key, version));
    };
    if version < min || version > max {
        if key == ApiKey::ApiVersions {
            // KIP-511: answer an unknown ApiVersions version with a v0 response carrying
            // UNSUPPORTED_VERSION and our ranges, so the client can retry with one we know.
            let body = ResponseKind::ApiVersions(dispatch::api_versions(Some(
                ResponseError::UnsupportedVersion,
            )));
            return encode_frame(correlation_id, 0, &body, 0)
                .map(Decoded::Immediate)
                .map_err(FrameError::Undecodable);
        }
        return Err(FrameError::Unsupported(api_key, version));
    }
    let header = RequestHeader::decode(&mut frame, key.request_header_version(version))
        .map_err(|e| FrameError::Undecodable(e.to_string()))?;
    let request = RequestKind::decode(key, &mut frame, version)
        .map_err(|e| FrameError::Undecodable(e.to_string()))?;
    Ok(Decoded::Request {
        header,
        request: Box::new(request),
        key,
        version,
    })
}
