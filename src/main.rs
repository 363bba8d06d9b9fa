//! The `floe` binary: one executable, one subcommand per role.
//!
//! * `floe playground`: metadata (SQLite), agent and compactor in one process, objects in a
//!   local directory: a whole cluster for a laptop.
//! * `floe metadata`: the metadata service on PostgreSQL (or SQLite), HTTP API.
//! * `floe agent`: a stateless Kafka agent against a metadata service and an object store.
//! * `floe compactor`: the compactor role.
//!
//! Settings come from flags, `FLOE_*` environment variables, and an optional TOML file
//! (`--config`); flags and environment win over the file.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use floe_agent::{Agent, AgentConfig, AgentDeps};
use floe_common::admin::{self, Readiness};
use floe_common::{Metrics, ObjectStoreUrl, Objects};
use floe_compactor::{Compactor, CompactorSettings};
use floe_metadata::sequencer::GroupStats;
use floe_metadata::service::{NowMs, ServiceSettings, StatsHook};
use floe_metadata::{
    GroupSettings, HttpMetadataClient, Metadata, MetadataService, MetadataStore, PostgresStore,
    SqliteStore,
};
use serde::Deserialize;
use tokio::sync::watch;
use tracing::{info, warn};

#[derive(Parser)]
#[command(
    name = "floe",
    version,
    about = "Diskless, Kafka-compatible streaming on object storage"
)]
struct Cli {
    #[command(subcommand)]
    role: Role,
}

#[derive(Subcommand)]
enum Role {
    /// All roles in one process: SQLite metadata, local-directory objects, Kafka on --listen.
    Playground(PlaygroundArgs),
    /// The metadata service (sequencer, topics, offset index) over HTTP.
    Metadata(MetadataArgs),
    /// A stateless Kafka agent.
    Agent(AgentArgs),
    /// The compactor role.
    Compactor(CompactorArgs),
    /// Lists what a WAL object file holds, from its own footer (no database needed).
    InspectWal(InspectArgs),
    /// Load generator on librdkafka: produce/consume throughput and latency, JSON result.
    Bench(BenchArgs),
    /// Consumer-group figures on librdkafka: rebalance time, offset-commit throughput.
    BenchGroups(BenchGroupsArgs),
    /// Monthly AWS bill of Floe beside classic RF=3 Kafka, every line with its formula.
    Cost(CostArgs),
}

#[derive(Args)]
struct BenchArgs {
    /// Kafka bootstrap address (Floe or any Kafka-compatible server).
    #[arg(long, default_value = "127.0.0.1:9092")]
    bootstrap: String,
    /// Topic (default: a fresh floe-bench-<random>, created with --partitions).
    #[arg(long)]
    topic: Option<String>,
    /// How long producers send, e.g. 60s, 500ms, 2m.
    #[arg(long, default_value = "60s", value_parser = floe_loadgen::parse_duration)]
    duration: std::time::Duration,
    /// Value size in bytes (the first 8 hold the send time).
    #[arg(long, default_value_t = 1024)]
    message_bytes: usize,
    /// Total records/s over all producers (default: as fast as possible).
    #[arg(long)]
    rate: Option<u64>,
    #[arg(long, default_value_t = 8)]
    partitions: i32,
    #[arg(long, default_value_t = 1)]
    producers: u32,
    /// Consumers, each assign()ing a share of the partitions from the beginning.
    #[arg(long, default_value_t = 1)]
    consumers: u32,
    /// 0, 1 or all.
    #[arg(long, default_value = "all")]
    acks: String,
    /// none, gzip, snappy or lz4.
    #[arg(long, default_value = "none")]
    compression: String,
    #[arg(long, default_value_t = 5)]
    linger_ms: u32,
    /// Client zone: client.id=floe_az=<zone> and client.rack=<zone>.
    #[arg(long)]
    zone: Option<String>,
    /// Agent admin address (host:port) to scrape /metrics from before and after; repeatable.
    #[arg(long)]
    admin: Vec<String>,
    /// PID of a local Floe process whose CPU time to measure from /proc; repeatable.
    #[arg(long)]
    floe_pid: Vec<u32>,
    /// How long consumers may take to catch up after producing stops.
    #[arg(long, default_value = "30s", value_parser = floe_loadgen::parse_duration)]
    drain_timeout: std::time::Duration,
    /// Write the JSON result here.
    #[arg(long)]
    output: Option<PathBuf>,
}

#[derive(Args)]
struct CostArgs {
    /// Produced MiB/s (1024 = 1 GiB/s).
    #[arg(long, default_value_t = 1024.0)]
    ingest_mibps: f64,
    /// Times each produced byte is read.
    #[arg(long, default_value_t = 1.0)]
    fanout: f64,
    #[arg(long, default_value_t = 7.0)]
    retention_days: f64,
    #[arg(long, default_value_t = 3)]
    zones: u32,
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// A `floe bench --output` JSON whose measured ratios replace the defaults.
    #[arg(long)]
    bench: Option<PathBuf>,
    /// A prices TOML replacing the embedded one (same fields).
    #[arg(long)]
    prices: Option<PathBuf>,
    /// Write a self-contained HTML report here.
    #[arg(long)]
    html: Option<PathBuf>,
    /// Write the SVG chart here.
    #[arg(long)]
    svg: Option<PathBuf>,
}

