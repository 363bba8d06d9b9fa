//! Agent settings. Data only: components (stores, clocks) are injected separately.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::error::AgentError;

/// Settings of one agent.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentConfig {
    /// Kafka node id this agent reports for itself. Must be unique in the cluster.
    pub node_id: i32,
    /// Availability zone, reported as the broker rack.
    pub zone: Option<String>,
    /// Address the Kafka listener binds.
    pub listen: SocketAddr,
    /// `host:port` clients are told to connect to; defaults to `listen`.
    pub advertise: Option<String>,
    /// Seal the open WAL object this long after its first append. Lower means lower produce
    /// latency but more PUTs: at 250 ms an agent issues at most 4 PUTs/s (~10.4 M/month).
    pub flush_interval_ms: u64,
    /// Seal the open WAL object once it holds this many bytes. Larger objects mean fewer
    /// PUTs per GiB (128 at 8 MiB) but more memory held per agent.
    pub flush_bytes: usize,
    /// Largest Kafka request frame accepted; bigger frames close the connection
    /// (Kafka's `socket.request.max.bytes`, 100 MiB).
    pub max_request_bytes: usize,
    /// Connections served at once; further ones wait in the accept queue.
    pub max_connections: usize,
    /// Requests pipelined per connection before the agent stops reading from it.
    pub max_inflight_requests_per_connection: usize,
    /// Produce bytes buffered or uploading but not yet acknowledged, across all
    /// connections; producers wait beyond it. Bounds agent memory under load.
    pub max_inflight_produce_bytes: usize,
    /// Memory budget of the zone cache for blocks of recently written objects (the tail).
    pub cache_bytes: u64,
    /// Memory budget of the zone cache for older blocks read by consumers catching up, kept
    /// apart so that they cannot evict the tail.
    pub catchup_cache_bytes: u64,
    /// Object-store bytes per second this agent reads for catch-up blocks, so that a
    /// consumer reading from the start cannot take the CPU and network producers need
    /// (0: unlimited). Bursts of one second pass at once.
    pub catchup_read_bytes_per_sec: u64,
    /// Blocks of objects written at most this long ago count as the tail (`cache_bytes`);
    /// older ones as catch-up reads (`catchup_cache_bytes`).
    pub cache_tail_window_ms: u64,
    /// Address of the zone cache's peer endpoint (agent to agent). `None`: this agent caches
    /// alone and other agents of its zone do not use it.
    pub cache_listen: Option<SocketAddr>,
    /// `host:port` other agents reach the peer endpoint at; defaults to the advertised Kafka
    /// host with the bound cache port.
    pub cache_advertise: Option<String>,
    /// Kafka's `auto.create.topics.enable`.
    pub auto_create_topics_enable: bool,
    /// Kafka's `num.partitions`: partitions of auto-created topics.
    pub num_partitions: i32,
    /// Kafka's `message.max.bytes`: the default `max.message.bytes` of topics.
    pub message_max_bytes: i32,
    /// How long a request frame's body may take to arrive after its length; a slower
    /// client is disconnected so it cannot pin frame memory.
    pub frame_body_timeout_ms: u64,
    /// How long the agent keeps retrying a failed metadata commit before failing the
    /// produce requests in the object (their outcome is then unknown to the client).
    pub commit_timeout_ms: u64,
    /// How often the agent heartbeats to the metadata service (fleet membership).
    pub heartbeat_interval_ms: u64,
    /// `cidr=zone` entries giving the zone of clients that name none themselves.
    pub client_zone_cidrs: Vec<String>,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            node_id: 1,
            zone: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 9092)),
            advertise: None,
            flush_interval_ms: 250,
            flush_bytes: 8 * 1024 * 1024,
            max_request_bytes: 100 * 1024 * 1024,
            max_connections: 10_000,
            max_inflight_requests_per_connection: 1000,
            max_inflight_produce_bytes: 256 * 1024 * 1024,
            cache_bytes: 512 * 1024 * 1024,
            catchup_cache_bytes: 256 * 1024 * 1024,
            catchup_read_bytes_per_sec: 64 * 1024 * 1024,
            cache_tail_window_ms: 60_000,
            cache_listen: None,
            cache_advertise: None,
            auto_create_topics_enable: true,
            num_partitions: 1,
            message_max_bytes: 1_048_588,
            commit_timeout_ms: 30_000,
            heartbeat_interval_ms: 1_000,
            client_zone_cidrs: Vec::new(),
            frame_body_timeout_ms: 30_000,
        }
    }
}

