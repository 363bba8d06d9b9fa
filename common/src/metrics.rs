//! Prometheus metrics of every role, in one registry per process. Families are created
//! up front so that `/metrics` shows them (at zero) before the first event.

use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Labels of per-API request metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApiLabels {
    /// Kafka API name, e.g. `Produce`.
    pub api: String,
    /// Request version the client used (which versions clients pick is worth seeing).
    pub version: i16,
    /// Kafka error name, `NONE` on success.
    pub error: String,
}

/// Labels of per-API latency.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApiOnly {
    /// Kafka API name.
    pub api: String,
}

/// Labels of object-store calls: operation (`put`, `get`, `delete`, `list`) and purpose
/// (`wal`, `fetch`, `compaction`, ...), so `floe cost` can price each.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ObjectLabels {
    /// Operation.
    pub op: &'static str,
    /// Why the call was made.
    pub purpose: &'static str,
    /// `ok` or `error`.
    pub outcome: &'static str,
}

/// Direction of bytes between a client and an agent.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DirectionLabels {
    /// `produce` (client to agent) or `fetch` (agent to client).
    pub direction: &'static str,
}

/// Labels of cache metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheLabels {
    /// Which cache.
    pub cache: &'static str,
}

fn latency() -> Histogram {
    // 0.1 ms .. ~26 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 19))
}

/// All metric families of the process.
pub struct Metrics {
    registry: Mutex<Registry>,
    /// Kafka requests by API and error.
    pub requests: Family<ApiLabels, Counter>,
    /// Kafka request latency by API.
    pub request_seconds: Family<ApiOnly, Histogram, fn() -> Histogram>,
    /// Open Kafka connections.
    pub connections: Gauge,
    /// Connections closed because of a bad frame.
    pub bad_frames: Counter,
    /// Produce latency part: time a batch waited in the open WAL object before sealing.
    pub produce_flush_wait_seconds: Histogram,
    /// Produce latency part: object upload.
    pub produce_upload_seconds: Histogram,
    /// Produce latency part: metadata commit.
    pub produce_commit_seconds: Histogram,
    /// Produce latency part: the agent's own share (request latency minus flush wait, upload
    /// and commit), with fine buckets.
    pub produce_agent_overhead_seconds: Histogram,
    /// Bytes of record batches accepted by Produce.
    pub produce_bytes: Counter,
    /// WAL objects sealed.
    pub wal_objects: Counter,
    /// Idempotent producers' retries recognised as already committed (and not stored again).
    pub produce_duplicates: Counter,
    /// Idempotent producers' appends refused for their sequence or epoch.
    pub produce_sequence_errors: Counter,
    /// Transactions ended, by outcome: `commit`, `abort` (EndTxn through this agent),
    /// `timeout` (aborted by this metadata process).
    pub transactions_ended: Family<OutcomeLabels, Counter>,
    /// Bytes of record batches returned by Fetch.
    pub fetch_bytes: Counter,
    /// Object-store requests.
    pub object_requests: Family<ObjectLabels, Counter>,
    /// Object-store bytes moved.
    pub object_bytes: Family<ObjectLabels, Counter>,
    /// Sequencer: database transaction latency per group commit.
    pub sequencer_commit_seconds: Histogram,
    /// Sequencer: objects per group commit.
    pub sequencer_group_objects: Histogram,
    /// Sequencer: failed group commits.
    pub sequencer_failures: Counter,
    /// Record bytes exchanged with clients of another zone than the agent's (target: 0).
    pub cross_zone_bytes: Family<DirectionLabels, Counter>,
    /// CPU seconds this process has used (user + system), read at scrape time.
    pub process_cpu_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    /// Cache hits.
    pub cache_hits: Family<CacheLabels, Counter>,
    /// Cache misses.
    pub cache_misses: Family<CacheLabels, Counter>,
    /// Metadata answers that listed every agent because the client's zone had none alive.
    pub zone_fallbacks: Counter,
    /// Block bytes moved between the agents of a zone: `fetched` from a block's owner,
    /// `served` to another agent, `pushed` to an owner on write, `push_received`.
    pub cache_peer_bytes: Family<DirectionLabels, Counter>,
    /// Round trip of a block read from its owner (the zone cache's peer-fetch overhead).
    pub cache_peer_fetch_seconds: Histogram,
    /// Block reads done straight from the object store because the block's owner did not
    /// answer.
    pub cache_peer_fallbacks: Counter,
    /// Blocks of freshly written objects that could not be pushed to their owner.
    pub cache_push_failures: Counter,
    /// Fetch partitions answered with a preferred read replica in the client's zone (KIP-392).
    pub fetch_preferred_replica: Counter,
    /// Live agents in this agent's view of the fleet.
    pub fleet_agents: Gauge,
    /// 1 while this compactor holds the life-cycle lease (does the work).
    pub compactor_leader: Gauge,
    /// Compactor passes by outcome (`ok`, `error`, `standby`).
    pub compactor_passes: Family<OutcomeLabels, Counter>,
    /// Duration of a compactor pass.
    pub compactor_pass_seconds: Histogram,
    /// Objects the compactor deleted, by reason (`unreferenced`, `orphan`).
    pub compactor_objects_deleted: Family<ReasonLabels, Counter>,
    /// Bytes of the objects the compactor deleted, by reason.
    pub compactor_bytes_deleted: Family<ReasonLabels, Counter>,
    /// Partitions whose log start offset retention moved.
    pub compactor_retention_moves: Counter,
    /// Objects unreferenced for longer than the grace period and not yet deleted, at the end
    /// of the last pass (the deletion backlog).
    pub compactor_backlog_objects: Gauge,
    /// Segments the compactor wrote and swapped in.
    pub compactor_segments: Counter,
    /// Bytes of the segments written.
    pub compactor_segment_bytes: Counter,
    /// Records removed from compacted topics (superseded by a later record of their key, or
    /// expired tombstones).
    pub compactor_records_cleaned: Counter,
    /// Chunks the compactor found unreadable (their runs are left unfolded).
    pub compactor_corrupt_chunks: Counter,
    /// Bytes of WAL chunks older than the segment delay not yet folded into segments, after
    /// the last pass (the compaction backlog).
    pub compactor_backlog_bytes: Gauge,
    /// 1 while this process coordinates consumer groups.
    pub group_coordinator_leader: Gauge,
    /// Consumer groups by type and state (on the coordinating process).
    pub groups: Family<GroupLabels, Gauge>,
    /// Members of all consumer groups.
    pub group_members: Gauge,
    /// Rebalances completed (classic generations, KIP-848 group epochs).
    pub group_rebalances: Counter,
    /// Offset commits stored.
    pub group_offset_commits: Counter,
    /// Records between a group's committed offset and the partition's high watermark.
    pub consumer_group_lag: Family<LagLabels, Gauge>,
}

