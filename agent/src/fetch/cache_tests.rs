//! The zone cache with real peer endpoints on loopback and an in-memory object store whose
//! GETs are counted: blocks are read once per zone, pushes save the GETs of the tail, an
//! unreachable owner costs a counted fallback, and catch-up reads leave the tail alone.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use floe_common::metrics::ObjectLabels;
use floe_common::{Metrics, Objects};
use floe_format::records::{encode_batch, BatchSpec, Record};
use floe_format::Compression;
use floe_metadata::AgentInfo;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::fetch::cache::{Budgets, ChunkCache, BLOCK_BYTES};
use crate::fetch::peer::{router, PeerClient};
use crate::fleet::Fleet;

struct Node {
    cache: Arc<ChunkCache>,
    metrics: Arc<Metrics>,
    fleet: Arc<Fleet>,
    server: JoinHandle<()>,
}

fn gets(m: &Metrics) -> u64 {
    m.object_requests
        .get_or_create(&ObjectLabels {
            op: "get",
            purpose: "fetch",
            outcome: "ok",
        })
        .get()
}

fn peer_bytes(m: &Metrics, direction: &'static str) -> u64 {
    m.cache_peer_bytes
        .get_or_create(&floe_common::metrics::DirectionLabels { direction })
        .get()
}

const BIG: Budgets = Budgets {
    tail_bytes: 64 * BLOCK_BYTES,
    catchup_bytes: 64 * BLOCK_BYTES,
    tail_window_ms: 60_000,
    catchup_bytes_per_sec: 0,
};

/// `n` agents of one zone, each with its own metrics, peer endpoint and fleet view.
async fn zone(n: usize, store: Arc<dyn ObjectStore>, budgets: Budgets) -> Vec<Node> {
    let mut listeners = Vec::new();
    let mut infos = Vec::new();
    for i in 0..n {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = l.local_addr().expect("addr").port();
        infos.push(AgentInfo {
            node_id: i as i32 + 1,
            zone: Some("z".into()),
            host: "127.0.0.1".into(),
            port: 1,
            cache_url: Some(format!("http://127.0.0.1:{port}")),
            instance: format!("i{i}"),
            started_at_ms: 0,
        });
        listeners.push(l);
    }
    let mut nodes = Vec::new();
    for (i, l) in listeners.into_iter().enumerate() {
        let metrics = Arc::new(Metrics::new());
        let objects = Objects::new(store.clone(), Path::from("t"), metrics.clone());
        let fleet = Fleet::fixed(infos[i].clone(), infos.clone(), metrics.clone());
        let cache = Arc::new(
            ChunkCache::new(objects, metrics.clone(), budgets)
                .with_peers(fleet.clone(), PeerClient::new().expect("client")),
        );
        let r = router(cache.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(l, r).await;
        });
        nodes.push(Node {
            cache,
            metrics,
            fleet,
            server,
        });
    }
    nodes
}

/// An object of valid batches (64 KiB values) a little over `blocks` blocks long, and the
/// byte range of each batch.
fn object(blocks: u64) -> (Bytes, Vec<(i64, i64)>) {
    let mut out = BytesMut::new();
    let mut ranges = Vec::new();
    let mut i = 0u64;
    while (out.len() as u64) < blocks * BLOCK_BYTES - 70_000 {
        let value = Bytes::from(vec![(i % 251) as u8; 64 * 1024]);
        let batch = encode_batch(
            &BatchSpec::default(),
            &[Record {
                offset_delta: 0,
                timestamp_delta: 0,
                key: Some(Bytes::from(i.to_string())),
                value: Some(value),
                headers: Vec::new(),
            }],
            Compression::None,
        )
        .expect("batch");
        ranges.push((out.len() as i64, batch.len() as i64));
        out.extend_from_slice(&batch);
        i += 1;
    }
    (out.freeze(), ranges)
}

