//! Faults injected by wrapping the real object store and the real metadata service: a
//! failed upload or commit never becomes partly visible, retries keep offsets contiguous,
//! commits are retried under the same object key, and an uploaded object that was never
//! committed stays invisible.

mod support;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use floe_agent::{Agent, AgentConfig};
use floe_common::{Metrics, Objects};
use floe_format::batch::Compression;
use floe_metadata::{Metadata, MetadataService};
use support::batches::{self, fetched_values};
use support::client::{records, Client};
use support::faults::{FailingStore, FlakyMetadata};
use support::harness::{config, start_agent, Backend};

const T0: i64 = 1_700_000_000_000;
const TOPIC: &str = "faulty";

const REQUEST_TIMED_OUT: i16 = 7;
const KAFKA_STORAGE_ERROR: i16 = 56;

/// An agent over the real stores, with the object store and the metadata service wrapped.
struct Faulty {
    backend: Backend,
    service: Arc<MetadataService>,
    store: Arc<FailingStore>,
    meta: Arc<FlakyMetadata>,
    agent: Agent,
}

impl Faulty {
    async fn start(config: AgentConfig) -> Faulty {
        let backend = Backend::local();
        let service = backend.metadata().await;
        let (inner, prefix) = backend.store();
        let store = FailingStore::new(inner);
        let meta = FlakyMetadata::new(service.clone());
        let metrics = Arc::new(Metrics::new());
        let agent = start_agent(
            config,
            meta.clone(),
            Objects::new(store.clone(), prefix, metrics.clone()),
            metrics,
        )
        .await;
        Faulty {
            backend,
            service,
            store,
            meta,
            agent,
        }
    }

    async fn client(&self) -> Client {
        Client::connect(self.agent.local_addr()).await
    }

    /// A second, fault-free agent over the same stores (cold caches).
    async fn fresh_agent(&self) -> Agent {
        let metrics = Arc::new(Metrics::new());
        start_agent(
            config(9),
            self.service.clone(),
            self.backend.objects(metrics.clone()),
            metrics,
        )
        .await
    }
}

/// Uploads fail while the flag is set: the produce gets KAFKA_STORAGE_ERROR (retriable),
/// nothing becomes visible, and the retry after recovery gets the next contiguous offsets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_upload_is_retriable_and_invisible() {
    let f = Faulty::start(config(1)).await;
    let mut c = f.client().await;
    c.create_topic(TOPIC, 1, &[]).await;
    let first = batches::batch(T0, &batches::values("first", 2), Compression::None);
    let r = c.produce_one(TOPIC, 0, first).await;
    assert_eq!((r.error_code, r.base_offset), (0, 0));
    let objects_before = f.backend.object_keys().await;

    f.store.fail_puts.store(true, Ordering::SeqCst);
    let retry = batches::batch(T0 + 1_000, &batches::values("retry", 3), Compression::None);
    let r = c.produce_one(TOPIC, 0, retry.clone()).await;
    assert_eq!(r.error_code, KAFKA_STORAGE_ERROR, "{:?}", r.error_message);
    assert_eq!(r.base_offset, -1);
    assert!(f.store.failed_puts.load(Ordering::SeqCst) >= 1);
    assert_eq!(
        c.high_watermark(TOPIC, 0).await,
        2,
        "high watermark unchanged"
    );
    assert_eq!(
        f.backend.object_keys().await,
        objects_before,
        "nothing uploaded"
    );
    let pd = c.fetch_one(TOPIC, 0, 2, 1 << 20).await;
    assert_eq!(pd.error_code, 0);
    assert!(records(&pd).is_empty());

    f.store.fail_puts.store(false, Ordering::SeqCst);
    let r = c.produce_one(TOPIC, 0, retry).await;
    assert_eq!(
        (r.error_code, r.base_offset),
        (0, 2),
        "next contiguous offset"
    );
    let pd = c.fetch_one(TOPIC, 0, 0, 1 << 20).await;
    assert_eq!(pd.high_watermark, 5);
    assert_eq!(
        fetched_values(&records(&pd)),
        ["first-0", "first-1", "retry-0", "retry-1", "retry-2"]
    );
    f.agent.shutdown().await;
}

