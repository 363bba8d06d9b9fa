//! The compactor against the real metadata service (SQLite) and an in-memory object store.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use floe_common::{Metrics, Objects, SystemClock};
use floe_metadata::{
    ChunkCommit, LifecycleCall, LogStartTarget, Metadata, MetadataService, ObjectCommit,
    SqliteStore, TopicId, TopicSpec,
};
use object_store::memory::InMemory;
use object_store::path::Path;

use super::*;

struct World {
    metadata: Arc<MetadataService>,
    objects: Objects,
    _dir: tempfile::TempDir,
}

async fn world() -> World {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("m.db"))
        .await
        .expect("store");
    let clock = SystemClock;
    let metadata = MetadataService::start(
        Arc::new(store),
        Arc::new(move || clock.now_ms()),
        Arc::new(|_| {}),
    )
    .await
    .expect("service");
    let objects = Objects::new(
        Arc::new(InMemory::new()),
        Path::from("c"),
        Arc::new(Metrics::new()),
    );
    World {
        metadata,
        objects,
        _dir: dir,
    }
}

/// A compactor; every one made here holds the lease under the same name, as one process
/// changing its settings would.
fn compactor(w: &World, grace_ms: u64) -> Compactor {
    let mut c = Compactor::new(
        w.metadata.clone(),
        w.objects.clone(),
        Arc::new(Metrics::new()),
        CompactorSettings {
            interval: Duration::from_millis(100),
            grace: Duration::from_millis(grace_ms),
            orphan_interval: Duration::from_millis(100),
        },
        Arc::new(SystemClock),
    );
    c.instance = "test".into();
    c
}

/// Uploads and commits an object of `chunks` (topic, partition, offsets, max timestamp).
async fn commit(w: &World, key: &str, chunks: &[(TopicId, i32, i64, i64)]) {
    w.objects
        .put(key, Bytes::from(vec![0u8; 100]), "wal")
        .await
        .expect("put");
    let chunks = chunks
        .iter()
        .map(|&(topic_id, partition, offset_count, ts)| ChunkCommit {
            topic_id,
            partition,
            byte_offset: 0,
            byte_len: 10,
            offset_count,
            batch_count: 1,
            first_timestamp_ms: ts,
            max_timestamp_ms: ts,
            producer: None,
        })
        .collect();
    w.metadata
        .commit_object(ObjectCommit {
            object_key: key.to_string(),
            object_size: 100,
            chunks,
        })
        .await
        .expect("commit");
}

async fn exists(w: &World, key: &str) -> bool {
    w.objects.get(key, "test").await.is_ok()
}

async fn topic(w: &World, name: &str, configs: &[(&str, &str)]) -> TopicId {
    w.metadata
        .create_topic(TopicSpec {
            name: name.into(),
            partitions: 1,
            configs: configs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        })
        .await
        .expect("topic")
        .id
}

#[test]
fn retention_follows_kafka_defaults_and_policy() {
    let c = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>()
    };
    assert_eq!(retention_of(&c(&[])), (Some(DEFAULT_RETENTION_MS), None));
    assert_eq!(
        retention_of(&c(&[("retention.ms", "-1"), ("retention.bytes", "100")])),
        (None, Some(100))
    );
    assert_eq!(
        retention_of(&c(&[("cleanup.policy", "compact")])),
        (None, None)
    );
    assert_eq!(
        retention_of(&c(&[
            ("cleanup.policy", "compact,delete"),
            ("retention.ms", "5")
        ])),
        (Some(5), None)
    );
}

