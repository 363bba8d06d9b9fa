//! Bench settings. Defaults make `floe bench --bootstrap host:port` a meaningful 60 s run.

use std::time::Duration;

use serde::Serialize;

use crate::LoadgenError;

#[derive(Debug, Clone, Serialize)]
pub struct BenchConfig {
    pub bootstrap: String,
    /// Topic to use; by default a fresh `floe-bench-<random>` so the consumers read exactly
    /// this run's records.
    pub topic: Option<String>,
    #[serde(serialize_with = "secs")]
    pub duration: Duration,
    /// Value size in bytes (the first 8 carry the send time, for end-to-end latency).
    pub message_bytes: usize,
    /// Total records/s over all producers; `None` = as fast as the server takes them.
    pub rate: Option<u64>,
    pub partitions: i32,
    pub producers: u32,
    pub consumers: u32,
    /// librdkafka `acks`: 0, 1 or all.
    pub acks: String,
    /// librdkafka `compression.type`: none, gzip, snappy or lz4 (zstd is not built in).
    pub compression: String,
    pub linger_ms: u32,
    /// Client zone: sent as `client.id=floe_az=<zone>` (Floe's zone routing) and `client.rack`.
    pub zone: Option<String>,
    /// Agents' admin addresses (host:port) whose /metrics are scraped before and after.
    pub admin: Vec<String>,
    /// PIDs of local Floe processes whose CPU time is read from /proc.
    pub floe_pids: Vec<u32>,
    /// How long consumers may take to catch up after the producers stop.
    #[serde(serialize_with = "secs")]
    pub drain_timeout: Duration,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl Default for BenchConfig {
    fn default() -> Self {
        BenchConfig {
            bootstrap: "127.0.0.1:9092".into(),
            topic: None,
            duration: Duration::from_secs(60),
            message_bytes: 1024,
            rate: None,
            partitions: 8,
            producers: 1,
            consumers: 1,
            acks: "all".into(),
            compression: "none".into(),
            linger_ms: 5,
            zone: None,
            admin: Vec::new(),
            floe_pids: Vec::new(),
            drain_timeout: Duration::from_secs(30),
        }
    }
}

impl BenchConfig {
    pub fn validate(&self) -> Result<(), LoadgenError> {
        let bad = |m: &str| Err(LoadgenError::Config(m.to_string()));
        if self.message_bytes < 8 {
            return bad("message size must be at least 8 bytes (the send timestamp)");
        }
        if self.partitions < 1 || self.producers < 1 {
            return bad("partitions and producers must be at least 1");
        }
        if self.rate == Some(0) {
            return bad("rate must be > 0 (omit it for max)");
        }
        if !matches!(self.acks.as_str(), "0" | "1" | "all" | "-1") {
            return bad("acks must be 0, 1, all or -1");
        }
        if !matches!(
            self.compression.as_str(),
            "none" | "gzip" | "snappy" | "lz4"
        ) {
            return bad("compression must be none, gzip, snappy or lz4");
        }
        if self.duration.is_zero() {
            return bad("duration must be > 0");
        }
        Ok(())
    }

    pub fn topic_name(&self) -> String {
        self.topic
            .clone()
            .unwrap_or_else(|| format!("floe-bench-{:08x}", rand::random::<u32>()))
    }

    /// The client properties shared by producers, consumers and the admin client.
    pub fn client_config(&self) -> rdkafka::ClientConfig {
        let mut c = rdkafka::ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap);
        match &self.zone {
            Some(z) => {
                c.set("client.id", format!("floe_az={z}"));
                c.set("client.rack", z);
            }
            None => {
                c.set("client.id", "floe-bench");
            }
        }
        c
    }
}

/// Parses `60s`, `500ms`, `2m`, `1h` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let v: f64 = num
        .parse()
        .map_err(|_| format!("invalid duration {s:?} (e.g. 60s, 500ms, 2m)"))?;
    let secs = match unit {
        "ms" => v / 1000.0,
        "s" => v,
        "m" => v * 60.0,
        "h" => v * 3600.0,
        _ => return Err(format!("invalid duration unit in {s:?} (ms, s, m, h)")),
    };
    if !(0.0..=1e9).contains(&secs) {
        return Err(format!("duration out of range: {s:?}"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("5"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn defaults_are_valid_and_bad_settings_are_refused() {
        assert!(BenchConfig::default().validate().is_ok());
        for c in [
            BenchConfig {
                message_bytes: 4,
                ..Default::default()
            },
            BenchConfig {
                acks: "2".into(),
                ..Default::default()
            },
            BenchConfig {
                compression: "zstd".into(),
                ..Default::default()
            },
            BenchConfig {
                rate: Some(0),
                ..Default::default()
            },
            BenchConfig {
                partitions: 0,
                ..Default::default()
            },
        ] {
            assert!(c.validate().is_err(), "{c:?}");
        }
    }

    #[test]
    fn fresh_topic_per_run() {
        let c = BenchConfig::default();
        assert!(c.topic_name().starts_with("floe-bench-"));
        let c = BenchConfig {
            topic: Some("t".into()),
            ..Default::default()
        };
        assert_eq!(c.topic_name(), "t");
    }
}
