//! Several metadata instances on one PostgreSQL learn of each other's changes by NOTIFY, not
//! by polling: with the polling backstop set to a minute, a watcher on instance B still sees
//! a commit and a config change made through instance A within its 20-second watch.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use floe_metadata::service::ServiceSettings;
use floe_metadata::testing::TestPostgres;
use floe_metadata::{
    ChunkCommit, Metadata, MetadataService, MetadataStore, ObjectCommit, PostgresStore, TopicSpec,
    WatchCursor,
};

async fn instance(url: &str) -> Arc<MetadataService> {
    let store: Arc<dyn MetadataStore> =
        Arc::new(PostgresStore::connect(url).await.expect("connect"));
    MetadataService::start_with(
        store,
        Arc::new(|| 0),
        Arc::new(|_| {}),
        ServiceSettings {
            foreign_refresh: Duration::from_secs(60),
            ..ServiceSettings::default()
        },
    )
    .await
    .expect("service")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_relay_commits_and_topic_changes() {
    let pg = TestPostgres::start().await;
    let a = instance(pg.url()).await;
    let b = instance(pg.url()).await;
    let t = a
        .create_topic(TopicSpec {
            name: "relay".into(),
            partitions: 1,
            configs: BTreeMap::new(),
        })
        .await
        .expect("topic");

    // Cursor on B, after it has learnt of the topic.
    let mut cursor = WatchCursor::default();
    let mut generation = 0;
    for _ in 0..20 {
        let w = b
            .watch(cursor, Duration::from_secs(1))
            .await
            .expect("watch");
        cursor = WatchCursor {
            instance: w.instance,
            version: w.version,
        };
        generation = w.topics_generation;
        if w.watermarks.iter().any(|m| m.topic_id == t.id) {
            break;
        }
    }

    a.commit_object(ObjectCommit {
        object_key: "k1".into(),
        object_size: 100,
        chunks: vec![ChunkCommit {
            topic_id: t.id,
            partition: 0,
            byte_offset: 16,
            byte_len: 80,
            offset_count: 7,
            batch_count: 1,
            first_timestamp_ms: 0,
            max_timestamp_ms: 0,
            producer: None,
        }],
    })
    .await
    .expect("commit");
    // B answers as soon as anything moves; keep watching (20 s in all, far below the
    // 60 s polling backstop) until A's commit shows.
    let seen = watch_until(&b, &mut cursor, |w| {
        w.watermarks
            .iter()
            .any(|m| m.topic_id == t.id && m.high_watermark == 7)
    })
    .await;
    assert!(seen, "B saw A's commit");

    let mut configs = BTreeMap::new();
    configs.insert("retention.ms".to_string(), "1000".to_string());
    a.set_topic_configs("relay", configs)
        .await
        .expect("configs");
    let moved = watch_until(&b, &mut cursor, |w| w.topics_generation > generation).await;
    assert!(moved, "B's agents are told to re-read topics");
}

/// Watches `service` from `cursor` until `done` holds for an answer, for at most 20 s.
async fn watch_until(
    service: &MetadataService,
    cursor: &mut WatchCursor,
    done: impl Fn(&floe_metadata::WatchBatch) -> bool,
) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while tokio::time::Instant::now() < deadline {
        let left = deadline - tokio::time::Instant::now();
        let w = service.watch(*cursor, left).await.expect("watch");
        *cursor = WatchCursor {
            instance: w.instance,
            version: w.version,
        };
        if done(&w) {
            return true;
        }
    }
    false
}
