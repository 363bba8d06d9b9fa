//! The agent crate's error type, and the one place where internal errors become Kafka
//! error codes.

use floe_metadata::MetadataError;
use kafka_protocol::error::ResponseError;
use thiserror::Error;

/// Errors that stop the agent from starting or serving.
#[derive(Debug, Error)]
pub enum AgentError {
    /// Invalid configuration.
    #[error("invalid agent configuration: {0}")]
    Config(String),
    /// Socket error.
    #[error("io error: {0}")]
    Io(#[from] std::io::Error),
    /// Metadata service error.
    #[error(transparent)]
    Metadata(#[from] MetadataError),
}

/// Translates a metadata error into the Kafka error a client should see. Only errors the
/// client may safely retry map to retriable codes.
pub fn kafka_error(e: &MetadataError) -> ResponseError {
    match e {
        MetadataError::TopicExists(_) => ResponseError::TopicAlreadyExists,
        MetadataError::UnknownTopic(_) => ResponseError::UnknownTopicOrPartition,
        MetadataError::UnknownTopicId(_) => ResponseError::UnknownTopicId,
        MetadataError::InvalidPartitions(_) => ResponseError::InvalidPartitions,
        MetadataError::InvalidRequest(_) => ResponseError::InvalidRequest,
        MetadataError::OffsetOutOfRange(_) => ResponseError::OffsetOutOfRange,
        // Retriable: nothing became visible, or the commit is idempotent on retry.
        MetadataError::Database(_) | MetadataError::Unavailable(_) => {
            ResponseError::KafkaStorageError
        }
    }
}