#[tokio::test]
async fn retention_deletes_expired_objects_and_keeps_referenced_ones() {
    let w = world().await;
    let now = SystemClock.now_ms();
    let short = topic(&w, "short", &[("retention.ms", "60000")]).await;
    let forever = topic(&w, "forever", &[("retention.ms", "-1")]).await;
    // "old" holds only expired data; "mixed" holds expired data of `short` and data of a
    // topic without retention; "new" holds fresh data.
    commit(&w, "wal/old", &[(short, 0, 5, now - 3_600_000)]).await;
    commit(
        &w,
        "wal/mixed",
        &[
            (short, 0, 5, now - 3_600_000),
            (forever, 0, 5, now - 3_600_000),
        ],
    )
    .await;
    commit(&w, "wal/new", &[(short, 0, 5, now)]).await;
    let report = compactor(&w, 0).run_once(false).await.expect("pass");
    assert!(report.leader);
    assert_eq!(report.retention_moves, 1);
    assert_eq!(report.unreferenced_deleted, 1);
    assert!(!exists(&w, "wal/old").await);
    assert!(
        exists(&w, "wal/mixed").await,
        "still referenced by `forever`"
    );
    assert!(exists(&w, "wal/new").await);
    let t = w.metadata.list_topics().await.expect("topics");
    let short_p = t
        .iter()
        .find(|t| t.name == "short")
        .expect("short")
        .partitions[0];
    assert_eq!((short_p.log_start_offset, short_p.high_watermark), (10, 15));
    // Deleting the other topic releases "mixed" once the grace period (0) has passed.
    w.metadata.delete_topic("forever").await.expect("delete");
    tokio::time::sleep(Duration::from_millis(5)).await;
    let report = compactor(&w, 0).run_once(false).await.expect("pass");
    assert_eq!(report.topics_purged, 1);
    assert!(!exists(&w, "wal/mixed").await);
    assert!(exists(&w, "wal/new").await);
}

#[tokio::test]
async fn delete_records_then_grace_then_deletion() {
    let w = world().await;
    let t = topic(&w, "t", &[]).await;
    let now = SystemClock.now_ms();
    commit(&w, "wal/a", &[(t, 0, 5, now)]).await;
    commit(&w, "wal/b", &[(t, 0, 5, now)]).await;
    w.metadata
        .lifecycle(LifecycleCall::AdvanceLogStart {
            topic_id: t,
            partition: 0,
            target: LogStartTarget::Offset(7),
        })
        .await
        .expect("delete records");
    // Within the grace period nothing goes; after it, only the object wholly below 7.
    let c = compactor(&w, 300);
    assert_eq!(
        c.run_once(false).await.expect("pass").unreferenced_deleted,
        0
    );
    assert!(exists(&w, "wal/a").await);
    tokio::time::sleep(Duration::from_millis(350)).await;
    c.run_once(false).await.expect("pass");
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(
        c.run_once(false).await.expect("pass").unreferenced_deleted,
        1
    );
    assert!(!exists(&w, "wal/a").await);
    assert!(exists(&w, "wal/b").await);
}

#[tokio::test]
async fn orphans_are_deleted_known_objects_never() {
    let w = world().await;
    let t = topic(&w, "t", &[]).await;
    commit(&w, "wal/known", &[(t, 0, 1, SystemClock.now_ms())]).await;
    w.objects
        .put("wal/orphan", Bytes::from_static(b"x"), "wal")
        .await
        .expect("put");
    // Young orphans are left alone: their commit may still be on its way.
    let report = compactor(&w, 60_000).run_once(true).await.expect("pass");
    assert_eq!(report.orphans_deleted, 0);
    tokio::time::sleep(Duration::from_millis(5)).await;
    let report = compactor(&w, 1).run_once(true).await.expect("pass");
    assert_eq!(report.orphans_deleted, 1);
    assert!(!exists(&w, "wal/orphan").await);
    assert!(exists(&w, "wal/known").await);
}

#[tokio::test]
async fn one_compactor_works_at_a_time() {
    let w = world().await;
    let (mut a, mut b) = (compactor(&w, 0), compactor(&w, 0));
    a.instance = "a".into();
    b.instance = "b".into();
    assert!(a.run_once(false).await.expect("a").leader);
    assert!(!b.run_once(false).await.expect("b").leader);
    assert!(a.run_once(false).await.expect("a again").leader);
}
