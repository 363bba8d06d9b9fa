//! The write/read contract end to end through the Kafka protocol: pipelined produces are
//! answered in order with contiguous offsets, fetches return the producer's batches with
//! rewritten base offsets and correct watermarks, byte limits follow KIP-74, ListOffsets is
//! exact, and a restarted agent serves the same bytes. Run over SQLite + local directory,
//! SQLite + S3 (moto) and PostgreSQL + local directory.

mod support;

use std::collections::BTreeMap;

use bytes::Bytes;
use floe_format::batch::Compression;
use support::batches::{self, decode_fetched, FetchedBatch};
use support::client::{
    fetch, fetch_by_id, fetch_partition, produce, produce_partition, records, Client, EARLIEST,
    FETCH_BY_ID_V, FETCH_V, LATEST, PRODUCE_V,
};
use support::harness::{config, Backend, Stack};

const TOPIC: &str = "roundtrip";
const T0: i64 = 1_700_000_000_000;

/// One batch as produced: the offset it must get and its bytes.
#[derive(Debug, Clone)]
struct Sent {
    base_offset: i64,
    bytes: Bytes,
    values: Vec<String>,
    timestamps: Vec<i64>,
}

/// Per partition, what was produced, in offset order.
type Log = BTreeMap<i32, Vec<Sent>>;

fn total(log: &Log, p: i32) -> i64 {
    log[&p].iter().map(|s| s.values.len() as i64).sum()
}

/// Pipelines six produce requests (some to one partition, some to both, with one or two
/// batches per partition and three codecs) on one connection and checks the answers.
async fn produce_pipelined(c: &mut Client) -> Log {
    let codecs = [Compression::None, Compression::Lz4, Compression::Zstd];
    let mut log: Log = BTreeMap::from([(0, Vec::new()), (1, Vec::new())]);
    let mut next = [0i64; 2];
    let mut ts = [T0, T0];
    let mut pending = Vec::new();
    for i in 0..6usize {
        let partitions: Vec<i32> = if i % 3 == 2 {
            vec![0, 1]
        } else {
            vec![(i % 2) as i32]
        };
        let mut parts = Vec::new();
        let mut expected = Vec::new();
        for &p in &partitions {
            let batches_here = if i % 2 == 0 { 2 } else { 1 };
            let mut bytes = Vec::new();
            expected.push((p, next[p as usize]));
            for j in 0..batches_here {
                let n = 1 + (i + j) % 4;
                let values = batches::values(&format!("p{p}-r{i}-b{j}"), n);
                let b = batches::batch(ts[p as usize], &values, codecs[(i + j) % 3]);
                log.get_mut(&p).expect("partition").push(Sent {
                    base_offset: next[p as usize],
                    bytes: b.clone(),
                    timestamps: (0..n as i64).map(|k| ts[p as usize] + 10 * k).collect(),
                    values,
                });
                next[p as usize] += n as i64;
                ts[p as usize] += 1_000;
                bytes.extend_from_slice(&b);
            }
            parts.push((p, Bytes::from(bytes)));
        }
        pending.push((c.send(&produce(TOPIC, parts), PRODUCE_V).await, expected));
    }
    for (p, expected) in pending {
        let resp = c.recv(p).await;
        for (partition, base) in expected {
            let r = produce_partition(&resp, TOPIC, partition);
            assert_eq!(
                r.error_code, 0,
                "produce {partition}: {:?}",
                r.error_message
            );
            assert_eq!(r.base_offset, base, "base offset of partition {partition}");
            assert_eq!(r.log_start_offset, 0);
        }
    }
    log
}

