//! The open WAL object. One task per agent owns it: appends from every connection and
//! partition land here in arrival order; the object is sealed when it is `flush_interval`
//! old or `flush_bytes` big, handed to an upload task, and queued for the committer in seal
//! order. Produce bytes in flight are bounded by a semaphore, so a flood of producers waits
//! instead of exhausting memory.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use floe_format::batch::BatchHeader;
use floe_format::wal::{AppendPosition, WalObjectBuilder};
use floe_metadata::{ProducerBatch, ProducerRejection, TopicId};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::debug;

use super::commit::{Committer, Sealed, Waiter};

/// One partition's validated batches to append.
#[derive(Debug)]
pub struct PartAppend {
    /// Topic id.
    pub topic_id: TopicId,
    /// Partition.
    pub partition: i32,
    /// Whole record batches, verbatim.
    pub bytes: Bytes,
    /// Their headers.
    pub headers: Vec<BatchHeader>,
    /// The idempotent producer that wrote them: they get a chunk of their own, which the
    /// sequencer checks (and refuses as a whole if it is a duplicate).
    pub producer: Option<ProducerBatch>,
}

/// Where an append ended up once committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// Offset of the append's first record.
    pub base_offset: i64,
    /// Log start offset of the partition at commit time.
    pub log_start_offset: i64,
}

/// Why an append was not committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendError {
    /// The topic or partition was deleted before the commit.
    UnknownTopicOrPartition,
    /// Upload or commit failed; nothing became visible. Retriable.
    Storage(String),
    /// The commit's outcome is unknown (the metadata service did not answer in time).
    Timeout(String),
    /// The agent is shutting down and no longer accepts data.
    ShuttingDown,
    /// The sequencer refused an idempotent producer's sequence or epoch.
    Producer(ProducerRejection),
}

/// Result of one partition append.
pub type AppendResult = Result<Appended, AppendError>;

/// The answer to one `append` call.
#[derive(Debug)]
pub struct AppendReply {
    /// Per-partition outcomes, in the order of the call's parts.
    pub results: Vec<AppendResult>,
    /// Time from reaching the batcher to the answer: flush wait, upload and commit (including
    /// waiting for earlier objects' commits). The rest of a request's latency is the agent's own.
    pub pipeline: Duration,
}

enum Cmd {
    Append {
        parts: Vec<PartAppend>,
        reply: oneshot::Sender<AppendReply>,
        permit: OwnedSemaphorePermit,
    },
    /// Seal the open object now (shutdown drains without waiting for the timer).
    Flush,
    Shutdown(oneshot::Sender<()>),
}

/// Settings the batcher needs.
#[derive(Debug, Clone, Copy)]
pub struct BatcherSettings {
    /// Seal after this long.
    pub flush_interval: Duration,
    /// Seal at this size.
    pub flush_bytes: usize,
    /// Bound on produce bytes in flight.
    pub max_inflight_bytes: usize,
}

/// Handle to the batcher task.
#[derive(Clone)]
pub struct Batcher {
    tx: mpsc::Sender<Cmd>,
    permits: Arc<Semaphore>,
    max_permits: usize,
}

impl Batcher {
    /// Starts the batcher and its committer.
    pub fn start(settings: BatcherSettings, committer: Committer) -> (Batcher, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(1024);
        let (sealed_tx, sealed_rx) = mpsc::channel(16);
        let committer_task = tokio::spawn(committer.run(sealed_rx));
        let task = tokio::spawn(async move {
            let done = run(settings, rx, sealed_tx).await;
            // `run` dropped its sender, so the committer ends once every sealed object is
            // committed and answered.
            let _ = committer_task.await;
            if let Some(done) = done {
                let _ = done.send(());
            }
        });
        (
            Batcher {
                tx,
                permits: Arc::new(Semaphore::new(settings.max_inflight_bytes)),
                max_permits: settings.max_inflight_bytes,
            },
            task,
        )
    }

