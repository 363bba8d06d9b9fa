//! Which availability zone a client is in, as far as a request tells: a Fetch's `rack_id`
//! (`client.rack`, v11+) wins, then a `floe_az=<zone>` token in `client.id` (WarpStream's,
//! AutoMQ's and other diskless systems' spellings are accepted too, for migration). Used to
//! count bytes that cross zones (target: zero); zone-aware routing builds on it.

/// `client.id` keys that name the client's zone.
pub const ZONE_KEYS: &[&str] = &[
    "floe_az",
    "ws_az",
    "warpstream_az",
    "automq_az",
    "diskless_az",
];

/// The zone named in a `client.id`, e.g. `ingest-7,floe_az=us-east-1a`. Tokens are separated
/// by commas, spaces, semicolons or pipes; the first known key wins.
pub fn zone_from_client_id(client_id: &str) -> Option<&str> {
    client_id
        .split([',', ' ', ';', '|'])
        .filter_map(|token| token.split_once('='))
        .find(|(k, v)| ZONE_KEYS.contains(&k.trim()) && !v.trim().is_empty())
        .map(|(_, v)| v.trim())
}

/// The client's zone: `rack` (client.rack) when non-empty, else `from_client_id`.
pub fn rack_or(rack: Option<&str>, from_client_id: Option<String>) -> Option<String> {
    match rack.map(str::trim) {
        Some(r) if !r.is_empty() => Some(r.to_string()),
        _ => from_client_id,
    }
}

/// The zones clients named in `client.rack` (Fetch v11+), by client address and client.id,
/// remembered for a while so that their other requests are routed by it too.
#[derive(Clone)]
pub struct Racks(moka::future::Cache<(String, String), String>);

impl Default for Racks {
    fn default() -> Self {
        Racks(
            moka::future::Cache::builder()
                // Bytes of addresses, client ids and racks: clients control all three.
                .max_capacity(16 * 1024 * 1024)
                .weigher(|k: &(String, String), v: &String| {
                    u32::try_from(k.0.len() + k.1.len() + v.len()).unwrap_or(u32::MAX)
                })
                .time_to_idle(std::time::Duration::from_secs(30 * 60))
                .build(),
        )
    }
}

impl Racks {
    /// Remembers the rack a client sent.
    pub async fn remember(&self, host: &str, client_id: &str, rack: &str) {
        // Zone names are short; anything else is not worth memory.
        if rack.len() > 255 || client_id.len() > 1024 {
            return;
        }
        let key = (host.to_string(), client_id.to_string());
        if self.0.get(&key).await.as_deref() != Some(rack) {
            self.0.insert(key, rack.to_string()).await;
        }
    }

    /// The rack a client last sent, if any.
    pub async fn of(&self, host: &str, client_id: &str) -> Option<String> {
        self.0.get(&(host.to_string(), client_id.to_string())).await
    }
}

/// A configured map from client address ranges to zones (`10.0.0.0/20=us-east-1a`), for
/// clients that name no zone themselves. The longest matching prefix wins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ZoneMap {
    entries: Vec<(std::net::IpAddr, u8, String)>,
}

impl ZoneMap {
    /// Parses `cidr=zone` entries; a malformed one is an error naming it.
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        let mut out = Vec::with_capacity(entries.len());
        for e in entries {
            let bad = || format!("client zone CIDR {e:?}: expected like 10.0.0.0/20=us-east-1a");
            let (cidr, zone) = e.split_once('=').ok_or_else(bad)?;
            let (ip, len) = cidr.trim().split_once('/').ok_or_else(bad)?;
            let ip: std::net::IpAddr = ip.parse().map_err(|_| bad())?;
            let len: u8 = len.parse().map_err(|_| bad())?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let zone = zone.trim();
            if len > max || zone.is_empty() {
                return Err(bad());
            }
            out.push((ip, len, zone.to_string()));
        }
        // Longest prefix first, so the first match is the most specific.
        out.sort_by_key(|e| std::cmp::Reverse(e.1));
        Ok(ZoneMap { entries: out })
    }

    /// The zone of a client address, if a range covers it.
    pub fn lookup(&self, ip: std::net::IpAddr) -> Option<&str> {
        let ip = match ip {
            std::net::IpAddr::V6(v6) => v6
                .to_ipv4_mapped()
                .map_or(std::net::IpAddr::V6(v6), std::net::IpAddr::V4),
            v4 => v4,
        };
        self.entries
            .iter()
            .find(|(net, len, _)| covers(*net, *len, ip))
            .map(|(_, _, z)| z.as_str())
    }
}

