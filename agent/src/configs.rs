//! Topic and broker configuration as Kafka names it: the known keys, their defaults,
//! types and validation. Topics store only explicitly set keys; defaults are applied here.

use std::collections::BTreeMap;

/// Kafka's config value types, as returned by DescribeConfigs v3+ (`config_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    /// BOOLEAN = 1
    Boolean = 1,
    /// STRING = 2
    String = 2,
    /// INT = 3
    Int = 3,
    /// LONG = 5
    Long = 5,
    /// DOUBLE = 6
    Double = 6,
    /// LIST = 7
    List = 7,
}

/// One known topic config.
#[derive(Debug, Clone, Copy)]
pub struct TopicConfigDef {
    /// Kafka name.
    pub name: &'static str,
    /// Default value as Kafka prints it.
    pub default: &'static str,
    /// Value type.
    pub kind: ConfigType,
    /// Whether Floe acts on it (false: accepted for compatibility, documented as no-op).
    pub effective: bool,
}

const fn def(
    name: &'static str,
    default: &'static str,
    kind: ConfigType,
    effective: bool,
) -> TopicConfigDef {
    TopicConfigDef {
        name,
        default,
        kind,
        effective,
    }
}

/// `max.message.bytes`.
pub const MAX_MESSAGE_BYTES: &str = "max.message.bytes";
/// `cleanup.policy`.
pub const CLEANUP_POLICY: &str = "cleanup.policy";

/// Every topic config Floe accepts, with Kafka 4.x defaults. Segment, flush and index
/// settings shape a broker's local log files, which Floe does not have: they are accepted
/// and reported, and change nothing.
pub const TOPIC_CONFIGS: &[TopicConfigDef] = &[
    def("cleanup.policy", "delete", ConfigType::List, true),
    def("compression.type", "producer", ConfigType::String, false),
    def("delete.retention.ms", "86400000", ConfigType::Long, true),
    def("file.delete.delay.ms", "60000", ConfigType::Long, false),
    def(
        "flush.messages",
        "9223372036854775807",
        ConfigType::Long,
        false,
    ),
    def("flush.ms", "9223372036854775807", ConfigType::Long, false),
    def("index.interval.bytes", "4096", ConfigType::Int, false),
    def(
        "max.compaction.lag.ms",
        "9223372036854775807",
        ConfigType::Long,
        true,
    ),
    def("max.message.bytes", "1048588", ConfigType::Int, true),
    def(
        "message.timestamp.after.max.ms",
        "9223372036854775807",
        ConfigType::Long,
        false,
    ),
    def(
        "message.timestamp.before.max.ms",
        "9223372036854775807",
        ConfigType::Long,
        false,
    ),
    def(
        "message.timestamp.type",
        "CreateTime",
        ConfigType::String,
        false,
    ),
    def("min.cleanable.dirty.ratio", "0.5", ConfigType::Double, true),
    def("min.compaction.lag.ms", "0", ConfigType::Long, true),
    def("min.insync.replicas", "1", ConfigType::Int, false),
    def("preallocate", "false", ConfigType::Boolean, false),
    def("retention.bytes", "-1", ConfigType::Long, true),
    def("retention.ms", "604800000", ConfigType::Long, true),
    def("segment.bytes", "1073741824", ConfigType::Int, false),
    def("segment.index.bytes", "10485760", ConfigType::Int, false),
    def("segment.jitter.ms", "0", ConfigType::Long, false),
    def("segment.ms", "604800000", ConfigType::Long, false),
    def(
        "unclean.leader.election.enable",
        "false",
        ConfigType::Boolean,
        false,
    ),
];

/// Looks up a topic config definition.
pub fn topic_config(name: &str) -> Option<&'static TopicConfigDef> {
    TOPIC_CONFIGS.iter().find(|d| d.name == name)
}

/// Why a config was refused; becomes INVALID_CONFIG with this message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigRejected(pub String);

