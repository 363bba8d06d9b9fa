//! Upload and commit of sealed WAL objects. Uploads run concurrently (one task each);
//! commits happen strictly in seal order, so a producer's pipelined requests to this agent
//! keep their order. Only after the metadata service has assigned offsets are the
//! producers answered. A failed upload fails its requests with a retriable error and
//! nothing becomes visible; a commit is retried with the same object key (idempotent)
//! until `commit_timeout`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use floe_common::{Metrics, Objects};
use floe_format::wal::{AppendPosition, ChunkMeta};
use floe_metadata::{
    ChunkCommit, ChunkOutcome, CommitResult, IndexEntry, Metadata, MetadataError, ObjectCommit,
    PartitionWatermark, ProducerBatch,
};
use rand::Rng;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{info_span, warn, Instrument};
use uuid::Uuid;

use super::batcher::{AppendError, AppendReply, AppendResult, Appended};
use crate::catalog::Catalog;
use crate::fetch::cache::ChunkCache;
use crate::fetch::index::IndexCache;

/// A producer request waiting for its object's commit.
pub struct Waiter {
    /// Where each of its partitions went in the object.
    pub positions: Vec<AppendPosition>,
    /// Where to send the per-partition outcome.
    pub reply: oneshot::Sender<AppendReply>,
    /// When it was appended (for the flush-wait metric).
    pub arrived: Instant,
    /// Released when the request is answered.
    pub _permit: OwnedSemaphorePermit,
}

/// A sealed WAL object on its way to the store and the sequencer.
pub struct Sealed {
    /// The object bytes.
    pub object: Bytes,
    /// Its chunks.
    pub chunks: Vec<ChunkMeta>,
    /// The idempotent producer of each chunk, if any (same order as `chunks`).
    pub producers: Vec<Option<ProducerBatch>>,
    /// Requests waiting on it.
    pub waiters: Vec<Waiter>,
    /// When its first append arrived.
    pub opened_at: Instant,
    /// When it was sealed.
    pub sealed_at: Instant,
}

/// Everything the committer touches.
#[derive(Clone)]
pub struct Committer {
    /// Object store.
    pub objects: Objects,
    /// Metadata service.
    pub metadata: Arc<dyn Metadata>,
    /// Catalog, to advance watermarks at once.
    pub catalog: Arc<Catalog>,
    /// Index cache, to learn the new entries without asking the service.
    pub index: Arc<IndexCache>,
    /// Chunk cache, so that tailing reads of fresh data need no GET.
    pub cache: Arc<ChunkCache>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// How long to keep retrying a commit.
    pub commit_timeout: Duration,
    /// Node id, part of the object key for debugging.
    pub node_id: i32,
}

/// A new object key. The leading random hex spreads keys over S3 partitions (each prefix
/// gets its own request-rate budget); the write time tells the zone cache tail blocks from
/// old ones (`floe_format::keys::wal_written_at_ms`); the rest makes it unique and readable.
pub fn wal_key(node_id: i32, now_ms: i64) -> String {
    let shard: u16 = rand::rng().random();
    format!(
        "wal/{shard:04x}/{node_id}-{now_ms}-{}.wal",
        Uuid::new_v4().simple()
    )
}

type Upload = JoinHandle<Result<(String, Duration), String>>;

impl Committer {
    /// Runs until the sealed channel closes and every object is answered.
    pub async fn run(self, mut sealed_rx: mpsc::Receiver<Sealed>) {
        // Stage 1 (here): start each upload as soon as the object is sealed. Stage 2 (the
        // ordered queue below): commit in seal order.
        let (ordered_tx, mut ordered_rx) = mpsc::channel::<(Sealed, Upload)>(16);
        let this = self.clone();
        let stage2 = tokio::spawn(async move {
            while let Some((sealed, upload)) = ordered_rx.recv().await {
                this.finish(sealed, upload).await;
            }
        });
        while let Some(sealed) = sealed_rx.recv().await {
            self.metrics.wal_objects.inc();
            let key = wal_key(self.node_id, floe_common::clock::system().now_ms());
            let (objects, cache, object) = (
                self.objects.clone(),
                self.cache.clone(),
                sealed.object.clone(),
            );
            // The blocks go to their owners in the zone cache while the object uploads, so
            // that a consumer woken by the commit reads them from memory.
            let upload = tokio::spawn(async move {
                let (uploaded, ()) = tokio::join!(
                    upload(objects, key.clone(), object.clone()),
                    cache.publish(&key, &object)
                );
                uploaded
            });
            if ordered_tx.send((sealed, upload)).await.is_err() {
                break;
            }
        }
        drop(ordered_tx);
        let _ = stage2.await;
    }

    async fn finish(&self, sealed: Sealed, upload: Upload) {
        let key = match upload.await {
            Ok(Ok((key, elapsed))) => {
                self.metrics
                    .produce_upload_seconds
                    .observe(elapsed.as_secs_f64());
                key
            }
            Ok(Err(e)) => {
                warn!(error = %e, "wal upload failed; failing its produce requests");
                fail_all(sealed.waiters, AppendError::Storage(e));
                return;
            }
            Err(e) => {
                fail_all(sealed.waiters, AppendError::Storage(e.to_string()));
                return;
            }
        };
        for w in &sealed.waiters {
            self.metrics.produce_flush_wait_seconds.observe(
                sealed
                    .sealed_at
                    .saturating_duration_since(w.arrived)
                    .as_secs_f64(),
            );
        }
        let commit = ObjectCommit {
            object_key: key.clone(),
            object_size: sealed.object.len() as i64,
            chunks: sealed
                .chunks
                .iter()
                .zip(sealed.producers.iter().chain(std::iter::repeat(&None)))
                .map(|(c, p)| chunk_commit(c, *p))
                .collect(),
        };
        let started = Instant::now();
        let span = info_span!("wal_commit", key = %key, chunks = commit.chunks.len());
        let result = self.commit_with_retry(commit).instrument(span).await;
        self.metrics
            .produce_commit_seconds
            .observe(started.elapsed().as_secs_f64());
        match result {
            Ok(result) => self.answer(&key, sealed, result),
            Err(e) => {
                warn!(key = %key, error = %e, "wal commit failed; outcome unknown");
                fail_all(sealed.waiters, AppendError::Timeout(e.to_string()));
            }
        }
    }

