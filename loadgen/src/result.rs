//! The JSON result of a run. `floe cost --bench` reads `produce.bytes` and
//! `floe.object_store.*`, `floe.cpu_seconds` from it.

use std::time::Duration;

use serde::Serialize;

use crate::consume::ConsumerStats;
use crate::produce::ProducerStats;
use crate::scrape::{Counters, Snapshot};
use crate::stats::LatencyMs;
use crate::BenchConfig;

const GIB: f64 = 1_073_741_824.0;
const MIB: f64 = 1_048_576.0;

#[derive(Debug, Clone, Serialize)]
pub struct BenchResult {
    pub schema: &'static str,
    pub config: BenchConfig,
    pub topic: String,
    pub produce: ProduceResult,
    pub consume: ConsumeResult,
    /// Floe's counters over the run (None without --admin and --floe-pid).
    pub floe: Option<FloeResult>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProduceResult {
    pub sent: u64,
    pub records: u64,
    pub bytes: u64,
    pub errors: u64,
    pub flush_errors: Vec<String>,
    /// From the first send to the last delivery report.
    pub elapsed_s: f64,
    pub mb_per_s: f64,
    pub mib_per_s: f64,
    pub records_per_s: f64,
    pub latency_ms: LatencyMs,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConsumeResult {
    pub consumers: usize,
    pub records: u64,
    pub bytes: u64,
    pub errors: u64,
    /// From the run's start to the last record read.
    pub elapsed_s: f64,
    pub mb_per_s: f64,
    pub records_per_s: f64,
    /// Consumers read every acknowledged record.
    pub complete: bool,
    pub e2e_latency_ms: LatencyMs,
}

#[derive(Debug, Clone, Serialize)]
pub struct ObjectStoreDelta {
    pub put_requests: f64,
    pub get_requests: f64,
    pub delete_requests: f64,
    pub put_bytes: f64,
    pub get_bytes: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct FloeResult {
    pub admin: Vec<String>,
    pub object_store: ObjectStoreDelta,
    pub wal_objects: f64,
    pub metadata_commits: f64,
    pub produce_bytes: f64,
    pub fetch_bytes: f64,
    /// Record bytes exchanged with clients of another zone than the serving agent's.
    pub cross_zone_bytes: Option<f64>,
    pub cross_zone_source: &'static str,
    pub cpu_seconds: Option<f64>,
    pub cpu_source: &'static str,
    pub puts_per_gib: Option<f64>,
    pub gets_per_gib: Option<f64>,
    pub cpu_seconds_per_mib: Option<f64>,
}

fn delta(a: &Counters, b: &Counters) -> Counters {
    Counters {
        put_requests: b.put_requests - a.put_requests,
        get_requests: b.get_requests - a.get_requests,
        delete_requests: b.delete_requests - a.delete_requests,
        put_bytes: b.put_bytes - a.put_bytes,
        get_bytes: b.get_bytes - a.get_bytes,
        wal_objects: b.wal_objects - a.wal_objects,
        metadata_commits: b.metadata_commits - a.metadata_commits,
        produce_bytes: b.produce_bytes - a.produce_bytes,
        fetch_bytes: b.fetch_bytes - a.fetch_bytes,
        process_cpu_seconds: match (a.process_cpu_seconds, b.process_cpu_seconds) {
            (Some(x), Some(y)) => Some(y - x),
            _ => None,
        },
        cross_zone_bytes: match (a.cross_zone_bytes, b.cross_zone_bytes) {
            (Some(x), Some(y)) => Some(y - x),
            // The counter appears at its first cross-zone byte.
            (None, Some(y)) => Some(y),
            _ => None,
        },
    }
}

fn per_s(v: f64, s: f64) -> f64 {
    if s > 0.0 {
        v / s
    } else {
        0.0
    }
}

pub fn build(
    cfg: &BenchConfig,
    topic: &str,
    producers: Vec<ProducerStats>,
    produce_elapsed: Duration,
    consumers: Vec<ConsumerStats>,
    before: &Snapshot,
    after: &Snapshot,
) -> BenchResult {
    let pe = produce_elapsed.as_secs_f64();
    let records: u64 = producers.iter().map(|p| p.acked).sum();
    let bytes: u64 = producers.iter().map(|p| p.acked_bytes).sum();
    let mut lat = Vec::new();
    let mut flush_errors = Vec::new();
    for p in &producers {
        lat.extend_from_slice(&p.latency_us);
        flush_errors.extend(p.flush_error.clone());
    }
    let produce = ProduceResult {
        sent: producers.iter().map(|p| p.sent).sum(),
        records,
        bytes,
        errors: producers.iter().map(|p| p.errors).sum(),
        flush_errors,
        elapsed_s: pe,
        mb_per_s: per_s(bytes as f64, pe) / 1e6,
        mib_per_s: per_s(bytes as f64, pe) / MIB,
        records_per_s: per_s(records as f64, pe),
        latency_ms: LatencyMs::from_micros(lat),
    };
    let crecords: u64 = consumers.iter().map(|c| c.records).sum();
    let cbytes: u64 = consumers.iter().map(|c| c.bytes).sum();
    let ce = consumers
        .iter()
        .filter_map(|c| c.last_record)
        .max()
        .unwrap_or_default()
        .as_secs_f64();
    let mut e2e = Vec::new();
    for c in &consumers {
        e2e.extend_from_slice(&c.e2e_us);
    }
    let consume = ConsumeResult {
        consumers: consumers.len(),
        records: crecords,
        bytes: cbytes,
        errors: consumers.iter().map(|c| c.errors).sum(),
        elapsed_s: ce,
        mb_per_s: per_s(cbytes as f64, ce) / 1e6,
        records_per_s: per_s(crecords as f64, ce),
        complete: !consumers.is_empty() && crecords >= records,
        e2e_latency_ms: LatencyMs::from_micros(e2e),
    };
    let floe = (after.scraped || after.proc_cpu_seconds.is_some()).then(|| {
        let d = delta(&before.counters, &after.counters);
        let (cpu_seconds, cpu_source) = match (
            d.process_cpu_seconds,
            before.proc_cpu_seconds,
            after.proc_cpu_seconds,
        ) {
            (Some(c), _, _) => (Some(c), "floe_process_cpu_seconds from /metrics"),
            (None, Some(a), Some(b)) => (Some(b - a), "utime+stime from /proc/<pid>/stat of --floe-pid"),
            _ => (
                None,
                "unavailable: the agents export no process CPU metric; pass --floe-pid for local processes",
            ),
        };
        let gib = bytes as f64 / GIB;
        let ratio = |v: f64| (gib > 0.0 && after.scraped).then(|| v / gib);
        FloeResult {
            admin: cfg.admin.clone(),
            object_store: ObjectStoreDelta {
                put_requests: d.put_requests,
                get_requests: d.get_requests,
                delete_requests: d.delete_requests,
                put_bytes: d.put_bytes,
                get_bytes: d.get_bytes,
            },
            wal_objects: d.wal_objects,
            metadata_commits: d.metadata_commits,
            produce_bytes: d.produce_bytes,
            fetch_bytes: d.fetch_bytes,
            cross_zone_bytes: d.cross_zone_bytes.or(after.scraped.then_some(0.0)),
            cross_zone_source: if after.scraped {
                "floe_cross_zone_bytes_total from /metrics (produce + fetch; 0 when no byte crossed)"
            } else {
                "unavailable: no /metrics scraped"
            },
            cpu_seconds,
            cpu_source,
            puts_per_gib: ratio(d.put_requests),
            gets_per_gib: ratio(d.get_requests),
            cpu_seconds_per_mib: cpu_seconds.filter(|_| bytes > 0).map(|c| c / (bytes as f64 / MIB)),
        }
    });
    BenchResult {
        schema: "floe-bench/1",
        config: cfg.clone(),
        topic: topic.to_string(),
        produce,
        consume,
        floe,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn producer(acked: u64, lat: Vec<u32>) -> ProducerStats {
        ProducerStats {
            latency_us: lat,
            sent: acked,
            acked,
            acked_bytes: acked * 1024,
            errors: 0,
            flush_error: None,
        }
    }

    #[test]
    fn result_from_counters_by_hand() {
        let cfg = BenchConfig {
            admin: vec!["127.0.0.1:1".into()],
            ..Default::default()
        };
        // 1,048,576 records of 1 KiB = 1 GiB in 8 s; one consumer read them all by 10 s.
        let prods = vec![
            producer(524_288, vec![1000, 3000]),
            producer(524_288, vec![2000]),
        ];
        let cons = vec![ConsumerStats {
            e2e_us: vec![5000, 7000],
            records: 1_048_576,
            bytes: 1 << 30,
            errors: 0,
            last_record: Some(Duration::from_secs(10)),
        }];
        let mut before = Snapshot {
            scraped: true,
            proc_cpu_seconds: Some(1.0),
            ..Default::default()
        };
        before.counters.put_requests = 10.0;
        let mut after = before.clone();
        after.counters.put_requests = 138.0;
        after.counters.get_requests = 64.0;
        after.counters.wal_objects = 128.0;
        after.proc_cpu_seconds = Some(6.12);
        // The agents' cross-zone counter appears with its first byte.
        after.counters.cross_zone_bytes = Some(4096.0);
        let r = build(
            &cfg,
            "t",
            prods,
            Duration::from_secs(8),
            cons,
            &before,
            &after,
        );
        assert_eq!(r.produce.records, 1_048_576);
        assert_eq!(r.produce.bytes, 1 << 30);
        assert_eq!(r.produce.mib_per_s, 128.0);
        assert_eq!(r.produce.records_per_s, 131_072.0);
        assert_eq!(r.produce.latency_ms.p50, Some(2.0));
        assert_eq!(r.consume.records_per_s, 104_857.6);
        assert!(r.consume.complete);
        assert_eq!(r.consume.e2e_latency_ms.p50, Some(5.0));
        let f = r.floe.expect("floe counters");
        assert_eq!(f.object_store.put_requests, 128.0);
        assert_eq!(f.puts_per_gib, Some(128.0));
        assert_eq!(f.gets_per_gib, Some(64.0));
        assert_eq!(f.wal_objects, 128.0);
        // 5.12 CPU s over 1,024 MiB = 0.005 s per MiB.
        assert!((f.cpu_seconds.unwrap_or_default() - 5.12).abs() < 1e-9);
        assert!((f.cpu_seconds_per_mib.unwrap_or_default() - 0.005).abs() < 1e-12);
        assert!(f.cpu_source.contains("/proc"));
        assert_eq!(f.cross_zone_bytes, Some(4096.0));
    }

    #[test]
    fn no_admin_and_no_pid_means_no_floe_section() {
        let r = build(
            &BenchConfig::default(),
            "t",
            vec![producer(1, vec![1])],
            Duration::from_secs(1),
            vec![],
            &Snapshot::default(),
            &Snapshot::default(),
        );
        assert!(r.floe.is_none());
        assert!(!r.consume.complete);
    }
}