/// Validates one topic config key and value.
pub fn validate_topic_config(name: &str, value: &str) -> Result<(), ConfigRejected> {
    let d =
        topic_config(name).ok_or_else(|| ConfigRejected(format!("unknown topic config {name}")))?;
    let bad = || ConfigRejected(format!("invalid value {value:?} for {name}"));
    match d.kind {
        ConfigType::Boolean => {
            if !matches!(value, "true" | "false") {
                return Err(bad());
            }
        }
        ConfigType::Int => {
            value.trim().parse::<i32>().map_err(|_| bad())?;
        }
        ConfigType::Long => {
            value.trim().parse::<i64>().map_err(|_| bad())?;
        }
        ConfigType::Double => {
            let v: f64 = value.trim().parse().map_err(|_| bad())?;
            if !(0.0..=1.0).contains(&v) {
                return Err(bad());
            }
        }
        ConfigType::String | ConfigType::List => {}
    }
    match name {
        "cleanup.policy" => {
            let mut parts: Vec<&str> = value.split(',').map(str::trim).collect();
            parts.sort_unstable();
            parts.dedup();
            if parts.is_empty() || !parts.iter().all(|p| matches!(*p, "delete" | "compact")) {
                return Err(bad());
            }
        }
        "compression.type"
            if !matches!(
                value,
                "producer" | "uncompressed" | "gzip" | "snappy" | "lz4" | "zstd"
            ) =>
        {
            return Err(bad());
        }
        // LogAppendTime would need the batch timestamps rewritten; refusing is better than
        // silently keeping producer timestamps.
        "message.timestamp.type" if value != "CreateTime" => {
            return Err(ConfigRejected(
                "message.timestamp.type=LogAppendTime is not supported yet".into(),
            ));
        }
        "max.message.bytes" | "min.insync.replicas" | "segment.bytes" | "segment.index.bytes"
            if value.trim().parse::<i32>().map_err(|_| bad())? < 0 =>
        {
            return Err(bad());
        }
        "retention.ms" | "retention.bytes"
            if value.trim().parse::<i64>().map_err(|_| bad())? < -1 =>
        {
            return Err(bad());
        }
        _ => {}
    }
    Ok(())
}

/// The effective `max.message.bytes` of a topic.
pub fn max_message_bytes(overrides: &BTreeMap<String, String>, broker_default: i32) -> i32 {
    overrides
        .get(MAX_MESSAGE_BYTES)
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(broker_default)
}

/// Whether a topic's `cleanup.policy` includes `compact`: its records must carry keys.
pub fn is_compacted(overrides: &BTreeMap<String, String>) -> bool {
    overrides
        .get("cleanup.policy")
        .is_some_and(|p| p.split(',').any(|x| x.trim() == "compact"))
}

/// Kafka's `DescribeConfigs` config sources.
pub mod source {
    /// DYNAMIC_TOPIC_CONFIG
    pub const TOPIC: i8 = 1;
    /// STATIC_BROKER_CONFIG
    pub const STATIC_BROKER: i8 = 4;
    /// DEFAULT_CONFIG
    pub const DEFAULT: i8 = 5;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_types_and_names() {
        assert!(validate_topic_config("retention.ms", "1000").is_ok());
        assert!(validate_topic_config("retention.ms", "-1").is_ok());
        assert!(validate_topic_config("retention.ms", "-2").is_err());
        assert!(validate_topic_config("retention.ms", "soon").is_err());
        assert!(validate_topic_config("cleanup.policy", "compact,delete").is_ok());
        assert!(validate_topic_config("cleanup.policy", "forever").is_err());
        assert!(validate_topic_config("no.such.config", "1").is_err());
        assert!(validate_topic_config("min.cleanable.dirty.ratio", "1.5").is_err());
        assert!(validate_topic_config("preallocate", "yes").is_err());
    }

    #[test]
    fn max_message_bytes_falls_back_to_broker_default() {
        let mut o = BTreeMap::new();
        assert_eq!(max_message_bytes(&o, 1000), 1000);
        o.insert(MAX_MESSAGE_BYTES.to_string(), "500".to_string());
        assert_eq!(max_message_bytes(&o, 1000), 500);
    }
}