/// Labels of outcomes.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// Outcome name.
    pub outcome: &'static str,
}

/// Labels of reasons.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// Reason name.
    pub reason: &'static str,
}

/// Labels of the consumer-group gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GroupLabels {
    /// `classic` or `consumer`.
    pub kind: String,
    /// Kafka state name.
    pub state: String,
}

/// Labels of consumer lag.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LagLabels {
    /// Group id.
    pub group: String,
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every family.
    pub fn new() -> Self {
        let mut r = Registry::with_prefix("floe");
        let m = Metrics {
            registry: Mutex::new(Registry::default()),
            requests: Family::default(),
            request_seconds: Family::new_with_constructor(latency),
            connections: Gauge::default(),
            bad_frames: Counter::default(),
            produce_flush_wait_seconds: latency(),
            produce_upload_seconds: latency(),
            produce_commit_seconds: latency(),
            // 10 µs .. ~160 ms.
            produce_agent_overhead_seconds: Histogram::new(exponential_buckets(0.00001, 1.5, 25)),
            produce_bytes: Counter::default(),
            wal_objects: Counter::default(),
            produce_duplicates: Counter::default(),
            produce_sequence_errors: Counter::default(),
            transactions_ended: Family::default(),
            fetch_bytes: Counter::default(),
            object_requests: Family::default(),
            object_bytes: Family::default(),
            sequencer_commit_seconds: latency(),
            sequencer_group_objects: Histogram::new(exponential_buckets(1.0, 2.0, 10)),
            sequencer_failures: Counter::default(),
            cross_zone_bytes: Family::default(),
            process_cpu_seconds: Gauge::default(),
            cache_hits: Family::default(),
            cache_misses: Family::default(),
            zone_fallbacks: Counter::default(),
            cache_peer_bytes: Family::default(),
            // 50 µs .. ~1.6 s.
            cache_peer_fetch_seconds: Histogram::new(exponential_buckets(0.00005, 2.0, 16)),
            cache_peer_fallbacks: Counter::default(),
            cache_push_failures: Counter::default(),
            fetch_preferred_replica: Counter::default(),
            fleet_agents: Gauge::default(),
            compactor_leader: Gauge::default(),
            compactor_passes: Family::default(),
            compactor_pass_seconds: latency(),
            compactor_objects_deleted: Family::default(),
            compactor_bytes_deleted: Family::default(),
            compactor_retention_moves: Counter::default(),
            compactor_backlog_objects: Gauge::default(),
            compactor_segments: Counter::default(),
            compactor_segment_bytes: Counter::default(),
            compactor_records_cleaned: Counter::default(),
            compactor_corrupt_chunks: Counter::default(),
            compactor_backlog_bytes: Gauge::default(),
            group_coordinator_leader: Gauge::default(),
            groups: Family::default(),
            group_members: Gauge::default(),
            group_rebalances: Counter::default(),
            group_offset_commits: Counter::default(),
            consumer_group_lag: Family::default(),
        };
        r.register(
            "kafka_requests",
            "Kafka requests by API, version and error code",
            m.requests.clone(),
        );
        r.register(
            "kafka_request_seconds",
            "Kafka request latency by API",
            m.request_seconds.clone(),
        );
        r.register(
            "kafka_connections",
            "Open Kafka connections",
            m.connections.clone(),
        );
        r.register(
            "kafka_bad_frames",
            "Connections closed for a malformed or oversized frame",
            m.bad_frames.clone(),
        );
        r.register(
            "produce_flush_wait_seconds",
            "Time produced data waited in the open WAL object",
            m.produce_flush_wait_seconds.clone(),
        );
        r.register(
            "produce_upload_seconds",
            "WAL object upload latency",
            m.produce_upload_seconds.clone(),
        );
        r.register(
            "produce_commit_seconds",
            "Metadata commit latency seen by the agent",
            m.produce_commit_seconds.clone(),
        );
        r.register(
            "produce_agent_overhead_seconds",
            "Produce latency minus flush wait, upload and commit",
            m.produce_agent_overhead_seconds.clone(),
        );
        r.register(
            "produce_bytes",
            "Record batch bytes accepted by Produce",
            m.produce_bytes.clone(),
        );
        r.register("wal_objects", "WAL objects sealed", m.wal_objects.clone());
        r.register(
            "produce_duplicates",
            "Idempotent producer retries answered with the original offsets, not stored again",
            m.produce_duplicates.clone(),
        );
        r.register(
            "produce_sequence_errors",
            "Idempotent producer appends refused for their sequence or epoch",
            m.produce_sequence_errors.clone(),
        );
        r.register(
            "transactions_ended",
            "Transactions ended, by outcome: commit and abort by EndTxn (counted by the agent that \
             served it), timeout (aborted by this metadata process after transaction.timeout.ms)",
            m.transactions_ended.clone(),
        );
        r.register(
            "fetch_bytes",
            "Record batch bytes returned by Fetch",
            m.fetch_bytes.clone(),
        );
        r.register(
            "object_store_requests",
            "Object-store requests by operation and purpose",
            m.object_requests.clone(),
        );
        r.register(
            "object_store_bytes",
            "Object-store bytes by operation and purpose",
            m.object_bytes.clone(),
        );
        r.register(
            "sequencer_commit_seconds",
            "Database transaction latency of one group commit",
            m.sequencer_commit_seconds.clone(),
        );
        r.register(
            "sequencer_group_objects",
            "Objects per group commit",
            m.sequencer_group_objects.clone(),
        );
        r.register(
            "sequencer_failures",
            "Failed group commits",
            m.sequencer_failures.clone(),
        );
        r.register(
            "cross_zone_bytes",
            "Record bytes exchanged with clients of another zone (client.rack or a floe_az= client.id token)",
            m.cross_zone_bytes.clone(),
        );
        r.register(
            "process_cpu_seconds",
            "CPU seconds used by this process (user + system)",
            m.process_cpu_seconds.clone(),
        );
        r.register("cache_hits", "Cache hits", m.cache_hits.clone());
        r.register("cache_misses", "Cache misses", m.cache_misses.clone());
        r.register(
            "metadata_zone_fallbacks",
            "Metadata answers listing every agent because the client's zone had none alive",
            m.zone_fallbacks.clone(),
        );
        r.register(
            "cache_peer_bytes",
            "Block bytes between the agents of a zone (fetched, served, pushed, push_received)",
            m.cache_peer_bytes.clone(),
        );
        r.register(
            "cache_peer_fetch_seconds",
            "Round trip of a block range read from its owner in the zone",
            m.cache_peer_fetch_seconds.clone(),
        );
        r.register(
            "cache_peer_fallbacks",
            "Block reads done from the object store because the block's owner did not answer",
            m.cache_peer_fallbacks.clone(),
        );
        r.register(
            "cache_push_failures",
            "Blocks of freshly written objects not pushed to their owner",
            m.cache_push_failures.clone(),
        );
        r.register(
            "fetch_preferred_replica",
            "Fetch partitions answered with a preferred read replica of the client's zone (KIP-392)",
            m.fetch_preferred_replica.clone(),
        );
        r.register(
            "fleet_agents",
            "Live agents in this agent's view of the fleet",
            m.fleet_agents.clone(),
        );
        r.register(
            "compactor_leader",
            "1 while this compactor holds the life-cycle lease",
            m.compactor_leader.clone(),
        );
        r.register(
            "compactor_passes",
            "Compactor passes by outcome (ok, error, standby)",
            m.compactor_passes.clone(),
        );
        r.register(
            "compactor_pass_seconds",
            "Duration of a compactor pass",
            m.compactor_pass_seconds.clone(),
        );
        r.register(
            "compactor_objects_deleted",
            "Objects deleted by the compactor, by reason (unreferenced, orphan)",
            m.compactor_objects_deleted.clone(),
        );
        r.register(
            "compactor_bytes_deleted",
            "Bytes of objects deleted by the compactor, by reason",
            m.compactor_bytes_deleted.clone(),
        );
        r.register(
            "compactor_retention_moves",
            "Partitions whose log start offset retention moved",
            m.compactor_retention_moves.clone(),
        );
        r.register(
            "compactor_backlog_objects",
            "Objects past their grace period still awaiting deletion after the last pass",
            m.compactor_backlog_objects.clone(),
        );
        r.register(
            "compactor_segments",
            "Segments written and swapped into the offset index",
            m.compactor_segments.clone(),
        );
        r.register(
            "compactor_segment_bytes",
            "Bytes of segments written",
            m.compactor_segment_bytes.clone(),
        );
        r.register(
            "compactor_records_cleaned",
            "Records removed from compacted topics (superseded or expired tombstones)",
            m.compactor_records_cleaned.clone(),
        );
        r.register(
            "compactor_corrupt_chunks",
            "Chunks the compactor could not read back (left unfolded)",
            m.compactor_corrupt_chunks.clone(),
        );
        r.register(
            "compactor_backlog_bytes",
            "Bytes of WAL chunks past the segment delay not yet folded into segments",
            m.compactor_backlog_bytes.clone(),
        );
        r.register(
            "group_coordinator_leader",
            "1 while this process coordinates consumer groups",
            m.group_coordinator_leader.clone(),
        );
        r.register(
            "consumer_groups",
            "Consumer groups by type and state",
            m.groups.clone(),
        );
        r.register(
            "consumer_group_members",
            "Members of all consumer groups",
            m.group_members.clone(),
        );
        r.register(
            "consumer_group_rebalances",
            "Rebalances completed (classic generations and KIP-848 group epochs)",
            m.group_rebalances.clone(),
        );
        r.register(
            "consumer_group_offset_commits",
            "Offset commits stored",
            m.group_offset_commits.clone(),
        );
        r.register(
            "consumer_group_lag",
            "Records between a group's committed offset and the high watermark",
            m.consumer_group_lag.clone(),
        );
        *m.registry.lock().unwrap_or_else(|p| p.into_inner()) = r;
        m
    }

    /// Counts one Kafka request.
    pub fn request(&self, api: &str, version: i16, error: &str, seconds: f64) {
        self.requests
            .get_or_create(&ApiLabels {
                api: api.to_string(),
                version,
                error: error.to_string(),
            })
            .inc();
        self.request_seconds
            .get_or_create(&ApiOnly {
                api: api.to_string(),
            })
            .observe(seconds);
    }

    /// Counts a cache lookup.
    pub fn cache(&self, cache: &'static str, hit: bool) {
        let l = CacheLabels { cache };
        if hit {
            self.cache_hits.get_or_create(&l).inc();
        } else {
            self.cache_misses.get_or_create(&l).inc();
        }
    }

    /// Counts block bytes moved between agents of a zone.
    pub fn peer_bytes(&self, direction: &'static str, bytes: usize) {
        self.cache_peer_bytes
            .get_or_create(&DirectionLabels { direction })
            .inc_by(bytes as u64);
    }

    /// Renders the registry in the OpenMetrics text format.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        if let Some(cpu) = own_cpu_seconds() {
            self.process_cpu_seconds.set(cpu);
        }
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        prometheus_client::encoding::text::encode(&mut out, &registry)?;
        Ok(out)
    }
}

/// User + system CPU seconds of this process from `/proc/self/stat` (Linux); `None` elsewhere.
fn own_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may contain spaces; fields after its closing parenthesis are
    // plain. utime and stime are fields 14 and 15, in clock ticks (100 per second on Linux).
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn process_cpu_seconds_is_exported() {
        // Burn a little CPU so the figure is positive even in a fresh test process.
        let mut x = 1u64;
        for i in 0..50_000_000u64 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(i);
        }
        assert_ne!(x, 0);
        let cpu = super::own_cpu_seconds().expect("/proc/self/stat on Linux");
        assert!(cpu > 0.0, "cpu {cpu}");
        let text = super::Metrics::new().encode().expect("encode");
        let line = text
            .lines()
            .find(|l| l.starts_with("floe_process_cpu_seconds "))
            .expect("metric line");
        let v: f64 = line
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .expect("value");
        assert!(v > 0.0, "{line}");
    }
}
