//! The agent fleet as this agent sees it. Every agent heartbeats its identity and addresses
//! to the metadata service and gets the live fleet back; Metadata answers list the live agents
//! of the client's zone, and each partition's "leader" among them is chosen by rendezvous
//! hashing, so leadership is spread evenly and moves only for the partitions of an agent that
//! comes or goes. Any agent can serve any partition (there is no replication to lead), so the
//! choice only spreads load.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use floe_common::Metrics;
use floe_metadata::{AgentInfo, Metadata};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};
use uuid::Uuid;

/// Failed heartbeats in a row after which the fleet view shrinks to this agent alone.
const STALE_HEARTBEATS: u32 = 6;

/// This agent's view of the fleet.
pub struct Fleet {
    me: AgentInfo,
    live: RwLock<Arc<Vec<AgentInfo>>>,
    metrics: Arc<Metrics>,
}

/// FNV-1a, 64 bits, then the splitmix64 finaliser (FNV alone leaves inputs that differ in
/// their last bytes correlated): stable across processes and releases, unlike std's hasher,
/// which is what lets every agent compute the same leader.
fn score(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in *part {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// The agent (node id) that leads `partition` of `topic` among `agents`: the highest
/// rendezvous score. `None` when `agents` is empty.
pub fn leader(agents: &[AgentInfo], topic: Uuid, partition: i32) -> Option<i32> {
    agents
        .iter()
        .max_by_key(|a| {
            let score = score(&[
                topic.as_bytes(),
                &partition.to_be_bytes(),
                &a.node_id.to_be_bytes(),
            ]);
            (score, a.node_id)
        })
        .map(|a| a.node_id)
}

impl Fleet {
    /// A fleet of one (this agent) until the first heartbeat answers.
    pub fn new(me: AgentInfo, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Fleet {
            live: RwLock::new(Arc::new(vec![me.clone()])),
            me,
            metrics,
        })
    }

    /// This agent.
    pub fn me(&self) -> &AgentInfo {
        &self.me
    }

    /// The live agents, this one included, by node id.
    pub fn agents(&self) -> Arc<Vec<AgentInfo>> {
        self.live.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The live agents of `zone` (none when it has none).
    pub fn in_zone(&self, zone: &str) -> Vec<AgentInfo> {
        self.agents()
            .iter()
            .filter(|a| a.zone.as_deref() == Some(zone))
            .cloned()
            .collect()
    }

    /// The agents a client in `zone` is told about: those of its zone, or every agent (a
    /// counted fallback) when its zone has none alive. An unknown zone gets every agent.
    pub fn for_zone(&self, zone: Option<&str>) -> Vec<AgentInfo> {
        let all = self.agents();
        let Some(zone) = zone else {
            return all.as_ref().clone();
        };
        let same = self.in_zone(zone);
        if same.is_empty() {
            self.metrics.zone_fallbacks.inc();
            return all.as_ref().clone();
        }
        same
    }

    /// The agent of this agent's zone that owns block `index` of object `key` in the zone
    /// cache (highest rendezvous score among the zone's live agents with a cache address),
    /// when that is not this agent. Owners move only for the blocks of an agent that comes
    /// or goes.
    pub fn block_owner(&self, key: &str, index: u64) -> Option<AgentInfo> {
        let all = self.agents();
        let owner = all
            .iter()
            .filter(|a| {
                a.node_id == self.me.node_id || (a.zone == self.me.zone && a.cache_url.is_some())
            })
            .max_by_key(|a| {
                let score = score(&[
                    key.as_bytes(),
                    &index.to_be_bytes(),
                    &a.node_id.to_be_bytes(),
                ]);
                (score, a.node_id)
            })?;
        (owner.node_id != self.me.node_id).then(|| owner.clone())
    }

    /// A fleet fixed to `me` and `others`, as if a heartbeat had answered (tests).
    #[cfg(test)]
    pub(crate) fn fixed(me: AgentInfo, others: Vec<AgentInfo>, metrics: Arc<Metrics>) -> Arc<Self> {
        let fleet = Fleet::new(me, metrics);
        fleet.set(others);
        fleet
    }

    fn set(&self, mut agents: Vec<AgentInfo>) {
        // The answer may predate our own registration; we are alive by definition.
        agents.retain(|a| a.node_id != self.me.node_id);
        agents.push(self.me.clone());
        agents.sort_by_key(|a| a.node_id);
        self.metrics.fleet_agents.set(agents.len() as i64);
        *self.live.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(agents);
    }

    /// Heartbeats every `interval` until shutdown, then leaves the fleet.
    pub fn spawn(
        self: &Arc<Self>,
        metadata: Arc<dyn Metadata>,
        interval: Duration,
        mut shutdown: watch::Receiver<bool>,
    ) -> JoinHandle<()> {
        let fleet = self.clone();
        // Without answers for this long the last known fleet may list dead agents as
        // leaders; this agent then answers for itself alone until heartbeats work again.
        let stale_after = interval * STALE_HEARTBEATS;
        tokio::spawn(async move {
            let mut failing = false;
            let mut last_ok = tokio::time::Instant::now();
            loop {
                match metadata.agent_heartbeat(fleet.me.clone()).await {
                    Ok(agents) => {
                        if failing {
                            info!("agent heartbeats reach the metadata service again");
                            failing = false;
                        }
                        last_ok = tokio::time::Instant::now();
                        fleet.set(agents);
                    }
                    Err(e) => {
                        if !failing {
                            warn!(error = %e, "agent heartbeat failed");
                            failing = true;
                        }
                        if last_ok.elapsed() > stale_after {
                            fleet.set(Vec::new());
                        }
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(interval) => {}
                    _ = shutdown.changed() => break,
                }
            }
            if let Err(e) = metadata
                .agent_leave(fleet.me.node_id, &fleet.me.instance)
                .await
            {
                warn!(error = %e, "leaving the fleet failed; the metadata service times us out");
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(node_id: i32, zone: &str) -> AgentInfo {
        AgentInfo {
            node_id,
            zone: Some(zone.into()),
            host: "h".into(),
            port: 1,
            cache_url: None,
            instance: "i".into(),
            started_at_ms: 0,
        }
    }

    #[test]
    fn rendezvous_spreads_evenly_and_moves_little() {
        let four: Vec<AgentInfo> = (1..=4).map(|n| agent(n, "a")).collect();
        let topic = Uuid::from_u128(7);
        let mut counts = [0usize; 5];
        let before: Vec<i32> = (0..1000)
            .map(|p| leader(&four, topic, p).expect("leader"))
            .collect();
        for n in &before {
            counts[*n as usize] += 1;
        }
        assert!(
            counts[1..].iter().all(|c| (200..=300).contains(c)),
            "{counts:?}"
        );
        // Agent 4 leaves: only its partitions move.
        let three = &four[..3];
        for (p, old) in before.iter().enumerate() {
            let new = leader(three, topic, p as i32).expect("leader");
            if *old != 4 {
                assert_eq!(new, *old, "partition {p} moved without cause");
            }
        }
        assert_eq!(leader(&[], topic, 0), None);
    }

    #[test]
    fn zones_filter_and_fall_back() {
        let fleet = Fleet::new(agent(1, "a"), Arc::new(Metrics::new()));
        fleet.set(vec![agent(2, "a"), agent(3, "b")]);
        let ids = |v: Vec<AgentInfo>| v.iter().map(|a| a.node_id).collect::<Vec<_>>();
        assert_eq!(ids(fleet.for_zone(Some("a"))), vec![1, 2]);
        assert_eq!(ids(fleet.for_zone(Some("b"))), vec![3]);
        assert_eq!(ids(fleet.for_zone(Some("z"))), vec![1, 2, 3]);
        assert_eq!(ids(fleet.for_zone(None)), vec![1, 2, 3]);
        assert_eq!(fleet.metrics.zone_fallbacks.get(), 1);
    }
}
