//! The agent's lifecycle: wiring the components, the accept loop with its connection
//! bound, and graceful shutdown (stop accepting, let connections finish what they sent,
//! seal + upload + commit + answer what is buffered, then exit).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use floe_common::{Metrics, Objects};
use floe_metadata::{AgentInfo, Metadata};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::{JoinHandle, JoinSet};
use tracing::{info, warn};
use uuid::Uuid;

use crate::catalog::Catalog;
use crate::config::AgentConfig;
use crate::connection;
use crate::dispatch::Ctx;
use crate::error::AgentError;
use crate::fetch::cache::{Budgets, ChunkCache};
use crate::fetch::index::IndexCache;
use crate::fetch::peer::PeerClient;
use crate::fleet::Fleet;
use crate::produce::batcher::BatcherSettings;
use crate::produce::commit::Committer;
use crate::produce::Batcher;

/// Components the agent is built from (injected, so tests can pass fakes or wrappers).
pub struct AgentDeps {
    /// Metadata service (in-process or HTTP).
    pub metadata: Arc<dyn Metadata>,
    /// Object store.
    pub objects: Objects,
    /// Metrics registry.
    pub metrics: Arc<Metrics>,
}

/// How long shutdown waits for connections to finish their in-flight requests.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// A running agent.
pub struct Agent {
    ctx: Arc<Ctx>,
    local_addr: SocketAddr,
    shutdown_tx: watch::Sender<bool>,
    accept: JoinHandle<JoinSet<()>>,
    batcher_task: JoinHandle<()>,
    feed: JoinHandle<()>,
    heartbeats: JoinHandle<()>,
    peer_endpoint: Option<JoinHandle<()>>,
}

impl Agent {
    /// Binds the listener and starts serving.
    pub async fn start(config: AgentConfig, deps: AgentDeps) -> Result<Agent, AgentError> {
        config.validate()?;
        let cluster_id = deps.metadata.cluster_id().await?;
        let catalog = Catalog::load(deps.metadata.clone()).await?;
        let index = Arc::new(IndexCache::new(deps.metadata.clone()));
        let listener = TcpListener::bind(config.listen).await?;
        let local_addr = listener.local_addr()?;
        let mut config = config;
        if config.advertise.is_none() && config.listen.port() == 0 {
            // An ephemeral port (tests): advertise the one the OS picked.
            config.advertise = Some(local_addr.to_string());
        }
        let cache_listener = match config.cache_listen {
            Some(addr) => Some(TcpListener::bind(addr).await?),
            None => None,
        };
        let cache_url = match &cache_listener {
            Some(l) => Some(config.cache_url(l.local_addr()?.port())),
            None => None,
        };
        let (host, port) = config.advertised();
        let fleet = Fleet::new(
            AgentInfo {
                node_id: config.node_id,
                zone: config.zone.clone(),
                host,
                port,
                cache_url: cache_url.clone(),
                instance: Uuid::new_v4().to_string(),
                started_at_ms: floe_common::clock::system().now_ms(),
            },
            deps.metrics.clone(),
        );
        let mut cache = ChunkCache::new(
            deps.objects.clone(),
            deps.metrics.clone(),
            Budgets {
                tail_bytes: config.cache_bytes,
                catchup_bytes: config.catchup_cache_bytes,
                tail_window_ms: config.cache_tail_window_ms,
                catchup_bytes_per_sec: config.catchup_read_bytes_per_sec,
            },
        );
        if cache_listener.is_some() {
            let client = PeerClient::new().map_err(|e| AgentError::Config(e.to_string()))?;
            cache = cache.with_peers(fleet.clone(), client);
        }
        let cache = Arc::new(cache);
        let committer = Committer {
            objects: deps.objects.clone(),
            metadata: deps.metadata.clone(),
            catalog: catalog.clone(),
            index: index.clone(),
            cache: cache.clone(),
            metrics: deps.metrics.clone(),
            commit_timeout: Duration::from_millis(config.commit_timeout_ms),
            node_id: config.node_id,
        };
        let (batcher, batcher_task) = Batcher::start(
            BatcherSettings {
                flush_interval: Duration::from_millis(config.flush_interval_ms),
                flush_bytes: config.flush_bytes,
                max_inflight_bytes: config.max_inflight_produce_bytes,
            },
            committer,
        );
        let zone_map =
            crate::zone::ZoneMap::parse(&config.client_zone_cidrs).map_err(AgentError::Config)?;
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        // Best effort: an unreachable metadata service leaves it to the feed, which retries.
        match tokio::time::timeout(Duration::from_secs(5), catalog.sync_watermarks()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => warn!(error = %e, "initial watermark read failed; the feed retries"),
            Err(_) => warn!("initial watermark read timed out; the feed retries"),
        }
        let feed = catalog.spawn_feed(shutdown_rx.clone());
        let peer_endpoint = cache_listener.map(|l| {
            let router = crate::fetch::peer::router(cache.clone());
            tokio::spawn(async move {
                if let Err(e) = axum::serve(l, router).await {
                    warn!(error = %e, "zone cache endpoint stopped");
                }
            })
        });
        let heartbeats = fleet.spawn(
            deps.metadata.clone(),
            Duration::from_millis(config.heartbeat_interval_ms),
            shutdown_rx.clone(),
        );
        let ctx = Arc::new(Ctx {
            shutdown: shutdown_rx.clone(),
            clock: floe_common::clock::system(),
            frame_bytes: Arc::new(Semaphore::new(config.max_inflight_produce_bytes)),
            config,
            metadata: deps.metadata,
            catalog,
            batcher,
            index,
            cache,
            objects: deps.objects,
            metrics: deps.metrics,
            cluster_id,
            fleet,
            zone_map,
            racks: crate::zone::Racks::default(),
            aborted: crate::txn::AbortedCache::default(),
        });
        let accept = tokio::spawn(accept_loop(ctx.clone(), listener, shutdown_rx));
        info!(addr = %local_addr, node_id = ctx.config.node_id, zone = ?ctx.config.zone, cache = ?cache_url, "agent serving kafka");
        Ok(Agent {
            ctx,
            local_addr,
            shutdown_tx,
            accept,
            batcher_task,
            feed,
            heartbeats,
            peer_endpoint,
        })
    }

