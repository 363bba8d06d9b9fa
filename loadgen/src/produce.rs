//! Producers: one thread each, sending to partitions round-robin, at `rate / producers`
//! records/s or as fast as librdkafka's queue drains. Each value starts with its send time
//! (µs since the run's start, little-endian) for the consumers' end-to-end latency; produce
//! latency is send → delivery report.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientContext;

use crate::stats::Shared;
use crate::{BenchConfig, LoadgenError};

pub struct ProducerStats {
    pub latency_us: Vec<u32>,
    pub sent: u64,
    pub acked: u64,
    pub acked_bytes: u64,
    pub errors: u64,
    /// Set when records were still unacknowledged after the drain timeout.
    pub flush_error: Option<String>,
}

struct Ctx {
    base: Instant,
    shared: Arc<Shared>,
    latency_us: Mutex<Vec<u32>>,
    acked: std::sync::atomic::AtomicU64,
    acked_bytes: std::sync::atomic::AtomicU64,
    errors: std::sync::atomic::AtomicU64,
}

impl ClientContext for Ctx {}

impl ProducerContext for Ctx {
    /// The send time in µs since the run's start.
    type DeliveryOpaque = usize;

    fn delivery(&self, r: &DeliveryResult<'_>, sent_us: usize) {
        match r {
            Ok(m) => {
                let now = self.base.elapsed().as_micros() as u64;
                let lat = now.saturating_sub(sent_us as u64).min(u64::from(u32::MAX)) as u32;
                self.latency_us
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(lat);
                let len = m.payload_len() as u64;
                self.acked.fetch_add(1, Ordering::Relaxed);
                self.acked_bytes.fetch_add(len, Ordering::Relaxed);
                self.shared.acked_records.fetch_add(1, Ordering::Relaxed);
                self.shared.acked_bytes.fetch_add(len, Ordering::Relaxed);
            }
            Err(_) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                self.shared.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

pub fn start(
    cfg: &BenchConfig,
    topic: &str,
    base: Instant,
    shared: Arc<Shared>,
) -> Result<Vec<JoinHandle<Result<ProducerStats, LoadgenError>>>, LoadgenError> {
    let mut handles = Vec::new();
    let per_producer_rate = cfg.rate.map(|r| r as f64 / f64::from(cfg.producers));
    for i in 0..cfg.producers {
        let mut c = cfg.client_config();
        c.set("acks", &cfg.acks)
            .set("compression.type", &cfg.compression)
            .set("linger.ms", cfg.linger_ms.to_string());
        let ctx = Ctx {
            base,
            shared: shared.clone(),
            latency_us: Mutex::new(Vec::new()),
            acked: Default::default(),
            acked_bytes: Default::default(),
            errors: Default::default(),
        };
        let producer: ThreadedProducer<Ctx> = c.create_with_context(ctx)?;
        let topic = topic.to_string();
        let (duration, size, partitions, drain) = (
            cfg.duration,
            cfg.message_bytes,
            cfg.partitions,
            cfg.drain_timeout,
        );
        let first_partition = (i as i32) % partitions;
        handles.push(std::thread::spawn(move || {
            run(
                producer,
                &topic,
                base,
                Plan {
                    duration,
                    size,
                    partitions,
                    first_partition,
                    rate: per_producer_rate,
                    drain,
                },
            )
        }));
    }
    Ok(handles)
}

struct Plan {
    duration: Duration,
    size: usize,
    partitions: i32,
    first_partition: i32,
    rate: Option<f64>,
    drain: Duration,
}

fn run(
    producer: ThreadedProducer<Ctx>,
    topic: &str,
    base: Instant,
    plan: Plan,
) -> Result<ProducerStats, LoadgenError> {
    // Random filler, generated once: incompressible, like encrypted or already-compressed data.
    let mut payload: Vec<u8> = (0..plan.size).map(|_| rand::random::<u8>()).collect();
    let start = Instant::now();
    let deadline = start + plan.duration;
    let mut partition = plan.first_partition;
    let mut sent = 0u64;
    let mut send_errors = 0u64;
    loop {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        if let Some(rate) = plan.rate {
            let due = now.duration_since(start).as_secs_f64() * rate;
            if sent as f64 >= due {
                let wait = ((sent as f64 + 1.0 - due) / rate).min(0.005);
                std::thread::sleep(Duration::from_secs_f64(wait.max(0.000_05)));
                continue;
            }
        }
        let t = base.elapsed().as_micros() as u64;
        payload[..8].copy_from_slice(&t.to_le_bytes());
        let rec = BaseRecord::<(), [u8], usize>::with_opaque_to(topic, t as usize)
            .payload(&payload[..])
            .partition(partition);
        match producer.send(rec) {
            Ok(()) => {
                sent += 1;
                partition = (partition + 1) % plan.partitions;
            }
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                // librdkafka's queue is full: its poll thread drains it as acks come back.
                std::thread::sleep(Duration::from_millis(1));
            }
            Err((_, _)) => send_errors += 1,
        }
    }
    let flushed = producer.flush(plan.drain);
    let ctx = producer.context();
    let latency_us = std::mem::take(&mut *ctx.latency_us.lock().unwrap_or_else(|p| p.into_inner()));
    Ok(ProducerStats {
        flush_error: flushed.err().map(|e| e.to_string()),
        latency_us,
        sent,
        acked: ctx.acked.load(Ordering::Relaxed),
        acked_bytes: ctx.acked_bytes.load(Ordering::Relaxed),
        errors: ctx.errors.load(Ordering::Relaxed) + send_errors,
    })
}

pub fn join(
    handles: Vec<JoinHandle<Result<ProducerStats, LoadgenError>>>,
) -> Result<Vec<ProducerStats>, LoadgenError> {
    handles
        .into_iter()
        .map(|h| h.join().map_err(|_| LoadgenError::Worker)?)
        .collect()
}
