//! OffsetForLeaderEpoch (KIP-320): consumers validate their position after metadata changes
//! by asking where their last fetched epoch ends. Floe's partition epoch only moves forward;
//! today every partition stays at epoch 0 (one logical leader, the whole cluster), so the
//! current epoch ends at the high watermark and no other epoch exists.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

use crate::catalog::Marks;
use crate::dispatch::Ctx;

/// Kafka's "no epoch" answer.
const UNDEFINED: i64 = -1;

/// Checks a client's `current_leader_epoch` against the partition's, as Kafka does for every
/// request that carries one: -1 skips the check, older is fenced, newer is unknown to us.
pub fn check_current_epoch(current: i32, marks: &Marks) -> Result<(), ResponseError> {
    if current < 0 || current == marks.leader_epoch {
        Ok(())
    } else if current < marks.leader_epoch {
        Err(ResponseError::FencedLeaderEpoch)
    } else {
        Err(ResponseError::UnknownLeaderEpoch)
    }
}

/// The `(epoch, end offset)` answer for `requested` on a partition with `marks`.
fn end_offset(requested: i32, marks: &Marks) -> (i32, i64) {
    if requested == marks.leader_epoch {
        (marks.leader_epoch, marks.high_watermark)
    } else {
        (UNDEFINED as i32, UNDEFINED)
    }
}

/// Handles OffsetForLeaderEpoch.
pub async fn handle(ctx: &Ctx, req: OffsetForLeaderEpochRequest) -> OffsetForLeaderEpochResponse {
    let mut topics = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let topic = ctx.catalog.lookup(t.topic.as_str()).await;
        let partitions = t
            .partitions
            .into_iter()
            .map(|p| {
                let base = EpochEndOffset::default()
                    .with_partition(p.partition)
                    .with_leader_epoch(-1)
                    .with_end_offset(UNDEFINED);
                let marks = topic
                    .as_ref()
                    .filter(|t| p.partition >= 0 && p.partition < t.partitions)
                    .and_then(|t| ctx.catalog.marks(t.id, p.partition));
                let Some(marks) = marks else {
                    return base.with_error_code(ResponseError::UnknownTopicOrPartition.code());
                };
                if let Err(e) = check_current_epoch(p.current_leader_epoch, &marks) {
                    return base.with_error_code(e.code());
                }
                let (epoch, offset) = end_offset(p.leader_epoch, &marks);
                base.with_leader_epoch(epoch).with_end_offset(offset)
            })
            .collect();
        topics.push(
            OffsetForLeaderTopicResult::default()
                .with_topic(t.topic)
                .with_partitions(partitions),
        );
    }
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marks(epoch: i32) -> Marks {
        Marks {
            high_watermark: 42,
            log_start_offset: 0,
            leader_epoch: epoch,
            last_stable_offset: 42,
            abort_count: 0,
        }
    }

    #[test]
    fn current_epoch_check_follows_kafka() {
        assert!(check_current_epoch(-1, &marks(3)).is_ok());
        assert!(check_current_epoch(3, &marks(3)).is_ok());
        assert_eq!(
            check_current_epoch(2, &marks(3)),
            Err(ResponseError::FencedLeaderEpoch)
        );
        assert_eq!(
            check_current_epoch(4, &marks(3)),
            Err(ResponseError::UnknownLeaderEpoch)
        );
    }

    #[test]
    fn current_epoch_ends_at_high_watermark() {
        assert_eq!(end_offset(0, &marks(0)), (0, 42));
        assert_eq!(end_offset(5, &marks(0)), (-1, -1));
        assert_eq!(end_offset(-1, &marks(0)), (-1, -1));
    }
}
