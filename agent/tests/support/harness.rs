//! Agents wired in-process the way the binary wires them: a `MetadataService` over a SQLite
//! file or a throw-away PostgreSQL database, `Objects` over a local directory or S3, and
//! `Agent::start` on a loopback port. A [`Backend`] outlives agents, so a test can stop one
//! and start another over the same state.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use floe_agent::{Agent, AgentConfig, AgentDeps};
use floe_common::{Clock, Metrics, ObjectStoreUrl, Objects, SystemClock};
use floe_metadata::service::ServiceSettings;
use floe_metadata::testing::TestPostgres;
use floe_metadata::{
    GroupSettings, Metadata, MetadataService, MetadataStore, PostgresStore, SqliteStore,
};
use object_store::path::Path;
use object_store::ObjectStore;
use tempfile::TempDir;

use super::client::Client;
use super::s3;

/// Where metadata lives.
pub enum MetaBackend {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL database (kept alive by the value).
    Postgres(TestPostgres),
}

/// Where objects live.
pub enum ObjBackend {
    /// A local directory.
    Local(PathBuf),
    /// A prefix in the test S3 bucket.
    S3 {
        /// Server and bucket.
        target: s3::S3Target,
        /// Unique per test.
        prefix: String,
    },
}

/// Durable state of a test cluster.
pub struct Backend {
    /// Metadata store.
    pub meta: MetaBackend,
    /// Object store.
    pub objs: ObjBackend,
    /// Holds the SQLite file and the local object directory.
    pub dir: TempDir,
}

impl Backend {
    /// SQLite metadata and a local object directory.
    pub fn local() -> Backend {
        let dir = tempfile::tempdir().expect("tempdir");
        Backend {
            meta: MetaBackend::Sqlite(dir.path().join("meta.sqlite")),
            objs: ObjBackend::Local(dir.path().join("objects")),
            dir,
        }
    }

    /// SQLite metadata and objects under a fresh prefix of the test S3 bucket.
    pub async fn s3() -> Backend {
        let target = tokio::task::spawn_blocking(s3::target)
            .await
            .expect("starting S3 panicked");
        let dir = tempfile::tempdir().expect("tempdir");
        Backend {
            meta: MetaBackend::Sqlite(dir.path().join("meta.sqlite")),
            objs: ObjBackend::S3 {
                target,
                prefix: format!("agent-tests/{}", uuid::Uuid::new_v4().simple()),
            },
            dir,
        }
    }

    /// PostgreSQL metadata and a local object directory.
    pub async fn postgres() -> Backend {
        let pg = TestPostgres::start().await;
        let dir = tempfile::tempdir().expect("tempdir");
        Backend {
            meta: MetaBackend::Postgres(pg),
            objs: ObjBackend::Local(dir.path().join("objects")),
            dir,
        }
    }

    /// A fresh metadata service over the backend's store.
    pub async fn metadata(&self) -> Arc<MetadataService> {
        let store: Arc<dyn MetadataStore> = match &self.meta {
            MetaBackend::Sqlite(path) => Arc::new(
                SqliteStore::open(path)
                    .await
                    .expect("opening the sqlite store"),
            ),
            MetaBackend::Postgres(pg) => Arc::new(
                PostgresStore::connect(pg.url())
                    .await
                    .expect("connecting the postgres store"),
            ),
        };
        let clock = SystemClock;
        // Groups form at once: tests do not wait out Kafka's initial rebalance delay.
        let settings = ServiceSettings {
            groups: GroupSettings {
                initial_rebalance_delay_ms: 0,
                ..GroupSettings::default()
            },
            ..ServiceSettings::default()
        };
        MetadataService::start_with(
            store,
            Arc::new(move || clock.now_ms()),
            Arc::new(|_| {}),
            settings,
        )
        .await
        .expect("starting the metadata service")
    }

    /// The raw object store and key prefix.
    pub fn store(&self) -> (Arc<dyn ObjectStore>, Path) {
        match &self.objs {
            ObjBackend::Local(dir) => ObjectStoreUrl::File(dir.clone())
                .build(None)
                .expect("building the local store"),
            ObjBackend::S3 { target, prefix } => s3::store(target, prefix),
        }
    }

    /// `Objects` over the raw store.
    pub fn objects(&self, metrics: Arc<Metrics>) -> Objects {
        let (store, prefix) = self.store();
        Objects::new(store, prefix, metrics)
    }

    /// Every object key (relative to the prefix) currently in the store.
    pub async fn object_keys(&self) -> Vec<String> {
        use futures::TryStreamExt;
        let (store, prefix) = self.store();
        let metas: Vec<_> = store
            .list(Some(&prefix))
            .try_collect()
            .await
            .expect("listing objects");
        let strip = format!("{prefix}/");
        let mut keys: Vec<String> = metas
            .into_iter()
            .map(|m| {
                let k = m.location.to_string();
                k.strip_prefix(&strip).map(str::to_string).unwrap_or(k)
            })
            .collect();
        keys.sort();
        keys
    }
}

/// Settings for tests: loopback port, a short flush interval.
pub fn config(node_id: i32) -> AgentConfig {
    AgentConfig {
        node_id,
        listen: "127.0.0.1:0".parse().expect("addr"),
        flush_interval_ms: 10,
        commit_timeout_ms: 10_000,
        ..AgentConfig::default()
    }
}

/// Starts an agent.
pub async fn start_agent(
    config: AgentConfig,
    metadata: Arc<dyn Metadata>,
    objects: Objects,
    metrics: Arc<Metrics>,
) -> Agent {
    Agent::start(
        config,
        AgentDeps {
            metadata,
            objects,
            metrics,
        },
    )
    .await
    .expect("starting the agent")
}

/// One agent over a backend.
pub struct Stack {
    /// Durable state.
    pub backend: Backend,
    /// Its metadata service.
    pub metadata: Arc<MetadataService>,
    /// The agent.
    pub agent: Agent,
    /// The agent's metrics.
    pub metrics: Arc<Metrics>,
    /// Its settings.
    pub config: AgentConfig,
}

impl Stack {
    /// Starts a metadata service and an agent over `backend`.
    pub async fn start(backend: Backend, config: AgentConfig) -> Stack {
        let metadata = backend.metadata().await;
        let metrics = Arc::new(Metrics::new());
        let agent = start_agent(
            config.clone(),
            metadata.clone(),
            backend.objects(metrics.clone()),
            metrics.clone(),
        )
        .await;
        Stack {
            backend,
            metadata,
            agent,
            metrics,
            config,
        }
    }

    /// One agent over fresh SQLite + local-directory state.
    pub async fn local(config: AgentConfig) -> Stack {
        Stack::start(Backend::local(), config).await
    }

    /// A new connection to the agent.
    pub async fn client(&self) -> Client {
        Client::connect(self.agent.local_addr()).await
    }

    /// Stops the agent and the metadata service, then starts both again over the same state.
    pub async fn restart(self) -> Stack {
        let Stack {
            backend,
            metadata,
            agent,
            config,
            ..
        } = self;
        agent.shutdown().await;
        drop(metadata);
        // Let the old service's tasks see their channels close before the store reopens.
        tokio::time::sleep(Duration::from_millis(50)).await;
        Stack::start(backend, config).await
    }
}

/// Polls `cond` every 10 ms until it holds; panics after `IO_TIMEOUT`.
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + super::client::IO_TIMEOUT;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
