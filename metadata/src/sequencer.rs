//! Group commit in front of [`MetadataStore::commit_objects`].
//!
//! Every agent sends one commit per sealed WAL object. The sequencer task drains whatever
//! commits are queued while the previous database transaction runs and commits them together
//! in one transaction, so throughput grows with load instead of being one round trip per
//! object. Offsets still come from the database, never from this process.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};
use tracing::warn;

use crate::error::{MetadataError, Result};
use crate::store::MetadataStore;
use crate::types::{CommitResult, ObjectCommit, PartitionWatermark};

/// Largest number of objects folded into one database transaction. Bigger groups amortise
/// the transaction round trip further but make every waiter wait for the slowest statement.
pub const MAX_GROUP_OBJECTS: usize = 256;

/// Queue depth before callers wait; bounds memory under a commit storm.
const QUEUE_DEPTH: usize = 4096;

type Reply = oneshot::Sender<Result<CommitResult>>;

/// Statistics reported after every group commit, for metrics.
#[derive(Debug, Clone, Copy)]
pub struct GroupStats {
    /// Objects committed in the transaction.
    pub objects: usize,
    /// Wall time of the database transaction.
    pub elapsed: std::time::Duration,
    /// Whether the transaction failed.
    pub failed: bool,
}

/// Handle to the sequencer task.
#[derive(Clone)]
pub struct Sequencer {
    tx: mpsc::Sender<(ObjectCommit, Reply)>,
}

impl Sequencer {
    /// Starts the sequencer task over `store`. `on_commit` sees every committed group's new
    /// watermarks (to wake long polls); `on_stats` sees timings.
    pub fn start(
        store: Arc<dyn MetadataStore>,
        now_ms: impl Fn() -> i64 + Send + 'static,
        on_commit: impl Fn(&[PartitionWatermark]) + Send + 'static,
        on_stats: impl Fn(GroupStats) + Send + 'static,
    ) -> Self {
        let (tx, mut rx) = mpsc::channel::<(ObjectCommit, Reply)>(QUEUE_DEPTH);
        tokio::spawn(async move {
            let mut group: Vec<(ObjectCommit, Reply)> = Vec::with_capacity(MAX_GROUP_OBJECTS);
            while let Some(first) = rx.recv().await {
                group.push(first);
                while group.len() < MAX_GROUP_OBJECTS {
                    match rx.try_recv() {
                        Ok(next) => group.push(next),
                        Err(_) => break,
                    }
                }
                let (commits, replies): (Vec<_>, Vec<_>) = group.drain(..).unzip();
                let started = Instant::now();
                let outcome = store.commit_objects(&commits, now_ms()).await;
                let stats = GroupStats {
                    objects: commits.len(),
                    elapsed: started.elapsed(),
                    failed: outcome.is_err(),
                };
                on_stats(stats);
                match outcome {
                    Ok((results, watermarks)) => {
                        on_commit(&watermarks);
                        debug_assert_eq!(results.len(), replies.len());
                        for ((reply, mut result), commit) in
                            replies.into_iter().zip(results).zip(&commits)
                        {
                            result.watermarks = watermarks
                                .iter()
                                .filter(|m| {
                                    commit.chunks.iter().any(|c| {
                                        c.topic_id == m.topic_id && c.partition == m.partition
                                    })
                                })
                                .copied()
                                .collect();
                            let _ = reply.send(Ok(result));
                        }
                    }
                    Err(e) => {
                        warn!(error = %e, objects = commits.len(), "group commit failed");
                        let msg = e.to_string();
                        for reply in replies {
                            let _ = reply.send(Err(MetadataError::Database(msg.clone())));
                        }
                    }
                }
            }
        });
        Sequencer { tx }
    }

    /// Commits one object, waiting for the group transaction that carries it.
    pub async fn commit(&self, commit: ObjectCommit) -> Result<CommitResult> {
        let (reply_tx, reply_rx) = oneshot::channel();
        self.tx
            .send((commit, reply_tx))
            .await
            .map_err(|_| MetadataError::Unavailable("sequencer stopped".into()))?;
        reply_rx
            .await
            .map_err(|_| MetadataError::Unavailable("sequencer dropped the commit".into()))?
    }
}
