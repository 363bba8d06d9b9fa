//! Which metadata process coordinates groups. Group state machines live in memory, so
//! exactly one process among those sharing a database may run them: the holder of the
//! store's group-coordinator lease (a PostgreSQL advisory lock). It records its HTTP address
//! in the store; the other processes forward group calls there. When the holder dies its
//! lease lapses with its database connection, another process takes it within about a
//! second and reloads every group from the store, so members carry on at their generation.

use std::sync::{Arc, Mutex as StdMutex, RwLock};
use std::time::Duration;

use tracing::{info, warn};

use super::{GroupCall, GroupCoordinator, GroupReply, GroupSettings, Now};
use crate::client::HttpMetadataClient;
use crate::error::{MetadataError, Result};
use crate::store::{GroupLease, MetadataStore};

/// How often a follower tries to take the lease and the holder checks it still has it.
const ELECTION_INTERVAL: Duration = Duration::from_secs(1);

struct Leading {
    coordinator: Arc<GroupCoordinator>,
    lease: Box<dyn GroupLease>,
}

/// Routes group calls to this process's coordinator or to the lease holder.
pub struct GroupRouter {
    store: Arc<dyn MetadataStore>,
    now: Now,
    settings: GroupSettings,
    /// This process's metadata API address, for the others to forward to.
    advertise_url: Option<String>,
    instance: String,
    leading: tokio::sync::Mutex<Option<Leading>>,
    /// The coordinator while this process holds the lease (read on every call).
    coordinator: RwLock<Option<Arc<GroupCoordinator>>>,
    /// Client of the current holder elsewhere, by URL.
    remote: StdMutex<Option<(String, HttpMetadataClient)>>,
}

impl GroupRouter {
    /// Tries to lead at once (a lone process starts as coordinator), then keeps trying, or
    /// keeps checking its lease, every second.
    pub async fn start(
        store: Arc<dyn MetadataStore>,
        now: Now,
        settings: GroupSettings,
        advertise_url: Option<String>,
        instance: String,
    ) -> Result<Arc<Self>> {
        let router = Arc::new(GroupRouter {
            store,
            now,
            settings,
            advertise_url,
            instance,
            leading: tokio::sync::Mutex::new(None),
            coordinator: RwLock::new(None),
            remote: StdMutex::new(None),
        });
        router.elect().await;
        let weak = Arc::downgrade(&router);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(ELECTION_INTERVAL).await;
                let Some(r) = weak.upgrade() else { return };
                r.elect().await;
            }
        });
        Ok(router)
    }

    /// One round: the holder checks its lease; a follower tries to take it.
    async fn elect(&self) {
        let mut leading = self.leading.lock().await;
        if let Some(l) = leading.as_mut() {
            if l.lease.alive().await {
                return;
            }
            warn!("group coordinator lease lost; stepping down");
            *self.coordinator.write().unwrap_or_else(|e| e.into_inner()) = None;
            if let Some(l) = leading.take() {
                l.coordinator.stop().await;
            }
        }
        let lease = match self.store.lead_groups().await {
            Ok(Some(l)) => l,
            Ok(None) => return,
            Err(e) => {
                warn!(error = %e, "trying the group coordinator lease failed");
                return;
            }
        };
        let coordinator = match GroupCoordinator::start(
            self.store.clone(),
            self.now.clone(),
            self.settings,
        )
        .await
        {
            Ok(c) => c,
            Err(e) => {
                warn!(error = %e, "loading groups failed; not leading");
                return;
            }
        };
        if let Some(url) = &self.advertise_url {
            if let Err(e) = self
                .store
                .set_group_leader(url, &self.instance, (self.now)())
                .await
            {
                warn!(error = %e, "recording the group coordinator address failed; not leading");
                return;
            }
        }
        info!(url = ?self.advertise_url, "this process now coordinates consumer groups");
        *self.coordinator.write().unwrap_or_else(|e| e.into_inner()) = Some(coordinator.clone());
        *leading = Some(Leading { coordinator, lease });
    }

    /// Gives up the lease (at shutdown), so another process takes over at once.
    pub async fn step_down(&self) {
        let mut leading = self.leading.lock().await;
        *self.coordinator.write().unwrap_or_else(|e| e.into_inner()) = None;
        if let Some(l) = leading.take() {
            l.coordinator.stop().await;
            drop(l.lease);
            info!("group coordinator lease released");
        }
    }

    fn local(&self) -> Option<Arc<GroupCoordinator>> {
        self.coordinator
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Answers a call here when this process leads, else forwards it to the leader (once:
    /// a `forwarded` call that finds no coordinator here fails, so two processes with stale
    /// views cannot bounce a call between them).
    pub async fn call(&self, call: GroupCall, forwarded: bool) -> Result<GroupReply> {
        if let Some(c) = self.local() {
            return Ok(c.call(call).await);
        }
        if forwarded {
            return Err(MetadataError::Unavailable(
                "not the group coordinator".to_string(),
            ));
        }
        let Some((url, instance)) = self.store.group_leader().await? else {
            return Err(MetadataError::Unavailable(
                "no group coordinator elected yet".to_string(),
            ));
        };
        if instance == self.instance {
            return Err(MetadataError::Unavailable(
                "group coordinator lease lapsed".to_string(),
            ));
        }
        let client = {
            let mut remote = self.remote.lock().unwrap_or_else(|e| e.into_inner());
            match remote.as_ref() {
                Some((u, c)) if *u == url => c.clone(),
                _ => {
                    let c = HttpMetadataClient::new(&url)?;
                    *remote = Some((url, c.clone()));
                    c
                }
            }
        };
        client.forward_group(call).await
    }

    /// Metrics: `None` unless this process coordinates groups.
    pub async fn stats(&self) -> Option<super::CoordinatorStats> {
        match self.local() {
            Some(c) => Some(c.stats().await),
            None => None,
        }
    }

    /// The coordinator, while this process leads (tests and tools).
    pub fn coordinator(&self) -> Option<Arc<GroupCoordinator>> {
        self.local()
    }
}
