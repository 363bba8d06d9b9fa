//! Reads the ratios a `floe bench` result measured (the JSON written by `floe bench
//! --output`). Only the fields the bill needs are read; all are optional, and a ratio that a
//! run could not measure keeps its default.

use serde::Deserialize;

use crate::model::{Ratio, Ratios};
use crate::CostError;

const GIB: f64 = 1_073_741_824.0;
const MIB: f64 = 1_048_576.0;

#[derive(Debug, Clone, Default, Deserialize)]
pub struct BenchInput {
    #[serde(default)]
    pub produce: Produce,
    /// Counters scraped from the agents' /metrics (absent when no --admin was given).
    #[serde(default)]
    pub floe: Option<FloeCounters>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Produce {
    #[serde(default)]
    pub bytes: u64,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct FloeCounters {
    #[serde(default)]
    pub object_store: ObjectStore,
    /// CPU seconds of the Floe processes during the run, when known.
    #[serde(default)]
    pub cpu_seconds: Option<f64>,
    /// Compaction bytes written / bytes produced, when a compactor ran.
    #[serde(default)]
    pub compaction_rewrite_ratio: Option<f64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ObjectStore {
    /// Counts, as floats: Prometheus counters are floats, and `floe bench` copies them.
    #[serde(default)]
    pub put_requests: f64,
    #[serde(default)]
    pub get_requests: f64,
}

impl BenchInput {
    pub fn parse(json: &str) -> Result<BenchInput, CostError> {
        Ok(serde_json::from_str(json)?)
    }

    /// Replaces the defaults with what this run measured. Needs bytes produced and the
    /// agents' counters; otherwise there is nothing to divide by and the defaults stay.
    pub fn apply(&self, mut r: Ratios) -> Result<Ratios, CostError> {
        let Some(f) = &self.floe else {
            return Err(CostError::Invalid(
                "the bench result has no Floe counters (run floe bench with --admin host:port)"
                    .into(),
            ));
        };
        if self.produce.bytes == 0 {
            return Err(CostError::Invalid(
                "the bench result produced 0 bytes: no ratio can be measured".into(),
            ));
        }
        let (puts, gets) = (f.object_store.put_requests, f.object_store.get_requests);
        if !(puts.is_finite() && puts >= 0.0 && gets.is_finite() && gets >= 0.0) {
            return Err(CostError::Invalid(format!(
                "object-store counts must be >= 0, got {puts} PUTs and {gets} GETs"
            )));
        }
        let gib = self.produce.bytes as f64 / GIB;
        r.puts_per_gib = Ratio::measured(puts / gib);
        r.gets_per_gib = Ratio::measured(gets / gib);
        if let Some(c) = f.cpu_seconds.filter(|c| c.is_finite() && *c >= 0.0) {
            r.cpu_cores_per_mibps = Ratio::measured(c / (self.produce.bytes as f64 / MIB));
        }
        if let Some(c) = f
            .compaction_rewrite_ratio
            .filter(|c| c.is_finite() && *c >= 0.0)
        {
            r.compaction_rewrite = Ratio::measured(c);
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Assumptions, Source, Workload};

    fn defaults() -> Ratios {
        Ratios::defaults(&Workload::default(), &Assumptions::default())
    }

    #[test]
    fn measured_ratios_by_hand() {
        // 512 MiB produced, 20 PUTs, 3 GETs, 4 CPU seconds:
        // 20 / 0.5 GiB = 40 PUT/GiB; 6 GET/GiB; 4 s / 512 MiB = 0.0078125 cores per MiB/s.
        let j = r#"{"produce":{"bytes":536870912,"records":1},
                    "floe":{"object_store":{"put_requests":20,"get_requests":3},
                            "cpu_seconds":4.0,"cpu_source":"proc"}}"#;
        let r = BenchInput::parse(j)
            .expect("json")
            .apply(defaults())
            .expect("apply");
        assert_eq!(r.puts_per_gib, Ratio::measured(40.0));
        assert_eq!(r.gets_per_gib, Ratio::measured(6.0));
        assert_eq!(r.cpu_cores_per_mibps, Ratio::measured(0.007_812_5));
        // No compactor ran: the default stays.
        assert_eq!(r.compaction_rewrite.source, Source::Default);
    }

    #[test]
    fn unknown_cpu_keeps_the_default() {
        let j = r#"{"produce":{"bytes":1073741824},
                    "floe":{"object_store":{"put_requests":128,"get_requests":0},"cpu_seconds":null}}"#;
        let r = BenchInput::parse(j)
            .expect("json")
            .apply(defaults())
            .expect("apply");
        assert_eq!(r.puts_per_gib.value, 128.0);
        assert_eq!(r.cpu_cores_per_mibps.source, Source::Default);
    }

    #[test]
    fn runs_without_counters_or_bytes_are_refused() {
        let r = BenchInput::parse(r#"{"produce":{"bytes":10}}"#).expect("json");
        assert!(r.apply(defaults()).is_err());
        let r = BenchInput::parse(r#"{"produce":{"bytes":0},"floe":{}}"#).expect("json");
        assert!(r.apply(defaults()).is_err());
        let j = r#"{"produce":{"bytes":10},"floe":{"object_store":{"put_requests":-1.0}}}"#;
        assert!(BenchInput::parse(j)
            .expect("json")
            .apply(defaults())
            .is_err());
        // floe bench writes counts as floats (95.0).
        let j = r#"{"produce":{"bytes":1073741824},"floe":{"object_store":{"put_requests":95.0}}}"#;
        let r = BenchInput::parse(j)
            .expect("json")
            .apply(defaults())
            .expect("apply");
        assert_eq!(r.puts_per_gib.value, 95.0);
        assert!(BenchInput::parse("not json").is_err());
    }
}