/// Asserts that fetched bytes are exactly `sent`, with base offsets and leader epochs
/// rewritten and every other byte as the producer sent it (no recompression).
fn assert_batches(fetched: &[FetchedBatch], sent: &[Sent]) {
    assert_eq!(
        fetched.len(),
        sent.len(),
        "batch count: fetched {fetched:?}"
    );
    for (f, s) in fetched.iter().zip(sent) {
        assert_eq!(f.header.base_offset, s.base_offset, "rewritten base offset");
        // Like a Kafka leader, the agent stamps its partition epoch (0) into
        // partition_leader_epoch; every other byte is the producer's.
        assert_eq!(
            f.header.partition_leader_epoch, 0,
            "partition leader epoch stamped"
        );
        assert_eq!(&f.bytes[8..12], &s.bytes[8..12], "batch length kept");
        assert_eq!(&f.bytes[16..], &s.bytes[16..], "batch bytes kept verbatim");
        let values: Vec<String> = f
            .records
            .iter()
            .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned())
            .collect();
        assert_eq!(values, s.values);
        let offsets: Vec<i64> = f.records.iter().map(|r| r.offset).collect();
        let want: Vec<i64> = (0..s.values.len() as i64)
            .map(|k| s.base_offset + k)
            .collect();
        assert_eq!(offsets, want);
        let timestamps: Vec<i64> = f.records.iter().map(|r| r.timestamp).collect();
        assert_eq!(timestamps, s.timestamps);
    }
}

fn batch_len(s: &Sent) -> i32 {
    s.bytes.len() as i32
}

/// Fetches both partitions from 0 and checks everything; returns the raw records.
async fn fetch_all(c: &mut Client, log: &Log) -> Vec<Bytes> {
    let resp = c
        .call(
            &fetch(TOPIC, &[(0, 0, 1 << 20), (1, 0, 1 << 20)], 0, 0, i32::MAX),
            FETCH_V,
        )
        .await;
    let mut out = Vec::new();
    for p in [0, 1] {
        let pd = fetch_partition(&resp, TOPIC, p);
        assert_eq!(pd.error_code, 0);
        let hw = total(log, p);
        assert_eq!(pd.high_watermark, hw, "high watermark of {p}");
        assert_eq!(pd.last_stable_offset, hw, "last stable offset of {p}");
        assert_eq!(pd.log_start_offset, 0, "log start offset of {p}");
        let r = records(pd);
        assert_batches(&decode_fetched(&r), &log[&p]);
        out.push(r);
    }
    out
}

