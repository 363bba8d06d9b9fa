//! Shared support of the agent's integration tests: a small Kafka wire client, record-batch
//! builders, agents wired in-process over real stores (SQLite or PostgreSQL metadata, local
//! directory or S3 objects), and fault-injecting wrappers of the real traits.
//!
//! Each test binary uses a different part of it.
#![allow(dead_code)]

pub mod batches;
pub mod client;
pub mod faults;
pub mod harness;
pub mod s3;