/// A key whose blocks are owned by both agents of `nodes` (rendezvous hashing decides).
fn mixed_key(nodes: &[Node], written_ms: i64, blocks: u64) -> String {
    (0..1000)
        .map(|i| format!("wal/0000/1-{written_ms}-{i:032x}.wal"))
        .find(|k| {
            let remote = (0..blocks)
                .filter(|b| nodes[0].fleet.block_owner(k, *b).is_some())
                .count() as u64;
            remote > 0 && remote < blocks
        })
        .expect("a key with mixed owners")
}

async fn read_all(cache: &ChunkCache, key: &str, obj: &Bytes, ranges: &[(i64, i64)]) {
    for (off, len) in ranges {
        let got = cache
            .get(key, obj.len() as i64, *off, *len)
            .await
            .expect("read");
        assert_eq!(got, obj.slice(*off as usize..(*off + *len) as usize));
    }
}

async fn put(store: &Arc<dyn ObjectStore>, key: &str, obj: &Bytes) {
    store
        .put(&Path::from(format!("t/{key}")), obj.clone().into())
        .await
        .expect("put");
}

#[tokio::test]
async fn a_cold_block_is_read_once_per_zone() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let nodes = zone(2, store.clone(), BIG).await;
    let (obj, ranges) = object(3);
    let key = mixed_key(&nodes, 0, 3);
    put(&store, &key, &obj).await;
    // Both agents read every batch at the same time.
    tokio::join!(
        read_all(&nodes[0].cache, &key, &obj, &ranges),
        read_all(&nodes[1].cache, &key, &obj, &ranges),
        read_all(&nodes[0].cache, &key, &obj, &ranges),
    );
    let total: u64 = nodes.iter().map(|n| gets(&n.metrics)).sum();
    assert_eq!(total, 3, "one GET per block in the zone");
    for n in &nodes {
        assert!(gets(&n.metrics) > 0, "each agent owns some blocks");
        assert!(peer_bytes(&n.metrics, "fetched") > 0);
        assert!(peer_bytes(&n.metrics, "served") > 0);
        assert_eq!(n.metrics.cache_peer_fallbacks.get(), 0);
    }
}

#[tokio::test]
async fn pushed_blocks_need_no_get() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let nodes = zone(2, store.clone(), BIG).await;
    let (obj, ranges) = object(3);
    let now = floe_common::clock::system().now_ms();
    let key = mixed_key(&nodes, now, 3);
    put(&store, &key, &obj).await;
    nodes[0].cache.publish(&key, &obj).await;
    assert!(peer_bytes(&nodes[0].metrics, "pushed") > 0);
    assert_eq!(
        peer_bytes(&nodes[0].metrics, "pushed"),
        peer_bytes(&nodes[1].metrics, "push_received")
    );
    read_all(&nodes[0].cache, &key, &obj, &ranges).await;
    read_all(&nodes[1].cache, &key, &obj, &ranges).await;
    let total: u64 = nodes.iter().map(|n| gets(&n.metrics)).sum();
    assert_eq!(total, 0, "the writer's zone reads fresh data from memory");
    assert_eq!(nodes[0].metrics.cache_push_failures.get(), 0);
}

#[tokio::test]
async fn an_unreachable_owner_costs_a_counted_fallback() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let nodes = zone(2, store.clone(), BIG).await;
    let (obj, ranges) = object(3);
    let key = mixed_key(&nodes, 0, 3);
    put(&store, &key, &obj).await;
    nodes[1].server.abort();
    while !nodes[1].server.is_finished() {
        tokio::task::yield_now().await;
    }
    read_all(&nodes[0].cache, &key, &obj, &ranges).await;
    let remote_blocks = (0..3)
        .filter(|b| nodes[0].fleet.block_owner(&key, *b).is_some())
        .count() as u64;
    assert!(nodes[0].metrics.cache_peer_fallbacks.get() >= remote_blocks);
    // The agent read the absent owner's blocks itself, once each.
    assert_eq!(gets(&nodes[0].metrics), 3);
    // A push to the absent owner fails, is counted, and does not stop the writer.
    nodes[0].cache.publish(&key, &obj).await;
    assert_eq!(nodes[0].metrics.cache_push_failures.get(), remote_blocks);
}