    /// The bound Kafka address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Graceful shutdown: everything acknowledged stays, everything buffered is committed
    /// and answered before this returns.
    pub async fn shutdown(self) {
        info!("agent shutting down: no new connections");
        let _ = self.shutdown_tx.send(true);
        if let Ok(mut conns) = self.accept.await {
            // Connections finish what they already sent; sealing often meanwhile means their
            // produce requests are answered in one upload + commit, not after the flush timer.
            let batcher = self.ctx.batcher.clone();
            let drain = async {
                let mut tick = tokio::time::interval(Duration::from_millis(20));
                loop {
                    tokio::select! {
                        next = conns.join_next() => if next.is_none() { break },
                        _ = tick.tick() => batcher.flush().await,
                    }
                }
            };
            if tokio::time::timeout(DRAIN_TIMEOUT, drain).await.is_err() {
                warn!("connections did not drain in time");
            }
        }
        self.ctx.batcher.shutdown().await;
        let _ = self.batcher_task.await;
        let _ = self.feed.await;
        let _ = self.heartbeats.await;
        // The fleet no longer lists this agent, so peers stop asking it for blocks.
        if let Some(endpoint) = self.peer_endpoint {
            endpoint.abort();
        }
        info!("agent stopped");
    }
}

async fn accept_loop(
    ctx: Arc<Ctx>,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
) -> JoinSet<()> {
    let limit = Arc::new(Semaphore::new(ctx.config.max_connections));
    let mut conns = JoinSet::new();
    loop {
        let permit = tokio::select! {
            p = limit.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = shutdown.changed() => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Usually EMFILE: back off instead of spinning.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        // Reap finished connections so the set does not grow without bound.
        while conns.try_join_next().is_some() {}
        let ctx = ctx.clone();
        let rx = shutdown.clone();
        conns.spawn(async move {
            ctx.metrics.connections.inc();
            connection::serve(ctx.clone(), stream, peer, rx).await;
            ctx.metrics.connections.dec();
            drop(permit);
        });
    }
    conns
}