#[derive(Args)]
struct InspectArgs {
    /// Path of a WAL object (e.g. under the playground's data dir `objects/wal/`).
    path: PathBuf,
}

/// Agent settings shared by `playground` and `agent`. Unset flags keep the file's value
/// (or the default).
#[derive(Args, Clone, Default)]
struct AgentFlags {
    /// Kafka listener address.
    #[arg(long, env = "FLOE_LISTEN")]
    listen: Option<SocketAddr>,
    /// host:port advertised to clients (defaults to --listen).
    #[arg(long, env = "FLOE_ADVERTISE")]
    advertise: Option<String>,
    /// Kafka node id of this agent.
    #[arg(long, env = "FLOE_NODE_ID")]
    node_id: Option<i32>,
    /// Availability zone of this agent (reported as the broker rack).
    #[arg(long, env = "FLOE_ZONE")]
    zone: Option<String>,
    /// Seal the open WAL object after this many milliseconds.
    #[arg(long, env = "FLOE_FLUSH_INTERVAL_MS")]
    flush_interval_ms: Option<u64>,
    /// Seal the open WAL object at this many bytes.
    #[arg(long, env = "FLOE_FLUSH_BYTES")]
    flush_bytes: Option<usize>,
    /// Zone cache budget for blocks of recently written objects, in bytes.
    #[arg(long, env = "FLOE_CACHE_BYTES")]
    cache_bytes: Option<u64>,
    /// Zone cache budget for older blocks read by consumers catching up, in bytes.
    #[arg(long, env = "FLOE_CATCHUP_CACHE_BYTES")]
    catchup_cache_bytes: Option<u64>,
    /// Object-store bytes per second an agent reads for consumers catching up (0: unlimited).
    #[arg(long, env = "FLOE_CATCHUP_READ_BYTES_PER_SEC")]
    catchup_read_bytes_per_sec: Option<u64>,
    /// Objects younger than this many milliseconds are the tail (their blocks use
    /// --cache-bytes); older ones are catch-up reads (--catchup-cache-bytes).
    #[arg(long, env = "FLOE_CACHE_TAIL_WINDOW_MS")]
    cache_tail_window_ms: Option<u64>,
    /// Zone cache peer endpoint (agent to agent), host:port, or `off` to cache alone.
    /// Agents default to the --listen address with a free port.
    #[arg(long, env = "FLOE_CACHE_LISTEN")]
    cache_listen: Option<String>,
    /// host:port other agents reach the zone cache at (defaults to the advertised host).
    #[arg(long, env = "FLOE_CACHE_ADVERTISE")]
    cache_advertise: Option<String>,
    /// Kafka's auto.create.topics.enable.
    #[arg(long, env = "FLOE_AUTO_CREATE_TOPICS_ENABLE")]
    auto_create_topics_enable: Option<bool>,
    /// Kafka's num.partitions (for auto-created topics).
    #[arg(long, env = "FLOE_NUM_PARTITIONS")]
    num_partitions: Option<i32>,
    /// Largest request frame accepted, in bytes.
    #[arg(long, env = "FLOE_MAX_REQUEST_BYTES")]
    max_request_bytes: Option<usize>,
    /// Zones of client address ranges, for clients that name none:
    /// `10.0.0.0/20=us-east-1a,10.0.16.0/20=us-east-1b`.
    #[arg(long, env = "FLOE_CLIENT_ZONE_CIDRS", value_delimiter = ',')]
    client_zone_cidrs: Option<Vec<String>>,
}

impl AgentFlags {
    fn apply(&self, c: &mut AgentConfig) {
        if let Some(v) = self.listen {
            c.listen = v;
        }
        if let Some(v) = &self.advertise {
            c.advertise = Some(v.clone());
        }
        if let Some(v) = self.node_id {
            c.node_id = v;
        }
        if let Some(v) = &self.zone {
            c.zone = Some(v.clone());
        }
        if let Some(v) = self.flush_interval_ms {
            c.flush_interval_ms = v;
        }
        if let Some(v) = self.flush_bytes {
            c.flush_bytes = v;
        }
        if let Some(v) = self.cache_bytes {
            c.cache_bytes = v;
        }
        if let Some(v) = self.catchup_cache_bytes {
            c.catchup_cache_bytes = v;
        }
        if let Some(v) = self.catchup_read_bytes_per_sec {
            c.catchup_read_bytes_per_sec = v;
        }
        if let Some(v) = self.cache_tail_window_ms {
            c.cache_tail_window_ms = v;
        }
        if let Some(v) = &self.cache_advertise {
            c.cache_advertise = Some(v.clone());
        }
        if let Some(v) = self.auto_create_topics_enable {
            c.auto_create_topics_enable = v;
        }
        if let Some(v) = self.num_partitions {
            c.num_partitions = v;
        }
        if let Some(v) = self.max_request_bytes {
            c.max_request_bytes = v;
        }
        if let Some(v) = &self.client_zone_cidrs {
            c.client_zone_cidrs = v.clone();
        }
    }
}

