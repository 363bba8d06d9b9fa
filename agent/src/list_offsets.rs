//! ListOffsets: earliest (-2), latest (-1), max-timestamp (-3, KIP-734), earliest-local
//! (-4, the same as earliest: Floe has no tiered split) and exact lookup by timestamp, which finds the first index entry whose
//! max timestamp reaches the target and then the first record inside it that does.

use floe_format::batch::scan_batches;
use floe_format::records::decode_records;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use tracing::warn;

use crate::catalog::Topic;
use crate::dispatch::Ctx;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;

/// Bound on decompressed bytes when scanning a batch for a timestamp.
const MAX_UNCOMPRESSED: usize = 64 * 1024 * 1024;

/// What the request asks of every partition.
#[derive(Clone, Copy)]
struct Asked {
    version: i16,
    /// `read_committed` (v2+): "latest" is the last stable offset.
    read_committed: bool,
}

/// Handles ListOffsets.
pub async fn handle(ctx: &Ctx, req: ListOffsetsRequest, version: i16) -> ListOffsetsResponse {
    // read_committed (v2+): "latest" is the last stable offset.
    let read_committed = version >= 2 && req.isolation_level == 1;
    let mut topics = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let topic = ctx.catalog.lookup(t.name.as_str()).await;
        let mut tr = ListOffsetsTopicResponse::default().with_name(t.name.clone());
        for p in t.partitions {
            let base = ListOffsetsPartitionResponse::default()
                .with_partition_index(p.partition_index)
                .with_timestamp(-1)
                .with_offset(-1)
                .with_leader_epoch(-1);
            let r = match &topic {
                Some(topic) => {
                    one(
                        ctx,
                        topic,
                        p.partition_index,
                        p.timestamp,
                        p.current_leader_epoch,
                        base,
                        Asked {
                            version,
                            read_committed,
                        },
                    )
                    .await
                }
                None => base.with_error_code(ResponseError::UnknownTopicOrPartition.code()),
            };
            tr.partitions.push(r);
        }
        topics.push(tr);
    }
    ListOffsetsResponse::default().with_topics(topics)
}

async fn one(
    ctx: &Ctx,
    topic: &Topic,
    partition: i32,
    timestamp: i64,
    current_leader_epoch: i32,
    base: ListOffsetsPartitionResponse,
    asked: Asked,
) -> ListOffsetsPartitionResponse {
    let Asked {
        version,
        read_committed,
    } = asked;
    let marks = if partition >= 0 && partition < topic.partitions {
        ctx.catalog.marks(topic.id, partition)
    } else {
        None
    };
    let Some(marks) = marks else {
        return base.with_error_code(ResponseError::UnknownTopicOrPartition.code());
    };
    if let Err(e) = crate::epochs::check_current_epoch(current_leader_epoch, &marks) {
        return base.with_error_code(e.code());
    }
    // leader_epoch exists from v4; the encoder refuses a non-default value before that.
    let base = if version >= 4 {
        base.with_leader_epoch(marks.leader_epoch)
    } else {
        base
    };
    match timestamp {
        LATEST if read_committed => base.with_offset(marks.stable()),
        LATEST => base.with_offset(marks.high_watermark),
        EARLIEST | EARLIEST_LOCAL => base.with_offset(marks.log_start_offset),
        MAX_TIMESTAMP => match max_timestamp(ctx, topic, partition).await {
            Ok(Some((offset, found_ts))) => base.with_offset(offset).with_timestamp(found_ts),
            Ok(None) => base,
            Err(code) => base.with_error_code(code.code()),
        },
        ts if ts >= 0 => match by_timestamp(ctx, topic, partition, ts).await {
            Ok(Some((offset, found_ts))) => base.with_offset(offset).with_timestamp(found_ts),
            Ok(None) => base,
            Err(code) => base.with_error_code(code.code()),
        },
        _ => base.with_error_code(ResponseError::InvalidRequest.code()),
    }
}