/// Commits failing before they reach the service are retried with the same object key,
/// and the produce succeeds once the failures stop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_commit_is_retried_with_the_same_key() {
    let f = Faulty::start(config(1)).await;
    let mut c = f.client().await;
    c.create_topic(TOPIC, 1, &[]).await;
    let r = c.produce_one(TOPIC, 0, batches::single(T0, "a")).await;
    assert_eq!((r.error_code, r.base_offset), (0, 0));
    let before = f.meta.keys().len();

    f.meta.fail_before.store(3, Ordering::SeqCst);
    let r = c.produce_one(TOPIC, 0, batches::single(T0 + 1, "b")).await;
    assert_eq!(
        (r.error_code, r.base_offset),
        (0, 1),
        "{:?}",
        r.error_message
    );
    let keys = f.meta.keys()[before..].to_vec();
    assert_eq!(keys.len(), 4, "three failures, then the commit: {keys:?}");
    assert!(
        keys.iter().all(|k| *k == keys[0]),
        "same key every time: {keys:?}"
    );
    assert_eq!(f.meta.fail_before.load(Ordering::SeqCst), 0);

    let pd = c.fetch_one(TOPIC, 0, 0, 1 << 20).await;
    assert_eq!(pd.high_watermark, 2);
    assert_eq!(fetched_values(&records(&pd)), ["a", "b"]);
    f.agent.shutdown().await;
}

/// The service applied the commit but the answer was lost: the retry with the same key is
/// idempotent, so the records appear once, at the offsets the producer is told.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_whose_answer_was_lost_is_applied_once() {
    let f = Faulty::start(config(1)).await;
    let mut c = f.client().await;
    c.create_topic(TOPIC, 2, &[]).await;
    let r = c.produce_one(TOPIC, 0, batches::single(T0, "a")).await;
    assert_eq!((r.error_code, r.base_offset), (0, 0));

    f.meta.fail_after.store(2, Ordering::SeqCst);
    let values = batches::values("once", 3);
    let r = c
        .produce_one(TOPIC, 0, batches::batch(T0 + 1, &values, Compression::None))
        .await;
    assert_eq!(
        (r.error_code, r.base_offset),
        (0, 1),
        "{:?}",
        r.error_message
    );
    assert_eq!(f.meta.fail_after.load(Ordering::SeqCst), 0);

    let r = c.produce_one(TOPIC, 0, batches::single(T0 + 2, "z")).await;
    assert_eq!((r.error_code, r.base_offset), (0, 4));
    let pd = c.fetch_one(TOPIC, 0, 0, 1 << 20).await;
    assert_eq!(pd.high_watermark, 5);
    assert_eq!(
        fetched_values(&records(&pd)),
        ["a", "once-0", "once-1", "once-2", "z"]
    );
    // The service agrees (a fresh agent reads everything from the metadata service).
    let other = f.fresh_agent().await;
    let mut c2 = Client::connect(other.local_addr()).await;
    let pd2 = c2.fetch_one(TOPIC, 0, 0, 1 << 20).await;
    assert_eq!(records(&pd2), records(&pd));
    other.shutdown().await;
    f.agent.shutdown().await;
}