impl AgentConfig {
    /// Checks values that would otherwise fail later in confusing ways.
    pub fn validate(&self) -> Result<(), AgentError> {
        let bad = |m: &str| Err(AgentError::Config(m.to_string()));
        if self.node_id < 0 {
            return bad("node_id must be >= 0");
        }
        if let Err(e) = crate::zone::ZoneMap::parse(&self.client_zone_cidrs) {
            return Err(AgentError::Config(e));
        }
        if self.heartbeat_interval_ms == 0 || self.heartbeat_interval_ms > 60_000 {
            return bad("heartbeat_interval_ms must be in 1..=60000");
        }
        if self.flush_interval_ms == 0 || self.flush_interval_ms > 60_000 {
            return bad("flush_interval_ms must be in 1..=60000");
        }
        if self.flush_bytes < 1024 || self.flush_bytes > 1024 * 1024 * 1024 {
            return bad("flush_bytes must be in 1 KiB..=1 GiB");
        }
        if self.max_request_bytes < 1024 || self.max_request_bytes > i32::MAX as usize {
            return bad("max_request_bytes must be in 1 KiB..=2 GiB");
        }
        if self.max_inflight_produce_bytes < self.max_request_bytes {
            return bad("max_inflight_produce_bytes must be >= max_request_bytes");
        }
        if self.max_connections == 0 || self.max_inflight_requests_per_connection == 0 {
            return bad("max_connections and max_inflight_requests_per_connection must be > 0");
        }
        if self.num_partitions < 1 {
            return bad("num_partitions must be >= 1");
        }
        if self.message_max_bytes < 0 {
            return bad("message_max_bytes must be >= 0");
        }
        if let Some(adv) = &self.advertise {
            if parse_host_port(adv).is_none() {
                return bad("advertise must be host:port");
            }
        }
        if let Some(adv) = &self.cache_advertise {
            if parse_host_port(adv).is_none() {
                return bad("cache_advertise must be host:port");
            }
        }
        if self.cache_tail_window_ms == 0 || self.cache_tail_window_ms > 86_400_000 {
            return bad("cache_tail_window_ms must be in 1..=86400000");
        }
        // A block must fit, or every read of it would go to the object store.
        let block = crate::fetch::cache::BLOCK_BYTES;
        if self.cache_bytes < block || self.catchup_cache_bytes < block {
            return bad("cache_bytes and catchup_cache_bytes must be at least 4 MiB (one block)");
        }
        Ok(())
    }

    /// The URL other agents reach the zone cache at, given the port the endpoint bound.
    pub fn cache_url(&self, bound_port: u16) -> String {
        let (host, port) = self
            .cache_advertise
            .as_deref()
            .and_then(parse_host_port)
            .unwrap_or_else(|| (self.advertised().0, i32::from(bound_port)));
        if host.contains(':') {
            format!("http://[{host}]:{port}")
        } else {
            format!("http://{host}:{port}")
        }
    }

    /// The advertised host and port.
    pub fn advertised(&self) -> (String, i32) {
        self.advertise
            .as_deref()
            .and_then(parse_host_port)
            .unwrap_or_else(|| (self.listen.ip().to_string(), i32::from(self.listen.port())))
    }
}

fn parse_host_port(s: &str) -> Option<(String, i32)> {
    let (host, port) = s.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    if host.is_empty() {
        return None;
    }
    Some((
        host.trim_matches(|c| c == '[' || c == ']').to_string(),
        i32::from(port),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert!(AgentConfig::default().validate().is_ok());
    }

    #[test]
    fn rejects_garbage() {
        let c = AgentConfig {
            flush_interval_ms: 0,
            ..AgentConfig::default()
        };
        assert!(c.validate().is_err());
        let c = AgentConfig {
            advertise: Some("nohost".into()),
            ..AgentConfig::default()
        };
        assert!(c.validate().is_err());
    }

    #[test]
    fn advertised_defaults_to_listen() {
        let c = AgentConfig::default();
        assert_eq!(c.advertised(), ("127.0.0.1".to_string(), 9092));
        let c = AgentConfig {
            advertise: Some("kafka.example:19092".into()),
            ..AgentConfig::default()
        };
        assert_eq!(c.advertised(), ("kafka.example".to_string(), 19092));
    }
}
