//! The produce path: `validate` checks a request's record batches, `batcher` appends them
//! to the agent's open WAL object and seals it, `commit` uploads and commits sealed objects
//! in seal order and answers the producers. `handle` ties them to the Kafka request.

pub mod batcher;
pub mod commit;
pub mod handle;
pub mod producers;
pub mod validate;

pub use batcher::{AppendError, AppendReply, Appended, Batcher, PartAppend};
