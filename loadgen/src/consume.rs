//! Consumers: each `assign()`s partitions `i, i + consumers, ...` from the beginning (Floe
//! has no consumer groups yet, so no `subscribe()`), and measures end-to-end latency from the
//! send time in the first 8 bytes of each value.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};

use crate::stats::Shared;
use crate::{BenchConfig, LoadgenError};

pub struct ConsumerStats {
    pub e2e_us: Vec<u32>,
    pub records: u64,
    pub bytes: u64,
    pub errors: u64,
    /// Time from the run's start to the last record this consumer read.
    pub last_record: Option<Duration>,
}

/// The send time (µs since the run's start) stamped in a payload, if it carries one.
pub fn sent_micros(payload: &[u8]) -> Option<u64> {
    payload.get(..8)?.try_into().ok().map(u64::from_le_bytes)
}

pub fn start(
    cfg: &BenchConfig,
    topic: &str,
    base: Instant,
    shared: Arc<Shared>,
) -> Result<Vec<JoinHandle<ConsumerStats>>, LoadgenError> {
    let mut handles = Vec::new();
    let n = cfg.consumers.min(cfg.partitions as u32);
    for i in 0..n {
        let mut c = cfg.client_config();
        // librdkafka's assign() needs a group.id, though nothing joins or commits to it.
        c.set("group.id", format!("{topic}-reader"))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("fetch.wait.max.ms", "100");
        let consumer: BaseConsumer = c.create()?;
        let mut tpl = TopicPartitionList::new();
        let mut p = i as i32;
        while p < cfg.partitions {
            tpl.add_partition_offset(topic, p, Offset::Beginning)?;
            p += n as i32;
        }
        consumer.assign(&tpl)?;
        let shared = shared.clone();
        handles.push(std::thread::spawn(move || run(consumer, base, shared)));
    }
    Ok(handles)
}

fn run(consumer: BaseConsumer, base: Instant, shared: Arc<Shared>) -> ConsumerStats {
    let mut s = ConsumerStats {
        e2e_us: Vec::new(),
        records: 0,
        bytes: 0,
        errors: 0,
        last_record: None,
    };
    while !shared.stop_consumers.load(Ordering::Acquire) {
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Ok(m)) => {
                let payload = m.payload().unwrap_or_default();
                let now = base.elapsed();
                if let Some(sent) = sent_micros(payload) {
                    let lat = (now.as_micros() as u64).saturating_sub(sent);
                    s.e2e_us.push(lat.min(u64::from(u32::MAX)) as u32);
                }
                s.records += 1;
                s.bytes += payload.len() as u64;
                s.last_record = Some(now);
                shared.consumed_records.fetch_add(1, Ordering::Relaxed);
                shared
                    .consumed_bytes
                    .fetch_add(payload.len() as u64, Ordering::Relaxed);
            }
            Some(Err(_)) => {
                s.errors += 1;
                shared.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    s
}

pub fn join(handles: Vec<JoinHandle<ConsumerStats>>) -> Result<Vec<ConsumerStats>, LoadgenError> {
    handles
        .into_iter()
        .map(|h| h.join().map_err(|_| LoadgenError::Worker))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_time_round_trips_through_the_payload() {
        let mut p = vec![0u8; 16];
        p[..8].copy_from_slice(&123_456_789u64.to_le_bytes());
        assert_eq!(sent_micros(&p), Some(123_456_789));
        assert_eq!(sent_micros(&p[..7]), None);
    }
}
