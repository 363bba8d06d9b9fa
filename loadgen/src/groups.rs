//! `floe bench-groups`: consumer-group figures with librdkafka.
//!
//! * Rebalance time: `members` consumers of one group subscribe to a `partitions`-partition
//!   topic; once the assignment covers every partition exactly once and is balanced, one
//!   member leaves (a clean close) and the clock runs until the survivors are there again. Classic protocol (client-side assignor) or KIP-848 (`group.protocol=consumer`).
//! * Offset-commit throughput: `committers` threads, each a consumer of its own group with
//!   manually assigned partitions, commit synchronously in a loop; commits per second and
//!   commit latency percentiles.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde::Serialize;

use crate::LoadgenError;

/// What to measure.
#[derive(Debug, Clone)]
pub struct GroupBenchConfig {
    /// Bootstrap servers.
    pub bootstrap: String,
    /// Group members for the rebalance measurement.
    pub members: usize,
    /// Partitions of the topic.
    pub partitions: i32,
    /// `classic` or `consumer` (KIP-848).
    pub protocol: String,
    /// Classic: `partition.assignment.strategy`; KIP-848: `group.remote.assignor`.
    pub assignor: Option<String>,
    /// Rebalances to measure (each with a fresh group).
    pub rounds: usize,
    /// Threads committing offsets.
    pub committers: usize,
    /// How long to commit.
    pub commit_duration: Duration,
    /// Give up waiting for an assignment after this long.
    pub timeout: Duration,
}

/// The figures, also written as JSON.
#[derive(Debug, Clone, Serialize)]
pub struct GroupBenchResult {
    /// `classic` or `consumer`.
    pub protocol: String,
    /// Assignor asked for, if any.
    pub assignor: Option<String>,
    /// Members before one left.
    pub members: usize,
    /// Partitions.
    pub partitions: i32,
    /// Per round: subscribe → every partition assigned exactly once, balanced (ms).
    pub first_assignment_ms: Vec<f64>,
    /// Per round: one member closed → the rest cover every partition again (ms).
    pub rebalance_ms: Vec<f64>,
    /// Threads committing.
    pub committers: usize,
    /// Synchronous offset commits per second, all threads together.
    pub commits_per_second: f64,
    /// Commit latency p50 (ms).
    pub commit_p50_ms: f64,
    /// Commit latency p99 (ms).
    pub commit_p99_ms: f64,
}

impl GroupBenchConfig {
    fn base(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap)
            .set("client.id", "floe-bench-groups");
        c
    }

    fn member(&self, group: &str) -> ClientConfig {
        let mut c = self.base();
        c.set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest");
        if self.protocol == "consumer" {
            c.set("group.protocol", "consumer");
            if let Some(a) = &self.assignor {
                c.set("group.remote.assignor", a);
            }
        } else if let Some(a) = &self.assignor {
            c.set("partition.assignment.strategy", a);
        }
        c
    }
}

/// Partitions of `topic` each member holds.
fn holdings(members: &[BaseConsumer], topic: &str) -> Vec<Vec<i32>> {
    members
        .iter()
        .map(|m| {
            m.assignment()
                .map(|tpl| {
                    tpl.elements_for_topic(topic)
                        .iter()
                        .map(|e| e.partition())
                        .collect()
                })
                .unwrap_or_default()
        })
        .collect()
}

