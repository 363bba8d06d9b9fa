//! Agents working together and over time: two agents sharing one metadata service and one
//! object store, long polling woken by commits, and graceful shutdown that answers what it
//! holds.

mod support;

use std::sync::Arc;
use std::time::Duration;

use floe_common::Metrics;
use floe_format::batch::Compression;
use floe_metadata::Metadata;
use kafka_protocol::messages::MetadataResponse;
use support::batches::{self, fetched_values};
use support::client::{fetch, fetch_partition, produce, records, Client, FETCH_V, PRODUCE_V};
use support::harness::{config, start_agent, wait_until, Backend, Stack};
use tokio::time::Instant;

const T0: i64 = 1_700_000_000_000;

/// Metadata for `topic` (without creating it) once the agent knows it.
async fn wait_for_topic(c: &mut Client, topic: &str) -> MetadataResponse {
    let deadline = Instant::now() + support::client::IO_TIMEOUT;
    loop {
        let md = c.metadata(Some(&[topic]), false).await;
        if md.topics[0].error_code == 0 || Instant::now() > deadline {
            return md;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Produce through agent 1, fetch through agent 2 (and back): agent 2 learns topics and
/// watermarks through the change feed, and reads the objects agent 1 wrote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_agents_share_topics_and_data() {
    let backend = Backend::local();
    let metadata = backend.metadata().await;
    let m1 = Arc::new(Metrics::new());
    let m2 = Arc::new(Metrics::new());
    let a = start_agent(
        config(1),
        metadata.clone(),
        backend.objects(m1.clone()),
        m1.clone(),
    )
    .await;
    let b = start_agent(
        config(2),
        metadata.clone(),
        backend.objects(m2.clone()),
        m2.clone(),
    )
    .await;
    let mut ca = Client::connect(a.local_addr()).await;
    let mut cb = Client::connect(b.local_addr()).await;

    let topic_id = ca.create_topic("shared", 2, &[]).await;
    // B learns of the topic through the change feed, a moment later (as a Kafka broker
    // learns from the controller); until then it answers UNKNOWN_TOPIC_OR_PARTITION.
    let md = wait_for_topic(&mut cb, "shared").await;
    assert_eq!(md.topics.len(), 1);
    let t = &md.topics[0];
    assert_eq!(t.error_code, 0, "topic created on A is visible on B");
    assert_eq!(t.topic_id, topic_id);
    assert_eq!(t.partitions.len(), 2);
    // Both agents are in the fleet (no zones: every agent is listed), and every partition is
    // led by a listed agent. A learns of B at its next heartbeat.
    for c in [&mut ca, &mut cb] {
        let deadline = Instant::now() + support::client::IO_TIMEOUT;
        let brokers = loop {
            let md = c.metadata(Some(&["shared"]), false).await;
            let mut brokers = md.brokers.iter().map(|b| b.node_id.0).collect::<Vec<_>>();
            brokers.sort();
            if brokers == [1, 2] || Instant::now() > deadline {
                let leaders: Vec<i32> = md.topics[0]
                    .partitions
                    .iter()
                    .map(|p| p.leader_id.0)
                    .collect();
                assert!(leaders.iter().all(|l| [1, 2].contains(l)), "{leaders:?}");
                break brokers;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(brokers, vec![1, 2], "every live agent is listed");
    }

    // B waits; A produces; B's long poll returns A's data.
    let waiting = cb
        .send(
            &fetch("shared", &[(1, 0, 1 << 20)], 10_000, 1, i32::MAX),
            FETCH_V,
        )
        .await;
    let values = batches::values("from-a", 3);
    let r = ca
        .produce_one(
            "shared",
            1,
            batches::batch(T0, &values, Compression::Snappy),
        )
        .await;
    assert_eq!((r.error_code, r.base_offset), (0, 0));
    let resp = cb.recv(waiting).await;
    let pd = fetch_partition(&resp, "shared", 1);
    assert_eq!(pd.error_code, 0);
    assert_eq!(pd.high_watermark, 3);
    assert_eq!(fetched_values(&records(pd)), values);

    // And the other way round, continuing the same partition's offsets.
    let waiting = ca
        .send(
            &fetch("shared", &[(1, 3, 1 << 20)], 10_000, 1, i32::MAX),
            FETCH_V,
        )
        .await;
    let r = cb
        .produce_one("shared", 1, batches::single(T0 + 1_000, "from-b"))
        .await;
    assert_eq!((r.error_code, r.base_offset), (0, 3));
    let resp = ca.recv(waiting).await;
    let pd = fetch_partition(&resp, "shared", 1);
    assert_eq!(pd.high_watermark, 4);
    assert_eq!(fetched_values(&records(pd)), vec!["from-b".to_string()]);

    // Both agents now serve the whole partition identically.
    let pa = ca.fetch_one("shared", 1, 0, 1 << 20).await;
    let pb = cb.fetch_one("shared", 1, 0, 1 << 20).await;
    assert_eq!(records(&pa), records(&pb));
    assert_eq!(fetched_values(&records(&pa)).len(), 4);

    // A topic auto-created through B exists once, and A sees it.
    let md = cb.metadata(Some(&["made-on-b"]), true).await;
    assert_eq!(md.topics[0].error_code, 0);
    let md_a = wait_for_topic(&mut ca, "made-on-b").await;
    assert_eq!(md_a.topics[0].error_code, 0);
    assert_eq!(md_a.topics[0].topic_id, md.topics[0].topic_id);
    let n = metadata
        .list_topics()
        .await
        .expect("list topics")
        .iter()
        .filter(|t| t.name == "made-on-b")
        .count();
    assert_eq!(n, 1);

    a.shutdown().await;
    b.shutdown().await;
}

/// A Fetch waiting on an empty partition is answered with the data of a produce that
/// arrives on another connection, without waiting out max_wait_ms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_poll_wakes_on_produce() {
    let stack = Stack::local(config(1)).await;
    let mut consumer = stack.client().await;
    let mut producer = stack.client().await;
    producer.create_topic("poll", 1, &[]).await;

    let started = Instant::now();
    let waiting = consumer
        .send(
            &fetch("poll", &[(0, 0, 1 << 20)], 10_000, 1, i32::MAX),
            FETCH_V,
        )
        .await;
    // Give the fetch a moment to start waiting; the assertions hold either way.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let r = producer
        .produce_one("poll", 0, batches::single(T0, "wake-up"))
        .await;
    assert_eq!((r.error_code, r.base_offset), (0, 0));
    let resp = consumer.recv(waiting).await;
    let elapsed = started.elapsed();
    let pd = fetch_partition(&resp, "poll", 0);
    assert_eq!(pd.error_code, 0);
    assert_eq!(pd.high_watermark, 1);
    assert_eq!(fetched_values(&records(pd)), vec!["wake-up".to_string()]);
    assert!(
        elapsed < Duration::from_secs(9),
        "the long poll was not woken by the commit ({elapsed:?})"
    );

    // With nothing new, a short long poll answers empty at its deadline.
    let resp = consumer
        .call(
            &fetch("poll", &[(0, 1, 1 << 20)], 200, 1, i32::MAX),
            FETCH_V,
        )
        .await;
    let pd = fetch_partition(&resp, "poll", 0);
    assert_eq!(pd.error_code, 0);
    assert!(records(pd).is_empty());
    assert_eq!(pd.high_watermark, 1);
    stack.agent.shutdown().await;
}

/// Shutdown with a produce buffered in the open WAL object (long flush interval): the
/// produce is committed and answered with success before shutdown returns, the agent
/// stops accepting, and a restarted agent serves the record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_commits_and_answers_buffered_produce() {
    let cfg = floe_agent::AgentConfig {
        flush_interval_ms: 5_000,
        ..config(1)
    };
    let stack = Stack::local(cfg).await;
    let mut c = stack.client().await;
    c.create_topic("drain", 1, &[]).await;

    let pending = c
        .send(
            &produce("drain", vec![(0, batches::single(T0, "buffered"))]),
            PRODUCE_V,
        )
        .await;
    // Once the agent counted the produce bytes it has read the request, so shutdown must
    // answer it.
    let metrics = stack.metrics.clone();
    wait_until("the agent read the produce", || {
        metrics.produce_bytes.get() > 0
    })
    .await;

    let addr = stack.agent.local_addr();
    let Stack {
        agent,
        backend,
        config,
        metadata,
        ..
    } = stack;
    let started = Instant::now();
    agent.shutdown().await;
    let shutdown_took = started.elapsed();

    // The response was written before the agent closed the connection.
    let resp = c.recv(pending).await;
    let r = support::client::produce_partition(&resp, "drain", 0);
    assert_eq!(r.error_code, 0, "{:?}", r.error_message);
    assert_eq!(r.base_offset, 0);
    c.expect_closed().await;
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "a stopped agent accepts no connections"
    );
    eprintln!("shutdown with a buffered produce took {shutdown_took:?}");

    drop(metadata);
    let stack = Stack::start(backend, config).await;
    let mut c = stack.client().await;
    let pd = c.fetch_one("drain", 0, 0, 1 << 20).await;
    assert_eq!(pd.high_watermark, 1);
    assert_eq!(fetched_values(&records(&pd)), vec!["buffered".to_string()]);
    stack.agent.shutdown().await;
}

/// Shutdown while a consumer's long poll is waiting: the fetch is answered (empty, no
/// error) and the connection closed; shutdown does not hang on it forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_answers_a_waiting_long_poll() {
    let stack = Stack::local(config(1)).await;
    let mut c = stack.client().await;
    c.create_topic("idle", 1, &[]).await;
    let waiting = c
        .send(
            &fetch("idle", &[(0, 0, 1 << 20)], 3_000, 1, i32::MAX),
            FETCH_V,
        )
        .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    stack.agent.shutdown().await;
    eprintln!(
        "shutdown with a waiting 3 s long poll took {:?}",
        started.elapsed()
    );
    let resp = c.recv(waiting).await;
    let pd = fetch_partition(&resp, "idle", 0);
    assert_eq!(pd.error_code, 0);
    assert!(records(pd).is_empty());
    c.expect_closed().await;
}
