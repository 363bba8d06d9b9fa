//! `floe cost`: turns a workload (and, optionally, the counters a `floe bench` run measured)
//! into Floe's monthly AWS bill beside the bill of a classic 3-zone, RF=3 Kafka cluster.
//!
//! Flow: [`prices::Prices`] (a versioned TOML file, embedded, overridable) and
//! [`model::Workload`] + [`model::Ratios`] (defaults, or measured by [`bench::BenchInput`]) go
//! into [`model::compute`], which returns a [`model::Report`]: one [`model::Line`] per bill item,
//! each carrying its formula with the numbers substituted. [`render`] prints it as text, SVG
//! and HTML. Everything here is pure: no I/O happens in this crate except in the caller.

pub mod bench;
pub mod model;
pub mod prices;
pub mod render;

/// Errors of the cost model: bad prices files, bad bench files, bad workloads.
#[derive(Debug, thiserror::Error)]
pub enum CostError {
    #[error("invalid prices file: {0}")]
    Prices(#[from] toml::de::Error),
    #[error("invalid bench result: {0}")]
    Bench(#[from] serde_json::Error),
    #[error("invalid input: {0}")]
    Invalid(String),
}