/// The offset and timestamp of the first record with timestamp >= `ts`.
async fn by_timestamp(
    ctx: &Ctx,
    topic: &Topic,
    partition: i32,
    ts: i64,
) -> Result<Option<(i64, i64)>, ResponseError> {
    let storage = |e: String| {
        warn!(topic = %topic.name, partition, error = %e, "timestamp lookup failed");
        ResponseError::KafkaStorageError
    };
    let entry = match ctx
        .metadata
        .find_by_timestamp(topic.id, partition, ts)
        .await
    {
        Ok(Some(e)) => e,
        Ok(None) => return Ok(None),
        Err(e) => return Err(storage(e.to_string())),
    };
    let chunk = ctx
        .cache
        .get(
            &entry.object_key,
            entry.object_size,
            entry.byte_offset,
            entry.byte_len,
        )
        .await
        .map_err(|e| storage(e.to_string()))?;
    let batches = scan_batches(&chunk).map_err(|e| storage(e.to_string()))?;
    // Segments carry real offsets (a cleaned one has gaps); WAL chunks placeholders.
    let real_offsets = floe_format::keys::is_segment(&entry.object_key);
    let mut base = entry.base_offset;
    for b in batches {
        let h = b.header;
        if real_offsets {
            base = h.base_offset;
        }
        // A batch's max timestamp is the max of its records' (CreateTime), so the first
        // batch reaching `ts` holds the answer.
        if h.max_timestamp >= ts {
            let records = decode_records(&chunk[b.range.clone()], MAX_UNCOMPRESSED)
                .map_err(|e| storage(e.to_string()))?;
            for r in records {
                let rts = h.base_timestamp + r.timestamp_delta;
                if rts >= ts {
                    return Ok(Some((base + i64::from(r.offset_delta), rts)));
                }
            }
        }
        base += h.offset_count();
    }
    Ok(None)
}

/// The offset and timestamp of the record with the partition's largest timestamp (the
/// lowest offset among ties), for MAX_TIMESTAMP.
async fn max_timestamp(
    ctx: &Ctx,
    topic: &Topic,
    partition: i32,
) -> Result<Option<(i64, i64)>, ResponseError> {
    let storage = |e: String| {
        warn!(topic = %topic.name, partition, error = %e, "max timestamp lookup failed");
        ResponseError::KafkaStorageError
    };
    let entry = match ctx.metadata.find_max_timestamp(topic.id, partition).await {
        Ok(Some(e)) => e,
        Ok(None) => return Ok(None),
        Err(e) => return Err(storage(e.to_string())),
    };
    let chunk = ctx
        .cache
        .get(
            &entry.object_key,
            entry.object_size,
            entry.byte_offset,
            entry.byte_len,
        )
        .await
        .map_err(|e| storage(e.to_string()))?;
    let batches = scan_batches(&chunk).map_err(|e| storage(e.to_string()))?;
    // Segments carry real offsets (a cleaned one has gaps); WAL chunks placeholders.
    let real_offsets = floe_format::keys::is_segment(&entry.object_key);
    let mut base = entry.base_offset;
    for b in batches {
        let h = b.header;
        if real_offsets {
            base = h.base_offset;
        }
        if h.max_timestamp == entry.max_timestamp_ms {
            let records = decode_records(&chunk[b.range.clone()], MAX_UNCOMPRESSED)
                .map_err(|e| storage(e.to_string()))?;
            if let Some(r) = records
                .iter()
                .find(|r| h.base_timestamp + r.timestamp_delta == h.max_timestamp)
            {
                return Ok(Some((base + i64::from(r.offset_delta), h.max_timestamp)));
            }
            // A batch whose header max disagrees with its records: report the batch's last offset.
            return Ok(Some((
                base + i64::from(h.last_offset_delta),
                h.max_timestamp,
            )));
        }
        base += h.offset_count();
    }
    Ok(None)
}
