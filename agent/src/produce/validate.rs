//! First step of a produce: every partition's `records` must be whole, well-formed v2
//! record batches with good CRCs and within the topic's `max.message.bytes`, before a byte
//! of it is buffered. Batches are kept verbatim (no recompression).

use bytes::Bytes;
use floe_format::batch::{split_batches, BatchHeader};
use floe_format::FormatError;
use kafka_protocol::error::ResponseError;

/// A partition's batches, validated.
#[derive(Debug)]
pub struct ValidBatches {
    /// The bytes as received.
    pub bytes: Bytes,
    /// Headers of each batch, in order.
    pub headers: Vec<BatchHeader>,
}

/// Validates one partition's `records`. The error is the Kafka error for the partition.
pub fn validate_records(
    records: Option<&Bytes>,
    max_message_bytes: i32,
) -> Result<ValidBatches, (ResponseError, String)> {
    let Some(bytes) = records else {
        return Err((ResponseError::InvalidRecord, "null records".into()));
    };
    let batches = split_batches(bytes).map_err(|e| match e {
        FormatError::CrcMismatch { .. } => (ResponseError::CorruptMessage, e.to_string()),
        FormatError::UnsupportedMagic(_) => {
            (ResponseError::UnsupportedForMessageFormat, e.to_string())
        }
        _ => (ResponseError::CorruptMessage, e.to_string()),
    })?;
    let mut headers = Vec::with_capacity(batches.len());
    for b in &batches {
        if b.range.len() > max_message_bytes.max(0) as usize {
            return Err((
                ResponseError::MessageTooLarge,
                format!(
                    "record batch of {} bytes exceeds max.message.bytes {max_message_bytes}",
                    b.range.len()
                ),
            ));
        }
        // Kafka's log validator: a batch holds at least one record and its offsets are
        // exactly its records (deltas 0..n-1), or offsets would be assigned to nothing.
        if b.header.records_count <= 0
            || i64::from(b.header.records_count) != b.header.offset_count()
        {
            return Err((
                ResponseError::InvalidRecord,
                format!(
                    "record batch has {} records but last_offset_delta {}",
                    b.header.records_count, b.header.last_offset_delta
                ),
            ));
        }
        if b.header.is_control() {
            // Only transaction coordinators write control batches.
            return Err((
                ResponseError::InvalidRecord,
                "control batch from a producer".into(),
            ));
        }
        headers.push(b.header);
    }
    Ok(ValidBatches {
        bytes: bytes.clone(),
        headers,
    })
}
