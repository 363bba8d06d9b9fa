//! First step of a produce: every partition's `records` must be whole, well-formed v2
//! record batches with good CRCs and within the topic's `max.message.bytes`, before a byte
//! of it is buffered. Batches are kept verbatim (no recompression).

use bytes::Bytes;
use floe_format::batch::{split_batches, BatchHeader};
use floe_format::FormatError;
use floe_metadata::ProducerBatch;
use kafka_protocol::error::ResponseError;

/// A partition's batches, validated.
#[derive(Debug)]
pub struct ValidBatches {
    /// The bytes as received.
    pub bytes: Bytes,
    /// Headers of each batch, in order.
    pub headers: Vec<BatchHeader>,
    /// The idempotent producer that wrote them, with the sequence range they cover.
    pub producer: Option<ProducerBatch>,
}

/// The sequence after `seq` (Kafka's sequences wrap from `i32::MAX` to 0).
fn sequence_after(seq: i32, records: i32) -> i32 {
    ((i64::from(seq) + i64::from(records)) % (i64::from(i32::MAX) + 1)) as i32
}

/// An idempotent append is one producer's consecutive sequences: the sequencer accepts or
/// refuses it as a unit. Plain batches (producer id -1) carry no sequence to check.
fn producer_of(headers: &[BatchHeader]) -> Result<Option<ProducerBatch>, (ResponseError, String)> {
    let Some(first) = headers.first() else {
        return Ok(None);
    };
    if headers.iter().any(BatchHeader::is_control) {
        // Only the transaction coordinator writes markers.
        return Err((
            ResponseError::InvalidRecord,
            "control batches cannot be produced".into(),
        ));
    }
    if first.producer_id < 0 {
        if headers.iter().any(|h| h.producer_id >= 0) {
            return Err((
                ResponseError::InvalidRecord,
                "idempotent and plain batches mixed".into(),
            ));
        }
        return Ok(None);
    }
    let transactional = first.is_transactional();
    if headers
        .iter()
        .any(|h| h.is_transactional() != transactional)
    {
        // Kafka: a transactional batch where no transaction is open, or the reverse.
        return Err((
            ResponseError::InvalidTxnState,
            "transactional and non-transactional batches mixed".into(),
        ));
    }
    let mut next = first.base_sequence;
    for h in headers {
        if h.producer_id != first.producer_id || h.producer_epoch != first.producer_epoch {
            return Err((
                ResponseError::InvalidRecord,
                "batches of different producers".into(),
            ));
        }
        if h.base_sequence < 0 || h.base_sequence != next {
            return Err((
                ResponseError::OutOfOrderSequenceNumber,
                format!(
                    "batch sequence {} where {next} was expected",
                    h.base_sequence
                ),
            ));
        }
        next = sequence_after(h.base_sequence, h.records_count);
    }
    let last_sequence = if next == 0 { i32::MAX } else { next - 1 };
    Ok(Some(ProducerBatch {
        producer_id: first.producer_id,
        producer_epoch: first.producer_epoch,
        first_sequence: first.base_sequence,
        last_sequence,
        transactional,
    }))
}

/// Most bytes a batch may decompress to when its records must be looked at (the request frame
/// limit): a compression bomb is refused, not expanded.
const MAX_DECODED_BYTES: usize = 100 * 1024 * 1024;

/// Validates one partition's `records`. The error is the Kafka error for the partition.
/// `require_keys` (a compacted topic): every record must have a key, as Kafka refuses keyless
/// records there with `INVALID_RECORD`.
pub fn validate_records(
    records: Option<&Bytes>,
    max_message_bytes: i32,
    require_keys: bool,
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
        if require_keys {
            let records = floe_format::decode_records(&bytes[b.range.clone()], MAX_DECODED_BYTES)
                .map_err(|e| (ResponseError::CorruptMessage, e.to_string()))?;
            // The cleaner keys records by offset: deltas must be exactly 0..n-1.
            if records
                .iter()
                .enumerate()
                .any(|(i, r)| i64::from(r.offset_delta) != i as i64)
            {
                return Err((
                    ResponseError::InvalidRecord,
                    "record offset deltas must be 0, 1, 2, ...".into(),
                ));
            }
            if records.iter().any(|r| r.key.is_none()) {
                return Err((
                    ResponseError::InvalidRecord,
                    "Compacted topic cannot accept message without key".into(),
                ));
            }
        }
        headers.push(b.header);
    }
    let producer = producer_of(&headers)?;
    Ok(ValidBatches {
        bytes: bytes.clone(),
        headers,
        producer,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use floe_format::records::{encode_batch, BatchSpec, Record};
    use floe_format::Compression;

    fn batch(deltas: &[i32], keyed: bool) -> Bytes {
        let records: Vec<Record> = deltas
            .iter()
            .map(|d| Record {
                offset_delta: *d,
                timestamp_delta: 0,
                key: keyed.then(|| Bytes::from_static(b"k")),
                value: Some(Bytes::from_static(b"v")),
                headers: Vec::new(),
            })
            .collect();
        encode_batch(&BatchSpec::default(), &records, Compression::Gzip).expect("batch")
    }

    #[test]
    fn compacted_topics_need_keys_and_plain_offset_deltas() {
        let ok = batch(&[0, 1], true);
        assert!(validate_records(Some(&ok), 1 << 20, true).is_ok());
        let keyless = batch(&[0, 1], false);
        assert!(validate_records(Some(&keyless), 1 << 20, false).is_ok());
        let err = validate_records(Some(&keyless), 1 << 20, true).expect_err("keyless");
        assert_eq!(err.0, ResponseError::InvalidRecord);
        // Deltas 1, 1: the span matches the count, but the cleaner could not trust them.
        let odd = batch(&[1, 1], true);
        assert!(validate_records(Some(&odd), 1 << 20, false).is_ok());
        let err = validate_records(Some(&odd), 1 << 20, true).expect_err("deltas");
        assert_eq!(err.0, ResponseError::InvalidRecord);
    }
}