fn covers(net: std::net::IpAddr, len: u8, ip: std::net::IpAddr) -> bool {
    let (net, ip, bits): (u128, u128, u32) = match (net, ip) {
        (std::net::IpAddr::V4(n), std::net::IpAddr::V4(i)) => {
            (u128::from(u32::from(n)), u128::from(u32::from(i)), 32)
        }
        (std::net::IpAddr::V6(n), std::net::IpAddr::V6(i)) => (u128::from(n), u128::from(i), 128),
        _ => return false,
    };
    let len = u32::from(len);
    if len == 0 {
        return true;
    }
    let shift = bits - len;
    (net >> shift) == (ip >> shift)
}

/// Whether traffic between a client in `client` and an agent in `agent` crosses zones; unknown
/// zones count as not crossing (nothing to compare).
pub fn crosses(client: Option<&str>, agent: Option<&str>) -> bool {
    matches!((client, agent), (Some(c), Some(a)) if c != a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_tokens_in_client_id() {
        assert_eq!(
            zone_from_client_id("floe_az=us-east-1a"),
            Some("us-east-1a")
        );
        assert_eq!(zone_from_client_id("ingest-7,floe_az=b"), Some("b"));
        assert_eq!(zone_from_client_id("app ws_az=use1-az2"), Some("use1-az2"));
        assert_eq!(zone_from_client_id("x;automq_az=c|y"), Some("c"));
        assert_eq!(zone_from_client_id("rdkafka"), None);
        assert_eq!(zone_from_client_id("floe_az="), None);
        assert_eq!(zone_from_client_id("other=1,floe_azz=b"), None);
    }

    #[test]
    fn cidr_map_longest_prefix_wins() {
        let m = ZoneMap::parse(&[
            "10.0.0.0/16=a".to_string(),
            "10.0.16.0/20=b".to_string(),
            "fd00::/8=v6".to_string(),
        ])
        .expect("parse");
        let ip = |s: &str| s.parse::<std::net::IpAddr>().expect("ip");
        assert_eq!(m.lookup(ip("10.0.1.2")), Some("a"));
        assert_eq!(m.lookup(ip("10.0.17.9")), Some("b"));
        assert_eq!(m.lookup(ip("::ffff:10.0.17.9")), Some("b"));
        assert_eq!(m.lookup(ip("fd12::1")), Some("v6"));
        assert_eq!(m.lookup(ip("192.168.0.1")), None);
        for bad in [
            "10.0.0.0=a",
            "10.0.0.0/33=a",
            "nope/8=a",
            "10.0.0.0/8=",
            "10.0.0.0/8",
        ] {
            assert!(ZoneMap::parse(&[bad.to_string()]).is_err(), "{bad}");
        }
    }

    #[test]
    fn rack_wins_over_client_id() {
        assert_eq!(rack_or(Some("b"), Some("a".into())).as_deref(), Some("b"));
        assert_eq!(rack_or(Some(" "), Some("a".into())).as_deref(), Some("a"));
        assert_eq!(rack_or(None, Some("a".into())).as_deref(), Some("a"));
        assert_eq!(rack_or(None, None), None);
    }

    #[test]
    fn only_known_different_zones_cross() {
        assert!(crosses(Some("a"), Some("b")));
        assert!(!crosses(Some("a"), Some("a")));
        assert!(!crosses(None, Some("a")));
        assert!(!crosses(Some("a"), None));
    }
}
