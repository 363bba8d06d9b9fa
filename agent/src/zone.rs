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