async fn roundtrip(backend: Backend) {
    let stack = Stack::start(backend, config(1)).await;
    let mut c = stack.client().await;
    let topic_id = c.create_topic(TOPIC, 2, &[]).await;
    let log = produce_pipelined(&mut c).await;
    assert!(log[&0].len() >= 4 && log[&1].len() >= 4);

    let before = fetch_all(&mut c, &log).await;

    // The same bytes by topic id (Fetch v13+).
    let resp = c
        .call(
            &fetch_by_id(topic_id, &[(0, 0, 1 << 20), (1, 0, 1 << 20)], i32::MAX),
            FETCH_BY_ID_V,
        )
        .await;
    assert_eq!(resp.responses.len(), 1);
    assert_eq!(resp.responses[0].topic_id, topic_id);
    for p in [0, 1] {
        let pd = fetch_partition(&resp, "", p);
        assert_eq!(pd.error_code, 0);
        assert_eq!(records(pd), before[p as usize], "fetch by id of {p}");
    }

    // From the middle of a batch: that whole batch comes back, then the rest.
    let p0 = &log[&0];
    let (idx, mid) = p0
        .iter()
        .enumerate()
        .find(|(_, s)| s.values.len() >= 2)
        .expect("a batch with two records");
    let pd = c.fetch_one(TOPIC, 0, mid.base_offset + 1, 1 << 20).await;
    assert_eq!(pd.error_code, 0);
    assert_batches(&decode_fetched(&records(&pd)), &p0[idx..]);

    // partition_max_bytes below one batch still returns the first batch (KIP-74)...
    let pd = c.fetch_one(TOPIC, 0, 0, 10).await;
    assert_eq!(pd.error_code, 0);
    assert_batches(&decode_fetched(&records(&pd)), &p0[..1]);
    // ...and exactly two batches' worth returns exactly two.
    let two = batch_len(&p0[0]) + batch_len(&p0[1]);
    let pd = c.fetch_one(TOPIC, 0, 0, two).await;
    assert_batches(&decode_fetched(&records(&pd)), &p0[..2]);
    let pd = c.fetch_one(TOPIC, 0, 0, two - 1).await;
    assert_batches(&decode_fetched(&records(&pd)), &p0[..1]);

    // max_bytes across partitions: the first batch of the first partition always comes
    // back; partitions after the budget is spent get nothing.
    let resp = c
        .call(
            &fetch(TOPIC, &[(0, 0, 1 << 20), (1, 0, 1 << 20)], 0, 0, 1),
            FETCH_V,
        )
        .await;
    assert_batches(
        &decode_fetched(&records(fetch_partition(&resp, TOPIC, 0))),
        &p0[..1],
    );
    let p1 = fetch_partition(&resp, TOPIC, 1);
    assert_eq!(p1.error_code, 0);
    assert!(
        records(p1).is_empty(),
        "budget spent: nothing from partition 1"
    );
    assert_eq!(p1.high_watermark, total(&log, 1));
    let all0: i32 = p0.iter().map(batch_len).sum();
    let first1 = batch_len(&log[&1][0]);
    let resp = c
        .call(
            &fetch(
                TOPIC,
                &[(0, 0, 1 << 20), (1, 0, 1 << 20)],
                0,
                0,
                all0 + first1,
            ),
            FETCH_V,
        )
        .await;
    assert_batches(
        &decode_fetched(&records(fetch_partition(&resp, TOPIC, 0))),
        p0,
    );
    assert_batches(
        &decode_fetched(&records(fetch_partition(&resp, TOPIC, 1))),
        &log[&1][..1],
    );

    // Fetch at the high watermark: nothing, no error; beyond it: OFFSET_OUT_OF_RANGE.
    let hw0 = total(&log, 0);
    let pd = c.fetch_one(TOPIC, 0, hw0, 1 << 20).await;
    assert_eq!(pd.error_code, 0);
    assert!(records(&pd).is_empty());
    let pd = c.fetch_one(TOPIC, 0, hw0 + 1, 1 << 20).await;
    assert_eq!(pd.error_code, 1, "OFFSET_OUT_OF_RANGE");

    // ListOffsets: earliest, latest, and by timestamp (exact record).
    for p in [0, 1] {
        assert_eq!(c.list_offset(TOPIC, p, EARLIEST).await.offset, 0);
        assert_eq!(c.list_offset(TOPIC, p, LATEST).await.offset, total(&log, p));
        let recs: Vec<(i64, i64)> = log[&p]
            .iter()
            .flat_map(|s| {
                s.timestamps
                    .iter()
                    .enumerate()
                    .map(move |(k, ts)| (s.base_offset + k as i64, *ts))
            })
            .collect();
        for &(offset, ts) in recs.iter().skip(1).step_by(3) {
            let r = c.list_offset(TOPIC, p, ts).await;
            assert_eq!(
                (r.offset, r.timestamp),
                (offset, ts),
                "exact timestamp {ts}"
            );
            // Between two records: the next one.
            let r = c.list_offset(TOPIC, p, ts + 1).await;
            let want = recs.iter().find(|(_, t)| *t > ts).copied();
            match want {
                Some((o, t)) => assert_eq!((r.offset, r.timestamp), (o, t), "after {ts}"),
                None => assert_eq!((r.offset, r.timestamp), (-1, -1)),
            }
        }
        let last_ts = recs.last().expect("records").1;
        let r = c.list_offset(TOPIC, p, last_ts + 1).await;
        assert_eq!((r.offset, r.timestamp), (-1, -1), "past the last timestamp");
        let r = c.list_offset(TOPIC, p, 0).await;
        assert_eq!(
            (r.offset, r.timestamp),
            (0, recs[0].1),
            "timestamp 0: first record"
        );
    }

    // Restart over the same metadata and objects: identical answers, and offsets go on.
    drop(c);
    let stack = stack.restart().await;
    let mut c = stack.client().await;
    let after = fetch_all(&mut c, &log).await;
    assert_eq!(after, before, "identical bytes after a restart");
    let r = c
        .produce_one(TOPIC, 1, batches::single(T0 + 100_000, "after-restart"))
        .await;
    assert_eq!(r.error_code, 0);
    assert_eq!(r.base_offset, total(&log, 1));
    stack.agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roundtrip_sqlite_local_directory() {
    roundtrip(Backend::local()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roundtrip_sqlite_s3() {
    roundtrip(Backend::s3().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roundtrip_postgres_local_directory() {
    roundtrip(Backend::postgres().await).await;
}

/// Produces of several clients at once to one partition: every acknowledged batch is
/// fetched exactly once, at the offset its producer was told.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_producers_get_distinct_contiguous_offsets() {
    let stack = Stack::local(config(1)).await;
    let mut admin = stack.client().await;
    admin.create_topic("concurrent", 1, &[]).await;
    let addr = stack.agent.local_addr();
    let mut tasks = Vec::new();
    for w in 0..4 {
        tasks.push(tokio::spawn(async move {
            let mut c = Client::connect(addr).await;
            let mut acked = Vec::new();
            for i in 0..5 {
                let value = format!("w{w}-{i}");
                let r = c
                    .produce_one("concurrent", 0, batches::single(T0 + i, &value))
                    .await;
                assert_eq!(r.error_code, 0);
                acked.push((r.base_offset, value));
            }
            acked
        }));
    }
    let mut acked = Vec::new();
    for t in tasks {
        acked.extend(t.await.expect("producer task"));
    }
    acked.sort();
    let offsets: Vec<i64> = acked.iter().map(|(o, _)| *o).collect();
    assert_eq!(offsets, (0..20).collect::<Vec<i64>>());
    let pd = admin.fetch_one("concurrent", 0, 0, 1 << 20).await;
    assert_eq!(pd.high_watermark, 20);
    let got: Vec<(i64, String)> = decode_fetched(&records(&pd))
        .iter()
        .flat_map(|b| b.records.clone())
        .map(|r| {
            (
                r.offset,
                String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned(),
            )
        })
        .collect();
    assert_eq!(got, acked);
    stack.agent.shutdown().await;
}

/// acks=0 produces get no response, yet go through the same durable path: the next
/// request's answer is the next frame, and the records are fetched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_zero_is_not_answered_but_is_stored() {
    let stack = Stack::local(config(1)).await;
    let mut c = stack.client().await;
    c.create_topic("fire-and-forget", 1, &[]).await;
    let mut req = produce("fire-and-forget", vec![(0, batches::single(T0, "quiet"))]);
    req.acks = 0;
    let _unanswered = c.send(&req, PRODUCE_V).await;
    // A long poll on the same connection: its answer is the next frame on the wire.
    let resp = c
        .call(
            &fetch("fire-and-forget", &[(0, 0, 1 << 20)], 10_000, 1, i32::MAX),
            FETCH_V,
        )
        .await;
    let pd = fetch_partition(&resp, "fire-and-forget", 0);
    assert_eq!(pd.high_watermark, 1);
    assert_eq!(batches::fetched_values(&records(pd)), ["quiet"]);
    stack.agent.shutdown().await;
}

/// Far more pipelined requests than max_inflight_requests_per_connection: the agent stops
/// reading while the window is full and still answers all of them, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_pipeline_beyond_the_inflight_limit() {
    let cfg = floe_agent::AgentConfig {
        max_inflight_requests_per_connection: 2,
        ..config(1)
    };
    let stack = Stack::local(cfg).await;
    let mut c = stack.client().await;
    c.create_topic("deep", 1, &[]).await;
    let mut pending = Vec::new();
    for i in 0..40 {
        let req = produce("deep", vec![(0, batches::single(T0 + i, &format!("d{i}")))]);
        pending.push(c.send(&req, PRODUCE_V).await);
    }
    for (i, p) in pending.into_iter().enumerate() {
        let resp = c.recv(p).await;
        let r = produce_partition(&resp, "deep", 0);
        assert_eq!((r.error_code, r.base_offset), (0, i as i64));
    }
    stack.agent.shutdown().await;
}

/// Kafka treats max_bytes as a soft limit: with 0 only the first batch of the first
/// non-empty partition comes back (ReplicaManager.readFromLog with minOneMessage).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]

async fn fetch_max_bytes_zero_returns_one_batch() {
    let stack = Stack::local(config(1)).await;
    let mut c = stack.client().await;
    c.create_topic("zero", 2, &[]).await;
    for p in [0, 1] {
        for i in 0..3 {
            let r = c.produce_one("zero", p, batches::single(T0 + i, "v")).await;
            assert_eq!(r.error_code, 0);
        }
    }
    let resp = c
        .call(
            &fetch("zero", &[(0, 0, 1 << 20), (1, 0, 1 << 20)], 0, 0, 0),
            FETCH_V,
        )
        .await;
    assert_eq!(
        decode_fetched(&records(fetch_partition(&resp, "zero", 0))).len(),
        1
    );
    assert!(records(fetch_partition(&resp, "zero", 1)).is_empty());
    stack.agent.shutdown().await;
}