#[tokio::test]
async fn catch_up_reads_leave_the_tail_alone() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let small = Budgets {
        tail_bytes: 3 * BLOCK_BYTES,
        catchup_bytes: BLOCK_BYTES,
        tail_window_ms: 60_000,
        catchup_bytes_per_sec: 0,
    };
    let nodes = zone(1, store.clone(), small).await;
    let n = &nodes[0];
    let now = floe_common::clock::system().now_ms();
    let (tail, tail_ranges) = object(2);
    let tail_key = format!("wal/0000/1-{now}-tail.wal");
    put(&store, &tail_key, &tail).await;
    n.cache.publish(&tail_key, &tail).await;
    // A cold read of three old objects, far more than the catch-up budget.
    for i in 0..3 {
        let (old, old_ranges) = object(2);
        let old_key = format!("wal/0000/1-0-old{i}.wal");
        put(&store, &old_key, &old).await;
        read_all(&n.cache, &old_key, &old, &old_ranges).await;
    }
    let after_catch_up = gets(&n.metrics);
    assert!(
        after_catch_up >= 6,
        "the old objects were read from the store"
    );
    read_all(&n.cache, &tail_key, &tail, &tail_ranges).await;
    let tail_misses = n
        .metrics
        .cache_misses
        .get_or_create(&floe_common::metrics::CacheLabels { cache: "tail" })
        .get();
    assert_eq!(tail_misses, 0);
    assert_eq!(
        gets(&n.metrics),
        after_catch_up,
        "the tail is still in memory"
    );
}

#[tokio::test]
async fn a_wrong_size_from_a_peer_cannot_plant_a_short_block() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let nodes = zone(1, store.clone(), BIG).await;
    let (obj, ranges) = object(2);
    let key = "wal/0000/1-0-k.wal";
    put(&store, key, &obj).await;
    // A confused (or hostile) peer asks for block 0 of a "shorter" object.
    let me = nodes[0].fleet.me().clone();
    let short = PeerClient::new()
        .expect("client")
        .fetch(&me, key, 0, 1000, 0, 10)
        .await
        .expect("served");
    assert_eq!(short.len(), 10);
    // Readers with the real size still get whole, valid blocks.
    read_all(&nodes[0].cache, key, &obj, &ranges).await;
}

#[tokio::test]
async fn catch_up_reads_are_paced_and_tail_reads_are_not() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    // Two blocks per second: the one-second burst covers two blocks, then one per 0.5 s.
    let paced = Budgets {
        catchup_bytes_per_sec: 2 * BLOCK_BYTES,
        ..BIG
    };
    let nodes = zone(1, store.clone(), paced).await;
    let n = &nodes[0];
    let now = floe_common::clock::system().now_ms();
    let (obj, ranges) = object(4);
    let tail_key = format!("wal/0000/1-{now}-tail.wal");
    let old_key = "wal/0000/1-0-old.wal".to_string();
    put(&store, &tail_key, &obj).await;
    put(&store, &old_key, &obj).await;

    let t0 = std::time::Instant::now();
    read_all(&n.cache, &tail_key, &obj, &ranges).await;
    let tail_took = t0.elapsed();
    let t0 = std::time::Instant::now();
    read_all(&n.cache, &old_key, &obj, &ranges).await;
    let old_took = t0.elapsed();
    // Four blocks (the last one short) at two per second after a two-block burst: the
    // third waits 0.5 s and the fourth about 0.5 s more.
    assert!(
        old_took >= std::time::Duration::from_millis(900),
        "catch-up read of 4 blocks took {old_took:?}"
    );
    assert!(
        tail_took < std::time::Duration::from_millis(500),
        "tail reads never wait: {tail_took:?}"
    );
    assert_eq!(gets(&n.metrics), 8, "each block read once");
}