#[derive(Args)]
struct PlaygroundArgs {
    /// Directory for the SQLite database and the objects.
    #[arg(long, env = "FLOE_DATA_DIR", default_value = "./floe-data")]
    data_dir: PathBuf,
    /// Admin HTTP address (/metrics, /healthz, /readyz).
    #[arg(long, env = "FLOE_ADMIN_LISTEN", default_value = "127.0.0.1:9644")]
    admin_listen: SocketAddr,
    /// TOML file with an `[agent]` table.
    #[arg(long, env = "FLOE_CONFIG")]
    config: Option<PathBuf>,
    #[command(flatten)]
    agent: AgentFlags,
    #[command(flatten)]
    groups: GroupFlags,
    #[command(flatten)]
    compactor: CompactorFlags,
}

/// Group coordinator settings (Kafka's broker settings of the same names).
#[derive(Args)]
struct GroupFlags {
    /// group.initial.rebalance.delay.ms: how long a new group's first rebalance waits for
    /// more members.
    #[arg(
        long,
        env = "FLOE_GROUP_INITIAL_REBALANCE_DELAY_MS",
        default_value_t = 3_000
    )]
    group_initial_rebalance_delay_ms: i32,
    /// group.min.session.timeout.ms.
    #[arg(
        long,
        env = "FLOE_GROUP_MIN_SESSION_TIMEOUT_MS",
        default_value_t = 6_000
    )]
    group_min_session_timeout_ms: i32,
    /// group.max.session.timeout.ms.
    #[arg(
        long,
        env = "FLOE_GROUP_MAX_SESSION_TIMEOUT_MS",
        default_value_t = 1_800_000
    )]
    group_max_session_timeout_ms: i32,
    /// group.max.size: members per group.
    #[arg(long, env = "FLOE_GROUP_MAX_SIZE", default_value_t = 1_000)]
    group_max_size: usize,
    /// offsets.retention.minutes: how long a group without members keeps its offsets.
    #[arg(long, env = "FLOE_OFFSETS_RETENTION_MINUTES", default_value_t = 10_080)]
    offsets_retention_minutes: i64,
    /// offsets.retention.check.interval.ms.
    #[arg(
        long,
        env = "FLOE_OFFSETS_RETENTION_CHECK_INTERVAL_MS",
        default_value_t = 600_000
    )]
    offsets_retention_check_interval_ms: i64,
    /// group.consumer.session.timeout.ms: session of KIP-848 (`group.protocol=consumer`)
    /// members.
    #[arg(
        long,
        env = "FLOE_GROUP_CONSUMER_SESSION_TIMEOUT_MS",
        default_value_t = 45_000
    )]
    group_consumer_session_timeout_ms: i32,
    /// group.consumer.heartbeat.interval.ms: how often KIP-848 members heartbeat.
    #[arg(
        long,
        env = "FLOE_GROUP_CONSUMER_HEARTBEAT_INTERVAL_MS",
        default_value_t = 5_000
    )]
    group_consumer_heartbeat_interval_ms: i32,
    /// producer.id.expiration.ms: an idempotent producer idle this long is forgotten.
    #[arg(
        long,
        env = "FLOE_PRODUCER_ID_EXPIRATION_MS",
        default_value_t = 86_400_000
    )]
    producer_id_expiration_ms: u64,
    /// transactional.id.expiration.ms: a transactional id without a transaction this long is
    /// forgotten (its next InitProducerId starts afresh).
    #[arg(
        long,
        env = "FLOE_TRANSACTIONAL_ID_EXPIRATION_MS",
        default_value_t = 604_800_000
    )]
    transactional_id_expiration_ms: u64,
}

impl GroupFlags {
    fn service_settings(&self) -> Result<ServiceSettings> {
        if self.group_initial_rebalance_delay_ms < 0 {
            bail!("--group-initial-rebalance-delay-ms must not be negative");
        }
        if self.group_min_session_timeout_ms <= 0
            || self.group_max_session_timeout_ms < self.group_min_session_timeout_ms
        {
            bail!("group session timeouts need 0 < --group-min-session-timeout-ms <= --group-max-session-timeout-ms");
        }
        if self.group_consumer_heartbeat_interval_ms <= 0
            || self.group_consumer_session_timeout_ms <= self.group_consumer_heartbeat_interval_ms
        {
            bail!("need 0 < --group-consumer-heartbeat-interval-ms < --group-consumer-session-timeout-ms");
        }
        if self.producer_id_expiration_ms < 60_000 || self.transactional_id_expiration_ms < 60_000 {
            bail!("--producer-id-expiration-ms and --transactional-id-expiration-ms must be at least 60000");
        }
        if self.group_max_size == 0 {
            bail!("--group-max-size must be at least 1");
        }
        if self.offsets_retention_minutes <= 0 || self.offsets_retention_check_interval_ms <= 0 {
            bail!("--offsets-retention-minutes and --offsets-retention-check-interval-ms must be positive");
        }
        Ok(ServiceSettings {
            groups: GroupSettings {
                min_session_timeout_ms: self.group_min_session_timeout_ms,
                max_session_timeout_ms: self.group_max_session_timeout_ms,
                initial_rebalance_delay_ms: self.group_initial_rebalance_delay_ms,
                max_size: self.group_max_size,
                offsets_retention_ms: self.offsets_retention_minutes.saturating_mul(60_000),
                retention_check_interval_ms: self.offsets_retention_check_interval_ms,
                consumer_session_timeout_ms: self.group_consumer_session_timeout_ms,
                consumer_heartbeat_interval_ms: self.group_consumer_heartbeat_interval_ms,
            },
            producer_expiration: std::time::Duration::from_millis(self.producer_id_expiration_ms),
            transactional_id_expiration: std::time::Duration::from_millis(
                self.transactional_id_expiration_ms,
            ),
            ..ServiceSettings::default()
        })
    }
}