    /// Appends one request's partitions, in call order relative to other appends. Returns a
    /// receiver that resolves once the object holding them is committed (or failed).
    pub async fn append(
        &self,
        parts: Vec<PartAppend>,
    ) -> Result<oneshot::Receiver<AppendReply>, AppendError> {
        let bytes: usize = parts.iter().map(|p| p.bytes.len()).sum();
        let want = bytes.clamp(1, self.max_permits) as u32;
        let permit = self
            .permits
            .clone()
            .acquire_many_owned(want)
            .await
            .map_err(|_| AppendError::ShuttingDown)?;
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Cmd::Append {
                parts,
                reply,
                permit,
            })
            .await
            .map_err(|_| AppendError::ShuttingDown)?;
        Ok(rx)
    }

    /// Seals the open object now instead of at its deadline.
    pub async fn flush(&self) {
        let _ = self.tx.send(Cmd::Flush).await;
    }

    /// Seals what is buffered, waits until every sealed object is committed and answered,
    /// and stops the batcher.
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Cmd::Shutdown(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

struct Open {
    builder: WalObjectBuilder,
    waiters: Vec<Waiter>,
    opened_at: Instant,
    /// Idempotent producers' solo chunks, by chunk index.
    producers: HashMap<usize, ProducerBatch>,
}

/// Runs until shutdown; returns the shutdown caller's completion signal, if any.
async fn run(
    settings: BatcherSettings,
    mut rx: mpsc::Receiver<Cmd>,
    sealed_tx: mpsc::Sender<Sealed>,
) -> Option<oneshot::Sender<()>> {
    let mut open: Option<Open> = None;
    loop {
        let deadline = open.as_ref().map(|o| o.opened_at + settings.flush_interval);
        let cmd = tokio::select! {
            cmd = rx.recv() => cmd,
            _ = sleep_until_opt(deadline) => {
                if let Some(o) = open.take() {
                    seal(o, &sealed_tx).await;
                }
                continue;
            }
        };
        match cmd {
            Some(Cmd::Append {
                parts,
                reply,
                permit,
            }) => {
                let now = Instant::now();
                let o = open.get_or_insert_with(|| Open {
                    builder: WalObjectBuilder::new(),
                    waiters: Vec::new(),
                    opened_at: now,
                    producers: HashMap::new(),
                });
                let positions: Vec<AppendPosition> = parts
                    .into_iter()
                    .map(|p| {
                        let (topic, partition) = (p.topic_id.into_bytes(), p.partition);
                        match p.producer {
                            Some(producer) => {
                                let pos =
                                    o.builder.append_solo(topic, partition, p.bytes, &p.headers);
                                o.producers.insert(pos.chunk_index, producer);
                                pos
                            }
                            None => o.builder.append(topic, partition, p.bytes, &p.headers),
                        }
                    })
                    .collect();
                o.waiters.push(Waiter {
                    positions,
                    reply,
                    arrived: now,
                    _permit: permit,
                });
                if o.builder.data_len() >= settings.flush_bytes {
                    if let Some(o) = open.take() {
                        seal(o, &sealed_tx).await;
                    }
                }
            }
            Some(Cmd::Flush) => {
                if let Some(o) = open.take() {
                    seal(o, &sealed_tx).await;
                }
            }
            Some(Cmd::Shutdown(done)) => {
                if let Some(o) = open.take() {
                    seal(o, &sealed_tx).await;
                }
                // Refuse further appends, then let the committer drain.
                rx.close();
                while let Some(cmd) = rx.recv().await {
                    if let Cmd::Append { parts, reply, .. } = cmd {
                        let _ = reply.send(AppendReply {
                            results: vec![Err(AppendError::ShuttingDown); parts.len()],
                            pipeline: Duration::ZERO,
                        });
                    }
                }
                return Some(done);
            }
            None => {
                if let Some(o) = open.take() {
                    seal(o, &sealed_tx).await;
                }
                return None;
            }
        }
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

async fn seal(open: Open, sealed_tx: &mpsc::Sender<Sealed>) {
    let sealed_at = Instant::now();
    let (object, chunks) = open.builder.finish();
    debug!(
        bytes = object.len(),
        chunks = chunks.len(),
        waiters = open.waiters.len(),
        "sealing wal object"
    );
    let producers = (0..chunks.len())
        .map(|i| open.producers.get(&i).copied())
        .collect();
    let sealed = Sealed {
        object,
        chunks,
        producers,
        waiters: open.waiters,
        opened_at: open.opened_at,
        sealed_at,
    };
    // Waits when the committer is behind: backpressure on appends, bounded memory.
    let _ = sealed_tx.send(sealed).await;
}
