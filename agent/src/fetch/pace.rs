//! A byte-rate budget for catch-up reads.
//!
//! A consumer reading a topic from the start can pull hundreds of MiB/s through an agent: the
//! object-store GETs, checksums and copies take CPU and network from the producers sharing
//! the agent. Catch-up GETs therefore pass through a pacer (a virtual-time token bucket:
//! each read books `bytes / rate` of time after the previous booking, and waits until its
//! slot), with one second of burst so that short reads are not delayed at all. Tail reads
//! never wait.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Burst allowed after an idle spell, in seconds of the rate.
const BURST: Duration = Duration::from_secs(1);

/// Paces reads to a byte rate. A rate of 0 does not pace.
#[derive(Debug)]
pub struct Pacer {
    bytes_per_sec: u64,
    /// When the bytes booked so far will have been "sent" at the rate.
    booked_until: Mutex<Option<Instant>>,
}

impl Pacer {
    /// A pacer for `bytes_per_sec` (0: unlimited).
    pub fn new(bytes_per_sec: u64) -> Self {
        Pacer {
            bytes_per_sec,
            booked_until: Mutex::new(None),
        }
    }

    /// Books `bytes` and returns how long the caller waits before reading them.
    fn book(&self, bytes: u64, now: Instant) -> Duration {
        if self.bytes_per_sec == 0 {
            return Duration::ZERO;
        }
        let cost = Duration::from_secs_f64(bytes as f64 / self.bytes_per_sec as f64);
        // A poisoned lock only means another reader panicked mid-booking; the instant it
        // holds is still a valid booking.
        let mut booked = self
            .booked_until
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Each read occupies `cost` of the rate's time line after the previous one (or from
        // now, when idle: idle time is not saved up beyond the burst). It may start as soon
        // as its slot ends no more than BURST from now.
        let start = booked.map_or(now, |b| b.max(now));
        let end = start + cost;
        *booked = Some(end);
        end.saturating_duration_since(now + BURST)
    }

    /// Waits for the slot of a read of `bytes`.
    pub async fn pace(&self, bytes: u64) {
        let wait = self.book(bytes, Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn unlimited_never_waits() {
        let p = Pacer::new(0);
        let now = Instant::now();
        for _ in 0..1000 {
            assert_eq!(p.book(64 * MIB, now), Duration::ZERO);
        }
    }

    #[test]
    fn a_burst_passes_then_reads_are_spaced_at_the_rate() {
        // 8 MiB/s, 4 MiB reads: one second of burst is two reads, then one per 0.5 s.
        let p = Pacer::new(8 * MIB);
        let now = Instant::now() + Duration::from_secs(10);
        assert_eq!(p.book(4 * MIB, now), Duration::ZERO);
        assert_eq!(p.book(4 * MIB, now), Duration::ZERO);
        assert_eq!(p.book(4 * MIB, now), Duration::from_millis(500));
        assert_eq!(p.book(4 * MIB, now), Duration::from_millis(1000));
        // Ten reads booked at one instant: the last waits (10 * 0.5 s) - 1 s burst.
        let p = Pacer::new(8 * MIB);
        let waits: Vec<_> = (0..10).map(|_| p.book(4 * MIB, now)).collect();
        assert_eq!(waits[9], Duration::from_millis(4000));
    }

    #[test]
    fn idle_time_earns_at_most_one_second_of_credit() {
        let p = Pacer::new(8 * MIB);
        let t0 = Instant::now() + Duration::from_secs(10);
        for _ in 0..4 {
            p.book(4 * MIB, t0);
        }
        // A minute idle: credit for one second (8 MiB) only.
        let later = t0 + Duration::from_secs(60);
        assert_eq!(p.book(4 * MIB, later), Duration::ZERO);
        assert_eq!(p.book(4 * MIB, later), Duration::ZERO);
        assert_eq!(p.book(4 * MIB, later), Duration::from_millis(500));
    }

    #[test]
    fn sustained_rate_matches_the_budget() {
        // Reads issued back to back, each after its wait: 100 reads of 1 MiB at 10 MiB/s
        // take 10 s less the burst.
        let p = Pacer::new(10 * MIB);
        let mut now = Instant::now() + Duration::from_secs(10);
        let t0 = now;
        for _ in 0..100 {
            now += p.book(MIB, now);
        }
        let took = now - t0;
        assert!(
            took >= Duration::from_millis(8_850) && took <= Duration::from_millis(9_050),
            "{took:?}"
        );
    }
}
