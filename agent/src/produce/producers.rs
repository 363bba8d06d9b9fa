//! InitProducerId for idempotent producers (transactional ones: `txn.rs`). The id comes from the metadata store, so it is
//! unique across agents; the sequence checks happen where offsets are assigned (the
//! sequencer), so a retry that reaches another agent is still recognised as a duplicate.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use tracing::warn;

use crate::dispatch::Ctx;

/// InitProducerId v0–5: a transactional id goes to the transaction coordinator.
pub async fn init_producer_id(ctx: &Ctx, req: InitProducerIdRequest) -> InitProducerIdResponse {
    let fail = |e: ResponseError| {
        InitProducerIdResponse::default()
            .with_error_code(e.code())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
    };
    if let Some(id) = req.transactional_id.as_ref().filter(|t| !t.is_empty()) {
        // KIP-360: a producer re-initialising names the id and epoch it holds.
        let expected = (req.producer_id.0 >= 0).then_some((req.producer_id.0, req.producer_epoch));
        return crate::txn::init_producer_id(
            ctx,
            id.as_str(),
            req.transaction_timeout_ms,
            expected,
        )
        .await;
    }
    // A re-initialising idempotent producer (KIP-360 sends its old id and epoch) simply gets
    // a fresh id: its sequences restart at 0 either way.
    match ctx.metadata.new_producer_id().await {
        Ok(id) => InitProducerIdResponse::default()
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(0),
        Err(e) => {
            warn!(error = %e, "allocating a producer id failed");
            fail(ResponseError::CoordinatorNotAvailable)
        }
    }
}
