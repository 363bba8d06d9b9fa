//! The compactor role. Compaction into segments, retention, DeleteRecords and orphan
//! collection are not built yet (see the compactor issue); the role starts, checks its
//! wiring and serves its admin port, so deployments can already include it.

/// Logs that the role is running without compaction work.
pub fn announce() {
    tracing::warn!("compactor started: compaction, retention and orphan collection are not implemented yet; objects are kept");
}
