//! Tracing set-up for the binary: `RUST_LOG`-style filtering, human-readable output on
//! stderr. Called once at start-up.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Installs the global tracing subscriber. `default_filter` applies when `RUST_LOG` is unset.
pub fn init(default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}