#[derive(Args)]
struct MetadataArgs {
    /// postgres://user@host:port/db, or sqlite:///path/to/file.db
    #[arg(long, env = "FLOE_DATABASE_URL")]
    database_url: String,
    /// HTTP API address.
    #[arg(long, env = "FLOE_LISTEN", default_value = "127.0.0.1:9091")]
    listen: SocketAddr,
    /// Admin HTTP address.
    #[arg(long, env = "FLOE_ADMIN_LISTEN", default_value = "127.0.0.1:9645")]
    admin_listen: SocketAddr,
    /// This instance's HTTP API address as the other metadata instances reach it
    /// (`http://10.0.0.5:9091`); the instance coordinating consumer groups is reached there.
    /// Defaults to `http://<--listen>` unless that is a wildcard address.
    #[arg(long, env = "FLOE_ADVERTISE_URL")]
    advertise_url: Option<String>,
    /// How long an agent stays in Metadata answers after its last heartbeat (agents
    /// heartbeat every second).
    #[arg(long, env = "FLOE_AGENT_TIMEOUT_MS", default_value_t = 6_000)]
    agent_timeout_ms: u64,
    #[command(flatten)]
    groups: GroupFlags,
}

#[derive(Args)]
struct AgentArgs {
    /// Base URL of the metadata service, e.g. http://10.0.0.5:9091
    #[arg(long, env = "FLOE_METADATA_URL")]
    metadata_url: String,
    /// s3://bucket/prefix or file:///dir
    #[arg(long, env = "FLOE_OBJECT_STORE")]
    object_store: String,
    /// Custom S3 endpoint (S3-compatible servers); credentials come from AWS_* variables.
    #[arg(long, env = "FLOE_S3_ENDPOINT")]
    s3_endpoint: Option<String>,
    /// Admin HTTP address.
    #[arg(long, env = "FLOE_ADMIN_LISTEN", default_value = "127.0.0.1:9644")]
    admin_listen: SocketAddr,
    /// TOML file with an `[agent]` table.
    #[arg(long, env = "FLOE_CONFIG")]
    config: Option<PathBuf>,
    #[command(flatten)]
    agent: AgentFlags,
}

#[derive(Args)]
struct CompactorArgs {
    /// Base URL of the metadata service.
    #[arg(long, env = "FLOE_METADATA_URL")]
    metadata_url: String,
    /// s3://bucket/prefix or file:///dir
    #[arg(long, env = "FLOE_OBJECT_STORE")]
    object_store: String,
    /// Custom S3 endpoint.
    #[arg(long, env = "FLOE_S3_ENDPOINT")]
    s3_endpoint: Option<String>,
    /// Admin HTTP address.
    #[arg(long, env = "FLOE_ADMIN_LISTEN", default_value = "127.0.0.1:9646")]
    admin_listen: SocketAddr,
    #[command(flatten)]
    compactor: CompactorFlags,
}

/// Compactor settings (the compactor role, and the playground's built-in compactor).
#[derive(Args)]
struct CompactorFlags {
    /// Milliseconds between compactor passes (retention, deletion of unreferenced objects).
    #[arg(long, env = "FLOE_COMPACTOR_INTERVAL_MS", default_value_t = 30_000)]
    compactor_interval_ms: u64,
    /// Milliseconds an unreferenced object or a deleted topic is kept before deletion, so
    /// that reads in flight finish; also the age an unknown object must reach before it is an
    /// orphan. Keep it well above the agents' commit timeout (30 s).
    #[arg(long, env = "FLOE_COMPACTOR_GRACE_MS", default_value_t = 300_000)]
    compactor_grace_ms: u64,
    /// Milliseconds between orphan scans (each LISTs every object under the prefix).
    #[arg(
        long,
        env = "FLOE_COMPACTOR_ORPHAN_INTERVAL_MS",
        default_value_t = 600_000
    )]
    compactor_orphan_interval_ms: u64,
    /// Target size of a segment, in bytes (1 MiB..=1 GiB).
    #[arg(long, env = "FLOE_COMPACTOR_SEGMENT_BYTES", default_value_t = 32 * 1024 * 1024)]
    compactor_segment_bytes: u64,
    /// WAL chunks younger than this many milliseconds are not folded into segments yet.
    #[arg(
        long,
        env = "FLOE_COMPACTOR_SEGMENT_DELAY_MS",
        default_value_t = 300_000
    )]
    compactor_segment_delay_ms: u64,
}

