//! Counters shared by the workers and the progress line, and percentiles.

use std::sync::atomic::{AtomicBool, AtomicU64};

#[derive(Default)]
pub struct Shared {
    pub acked_records: AtomicU64,
    pub acked_bytes: AtomicU64,
    pub errors: AtomicU64,
    pub consumed_records: AtomicU64,
    pub consumed_bytes: AtomicU64,
    pub stop_consumers: AtomicBool,
}

/// Nearest-rank percentile (`q` in 0..=1) of sorted samples, in the samples' unit.
pub fn percentile(sorted: &[u32], q: f64) -> Option<u32> {
    if sorted.is_empty() {
        return None;
    }
    debug_assert!(sorted.windows(2).all(|w| w[0] <= w[1]));
    let rank = (q * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted.get(rank.min(sorted.len()) - 1).copied()
}

/// Latency summary in milliseconds from samples in microseconds.
#[derive(Debug, Clone, Default, serde::Serialize, PartialEq)]
pub struct LatencyMs {
    pub samples: usize,
    pub p50: Option<f64>,
    pub p99: Option<f64>,
    pub p999: Option<f64>,
    pub max: Option<f64>,
}

impl LatencyMs {
    pub fn from_micros(mut us: Vec<u32>) -> LatencyMs {
        us.sort_unstable();
        let ms = |v: Option<u32>| v.map(|x| f64::from(x) / 1000.0);
        LatencyMs {
            samples: us.len(),
            p50: ms(percentile(&us, 0.50)),
            p99: ms(percentile(&us, 0.99)),
            p999: ms(percentile(&us, 0.999)),
            max: ms(us.last().copied()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let v: Vec<u32> = (1..=1000).collect();
        assert_eq!(percentile(&v, 0.5), Some(500));
        assert_eq!(percentile(&v, 0.99), Some(990));
        assert_eq!(percentile(&v, 0.999), Some(999));
        assert_eq!(percentile(&v, 1.0), Some(1000));
        assert_eq!(percentile(&[7], 0.999), Some(7));
        assert_eq!(percentile(&[], 0.5), None);
    }

    #[test]
    fn latency_summary_in_ms() {
        let l = LatencyMs::from_micros(vec![3000, 1000, 2000]);
        assert_eq!(l.samples, 3);
        assert_eq!(l.p50, Some(2.0));
        assert_eq!(l.max, Some(3.0));
        assert_eq!(LatencyMs::from_micros(vec![]).p50, None);
    }
}
