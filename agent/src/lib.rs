//! The Floe agent: a stateless process that speaks the Kafka protocol.
//!
//! A produce goes `server` → `connection` → `dispatch` → `produce::{validate, batcher,
//! commit}`: batches from every connection are appended to one open WAL object, which is
//! sealed, uploaded, committed through the metadata service and only then acknowledged.
//! A fetch goes `dispatch` → `fetch::{index, cache, long_poll}`: offsets are looked up in
//! the (cached) offset index, bytes come through the zone cache (`fetch::cache`, shared with
//! the other agents of the zone), and base offsets are rewritten on the way out.

pub mod admin;
pub mod catalog;
pub mod config;
pub mod configs;
pub mod connection;
pub mod delete_records;
pub mod dispatch;
pub mod epochs;
pub mod error;
pub mod fetch;
pub mod fleet;
pub mod groups;
pub mod list_offsets;
pub mod membership;
pub mod produce;
pub mod server;
pub mod txn;
pub mod zone;

pub use config::AgentConfig;
pub use error::AgentError;
pub use server::{Agent, AgentDeps};
