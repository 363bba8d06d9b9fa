//! DeleteRecords: moves partitions' log start offsets forward (through the metadata service,
//! which drops the index entries wholly below; the compactor deletes the objects nothing
//! references any more once the grace period has passed).

use floe_metadata::{LifecycleCall, LifecycleReply, LogStartTarget, MetadataError};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
use tracing::warn;

use crate::dispatch::Ctx;

/// Handles a DeleteRecords request: each partition independently.
pub async fn handle(ctx: &Ctx, req: DeleteRecordsRequest) -> DeleteRecordsResponse {
    let mut topics = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let topic = ctx.catalog.lookup(t.name.as_str()).await;
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for p in t.partitions {
            let result = DeleteRecordsPartitionResult::default()
                .with_partition_index(p.partition_index)
                .with_low_watermark(-1);
            let topic = match &topic {
                Some(topic) if p.partition_index >= 0 && p.partition_index < topic.partitions => {
                    topic
                }
                _ => {
                    partitions.push(
                        result.with_error_code(ResponseError::UnknownTopicOrPartition.code()),
                    );
                    continue;
                }
            };
            // As Kafka: records of a topic without `delete` in its cleanup.policy are only
            // ever removed by compaction.
            let policy = topic
                .configs
                .get("cleanup.policy")
                .map(String::as_str)
                .unwrap_or("delete");
            if !policy.split(',').any(|p| p.trim() == "delete") {
                partitions.push(result.with_error_code(ResponseError::PolicyViolation.code()));
                continue;
            }
            let call = LifecycleCall::AdvanceLogStart {
                topic_id: topic.id,
                partition: p.partition_index,
                target: LogStartTarget::Offset(p.offset),
            };
            let result = match ctx.metadata.lifecycle(call).await {
                Ok(LifecycleReply::Watermark(mark)) => {
                    // Answer from this agent's own view at once (ListOffsets, Fetch), before
                    // the change feed brings it round.
                    ctx.catalog.advance(std::slice::from_ref(&mark));
                    result.with_low_watermark(mark.log_start_offset)
                }
                Ok(other) => {
                    warn!(?other, "unexpected answer to AdvanceLogStart");
                    result.with_error_code(ResponseError::UnknownServerError.code())
                }
                Err(MetadataError::UnknownTopicId(_)) => {
                    result.with_error_code(ResponseError::UnknownTopicOrPartition.code())
                }
                Err(e) => {
                    if e.is_retriable() {
                        warn!(topic = %topic.name, partition = p.partition_index, error = %e, "DeleteRecords failed");
                    }
                    result.with_error_code(crate::error::kafka_error(&e).code())
                }
            };
            partitions.push(result);
        }
        topics.push(
            DeleteRecordsTopicResult::default()
                .with_name(t.name)
                .with_partitions(partitions),
        );
    }
    DeleteRecordsResponse::default().with_topics(topics)
}
