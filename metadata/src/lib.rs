//! Floe's metadata service: the sequencer that assigns offsets, the topic catalogue and
//! the offset index, stored in PostgreSQL (production) or SQLite (embedded playground).
//!
//! Agents and the compactor reach it through [`Metadata`], implemented in-process by
//! [`MetadataService`] and over HTTP by [`HttpMetadataClient`].

pub mod client;
pub mod error;
pub mod groups;
pub mod http;
pub mod sequencer;
pub mod service;
pub mod store;
pub mod types;

pub use client::HttpMetadataClient;
pub use error::{MetadataError, Result};
pub use groups::{GroupCall, GroupCoordinator, GroupReply, GroupSettings};
pub use service::{Metadata, MetadataService, WatchBatch, WatchCursor};
pub use store::{MetadataStore, PostgresStore, SqliteStore};
pub use types::*;

#[cfg(any(test, feature = "testing"))]
pub mod testing;