impl CompactorFlags {
    fn settings(&self) -> Result<CompactorSettings> {
        if !(100..=3_600_000).contains(&self.compactor_interval_ms) {
            bail!("--compactor-interval-ms must be in 100..=3600000");
        }
        if self.compactor_orphan_interval_ms < 1_000 {
            bail!("--compactor-orphan-interval-ms must be at least 1000");
        }
        if !(1 << 20..=1 << 30).contains(&self.compactor_segment_bytes) {
            bail!("--compactor-segment-bytes must be in 1 MiB..=1 GiB");
        }
        if self.compactor_grace_ms < 60_000 {
            warn!(
                grace_ms = self.compactor_grace_ms,
                "--compactor-grace-ms below a minute: an upload whose commit is still being retried may be taken for an orphan"
            );
        }
        Ok(CompactorSettings {
            interval: Duration::from_millis(self.compactor_interval_ms),
            grace: Duration::from_millis(self.compactor_grace_ms),
            orphan_interval: Duration::from_millis(self.compactor_orphan_interval_ms),
            segment_bytes: self.compactor_segment_bytes,
            segment_delay: Duration::from_millis(self.compactor_segment_delay_ms),
        })
    }
}

/// The TOML file: one table per role.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    agent: AgentConfig,
}

fn load_agent_config(path: Option<&PathBuf>, flags: &AgentFlags) -> Result<AgentConfig> {
    let mut cfg = match path {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            toml::from_str::<FileConfig>(&text)
                .with_context(|| format!("parsing {}", p.display()))?
                .agent
        }
        None => AgentConfig::default(),
    };
    flags.apply(&mut cfg);
    cfg.cache_listen = match flags.cache_listen.as_deref().map(str::trim) {
        Some("off") => None,
        Some(addr) => Some(
            addr.parse()
                .with_context(|| format!("--cache-listen {addr:?}: expected host:port or off"))?,
        ),
        None => cfg.cache_listen,
    };
    cfg.validate()?;
    Ok(cfg)
}

fn clock() -> NowMs {
    let c = floe_common::clock::system();
    Arc::new(move || c.now_ms())
}

fn stats_hook(metrics: Arc<Metrics>) -> StatsHook {
    Arc::new(move |s: GroupStats| {
        metrics
            .sequencer_commit_seconds
            .observe(s.elapsed.as_secs_f64());
        metrics.sequencer_group_objects.observe(s.objects as f64);
        if s.failed {
            metrics.sequencer_failures.inc();
        }
    })
}

