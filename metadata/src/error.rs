//! The metadata crate's one error type. Database errors are translated here, once.

use thiserror::Error;

/// Errors of the metadata store, the sequencer and the metadata client.
#[derive(Debug, Error)]
pub enum MetadataError {
    /// CreateTopics for a name that is already live.
    #[error("topic {0} already exists")]
    TopicExists(String),
    /// The named topic does not exist.
    #[error("unknown topic {0}")]
    UnknownTopic(String),
    /// A topic id that does not (or no longer) exist.
    #[error("unknown topic id {0}")]
    UnknownTopicId(uuid::Uuid),
    /// CreatePartitions asked for a count that is not larger than the current one.
    #[error("invalid partitions: {0}")]
    InvalidPartitions(String),
    /// DeleteRecords beyond the high watermark, or below -1.
    #[error("offset out of range: {0}")]
    OffsetOutOfRange(String),
    /// A request the service refuses as malformed.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The database failed or could not be reached; the outcome of a write is unknown and the
    /// caller may retry (commits are idempotent on the object key).
    #[error("database error: {0}")]
    Database(String),
    /// The metadata service could not be reached or answered garbage.
    #[error("metadata service unavailable: {0}")]
    Unavailable(String),
}

impl MetadataError {
    /// Whether a client may retry the operation that failed with this error.
    pub fn is_retriable(&self) -> bool {
        matches!(self, Self::Database(_) | Self::Unavailable(_))
    }
}

impl From<sqlx::Error> for MetadataError {
    fn from(e: sqlx::Error) -> Self {
        MetadataError::Database(e.to_string())
    }
}

impl From<sqlx::migrate::MigrateError> for MetadataError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        MetadataError::Database(format!("migration failed: {e}"))
    }
}

/// Result alias for this crate.
pub type Result<T, E = MetadataError> = std::result::Result<T, E>;