    async fn commit_with_retry(&self, commit: ObjectCommit) -> Result<CommitResult, MetadataError> {
        let deadline = Instant::now() + self.commit_timeout;
        let mut backoff = Duration::from_millis(20);
        loop {
            match self.metadata.commit_object(commit.clone()).await {
                Ok(r) => return Ok(r),
                Err(e) if e.is_retriable() && Instant::now() + backoff < deadline => {
                    warn!(error = %e, "commit failed; retrying with the same key");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn answer(&self, key: &str, sealed: Sealed, result: CommitResult) {
        let mut marks = Vec::new();
        for (meta, outcome) in sealed.chunks.iter().zip(&result.chunks) {
            if let ChunkOutcome::Committed {
                base_offset,
                log_start_offset,
            } = outcome
            {
                let topic_id = Uuid::from_bytes(meta.topic_id);
                let last_offset = base_offset + meta.offset_count as i64 - 1;
                self.index.insert(
                    topic_id,
                    meta.partition,
                    IndexEntry {
                        base_offset: *base_offset,
                        last_offset,
                        object_key: key.to_string(),
                        object_size: sealed.object.len() as i64,
                        byte_offset: meta.byte_offset as i64,
                        byte_len: meta.byte_len as i64,
                        batch_count: meta.batch_count as i32,
                        first_timestamp_ms: meta.first_timestamp_ms,
                        max_timestamp_ms: meta.max_timestamp_ms,
                        control: None,
                    },
                );
                marks.push(PartitionWatermark {
                    topic_id,
                    partition: meta.partition,
                    high_watermark: last_offset + 1,
                    log_start_offset: *log_start_offset,
                    // Whether a transaction holds it back is the metadata service's to say.
                    last_stable_offset: None,
                    abort_count: 0,
                });
            }
        }
        self.catalog.advance(&marks);
        // The stable offsets, as the metadata service states them.
        self.catalog.advance(&result.watermarks);
        for outcome in &result.chunks {
            match outcome {
                ChunkOutcome::Duplicate { .. } => self.metrics.produce_duplicates.inc(),
                ChunkOutcome::Rejected(_) => self.metrics.produce_sequence_errors.inc(),
                _ => 0,
            };
        }
        let outcome = |pos: &AppendPosition| -> AppendResult {
            match result.chunks.get(pos.chunk_index) {
                Some(ChunkOutcome::Committed {
                    base_offset,
                    log_start_offset,
                }) => Ok(Appended {
                    base_offset: base_offset + pos.offset_delta,
                    log_start_offset: *log_start_offset,
                }),
                Some(ChunkOutcome::UnknownTopicOrPartition) => {
                    Err(AppendError::UnknownTopicOrPartition)
                }
                // An idempotent append is alone in its chunk: the original's offset is its own.
                Some(ChunkOutcome::Duplicate {
                    base_offset,
                    log_start_offset,
                }) => Ok(Appended {
                    base_offset: base_offset + pos.offset_delta,
                    log_start_offset: *log_start_offset,
                }),
                Some(ChunkOutcome::Rejected(r)) => Err(AppendError::Producer(*r)),
                None => Err(AppendError::Storage(
                    "commit result is missing a chunk".into(),
                )),
            }
        };
        for w in sealed.waiters {
            let _ = w.reply.send(AppendReply {
                results: w.positions.iter().map(outcome).collect(),
                pipeline: w.arrived.elapsed(),
            });
        }
    }
}

fn fail_all(waiters: Vec<Waiter>, err: AppendError) {
    for w in waiters {
        let _ = w.reply.send(AppendReply {
            results: vec![Err(err.clone()); w.positions.len()],
            pipeline: w.arrived.elapsed(),
        });
    }
}

fn chunk_commit(c: &ChunkMeta, producer: Option<ProducerBatch>) -> ChunkCommit {
    ChunkCommit {
        topic_id: Uuid::from_bytes(c.topic_id),
        partition: c.partition,
        byte_offset: c.byte_offset as i64,
        byte_len: c.byte_len as i64,
        offset_count: c.offset_count as i64,
        batch_count: c.batch_count as i32,
        first_timestamp_ms: c.first_timestamp_ms,
        max_timestamp_ms: c.max_timestamp_ms,
        producer,
    }
}

/// Uploads one object under a fresh key, retrying transient failures a few times (the
/// object-store client retries too; this covers longer blips). A retried PUT of the same
/// key is harmless: the object is not referenced until committed.
async fn upload(
    objects: Objects,
    key: String,
    object: Bytes,
) -> Result<(String, Duration), String> {
    let started = Instant::now();
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        match objects.put(&key, object.clone(), "wal").await {
            Ok(()) => return Ok((key, started.elapsed())),
            Err(e) if attempt < 3 => {
                warn!(%key, attempt, error = %e, "wal upload failed; retrying");
                tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}