/// Keeps the consumer-group metrics current: group counts, members and rebalances from the
/// coordinator (on the process that coordinates groups), and every group's lag from the
/// store, every 10 seconds; and the transactions this process aborted by timeout.
fn spawn_group_metrics(service: Arc<MetadataService>, metrics: Arc<Metrics>) {
    use floe_common::metrics::{GroupLabels, LagLabels, OutcomeLabels};
    tokio::spawn(async move {
        let mut last = (0u64, 0u64);
        let mut timed_out = 0u64;
        loop {
            let now_timed_out = service.transactions_timed_out();
            metrics
                .transactions_ended
                .get_or_create(&OutcomeLabels { outcome: "timeout" })
                .inc_by(now_timed_out.saturating_sub(timed_out));
            timed_out = now_timed_out;
            let stats = service.groups().stats().await;
            metrics.groups.clear();
            metrics.consumer_group_lag.clear();
            match stats {
                None => {
                    metrics.group_coordinator_leader.set(0);
                    metrics.group_members.set(0);
                }
                Some(s) => {
                    metrics.group_coordinator_leader.set(1);
                    for ((kind, state), n) in &s.groups {
                        let labels = GroupLabels {
                            kind: kind.clone(),
                            state: state.clone(),
                        };
                        metrics.groups.get_or_create(&labels).set(*n as i64);
                    }
                    metrics.group_members.set(s.members as i64);
                    // A new coordinator (after a failover) counts from zero again.
                    metrics
                        .group_rebalances
                        .inc_by(s.rebalances.saturating_sub(last.0));
                    metrics
                        .group_offset_commits
                        .inc_by(s.offset_commits.saturating_sub(last.1));
                    last = (s.rebalances, s.offset_commits);
                    match service.store().consumer_lag().await {
                        Ok(rows) => {
                            for (group, topic, partition, lag) in rows {
                                let labels = LagLabels {
                                    group,
                                    topic,
                                    partition,
                                };
                                metrics.consumer_group_lag.get_or_create(&labels).set(lag);
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "reading consumer lag failed"),
                    }
                }
            }
            tokio::time::sleep(std::time::Duration::from_secs(10)).await;
        }
    });
}

async fn open_store(url: &str) -> Result<Arc<dyn MetadataStore>> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PostgresStore::connect(url).await?))
    } else if let Some(path) = url.strip_prefix("sqlite://") {
        Ok(Arc::new(
            SqliteStore::open(std::path::Path::new(path)).await?,
        ))
    } else {
        bail!("database url must start with postgres:// or sqlite://")
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// Serves the admin port until `stop` flips.
async fn serve_admin(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    ready: Readiness,
    stop: watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>> {
    let mut stop = stop;
    admin::serve(addr, admin::router(metrics, ready), async move {
        let _ = stop.wait_for(|s| *s).await;
    })
    .await
    .with_context(|| format!("binding admin port {addr}"))
}

/// A role's admin port: metrics, readiness, and the signal that stops it.
struct AdminPort {
    metrics: Arc<Metrics>,
    ready: Readiness,
    stop_tx: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl AdminPort {
    async fn start(addr: SocketAddr) -> Result<Self> {
        let metrics = Arc::new(Metrics::new());
        let ready = Readiness::default();
        let (stop_tx, stop_rx) = watch::channel(false);
        let task = serve_admin(addr, metrics.clone(), ready.clone(), stop_rx).await?;
        Ok(AdminPort {
            metrics,
            ready,
            stop_tx,
            task,
        })
    }

    /// A future that resolves when the port is told to stop (for other servers of the role).
    fn stopped(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.stop_tx.subscribe();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    }

    /// Marks the role ready, waits for SIGTERM/SIGINT, and marks it not ready.
    async fn serve_until_signal(&self) {
        self.ready.set(true);
        shutdown_signal().await;
        self.ready.set(false);
    }

    async fn stop(self) {
        let _ = self.stop_tx.send(true);
        let _ = self.task.await;
    }
}

async fn playground(args: PlaygroundArgs) -> Result<()> {
    let cfg = load_agent_config(args.config.as_ref(), &args.agent)?;
    let settings = args.groups.service_settings()?;
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating {}", args.data_dir.display()))?;
    let admin = AdminPort::start(args.admin_listen).await?;
    let store = SqliteStore::open(&args.data_dir.join("metadata.db")).await?;
    let service = MetadataService::start_with(
        Arc::new(store),
        clock(),
        stats_hook(admin.metrics.clone()),
        settings,
    )
    .await?;
    spawn_group_metrics(service.clone(), admin.metrics.clone());
    let (store, prefix) = ObjectStoreUrl::File(args.data_dir.join("objects")).build(None)?;
    let objects = Objects::new(store, prefix, admin.metrics.clone());
    let compactor_settings = args.compactor.settings()?;
    let agent = Agent::start(
        cfg,
        AgentDeps {
            metadata: service.clone() as Arc<dyn Metadata>,
            objects: objects.clone(),
            metrics: admin.metrics.clone(),
        },
    )
    .await?;
    let (stop_compactor, stop_rx) = tokio::sync::watch::channel(false);
    let compactor = Compactor::new(
        service.clone(),
        objects,
        admin.metrics.clone(),
        compactor_settings,
        floe_common::clock::system(),
    )
    .spawn(stop_rx);
    info!(kafka = %agent.local_addr(), admin = %args.admin_listen, data_dir = %args.data_dir.display(), "playground ready");
    admin.serve_until_signal().await;
    agent.shutdown().await;
    let _ = stop_compactor.send(true);
    let _ = compactor.await;
    admin.stop().await;
    Ok(())
}

async fn metadata(args: MetadataArgs) -> Result<()> {
    let mut settings = args.groups.service_settings()?;
    if args.agent_timeout_ms < 1_000 {
        bail!("--agent-timeout-ms must be at least 1000 (agents heartbeat every second)");
    }
    settings.agent_timeout = std::time::Duration::from_millis(args.agent_timeout_ms);
    settings.advertise_url = match &args.advertise_url {
        Some(u) if u.starts_with("http://") || u.starts_with("https://") => Some(u.clone()),
        Some(u) => bail!("--advertise-url must be an http:// or https:// URL, got {u:?}"),
        None if args.listen.ip().is_unspecified() => {
            tracing::warn!("no --advertise-url: fine for one metadata instance; with several, the others cannot reach this one when it coordinates consumer groups");
            None
        }
        None => Some(format!("http://{}", args.listen)),
    };
    let admin = AdminPort::start(args.admin_listen).await?;
    let store = open_store(&args.database_url).await?;
    let service =
        MetadataService::start_with(store, clock(), stats_hook(admin.metrics.clone()), settings)
            .await?;
    spawn_group_metrics(service.clone(), admin.metrics.clone());
    let api = admin::serve(
        args.listen,
        floe_metadata::http::router(service.clone()),
        admin.stopped(),
    )
    .await
    .with_context(|| format!("binding {}", args.listen))?;
    info!(listen = %args.listen, "metadata service ready");
    admin.serve_until_signal().await;
    // Hand the group coordinator to another instance at once rather than after the lease
    // lapses; members parked here are told to find their coordinator again.
    service.step_down_groups().await;
    service.close_watches();
    admin.stop().await;
    let _ = api.await;
    info!("metadata service stopped");
    Ok(())
}

async fn agent(args: AgentArgs) -> Result<()> {
    let mut cfg = load_agent_config(args.config.as_ref(), &args.agent)?;
    if cfg.cache_listen.is_none() && args.agent.cache_listen.is_none() {
        // Agents share their zone's cache unless told not to; a free port keeps several
        // agents on one host apart (deployments pin the port their firewall opens).
        cfg.cache_listen = Some(SocketAddr::new(cfg.listen.ip(), 0));
    }
    if cfg.zone.is_none() {
        // On EC2 the zone comes from IMDSv2; elsewhere this gives up within a second.
        cfg.zone = floe_common::imds::availability_zone().await;
        info!(zone = ?cfg.zone, "agent zone from the instance metadata service");
    }
    let admin = AdminPort::start(args.admin_listen).await?;
    let (store, prefix) =
        ObjectStoreUrl::parse(&args.object_store)?.build(args.s3_endpoint.as_deref())?;
    let objects = Objects::new(store, prefix, admin.metrics.clone());
    let client = HttpMetadataClient::new(&args.metadata_url)?;
    let agent = Agent::start(
        cfg,
        AgentDeps {
            metadata: Arc::new(client),
            objects,
            metrics: admin.metrics.clone(),
        },
    )
    .await?;
    admin.serve_until_signal().await;
    agent.shutdown().await;
    admin.stop().await;
    Ok(())
}

async fn compactor(args: CompactorArgs) -> Result<()> {
    let settings = args.compactor.settings()?;
    let admin = AdminPort::start(args.admin_listen).await?;
    // Validate the wiring now so a misconfigured compactor fails at start, not later.
    let (store, prefix) =
        ObjectStoreUrl::parse(&args.object_store)?.build(args.s3_endpoint.as_deref())?;
    let client = HttpMetadataClient::new(&args.metadata_url)?;
    client
        .cluster_id()
        .await
        .context("reaching the metadata service")?;
    let objects = Objects::new(store, prefix, admin.metrics.clone());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let task = Compactor::new(
        Arc::new(client),
        objects,
        admin.metrics.clone(),
        settings,
        floe_common::clock::system(),
    )
    .spawn(stop_rx);
    info!("compactor running");
    admin.serve_until_signal().await;
    let _ = stop_tx.send(true);
    let _ = task.await;
    admin.stop().await;
    Ok(())
}

fn inspect_wal(args: InspectArgs) -> Result<()> {
    use std::io::Write;
    let bytes =
        std::fs::read(&args.path).with_context(|| format!("reading {}", args.path.display()))?;
    let chunks = floe_format::read_footer(&bytes).context("not a valid WAL object")?;
    let mut out = std::io::stdout().lock();
    let mut print = || -> std::io::Result<()> {
        writeln!(
            out,
            "{}: {} bytes, {} chunks",
            args.path.display(),
            bytes.len(),
            chunks.len()
        )?;
        writeln!(out, "topic_id                             partition  byte_offset   byte_len  batches  offsets   first_ts_ms     max_ts_ms crc_ok")?;
        for c in &chunks {
            let range = c.byte_offset as usize..(c.byte_offset + c.byte_len) as usize;
            let ok = bytes
                .get(range)
                .is_some_and(|b| floe_format::verify_chunk(b, c).is_ok());
            writeln!(
                out,
                "{} {:>9} {:>12} {:>10} {:>8} {:>8} {:>13} {:>13} {}",
                uuid::Uuid::from_bytes(c.topic_id),
                c.partition,
                c.byte_offset,
                c.byte_len,
                c.batch_count,
                c.offset_count,
                c.first_timestamp_ms,
                c.max_timestamp_ms,
                ok
            )?;
        }
        Ok(())
    };
    match print() {
        // `floe inspect-wal x | head` closes the pipe early; that is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => Ok(r?),
    }
}

#[derive(Args)]
struct BenchGroupsArgs {
    /// Bootstrap servers.
    #[arg(long, default_value = "127.0.0.1:9092")]
    bootstrap: String,
    /// Members of the group; one of them leaves.
    #[arg(long, default_value_t = 6)]
    members: usize,
    /// Partitions of the topic.
    #[arg(long, default_value_t = 100)]
    partitions: i32,
    /// `classic` or `consumer` (KIP-848).
    #[arg(long, default_value = "classic")]
    protocol: String,
    /// Classic: partition.assignment.strategy; KIP-848: group.remote.assignor.
    #[arg(long)]
    assignor: Option<String>,
    /// Rebalances to measure.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Threads committing offsets.
    #[arg(long, default_value_t = 4)]
    committers: usize,
    /// How long to commit.
    #[arg(long, default_value = "10s", value_parser = floe_loadgen::parse_duration)]
    commit_duration: std::time::Duration,
    /// Write the result as JSON here.
    #[arg(long)]
    output: Option<PathBuf>,
}

fn bench_groups(a: BenchGroupsArgs) -> Result<()> {
    let cfg = floe_loadgen::groups::GroupBenchConfig {
        bootstrap: a.bootstrap,
        members: a.members,
        partitions: a.partitions,
        protocol: a.protocol,
        assignor: a.assignor,
        rounds: a.rounds,
        committers: a.committers,
        commit_duration: a.commit_duration,
        timeout: std::time::Duration::from_secs(120),
    };
    let r = floe_loadgen::groups::run(&cfg)?;
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    println!(
        "protocol {} ({}), {} members, {} partitions",
        r.protocol,
        r.assignor.as_deref().unwrap_or("default assignor"),
        r.members,
        r.partitions
    );
    println!(
        "first assignment: mean {:.0} ms {:?}",
        mean(&r.first_assignment_ms),
        r.first_assignment_ms
            .iter()
            .map(|v| v.round())
            .collect::<Vec<_>>()
    );
    println!(
        "rebalance after one member left: mean {:.0} ms {:?}",
        mean(&r.rebalance_ms),
        r.rebalance_ms.iter().map(|v| v.round()).collect::<Vec<_>>()
    );
    println!(
        "offset commits ({} threads, {} partitions each, sync): {:.0}/s, p50 {:.1} ms, p99 {:.1} ms",
        r.committers, r.partitions, r.commits_per_second, r.commit_p50_ms, r.commit_p99_ms
    );
    if let Some(path) = a.output {
        std::fs::write(&path, serde_json::to_string_pretty(&r)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn bench(a: BenchArgs) -> Result<()> {
    let cfg = floe_loadgen::BenchConfig {
        bootstrap: a.bootstrap,
        topic: a.topic,
        duration: a.duration,
        message_bytes: a.message_bytes,
        rate: a.rate,
        partitions: a.partitions,
        producers: a.producers,
        consumers: a.consumers,
        acks: a.acks,
        compression: a.compression,
        linger_ms: a.linger_ms,
        zone: a.zone,
        admin: a.admin,
        floe_pids: a.floe_pid,
        drain_timeout: a.drain_timeout,
    };
    let r = floe_loadgen::run(&cfg)?;
    let p = &r.produce;
    let c = &r.consume;
    let ms = |v: Option<f64>| v.map_or("-".to_string(), |x| format!("{x:.1}"));
    println!(
        "produce: {} records, {:.2} MB/s, {:.0} records/s, errors {}; latency ms p50 {} p99 {} p99.9 {}",
        p.records, p.mb_per_s, p.records_per_s, p.errors,
        ms(p.latency_ms.p50), ms(p.latency_ms.p99), ms(p.latency_ms.p999)
    );
    println!(
        "consume: {} records, {:.2} MB/s, {:.0} records/s, complete {}; end-to-end ms p50 {} p99 {}",
        c.records, c.mb_per_s, c.records_per_s, c.complete,
        ms(c.e2e_latency_ms.p50), ms(c.e2e_latency_ms.p99)
    );
    if let Some(f) = &r.floe {
        println!(
            "floe: {} PUTs, {} GETs, {} WAL objects, {} metadata commits, CPU {}",
            f.object_store.put_requests,
            f.object_store.get_requests,
            f.wal_objects,
            f.metadata_commits,
            f.cpu_seconds
                .map_or(f.cpu_source.to_string(), |s| format!("{s:.2} s"))
        );
    }
    if let Some(out) = a.output {
        let json = serde_json::to_string_pretty(&r)?;
        std::fs::write(&out, json).with_context(|| format!("writing {}", out.display()))?;
    }
    Ok(())
}

fn cost(a: CostArgs) -> Result<()> {
    use floe_cost::{bench::BenchInput, model, prices::Prices, render};
    let prices = match &a.prices {
        Some(p) => Prices::parse(
            &std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
        )?,
        None => Prices::embedded(),
    };
    let w = model::Workload {
        ingest_mibps: a.ingest_mibps,
        fanout: a.fanout,
        retention_days: a.retention_days,
        zones: a.zones,
        region: a.region,
    };
    let asm = model::Assumptions::default();
    let mut ratios = model::Ratios::defaults(&w, &asm);
    if let Some(b) = &a.bench {
        let text =
            std::fs::read_to_string(b).with_context(|| format!("reading {}", b.display()))?;
        ratios = BenchInput::parse(&text)?.apply(ratios)?;
    }
    let report = model::compute(&w, &asm, &ratios, &prices)?;
    print!("{}", render::text(&report));
    if let Some(p) = &a.svg {
        std::fs::write(p, render::svg(&report))
            .with_context(|| format!("writing {}", p.display()))?;
    }
    if let Some(p) = &a.html {
        std::fs::write(p, render::html(&report))
            .with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(())
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    if let Role::InspectWal(a) = cli.role {
        return inspect_wal(a);
    }
    let service = match &cli.role {
        Role::Playground(_) => "floe-playground",
        Role::Metadata(_) => "floe-metadata",
        Role::Agent(_) => "floe-agent",
        Role::Compactor(_) => "floe-compactor",
        _ => "floe",
    };
    let telemetry = floe_common::telemetry::init("info", service);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = rt.block_on(async move {
        match cli.role {
            Role::Playground(a) => playground(a).await,
            Role::Metadata(a) => metadata(a).await,
            Role::Agent(a) => agent(a).await,
            Role::Compactor(a) => compactor(a).await,
            Role::InspectWal(_) => Ok(()),
            Role::Bench(a) => tokio::task::spawn_blocking(move || bench(a)).await?,
            Role::BenchGroups(a) => tokio::task::spawn_blocking(move || bench_groups(a)).await?,
            Role::Cost(a) => cost(a),
        }
    });
    // Outside the runtime: the exporter's flush blocks.
    drop(rt);
    telemetry.shutdown();
    result
}