/// Polls every member until their assignments cover `0..partitions` exactly once and are
/// balanced (sizes differ by at most one).
fn wait_covered(
    members: &[BaseConsumer],
    topic: &str,
    partitions: i32,
    timeout: Duration,
) -> Result<(), LoadgenError> {
    let deadline = Instant::now() + timeout;
    loop {
        for m in members {
            // Serves rebalance callbacks (assign/unassign); no records are produced.
            let _ = m.poll(Duration::from_millis(5));
        }
        let held = holdings(members, topic);
        let total: usize = held.iter().map(Vec::len).sum();
        let distinct: BTreeSet<i32> = held.iter().flatten().copied().collect();
        let sizes = held.iter().map(Vec::len);
        let balanced = sizes.clone().max().unwrap_or(0) - sizes.min().unwrap_or(0) <= 1;
        if total == partitions as usize && distinct.len() == partitions as usize && balanced {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(LoadgenError::Config(format!(
                "no complete assignment within {timeout:?}: {held:?}"
            )));
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1_000.0
}

/// One rebalance round on a fresh group. Returns (first assignment, rebalance) durations.
fn round(cfg: &GroupBenchConfig, topic: &str) -> Result<(Duration, Duration), LoadgenError> {
    let group = format!("floe-bench-group-{:08x}", rand::random::<u32>());
    let started = Instant::now();
    let mut members = Vec::with_capacity(cfg.members);
    for _ in 0..cfg.members {
        let c: BaseConsumer = cfg.member(&group).create()?;
        c.subscribe(&[topic])?;
        members.push(c);
    }
    wait_covered(&members, topic, cfg.partitions, cfg.timeout)?;
    let first = started.elapsed();
    let leaving = members
        .pop()
        .ok_or_else(|| LoadgenError::Config("no members".into()))?;
    let left = Instant::now();
    // A clean close: LeaveGroup (classic) or a heartbeat with epoch -1 (KIP-848).
    leaving.unsubscribe();
    drop(leaving);
    wait_covered(&members, topic, cfg.partitions, cfg.timeout)?;
    let rebalance = left.elapsed();
    for m in &members {
        m.unsubscribe();
    }
    Ok((first, rebalance))
}

/// Commits in a loop for the configured time; returns commit latencies.
fn committer(
    cfg: &GroupBenchConfig,
    topic: &str,
    index: usize,
    stop: &AtomicBool,
) -> Result<Vec<Duration>, LoadgenError> {
    let mut c = cfg.base();
    c.set(
        "group.id",
        format!("floe-bench-commits-{index}-{:08x}", rand::random::<u32>()),
    )
    .set("enable.auto.commit", "false");
    let consumer: BaseConsumer = c.create()?;
    let mut latencies = Vec::new();
    let mut offset = 0i64;
    while !stop.load(Ordering::Relaxed) {
        offset += 1;
        let mut tpl = TopicPartitionList::new();
        // Each commit names every partition, as a consumer owning them all would.
        for p in 0..cfg.partitions {
            tpl.add_partition_offset(topic, p, Offset::Offset(offset))?;
        }
        let t = Instant::now();
        consumer.commit(&tpl, CommitMode::Sync)?;
        latencies.push(t.elapsed());
    }
    Ok(latencies)
}

/// Runs the rebalance rounds, then the commit measurement.
pub fn run(cfg: &GroupBenchConfig) -> Result<GroupBenchResult, LoadgenError> {
    if cfg.members < 2 || cfg.partitions < 1 || cfg.rounds < 1 || cfg.committers < 1 {
        return Err(LoadgenError::Config(
            "need --members >= 2, --partitions >= 1, --rounds >= 1, --committers >= 1".into(),
        ));
    }
    if cfg.protocol != "classic" && cfg.protocol != "consumer" {
        return Err(LoadgenError::Config(format!(
            "--protocol must be classic or consumer, got {:?}",
            cfg.protocol
        )));
    }
    let topic = format!("floe-bench-groups-{:08x}", rand::random::<u32>());
    crate::topic::create_named(&cfg.base(), &topic, cfg.partitions)?;
    let mut first_assignment_ms = Vec::new();
    let mut rebalance_ms = Vec::new();
    for r in 0..cfg.rounds {
        let (first, rebalance) = round(cfg, &topic)?;
        eprintln!(
            "round {}: first assignment {:.0} ms, rebalance after a member left {:.0} ms",
            r + 1,
            ms(first),
            ms(rebalance)
        );
        first_assignment_ms.push(ms(first));
        rebalance_ms.push(ms(rebalance));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let handles: Vec<_> = (0..cfg.committers)
        .map(|i| {
            let (cfg, topic, stop) = (cfg.clone(), topic.clone(), stop.clone());
            std::thread::spawn(move || committer(&cfg, &topic, i, &stop))
        })
        .collect();
    std::thread::sleep(cfg.commit_duration);
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for h in handles {
        latencies.extend(h.join().map_err(|_| LoadgenError::Worker)??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    let pct = |q: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * q).round() as usize)
            .map_or(0.0, |d| ms(*d))
    };
    Ok(GroupBenchResult {
        protocol: cfg.protocol.clone(),
        assignor: cfg.assignor.clone(),
        members: cfg.members,
        partitions: cfg.partitions,
        first_assignment_ms,
        rebalance_ms,
        committers: cfg.committers,
        commits_per_second: latencies.len() as f64 / elapsed,
        commit_p50_ms: pct(0.5),
        commit_p99_ms: pct(0.99),
    })
}