/// Commits failing for longer than commit_timeout_ms: the produce gets an error, nothing
/// is visible, the uploaded object stays in the store as an orphan that no fetch (from
/// this agent or a fresh one) ever returns, and offsets go on without a hole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_failing_past_the_timeout_leaves_an_invisible_orphan() {
    let f = Faulty::start(AgentConfig {
        commit_timeout_ms: 300,
        ..config(1)
    })
    .await;
    let mut c = f.client().await;
    c.create_topic(TOPIC, 1, &[]).await;
    let r = c.produce_one(TOPIC, 0, batches::single(T0, "kept")).await;
    assert_eq!((r.error_code, r.base_offset), (0, 0));
    let committed_keys = f.meta.keys();
    assert_eq!(committed_keys.len(), 1);

    f.meta.fail_always.store(true, Ordering::SeqCst);
    let r = c
        .produce_one(TOPIC, 0, batches::single(T0 + 1, "orphan"))
        .await;
    assert_ne!(r.error_code, 0, "the produce must fail");
    assert_eq!(
        r.error_code, REQUEST_TIMED_OUT,
        "outcome unknown to the client: {:?}",
        r.error_message
    );
    assert_eq!(r.base_offset, -1);
    let orphan_keys: Vec<String> = f.meta.keys()[1..].to_vec();
    assert!(
        orphan_keys.len() >= 2,
        "retried before giving up: {orphan_keys:?}"
    );
    assert!(orphan_keys.iter().all(|k| *k == orphan_keys[0]));
    let orphan = orphan_keys[0].clone();
    f.meta.fail_always.store(false, Ordering::SeqCst);

    // Uploaded, but not referenced by the index.
    let keys = f.backend.object_keys().await;
    assert!(keys.contains(&orphan), "orphan {orphan} uploaded: {keys:?}");
    assert!(keys.contains(&committed_keys[0]));
    let topic = f
        .service
        .list_topics()
        .await
        .expect("topics")
        .into_iter()
        .find(|t| t.name == TOPIC)
        .expect("topic");
    let index = f
        .service
        .read_index(topic.id, 0, 0, 100)
        .await
        .expect("read index");
    assert_eq!(index.len(), 1);
    assert_eq!(index[0].object_key, committed_keys[0]);
    assert!(index.iter().all(|e| e.object_key != orphan));

    // Invisible through this agent (its cache holds the orphan's chunk) and a fresh one.
    assert_eq!(c.high_watermark(TOPIC, 0).await, 1);
    let pd = c.fetch_one(TOPIC, 0, 0, 1 << 20).await;
    assert_eq!(pd.high_watermark, 1);
    assert_eq!(fetched_values(&records(&pd)), ["kept"]);
    let other = f.fresh_agent().await;
    let mut c2 = Client::connect(other.local_addr()).await;
    let pd = c2.fetch_one(TOPIC, 0, 0, 1 << 20).await;
    assert_eq!(pd.high_watermark, 1);
    assert_eq!(fetched_values(&records(&pd)), ["kept"]);

    // Offsets go on from the last committed one.
    let r = c
        .produce_one(TOPIC, 0, batches::single(T0 + 2, "next"))
        .await;
    assert_eq!((r.error_code, r.base_offset), (0, 1));
    let pd = c2.fetch_one(TOPIC, 0, 0, 1 << 20).await;
    assert_eq!(fetched_values(&records(&pd)), ["kept", "next"]);
    other.shutdown().await;
    f.agent.shutdown().await;
}

/// GETs failing on a cold agent: the fetch gets KAFKA_STORAGE_ERROR for that partition
/// (retriable), and the same fetch succeeds once the store recovers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_read_is_a_retriable_fetch_error() {
    let backend = Backend::local();
    let service = backend.metadata().await;
    let metrics = Arc::new(Metrics::new());
    let writer = start_agent(
        config(1),
        service.clone(),
        backend.objects(metrics.clone()),
        metrics,
    )
    .await;
    let mut c = Client::connect(writer.local_addr()).await;
    c.create_topic(TOPIC, 1, &[]).await;
    let r = c.produce_one(TOPIC, 0, batches::single(T0, "stored")).await;
    assert_eq!((r.error_code, r.base_offset), (0, 0));

    let (inner, prefix) = backend.store();
    let store = FailingStore::new(inner);
    let metrics = Arc::new(Metrics::new());
    let reader = start_agent(
        config(2),
        service.clone(),
        Objects::new(store.clone(), prefix, metrics.clone()),
        metrics,
    )
    .await;
    let mut c2 = Client::connect(reader.local_addr()).await;
    store.fail_gets.store(true, Ordering::SeqCst);
    let pd = c2.fetch_one(TOPIC, 0, 0, 1 << 20).await;
    assert_eq!(pd.error_code, KAFKA_STORAGE_ERROR);
    assert!(store.failed_gets.load(Ordering::SeqCst) >= 1);
    store.fail_gets.store(false, Ordering::SeqCst);
    let pd = c2.fetch_one(TOPIC, 0, 0, 1 << 20).await;
    assert_eq!(pd.error_code, 0);
    assert_eq!(fetched_values(&records(&pd)), ["stored"]);
    reader.shutdown().await;
    writer.shutdown().await;
}
