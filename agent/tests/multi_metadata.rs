//! Several metadata service instances on one PostgreSQL (brief §5: correctness must never
//! depend on there being only one). Two services, each with its own connection pool like two
//! `floe metadata` processes, each serving one agent; both agents produce to the same
//! partition at once.

mod support;

use std::time::Duration;

use floe_common::Metrics;
use floe_format::batch::Compression;
use support::batches::{self, fetched_values};
use support::client::{
    fetch, fetch_partition, produce, produce_partition, records, Client, FETCH_V, PRODUCE_V,
};
use support::harness::{config, start_agent, Backend};
use tokio::time::Instant;

const BATCHES_PER_AGENT: usize = 40;

async fn produce_many(addr: std::net::SocketAddr, tag: &'static str) -> Vec<(i64, Vec<String>)> {
    let mut c = Client::connect(addr).await;
    let mut pending = Vec::new();
    let mut sent = Vec::new();
    for i in 0..BATCHES_PER_AGENT {
        let values = batches::values(&format!("{tag}{i}-"), 2);
        let req = produce(
            "shared",
            vec![(
                0,
                batches::batch(1_000 + i as i64, &values, Compression::None),
            )],
        );
        pending.push(c.send(&req, PRODUCE_V).await);
        sent.push(values);
    }
    let mut out = Vec::new();
    for (p, values) in pending.into_iter().zip(sent) {
        let resp = c.recv(p).await;
        let r = produce_partition(&resp, "shared", 0);
        assert_eq!(r.error_code, 0, "produce through {tag}");
        out.push((r.base_offset, values));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_metadata_instances_assign_contiguous_offsets_and_share_data() {
    let backend = Backend::postgres().await;
    let m1 = backend.metadata().await;
    let m2 = backend.metadata().await;
    let metrics = std::sync::Arc::new(Metrics::new());
    let a = start_agent(
        config(1),
        m1.clone(),
        backend.objects(metrics.clone()),
        metrics.clone(),
    )
    .await;
    let b = start_agent(
        config(2),
        m2.clone(),
        backend.objects(metrics.clone()),
        metrics.clone(),
    )
    .await;

    let mut ca = Client::connect(a.local_addr()).await;
    ca.create_topic("shared", 1, &[]).await;
    // B's service learns of the topic from the database, not from A's service.
    let mut cb = Client::connect(b.local_addr()).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while cb.metadata(Some(&["shared"]), false).await.topics[0].error_code != 0 {
        assert!(Instant::now() < deadline, "agent B never saw the topic");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let (ra, rb) = tokio::join!(
        produce_many(a.local_addr(), "a"),
        produce_many(b.local_addr(), "b")
    );
    let mut all: Vec<(i64, Vec<String>)> = ra.into_iter().chain(rb).collect();
    all.sort_by_key(|(base, _)| *base);
    let expected: Vec<i64> = (0..(2 * BATCHES_PER_AGENT) as i64).map(|i| i * 2).collect();
    let bases: Vec<i64> = all.iter().map(|(b, _)| *b).collect();
    assert_eq!(
        bases, expected,
        "offsets contiguous, no gap, no overlap across instances"
    );

    // Each agent reads everything, including what went through the other instance.
    let total = (4 * BATCHES_PER_AGENT) as i64;
    let want: Vec<String> = all.iter().flat_map(|(_, v)| v.clone()).collect();
    for (name, c) in [("A", &mut ca), ("B", &mut cb)] {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut got = Vec::new();
        let mut offset = 0;
        while offset < total {
            assert!(
                Instant::now() < deadline,
                "agent {name} stuck at offset {offset}"
            );
            let resp = c
                .call(
                    &fetch("shared", &[(0, offset, 1 << 20)], 2_000, 1, 1 << 20),
                    FETCH_V,
                )
                .await;
            let p = fetch_partition(&resp, "shared", 0);
            assert_eq!(p.error_code, 0);
            let values = fetched_values(&records(p));
            offset += values.len() as i64;
            got.extend(values);
        }
        assert_eq!(got, want, "agent {name} reads every record in offset order");
    }
    a.shutdown().await;
    b.shutdown().await;
}
