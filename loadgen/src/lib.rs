//! `floe bench`: a Kafka load generator on librdkafka (the `rdkafka` crate), so its figures
//! mean the same against Floe and against any Kafka-compatible server.
//!
//! Flow of [`run`]: create a fresh topic ([`topic`]) → scrape the agents' `/metrics` and the
//! processes' CPU ([`scrape`]) → start consumers that `assign()` explicit partitions from the
//! beginning ([`consume`]; Floe has no consumer groups yet) → start producers that stamp each
//! payload with its send time ([`produce`]) → print a progress line each second → drain →
//! scrape again → a [`result::BenchResult`] (written as JSON by the caller).

pub mod config;
pub mod consume;
pub mod groups;
pub mod produce;
pub mod result;
pub mod scrape;
pub mod stats;
pub mod topic;

use std::io::{IsTerminal, Write};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use config::{parse_duration, BenchConfig};
pub use result::BenchResult;

#[derive(Debug, thiserror::Error)]
pub enum LoadgenError {
    #[error("kafka client: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("invalid setting: {0}")]
    Config(String),
    #[error("scraping {addr}: {reason}")]
    Scrape { addr: String, reason: String },
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("a worker thread panicked")]
    Worker,
}

/// Runs one benchmark. Blocks the calling thread for about `duration` plus the drain.
pub fn run(cfg: &BenchConfig) -> Result<BenchResult, LoadgenError> {
    cfg.validate()?;
    let topic = cfg.topic_name();
    topic::create(cfg, &topic)?;
    let before = scrape::Snapshot::take(&cfg.admin, &cfg.floe_pids)?;

    let base = Instant::now();
    let shared = Arc::new(stats::Shared::default());
    let consumers = consume::start(cfg, &topic, base, shared.clone())?;
    let producers = produce::start(cfg, &topic, base, shared.clone())?;

    // Progress while producing.
    let tty = std::io::stderr().is_terminal();
    let mut last = (0u64, 0u64, 0u64, Instant::now());
    while !producers.iter().all(|h| h.is_finished()) {
        std::thread::sleep(Duration::from_millis(200));
        if last.3.elapsed() >= Duration::from_secs(1) {
            last = progress(&shared, base, last, tty);
        }
    }
    let produce_stats = produce::join(producers)?;
    let produce_elapsed = base.elapsed();

    // Drain: consumers stop when they have everything the producers had acknowledged.
    let drain_deadline = Instant::now() + cfg.drain_timeout;
    while cfg.consumers > 0
        && shared.consumed_records.load(Ordering::Acquire)
            < shared.acked_records.load(Ordering::Acquire)
        && Instant::now() < drain_deadline
    {
        std::thread::sleep(Duration::from_millis(50));
        if last.3.elapsed() >= Duration::from_secs(1) {
            last = progress(&shared, base, last, tty);
        }
    }
    shared.stop_consumers.store(true, Ordering::Release);
    let consume_stats = consume::join(consumers)?;
    if tty {
        eprintln!();
    }
    let after = scrape::Snapshot::take(&cfg.admin, &cfg.floe_pids)?;
    Ok(result::build(
        cfg,
        &topic,
        produce_stats,
        produce_elapsed,
        consume_stats,
        &before,
        &after,
    ))
}

fn progress(
    s: &stats::Shared,
    base: Instant,
    last: (u64, u64, u64, Instant),
    tty: bool,
) -> (u64, u64, u64, Instant) {
    let now = Instant::now();
    let dt = now.duration_since(last.3).as_secs_f64().max(1e-9);
    let acked = s.acked_records.load(Ordering::Relaxed);
    let acked_bytes = s.acked_bytes.load(Ordering::Relaxed);
    let consumed_bytes = s.consumed_bytes.load(Ordering::Relaxed);
    let line = format!(
        "[{:>5.1}s] produce {:>8.2} MB/s {:>9.0} rec/s | consume {:>8.2} MB/s | acked {} consumed {} errors {}",
        base.elapsed().as_secs_f64(),
        (acked_bytes - last.1) as f64 / dt / 1e6,
        (acked - last.0) as f64 / dt,
        (consumed_bytes - last.2) as f64 / dt / 1e6,
        acked,
        s.consumed_records.load(Ordering::Relaxed),
        s.errors.load(Ordering::Relaxed),
    );
    let mut err = std::io::stderr().lock();
    let _ = if tty {
        write!(err, "\r{line}")
    } else {
        writeln!(err, "{line}")
    };
    let _ = err.flush();
    (acked, acked_bytes, consumed_bytes, now)
}
