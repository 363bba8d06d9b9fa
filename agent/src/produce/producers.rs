//! InitProducerId for idempotent producers. The id comes from the metadata store, so it is
//! unique across agents; the sequence checks happen where offsets are assigned (the
//! sequencer), so a retry that reaches another agent is still recognised as a duplicate.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use tracing::warn;

use crate::dispatch::Ctx;

/// InitProducerId v0–5. A transactional id is refused until transactions exist.
pub async fn init_producer_id(ctx: &Ctx, req: InitProducerIdRequest) -> InitProducerIdResponse {
    let fail = |e: ResponseError| {
        InitProducerIdResponse::default()
            .with_error_code(e.code())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
    };
    if req.transactional_id.as_ref().is_some_and(|t| !t.is_empty()) {
        // Transactional producers find no transaction coordinator (FindCoordinator says
        // so) and should not get here.
        return fail(ResponseError::CoordinatorNotAvailable);
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
