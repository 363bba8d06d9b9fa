//! The store conformance suite: every test runs against SQLite (a temp file) and PostgreSQL
//! (a fresh database from [`TestPostgres`]) through `conformance_suite!`, so both backends are
//! held to one behaviour. Plus an ignored commit-throughput measurement on PostgreSQL.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use uuid::Uuid;

use super::{MetadataStore, PostgresStore, SqliteStore};
use crate::error::MetadataError;
use crate::groups::{GroupProtocol, GroupRecord, MemberRecord};
use crate::testing::TestPostgres;
use crate::types::{
    AbortedTxn, ChunkCommit, ChunkOutcome, CommitResult, CommittedOffset, ControlMarker,
    IndexEntry, LogStartTarget, ObjectCommit, PartitionWatermark, ProducerBatch, ProducerRejection,
    SegmentSwap, TopicId, TopicInfo, TopicSpec, TxnCall, TxnProducer, TxnRefusal, TxnReply,
};

/// A backend under test: a store on a fresh database, plus the ways the suite reaches it.
trait Harness: Sized {
    async fn new() -> Self;
    /// The store under test.
    fn store(&self) -> Arc<dyn MetadataStore>;
    /// Another handle on the same database, as a second metadata process would hold
    /// (PostgreSQL: a separate pool; SQLite, single-process by design: the same store).
    async fn another(&self) -> Arc<dyn MetadataStore>;
    /// Closes the store and opens the database again, as a restart would.
    async fn reopen(&mut self);
}

struct SqliteHarness {
    store: Arc<SqliteStore>,
    path: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Harness for SqliteHarness {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("floe.db");
        let store = Arc::new(SqliteStore::open(&path).await.unwrap());
        SqliteHarness {
            store,
            path,
            _dir: dir,
        }
    }
    fn store(&self) -> Arc<dyn MetadataStore> {
        self.store.clone()
    }
    async fn another(&self) -> Arc<dyn MetadataStore> {
        self.store.clone()
    }
    async fn reopen(&mut self) {
        self.store.close().await;
        self.store = Arc::new(SqliteStore::open(&self.path).await.unwrap());
    }
}

struct PgHarness {
    // Declared before `pg` so the pool is dropped before the database.
    store: Arc<PostgresStore>,
    pg: TestPostgres,
}

impl Harness for PgHarness {
    async fn new() -> Self {
        let pg = TestPostgres::start().await;
        let store = Arc::new(PostgresStore::connect(pg.url()).await.unwrap());
        PgHarness { store, pg }
    }
    fn store(&self) -> Arc<dyn MetadataStore> {
        self.store.clone()
    }
    async fn another(&self) -> Arc<dyn MetadataStore> {
        Arc::new(PostgresStore::connect(self.pg.url()).await.unwrap())
    }
    async fn reopen(&mut self) {
        self.store.close().await;
        self.store = Arc::new(PostgresStore::connect(self.pg.url()).await.unwrap());
    }
}

/// Instantiates every listed test once per backend, as `sqlite::<test>` and
/// `postgres::<test>`.
macro_rules! conformance_suite {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test::<super::SqliteHarness>().await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test::<super::PgHarness>().await
                }
            )*
        }
    };
}

conformance_suite!(
    idle_producers_expire,
    idempotent_producers_are_deduplicated_and_fenced,
    a_partition_named_twice_keeps_its_last_offset,
    consumer_lag_is_high_watermark_minus_committed,
    groups_save_load_delete_and_expire,
    cluster_id_is_stable,
    create_list_delete_recreate,
    create_rejects_live_name_and_bad_counts,
    racing_creates_have_one_winner,
    create_partitions_adds_partitions,
    set_topic_configs_replaces_overrides,
    commit_assigns_contiguous_offsets,
    recommit_returns_original_offsets,
    unknown_or_deleted_partitions,
    deleted_topic_vanishes,
    read_index_windows_and_limits,
    find_by_timestamp_finds_first_entry,
    data_survives_reopen,
    concurrent_commits_are_contiguous,
    group_offsets_upsert_survive_reopen_and_hide_deleted_topics,
    find_max_timestamp_finds_the_largest_lowest_offset,
    log_start_moves_by_delete_records_and_retention,
    unreferenced_objects_are_collected_after_the_grace_period,
    leases_are_exclusive_until_they_expire,
    segments_replace_index_entries_only_if_unchanged,
    transactions_commit_abort_fence_and_time_out,
);

const NOW: i64 = 1_700_000_000_000;

fn spec(name: &str, partitions: i32) -> TopicSpec {
    TopicSpec {
        name: name.to_string(),
        partitions,
        configs: BTreeMap::new(),
    }
}

fn chunk(topic_id: TopicId, partition: i32, offset_count: i64) -> ChunkCommit {
    ChunkCommit {
        topic_id,
        partition,
        byte_offset: 64,
        byte_len: 100 * offset_count,
        offset_count,
        batch_count: 1,
        first_timestamp_ms: NOW,
        max_timestamp_ms: NOW + offset_count,
        producer: None,
    }
}

fn object(key: &str, chunks: Vec<ChunkCommit>) -> ObjectCommit {
    let size = chunks.iter().map(|c| c.byte_len).sum::<i64>() + 64;
    ObjectCommit {
        object_key: key.to_string(),
        object_size: size,
        chunks,
    }
}

fn committed(base_offset: i64) -> ChunkOutcome {
    ChunkOutcome::Committed {
        base_offset,
        log_start_offset: 0,
    }
}

fn bases(result: &CommitResult) -> Vec<Option<i64>> {
    result
        .chunks
        .iter()
        .map(|c| match c {
            ChunkOutcome::Committed { base_offset, .. } => Some(*base_offset),
            _ => None,
        })
        .collect()
}

async fn topic(store: &dyn MetadataStore, name: &str) -> Option<TopicInfo> {
    store
        .list_topics()
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.name == name)
}

async fn hwm(store: &dyn MetadataStore, name: &str, partition: usize) -> i64 {
    topic(store, name).await.unwrap().partitions[partition].high_watermark
}

async fn cluster_id_is_stable<H: Harness>() {
    let mut h = H::new().await;
    let id = h.store().cluster_id().await.unwrap();
    assert_eq!(id.len(), 22, "{id}");
    assert_eq!(h.another().await.cluster_id().await.unwrap(), id);
    h.reopen().await;
    assert_eq!(h.store().cluster_id().await.unwrap(), id);
}

async fn create_list_delete_recreate<H: Harness>() {
    let h = H::new().await;
    let store = h.store();
    let mut b_spec = spec("b", 2);
    b_spec.configs.insert("retention.ms".into(), "1000".into());
    let b = store.create_topic(&b_spec, NOW).await.unwrap();
    let a = store.create_topic(&spec("a", 3), NOW + 1).await.unwrap();
    assert_eq!(a.id.get_version_num(), 4);
    assert_eq!(a.created_at_ms, NOW + 1);
    assert_eq!(b.configs, b_spec.configs);
    assert_eq!(a.partitions.len(), 3);
    for (i, p) in a.partitions.iter().enumerate() {
        assert_eq!(
            (
                p.partition,
                p.high_watermark,
                p.log_start_offset,
                p.leader_epoch
            ),
            (i as i32, 0, 0, 0)
        );
    }
    assert_eq!(
        store.list_topics().await.unwrap(),
        vec![a.clone(), b.clone()]
    );
    assert_eq!(store.watermarks().await.unwrap().len(), 5);

    assert_eq!(store.delete_topic("a").await.unwrap(), a.id);
    assert_eq!(store.list_topics().await.unwrap(), vec![b.clone()]);
    assert!(matches!(
        store.delete_topic("a").await,
        Err(MetadataError::UnknownTopic(_))
    ));
    let marks = store.watermarks().await.unwrap();
    assert_eq!(marks.len(), 2);
    assert!(marks.iter().all(|w| w.topic_id == b.id));

    let a2 = store.create_topic(&spec("a", 1), NOW + 2).await.unwrap();
    assert_ne!(a2.id, a.id);
    assert_eq!(store.list_topics().await.unwrap(), vec![a2.clone(), b]);
    // The old incarnation stays dead: commits to it are refused, the new one is separate.
    let (results, _) = store
        .commit_objects(
            &[object("o1", vec![chunk(a.id, 0, 1), chunk(a2.id, 0, 2)])],
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(bases(&results[0]), vec![None, Some(0)]);
    assert!(store.read_index(a.id, 0, 0, 10).await.unwrap().is_empty());
}

async fn create_rejects_live_name_and_bad_counts<H: Harness>() {
    let h = H::new().await;
    let store = h.store();
    store.create_topic(&spec("t", 1), NOW).await.unwrap();
    assert!(
        matches!(store.create_topic(&spec("t", 2), NOW).await, Err(MetadataError::TopicExists(n)) if n == "t")
    );
    assert!(matches!(
        store.create_topic(&spec("u", 0), NOW).await,
        Err(MetadataError::InvalidPartitions(_))
    ));
    assert!(matches!(
        store.create_topic(&spec("u", -1), NOW).await,
        Err(MetadataError::InvalidPartitions(_))
    ));
    assert_eq!(store.list_topics().await.unwrap().len(), 1);
}

async fn racing_creates_have_one_winner<H: Harness>() {
    let h = H::new().await;
    let stores = [h.store(), h.another().await];
    for round in 0..5 {
        let name = format!("race-{round}");
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let store = stores[i % 2].clone();
                let spec = spec(&name, 2);
                tokio::spawn(async move { store.create_topic(&spec, NOW).await })
            })
            .collect();
        let mut won = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(_) => won += 1,
                Err(MetadataError::TopicExists(_)) => {}
                Err(e) => panic!("unexpected error: {e}"),
            }
        }
        assert_eq!(won, 1, "round {round}");
        assert_eq!(topic(&*stores[0], &name).await.unwrap().partitions.len(), 2);
    }
}

async fn create_partitions_adds_partitions<H: Harness>() {
    let h = H::new().await;
    let store = h.store();
    let t = store.create_topic(&spec("t", 2), NOW).await.unwrap();
    store
        .commit_objects(&[object("o1", vec![chunk(t.id, 1, 5)])], NOW)
        .await
        .unwrap();
    let grown = store.create_partitions("t", 4).await.unwrap();
    assert_eq!(grown.id, t.id);
    assert_eq!(grown.partitions.len(), 4);
    assert_eq!(grown.partitions[1].high_watermark, 5);
    assert_eq!(grown.partitions[3].partition, 3);
    assert_eq!(topic(&*store, "t").await.unwrap(), grown);
    for total in [4, 3, 0] {
        assert!(matches!(
            store.create_partitions("t", total).await,
            Err(MetadataError::InvalidPartitions(_))
        ));
    }
    assert!(matches!(
        store.create_partitions("nope", 5).await,
        Err(MetadataError::UnknownTopic(_))
    ));
    let (results, _) = store
        .commit_objects(&[object("o2", vec![chunk(t.id, 3, 2)])], NOW)
        .await
        .unwrap();
    assert_eq!(results[0].chunks, vec![committed(0)]);
    store.delete_topic("t").await.unwrap();
    assert!(matches!(
        store.create_partitions("t", 8).await,
        Err(MetadataError::UnknownTopic(_))
    ));
}

async fn set_topic_configs_replaces_overrides<H: Harness>() {
    let h = H::new().await;
    let store = h.store();
    let mut s = spec("t", 1);
    s.configs.insert("cleanup.policy".into(), "compact".into());
    store.create_topic(&s, NOW).await.unwrap();
    let replaced = BTreeMap::from([
        ("retention.ms".to_string(), "60000".to_string()),
        ("a \"quoted\" key".to_string(), "ü\n".to_string()),
    ]);
    store.set_topic_configs("t", &replaced).await.unwrap();
    assert_eq!(topic(&*store, "t").await.unwrap().configs, replaced);
    store
        .set_topic_configs("t", &BTreeMap::new())
        .await
        .unwrap();
    assert!(topic(&*store, "t").await.unwrap().configs.is_empty());
    assert!(matches!(
        store.set_topic_configs("nope", &replaced).await,
        Err(MetadataError::UnknownTopic(_))
    ));
    store.delete_topic("t").await.unwrap();
    assert!(matches!(
        store.set_topic_configs("t", &replaced).await,
        Err(MetadataError::UnknownTopic(_))
    ));
}

async fn commit_assigns_contiguous_offsets<H: Harness>() {
    let h = H::new().await;
    let store = h.store();
    let t = store.create_topic(&spec("t", 3), NOW).await.unwrap();
    let u = store.create_topic(&spec("u", 1), NOW).await.unwrap();
    assert_eq!(
        store.commit_objects(&[], NOW).await.unwrap(),
        (vec![], vec![])
    );

    let o1 = object("o1", vec![chunk(t.id, 0, 5), chunk(t.id, 1, 3)]);
    let o2 = object(
        "o2",
        vec![
            chunk(t.id, 0, 2),
            chunk(t.id, 2, 1),
            chunk(t.id, 0, 4),
            chunk(u.id, 0, 7),
        ],
    );
    let (results, marks) = store
        .commit_objects(&[o1.clone(), o2.clone()], NOW + 5)
        .await
        .unwrap();
    assert_eq!(bases(&results[0]), vec![Some(0), Some(0)]);
    assert_eq!(bases(&results[1]), vec![Some(5), Some(0), Some(7), Some(0)]);
    let mut moved: Vec<_> = marks
        .iter()
        .map(|w| {
            (
                w.topic_id,
                w.partition,
                w.high_watermark,
                w.log_start_offset,
            )
        })
        .collect();
    moved.sort();
    let mut want = vec![
        (t.id, 0, 11, 0),
        (t.id, 1, 3, 0),
        (t.id, 2, 1, 0),
        (u.id, 0, 7, 0),
    ];
    want.sort();
    assert_eq!(moved, want);

    let (results, marks) = store
        .commit_objects(&[object("o3", vec![chunk(t.id, 1, 10)])], NOW)
        .await
        .unwrap();
    assert_eq!(results[0].chunks, vec![committed(3)]);
    assert_eq!(marks.len(), 1);
    assert_eq!(marks[0].high_watermark, 13);
    let info = topic(&*store, "t").await.unwrap();
    let hwms: Vec<i64> = info.partitions.iter().map(|p| p.high_watermark).collect();
    assert_eq!(hwms, vec![11, 13, 1]);
    let mut all = store.watermarks().await.unwrap();
    all.sort_by_key(|w| (w.topic_id, w.partition));
    assert_eq!(
        all.iter().map(|w| w.high_watermark).sum::<i64>(),
        11 + 13 + 1 + 7
    );

    let index = store.read_index(t.id, 0, 0, 100).await.unwrap();
    let expect = |base: i64, c: &ChunkCommit, o: &ObjectCommit| IndexEntry {
        base_offset: base,
        last_offset: base + c.offset_count - 1,
        object_key: o.object_key.clone(),
        object_size: o.object_size,
        byte_offset: c.byte_offset,
        byte_len: c.byte_len,
        batch_count: c.batch_count,
        first_timestamp_ms: c.first_timestamp_ms,
        max_timestamp_ms: c.max_timestamp_ms,
        control: None,
    };
    assert_eq!(
        index,
        vec![
            expect(0, &o1.chunks[0], &o1),
            expect(5, &o2.chunks[0], &o2),
            expect(7, &o2.chunks[2], &o2)
        ]
    );
}

async fn recommit_returns_original_offsets<H: Harness>() {
    let h = H::new().await;
    let store = h.store();
    let t = store.create_topic(&spec("t", 2), NOW).await.unwrap();
    let o1 = object(
        "o1",
        vec![chunk(t.id, 0, 5), chunk(t.id, 1, 3), chunk(t.id, 7, 1)],
    );
    let o2 = object("o2", vec![chunk(t.id, 0, 2)]);
    let (first, _) = store
        .commit_objects(std::slice::from_ref(&o1), NOW)
        .await
        .unwrap();

    // A lost reply: the same object again, alone, then mixed with new work and repeated.
    let (again, marks) = h
        .another()
        .await
        .commit_objects(std::slice::from_ref(&o1), NOW + 1)
        .await
        .unwrap();
    assert_eq!(again, first);
    assert!(marks.is_empty());
    assert_eq!(hwm(&*store, "t", 0).await, 5);
    let (mixed, marks) = store
        .commit_objects(&[o2.clone(), o1.clone(), o2.clone()], NOW + 2)
        .await
        .unwrap();
    assert_eq!(mixed[1], first[0]);
    assert_eq!(mixed[0].chunks, vec![committed(5)]);
    assert_eq!(mixed[2], mixed[0]);
    assert_eq!(marks.len(), 1);
    assert_eq!((marks[0].partition, marks[0].high_watermark), (0, 7));
    assert_eq!(store.read_index(t.id, 0, 0, 100).await.unwrap().len(), 2);
    // Outcomes are replayed even after the partition has moved on.
    let (late, _) = store
        .commit_objects(&[o2.clone(), o1], NOW + 3)
        .await
        .unwrap();
    assert_eq!(late, vec![mixed[0].clone(), first[0].clone()]);
    assert_eq!(hwm(&*store, "t", 0).await, 7);
}

async fn unknown_or_deleted_partitions<H: Harness>() {
    let h = H::new().await;
    let store = h.store();
    let t = store.create_topic(&spec("t", 2), NOW).await.unwrap();
    let d = store.create_topic(&spec("d", 1), NOW).await.unwrap();
    store.delete_topic("d").await.unwrap();
    let o = object(
        "o",
        vec![
            chunk(t.id, 0, 1),
            chunk(t.id, 5, 1),
            chunk(Uuid::new_v4(), 0, 1),
            chunk(d.id, 0, 1),
            chunk(t.id, -1, 1),
            chunk(t.id, 1, 2),
        ],
    );
    let (results, marks) = store
        .commit_objects(std::slice::from_ref(&o), NOW)
        .await
        .unwrap();
    assert_eq!(
        bases(&results[0]),
        vec![Some(0), None, None, None, None, Some(0)]
    );
    assert_eq!(marks.len(), 2);
    assert!(marks.iter().all(|w| w.topic_id == t.id));
    // The outcome is part of the record: partition 5 appearing later changes nothing.
    store.create_partitions("t", 6).await.unwrap();
    let (again, _) = store.commit_objects(&[o], NOW).await.unwrap();
    assert_eq!(again, results);
    // An object whose every chunk is refused is still recorded, and replays the same way.
    let lost = object("lost", vec![chunk(d.id, 0, 3)]);
    let (r1, m1) = store
        .commit_objects(std::slice::from_ref(&lost), NOW)
        .await
        .unwrap();
    let (r2, _) = store.commit_objects(&[lost], NOW).await.unwrap();
    assert_eq!(r1[0].chunks, vec![ChunkOutcome::UnknownTopicOrPartition]);
    assert!(m1.is_empty());
    assert_eq!(r1, r2);
    assert!(store.read_index(d.id, 0, 0, 10).await.unwrap().is_empty());
}

async fn deleted_topic_vanishes<H: Harness>() {
    let h = H::new().await;
    let store = h.store();
    let t = store.create_topic(&spec("t", 1), NOW).await.unwrap();
    let keep = store.create_topic(&spec("keep", 1), NOW).await.unwrap();
    store
        .commit_objects(
            &[object("o", vec![chunk(t.id, 0, 3), chunk(keep.id, 0, 4)])],
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(store.read_index(t.id, 0, 0, 10).await.unwrap().len(), 1);
    store.delete_topic("t").await.unwrap();
    assert!(store.read_index(t.id, 0, 0, 10).await.unwrap().is_empty());
    assert_eq!(store.find_by_timestamp(t.id, 0, 0).await.unwrap(), None);
    let marks = store.watermarks().await.unwrap();
    assert_eq!(marks.len(), 1);
    assert_eq!((marks[0].topic_id, marks[0].high_watermark), (keep.id, 4));
    assert_eq!(store.read_index(keep.id, 0, 0, 10).await.unwrap().len(), 1);
    let (r, _) = store
        .commit_objects(&[object("o2", vec![chunk(t.id, 0, 3)])], NOW)
        .await
        .unwrap();
    assert_eq!(r[0].chunks, vec![ChunkOutcome::UnknownTopicOrPartition]);
}

async fn read_index_windows_and_limits<H: Harness>() {
    let h = H::new().await;
    let store = h.store();
    let t = store.create_topic(&spec("t", 2), NOW).await.unwrap();
    let objects: Vec<_> = (0..10)
        .map(|i| object(&format!("o{i}"), vec![chunk(t.id, 0, 10)]))
        .collect();
    store.commit_objects(&objects, NOW).await.unwrap();
    let base_of =
        |entries: Vec<IndexEntry>| entries.iter().map(|e| e.base_offset).collect::<Vec<_>>();
    let all = store.read_index(t.id, 0, 0, 100).await.unwrap();
    assert_eq!(
        base_of(all.clone()),
        (0..10).map(|i| i * 10).collect::<Vec<_>>()
    );
    assert!(all
        .windows(2)
        .all(|w| w[0].last_offset + 1 == w[1].base_offset));
    assert_eq!(all[9].last_offset, 99);
    assert_eq!(all[3].object_key, "o3");
    assert_eq!(
        base_of(store.read_index(t.id, 0, 15, 2).await.unwrap()),
        vec![10, 20]
    );
    assert_eq!(
        base_of(store.read_index(t.id, 0, 20, 2).await.unwrap()),
        vec![20, 30]
    );
    assert_eq!(
        base_of(store.read_index(t.id, 0, 19, 1).await.unwrap()),
        vec![10]
    );
    assert_eq!(
        base_of(store.read_index(t.id, 0, 99, 5).await.unwrap()),
        vec![90]
    );
    assert_eq!(
        base_of(store.read_index(t.id, 0, -5, 2).await.unwrap()),
        vec![0, 10]
    );
    assert!(store.read_index(t.id, 0, 100, 5).await.unwrap().is_empty());
    assert!(store.read_index(t.id, 0, 0, 0).await.unwrap().is_empty());
    assert!(store.read_index(t.id, 1, 0, 5).await.unwrap().is_empty());
    assert!(store.read_index(t.id, 7, 0, 5).await.unwrap().is_empty());
    assert!(store
        .read_index(Uuid::new_v4(), 0, 0, 5)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store.read_index(t.id, 0, 0, u32::MAX).await.unwrap().len(),
        10
    );
}

async fn find_by_timestamp_finds_first_entry<H: Harness>() {
    let h = H::new().await;
    let store = h.store();
    let t = store.create_topic(&spec("t", 2), NOW).await.unwrap();
    // Producer timestamps need not increase with offsets.
    let objects: Vec<_> = [100, 300, 200, 400]
        .iter()
        .enumerate()
        .map(|(i, &max_ts)| {
            let mut c = chunk(t.id, 0, 2);
            c.first_timestamp_ms = max_ts - 50;
            c.max_timestamp_ms = max_ts;
            object(&format!("o{i}"), vec![c])
        })
        .collect();
    store.commit_objects(&objects, NOW).await.unwrap();
    let found = |ts| {
        let store = store.clone();
        async move {
            store
                .find_by_timestamp(t.id, 0, ts)
                .await
                .unwrap()
                .map(|e| e.base_offset)
        }
    };
    assert_eq!(found(i64::MIN).await, Some(0));
    assert_eq!(found(100).await, Some(0));
    assert_eq!(found(101).await, Some(2));
    assert_eq!(found(250).await, Some(2));
    assert_eq!(found(301).await, Some(6));
    assert_eq!(found(400).await, Some(6));
    assert_eq!(found(401).await, None);
    let entry = store
        .find_by_timestamp(t.id, 0, 350)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            entry.object_key.as_str(),
            entry.first_timestamp_ms,
            entry.last_offset
        ),
        ("o3", 350, 7)
    );
    assert_eq!(store.find_by_timestamp(t.id, 1, 0).await.unwrap(), None);
}

async fn data_survives_reopen<H: Harness>() {
    let mut h = H::new().await;
    let store = h.store();
    let mut s = spec("t", 2);
    s.configs.insert("retention.ms".into(), "1".into());
    let t = store.create_topic(&s, NOW).await.unwrap();
    store.create_topic(&spec("gone", 1), NOW).await.unwrap();
    store.delete_topic("gone").await.unwrap();
    let o1 = object("o1", vec![chunk(t.id, 0, 5), chunk(t.id, 1, 1)]);
    let (first, _) = store
        .commit_objects(std::slice::from_ref(&o1), NOW)
        .await
        .unwrap();
    let topics = store.list_topics().await.unwrap();
    let index = store.read_index(t.id, 0, 0, 10).await.unwrap();
    let id = store.cluster_id().await.unwrap();
    drop(store);

    h.reopen().await;
    let store = h.store();
    assert_eq!(store.list_topics().await.unwrap(), topics);
    assert_eq!(store.read_index(t.id, 0, 0, 10).await.unwrap(), index);
    assert_eq!(store.cluster_id().await.unwrap(), id);
    let (again, _) = store.commit_objects(&[o1], NOW).await.unwrap();
    assert_eq!(again, first);
    let (next, _) = store
        .commit_objects(&[object("o2", vec![chunk(t.id, 0, 1)])], NOW)
        .await
        .unwrap();
    assert_eq!(next[0].chunks, vec![committed(5)]);
    store.create_topic(&spec("gone", 1), NOW).await.unwrap();
}

async fn concurrent_commits_are_contiguous<H: Harness>() {
    const TASKS: usize = 8;
    const OBJECTS_PER_TASK: usize = 200;
    const PARTITIONS: i32 = 4;
    let h = H::new().await;
    let stores = [h.store(), h.another().await];
    let t = stores[0]
        .create_topic(&spec("t", PARTITIONS), NOW)
        .await
        .unwrap();

    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let store = stores[task % 2].clone();
            tokio::spawn(async move {
                let mut assigned = Vec::new();
                let mut i = 0;
                while i < OBJECTS_PER_TASK {
                    // Groups of 1..=4 objects, each object touching 3 of the 4 partitions in a
                    // task-dependent order, so lock orders would collide without sorting.
                    let group = (i % 4 + 1).min(OBJECTS_PER_TASK - i);
                    let objects: Vec<_> = (i..i + group)
                        .map(|n| {
                            let chunks = (0..3)
                                .map(|k| {
                                    let partition =
                                        ((task + n + k * 3) % PARTITIONS as usize) as i32;
                                    chunk(t.id, partition, (n % 5 + 1) as i64)
                                })
                                .collect();
                            object(&format!("task{task}-obj{n}"), chunks)
                        })
                        .collect();
                    let (results, _) = store.commit_objects(&objects, NOW).await.unwrap();
                    for (o, r) in objects.iter().zip(&results) {
                        for (c, outcome) in o.chunks.iter().zip(&r.chunks) {
                            let ChunkOutcome::Committed { base_offset, .. } = outcome else {
                                panic!("chunk refused: {outcome:?}");
                            };
                            assigned.push((c.partition, *base_offset, c.offset_count));
                        }
                    }
                    i += group;
                }
                assigned
            })
        })
        .collect();
    let mut per_partition: HashMap<i32, Vec<(i64, i64)>> = HashMap::new();
    for task in tasks {
        for (partition, base, count) in task.await.unwrap() {
            per_partition
                .entry(partition)
                .or_default()
                .push((base, count));
        }
    }
    let info = topic(&*stores[0], "t").await.unwrap();
    for p in 0..PARTITIONS {
        let mut runs = per_partition.remove(&p).unwrap_or_default();
        runs.sort();
        let mut next = 0;
        for &(base, count) in &runs {
            assert_eq!(base, next, "partition {p}: gap or overlap at {base}");
            next = base + count;
        }
        assert_eq!(
            info.partitions[p as usize].high_watermark, next,
            "partition {p}"
        );
        let index = stores[1].read_index(t.id, p, 0, u32::MAX).await.unwrap();
        let indexed: Vec<(i64, i64)> = index
            .iter()
            .map(|e| (e.base_offset, e.last_offset - e.base_offset + 1))
            .collect();
        assert_eq!(
            indexed, runs,
            "partition {p}: index differs from the assigned offsets"
        );
    }
}

#[tokio::test]
async fn sqlite_in_memory_store_works() {
    let store = SqliteStore::open_in_memory().await.unwrap();
    let t = store.create_topic(&spec("t", 1), NOW).await.unwrap();
    let (r, _) = store
        .commit_objects(&[object("o", vec![chunk(t.id, 0, 3)])], NOW)
        .await
        .unwrap();
    assert_eq!(r[0].chunks, vec![committed(0)]);
    assert_eq!(store.read_index(t.id, 0, 0, 10).await.unwrap().len(), 1);
    assert_eq!(store.cluster_id().await.unwrap().len(), 22);
}

#[tokio::test]
async fn malformed_chunks_are_rejected() {
    let store = SqliteStore::open_in_memory().await.unwrap();
    let t = store.create_topic(&spec("t", 1), NOW).await.unwrap();
    for bad in [
        chunk(t.id, 0, 0),
        ChunkCommit {
            byte_len: -1,
            ..chunk(t.id, 0, 1)
        },
    ] {
        let err = store
            .commit_objects(&[object("o", vec![bad])], NOW)
            .await
            .unwrap_err();
        assert!(matches!(err, MetadataError::InvalidRequest(_)), "{err}");
    }
    assert_eq!(store.watermarks().await.unwrap()[0].high_watermark, 0);
}

/// Two processes migrating one empty database at once: the advisory lock makes one wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_concurrent_first_start() {
    let pg = TestPostgres::start().await;
    let (a, b) = tokio::join!(
        PostgresStore::connect(pg.url()),
        PostgresStore::connect(pg.url())
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.cluster_id().await.unwrap(), b.cluster_id().await.unwrap());
    a.close().await;
    b.close().await;
}

/// Object commits per second on PostgreSQL for groups of 1, 10 and 100 objects of 4 chunks.
/// Prints only; timing depends on the machine. Run with
/// `cargo test -p floe-metadata --release pg_commit_throughput -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn pg_commit_throughput() {
    let pg = TestPostgres::start().await;
    let store = Arc::new(PostgresStore::connect(pg.url()).await.unwrap());
    let mut topics = Vec::new();
    for i in 0..4 {
        topics.push(
            store
                .create_topic(&spec(&format!("bench-{i}"), 16), NOW)
                .await
                .unwrap()
                .id,
        );
    }
    for callers in [1usize, 4] {
        for group in [1usize, 10, 100] {
            let total_objects = (group * 300).clamp(1_000, 20_000);
            let calls_per_caller = total_objects / group / callers;
            let started = Instant::now();
            let tasks: Vec<_> = (0..callers)
                .map(|caller| {
                    let store = store.clone();
                    let topics = topics.clone();
                    tokio::spawn(async move {
                        for call in 0..calls_per_caller {
                            let objects: Vec<_> = (0..group)
                                .map(|n| {
                                    let chunks = (0..4)
                                        .map(|k| {
                                            let x = call * group + n + k;
                                            chunk(topics[x % 4], ((x / 4) % 16) as i32, 10)
                                        })
                                        .collect();
                                    object(
                                        &format!(
                                            "c{callers}-g{group}-{caller}-{call}-{n}-{}",
                                            Uuid::new_v4()
                                        ),
                                        chunks,
                                    )
                                })
                                .collect();
                            store.commit_objects(&objects, NOW).await.unwrap();
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await.unwrap();
            }
            let objects = (calls_per_caller * callers * group) as f64;
            let secs = started.elapsed().as_secs_f64();
            println!(
                "pg commit: {callers} caller(s), {group:>3} objects x 4 chunks per call: \
                 {:>8.0} objects/s, {:>6.0} calls/s",
                objects / secs,
                objects / secs / group as f64
            );
        }
    }
}

fn offset(topic_id: TopicId, partition: i32, offset: i64, ts: i64) -> CommittedOffset {
    CommittedOffset {
        topic_id,
        partition,
        offset,
        leader_epoch: Some(0),
        metadata: Some(format!("m{offset}")),
        commit_timestamp_ms: ts,
    }
}

async fn group_offsets_upsert_survive_reopen_and_hide_deleted_topics<H: Harness>() {
    let mut h = H::new().await;
    let store = h.store();
    let t = store.create_topic(&spec("t", 2), NOW).await.unwrap();
    let gone = store.create_topic(&spec("gone", 1), NOW).await.unwrap();
    assert!(store.fetch_offsets("g").await.unwrap().is_empty());
    store
        .commit_offsets("g", &[offset(t.id, 0, 5, NOW), offset(gone.id, 0, 1, NOW)])
        .await
        .unwrap();
    // A later commit replaces the partition's offset and adds another partition.
    store
        .commit_offsets(
            "g",
            &[offset(t.id, 0, 9, NOW + 1), offset(t.id, 1, 3, NOW + 1)],
        )
        .await
        .unwrap();
    store
        .commit_offsets("other", &[offset(t.id, 0, 1, NOW)])
        .await
        .unwrap();
    store.delete_topic("gone").await.unwrap();
    let want = vec![offset(t.id, 0, 9, NOW + 1), offset(t.id, 1, 3, NOW + 1)];
    assert_eq!(store.fetch_offsets("g").await.unwrap(), want);
    drop(store);
    h.reopen().await;
    let store = h.store();
    assert_eq!(store.fetch_offsets("g").await.unwrap(), want, "durable");
    assert_eq!(
        store.fetch_offsets("other").await.unwrap(),
        vec![offset(t.id, 0, 1, NOW)]
    );
}

async fn find_max_timestamp_finds_the_largest_lowest_offset<H: Harness>() {
    let h = H::new().await;
    let store = h.store();
    let t = store.create_topic(&spec("t", 2), NOW).await.unwrap();
    assert_eq!(store.find_max_timestamp(t.id, 0).await.unwrap(), None);
    // chunk() stamps max_timestamp_ms = NOW + offset_count: 5, 9, 3, 9 offsets.
    for (i, n) in [5, 9, 3, 9].into_iter().enumerate() {
        store
            .commit_objects(&[object(&format!("o{i}"), vec![chunk(t.id, 0, n)])], NOW)
            .await
            .unwrap();
    }
    let e = store.find_max_timestamp(t.id, 0).await.unwrap().unwrap();
    assert_eq!(
        (e.base_offset, e.max_timestamp_ms),
        (5, NOW + 9),
        "ties go to the lowest offset"
    );
    assert_eq!(store.find_max_timestamp(t.id, 1).await.unwrap(), None);
}

fn group_record(members: usize, generation: i32) -> GroupRecord {
    GroupRecord {
        group_id: "g".into(),
        protocol_type: Some("consumer".into()),
        protocol_name: Some("range".into()),
        state: if members == 0 { "Empty" } else { "Stable" }.into(),
        generation_id: generation,
        leader: (members > 0).then(|| "m0".into()),
        group_type: "consumer".into(),
        assignment_epoch: generation - 1,
        state_since_ms: NOW + i64::from(generation),
        members: (0..members)
            .map(|i| MemberRecord {
                member_id: format!("m{i}"),
                group_instance_id: (i == 0).then(|| "static-0".into()),
                client_id: "c".into(),
                client_host: "/10.0.0.1".into(),
                session_timeout_ms: 10_000,
                rebalance_timeout_ms: 30_000,
                protocols: vec![GroupProtocol {
                    name: "range".into(),
                    metadata: vec![0, 1, 2, i as u8],
                }],
                assignment: vec![9, i as u8],
                rack_id: (i == 1).then(|| "use1-az1".into()),
                member_epoch: generation,
                subscription: Some(r#"{"names":["t"]}"#.into()),
                assigned_partitions: (i == 0).then(|| "{}".into()),
            })
            .collect(),
    }
}

async fn groups_save_load_delete_and_expire<H: Harness>() {
    let mut h = H::new().await;
    let store = h.store();
    let t = store.create_topic(&spec("t", 2), NOW).await.unwrap();
    // A group that only has offsets loads as an Empty group without a protocol.
    store
        .commit_offsets("simple", &[offset(t.id, 0, 5, NOW)])
        .await
        .unwrap();
    store.save_group(&group_record(3, 1)).await.unwrap();
    // A later save replaces the members.
    store.save_group(&group_record(2, 2)).await.unwrap();
    store
        .commit_offsets("g", &[offset(t.id, 0, 7, NOW), offset(t.id, 1, 8, NOW + 5)])
        .await
        .unwrap();
    drop(store);
    h.reopen().await;
    let store = h.store();
    let loaded = store.load_groups().await.unwrap();
    assert_eq!(loaded.len(), 2);
    assert_eq!(loaded[0], group_record(2, 2), "durable, members and all");
    assert_eq!(
        (
            loaded[1].group_id.as_str(),
            loaded[1].protocol_type.as_ref(),
            loaded[1].members.len()
        ),
        ("simple", None, 0)
    );
    // Expiry removes offsets committed before the cut and reports what is left.
    assert_eq!(store.expire_offsets("g", NOW + 1).await.unwrap(), 1);
    assert_eq!(
        store.fetch_offsets("g").await.unwrap(),
        vec![offset(t.id, 1, 8, NOW + 5)]
    );
    store.delete_offsets("g", &[(t.id, 1)]).await.unwrap();
    assert!(store.fetch_offsets("g").await.unwrap().is_empty());
    store.delete_group("g").await.unwrap();
    let left: Vec<String> = store
        .load_groups()
        .await
        .unwrap()
        .into_iter()
        .map(|g| g.group_id)
        .collect();
    assert_eq!(left, vec!["simple".to_string()]);
    // Offsets of a deleted topic expire whatever their age.
    store.delete_topic("t").await.unwrap();
    assert_eq!(store.expire_offsets("simple", 0).await.unwrap(), 0);
}

async fn consumer_lag_is_high_watermark_minus_committed<H: Harness>() {
    let h = H::new().await;
    let store = h.store();
    let t = store.create_topic(&spec("t", 2), NOW).await.unwrap();
    store
        .commit_objects(
            &[object("o1", vec![chunk(t.id, 0, 10), chunk(t.id, 1, 4)])],
            NOW,
        )
        .await
        .unwrap();
    store
        .commit_offsets("g", &[offset(t.id, 0, 3, NOW), offset(t.id, 1, 4, NOW)])
        .await
        .unwrap();
    assert_eq!(
        store.consumer_lag().await.unwrap(),
        vec![
            ("g".into(), "t".into(), 0, 7),
            ("g".into(), "t".into(), 1, 0)
        ]
    );
    store.delete_topic("t").await.unwrap();
    assert!(store.consumer_lag().await.unwrap().is_empty());
}

async fn a_partition_named_twice_keeps_its_last_offset<H: Harness>() {
    let h = H::new().await;
    let store = h.store();
    let t = store.create_topic(&spec("t", 1), NOW).await.unwrap();
    store
        .commit_offsets("g", &[offset(t.id, 0, 5, NOW), offset(t.id, 0, 8, NOW)])
        .await
        .unwrap();
    assert_eq!(
        store.fetch_offsets("g").await.unwrap(),
        vec![offset(t.id, 0, 8, NOW)]
    );
}

fn idempotent(
    topic_id: TopicId,
    offset_count: i64,
    pid: i64,
    epoch: i16,
    first: i32,
) -> ChunkCommit {
    ChunkCommit {
        producer: Some(ProducerBatch {
            producer_id: pid,
            producer_epoch: epoch,
            first_sequence: first,
            last_sequence: first + offset_count as i32 - 1,
            transactional: false,
        }),
        ..chunk(topic_id, 0, offset_count)
    }
}

async fn idempotent_producers_are_deduplicated_and_fenced<H: Harness>() {
    let mut h = H::new().await;
    let store = h.store();
    let t = store.create_topic(&spec("t", 1), NOW).await.unwrap();
    let pid = store.new_producer_id(NOW).await.unwrap();
    let other = store.new_producer_id(NOW).await.unwrap();
    assert_ne!(pid, other, "producer ids are unique");
    let commit = |key: &str, chunks: Vec<ChunkCommit>| {
        let store = store.clone();
        let o = object(key, chunks);
        async move {
            store
                .commit_objects(&[o], NOW)
                .await
                .unwrap()
                .0
                .remove(0)
                .chunks
        }
    };
    // seq 0-2, then a plain (non-idempotent) chunk, then seq 3-4.
    let r = commit(
        "o1",
        vec![idempotent(t.id, 3, pid, 0, 0), chunk(t.id, 0, 2)],
    )
    .await;
    assert_eq!(r[0], committed(0));
    let r = commit("o2", vec![idempotent(t.id, 2, pid, 0, 3)]).await;
    assert_eq!(r, vec![committed(5)]);
    // A retry of seq 0-2 in a new object (the first object's reply was lost and the agent
    // re-uploaded): the original's offsets, nothing new.
    let r = commit("o3", vec![idempotent(t.id, 3, pid, 0, 0)]).await;
    assert_eq!(
        r,
        vec![ChunkOutcome::Duplicate {
            base_offset: 0,
            log_start_offset: 0
        }]
    );
    assert_eq!(hwm(store.as_ref(), "t", 0).await, 7);
    // A gap, a producer without state starting mid-way (accepted, as in Kafka: KIP-360), and
    // a stale epoch after a bump.
    let r = commit("o4", vec![idempotent(t.id, 1, pid, 0, 9)]).await;
    assert_eq!(
        r,
        vec![ChunkOutcome::Rejected(
            ProducerRejection::OutOfOrderSequence
        )]
    );
    let r = commit("o5", vec![idempotent(t.id, 1, other, 0, 4)]).await;
    assert_eq!(r, vec![committed(7)]);
    let r = commit("o6", vec![idempotent(t.id, 1, pid, 1, 0)]).await;
    assert_eq!(r, vec![committed(8)]);
    let r = commit("o7", vec![idempotent(t.id, 1, pid, 0, 5)]).await;
    assert_eq!(
        r,
        vec![ChunkOutcome::Rejected(
            ProducerRejection::InvalidProducerEpoch
        )]
    );
    // Two appends of one producer in one object are checked in order.
    let r = commit(
        "o8",
        vec![
            idempotent(t.id, 1, other, 0, 5),
            idempotent(t.id, 1, other, 0, 6),
        ],
    )
    .await;
    assert_eq!(r, vec![committed(9), committed(10)]);
    let r = commit("o8b", vec![idempotent(t.id, 1, other, 0, 9)]).await;
    assert_eq!(
        r,
        vec![ChunkOutcome::Rejected(
            ProducerRejection::OutOfOrderSequence
        )]
    );
    // The state is durable, and a retried object key still answers its recorded outcomes.
    drop(store);
    h.reopen().await;
    let store = h.store();
    let r = store
        .commit_objects(&[object("o3", vec![idempotent(t.id, 3, pid, 0, 0)])], NOW)
        .await
        .unwrap();
    assert_eq!(
        r.0[0].chunks,
        vec![ChunkOutcome::Duplicate {
            base_offset: 0,
            log_start_offset: 0
        }]
    );
    let r = store
        .commit_objects(&[object("o9", vec![idempotent(t.id, 1, pid, 1, 1)])], NOW)
        .await
        .unwrap();
    assert_eq!(r.0[0].chunks, vec![committed(11)]);
    let r = store
        .commit_objects(&[object("o10", vec![idempotent(t.id, 1, pid, 1, 1)])], NOW)
        .await
        .unwrap();
    assert_eq!(
        r.0[0].chunks,
        vec![ChunkOutcome::Duplicate {
            base_offset: 11,
            log_start_offset: 0
        }]
    );
}

async fn idle_producers_expire<H: Harness>() {
    let h = H::new().await;
    let store = h.store();
    let t = store.create_topic(&spec("t", 1), NOW).await.unwrap();
    let pid = store.new_producer_id(NOW).await.unwrap();
    let commit = |key: &str, first: i32, now: i64| {
        let store = store.clone();
        let o = object(key, vec![idempotent(t.id, 1, pid, 0, first)]);
        async move {
            store
                .commit_objects(&[o], now)
                .await
                .unwrap()
                .0
                .remove(0)
                .chunks
        }
    };
    assert_eq!(commit("o1", 0, NOW).await, vec![committed(0)]);
    // Not idle long enough: kept, so a retry is still a duplicate.
    assert_eq!(store.expire_producers(NOW).await.unwrap(), 0);
    assert!(matches!(
        commit("o2", 0, NOW).await[0],
        ChunkOutcome::Duplicate { .. }
    ));
    // Idle past the cut: forgotten; the producer may then go on at any sequence (KIP-360).
    assert_eq!(store.expire_producers(NOW + 1).await.unwrap(), 1);
    assert_eq!(commit("o3", 7, NOW + 2).await, vec![committed(1)]);
}

/// Four objects of ten offsets each in partition 0 of `t`, the i-th with timestamps
/// NOW + 1000 i ..= NOW + 1000 i + 10 and 1000 bytes.
async fn four_entries(store: &dyn MetadataStore) -> TopicId {
    let t = store.create_topic(&spec("t", 1), NOW).await.unwrap();
    for i in 0..4i64 {
        let mut c = chunk(t.id, 0, 10);
        c.first_timestamp_ms = NOW + 1000 * i;
        c.max_timestamp_ms = NOW + 1000 * i + 10;
        store
            .commit_objects(&[object(&format!("o{i}"), vec![c])], NOW)
            .await
            .unwrap();
    }
    t.id
}

async fn log_start_moves_by_delete_records_and_retention<H: Harness>() {
    let h = H::new().await;
    let store = h.store();
    let id = four_entries(store.as_ref()).await;
    let start = |target| {
        let store = store.clone();
        async move { store.advance_log_start(id, 0, target).await }
    };
    // DeleteRecords: inside an entry, which stays (its first offsets are below the start).
    let m = start(LogStartTarget::Offset(15)).await.unwrap();
    assert_eq!((m.log_start_offset, m.high_watermark), (15, 40));
    let entries = store.read_index(id, 0, 0, 10).await.unwrap();
    assert_eq!(
        entries.iter().map(|e| e.base_offset).collect::<Vec<_>>(),
        vec![10, 20, 30]
    );
    for bad in [41, -2] {
        assert!(matches!(
            start(LogStartTarget::Offset(bad)).await,
            Err(MetadataError::OffsetOutOfRange(_))
        ));
    }
    // Never backwards.
    assert_eq!(
        start(LogStartTarget::Offset(5))
            .await
            .unwrap()
            .log_start_offset,
        15
    );
    let retention = |expire_before_ms, max_bytes| LogStartTarget::Retention {
        expire_before_ms,
        max_bytes,
    };
    // Time: the first entry with a timestamp at or after the cut-off stays.
    let m = start(retention(Some(NOW + 2005), None)).await.unwrap();
    assert_eq!(m.log_start_offset, 20);
    // Bytes, Kafka's rule: old entries go only while at least the limit remains (1500
    // bytes keep two entries of 1000).
    assert_eq!(
        start(retention(None, Some(1500)))
            .await
            .unwrap()
            .log_start_offset,
        20
    );
    // Bytes: 1000 bytes keep the newest entry only; 500 still keep it.
    assert_eq!(
        start(retention(None, Some(1000)))
            .await
            .unwrap()
            .log_start_offset,
        30
    );
    assert_eq!(
        start(retention(None, Some(500)))
            .await
            .unwrap()
            .log_start_offset,
        30
    );
    assert_eq!(
        start(retention(Some(NOW), Some(1_000_000)))
            .await
            .unwrap()
            .log_start_offset,
        30
    );
    // Everything expired: the log empties up to the high watermark.
    let m = start(retention(Some(NOW + 10_000), None)).await.unwrap();
    assert_eq!((m.log_start_offset, m.high_watermark), (40, 40));
    assert!(store.read_index(id, 0, 0, 10).await.unwrap().is_empty());
    assert_eq!(
        start(LogStartTarget::Offset(-1))
            .await
            .unwrap()
            .log_start_offset,
        40
    );
    let marks = store.watermarks().await.unwrap();
    assert_eq!(marks[0].log_start_offset, 40);
    // Commits go on after the log start.
    let (r, _) = store
        .commit_objects(&[object("o4", vec![chunk(id, 0, 5)])], NOW)
        .await
        .unwrap();
    assert_eq!(bases(&r[0]), vec![Some(40)]);
    assert!(matches!(
        store
            .advance_log_start(id, 1, LogStartTarget::Offset(0))
            .await,
        Err(MetadataError::UnknownTopicId(_))
    ));
    store.delete_topic("t").await.unwrap();
    assert!(matches!(
        start(LogStartTarget::Offset(-1)).await,
        Err(MetadataError::UnknownTopicId(_))
    ));
}

async fn unreferenced_objects_are_collected_after_the_grace_period<H: Harness>() {
    let h = H::new().await;
    let store = h.store();
    let t = store.create_topic(&spec("t", 2), NOW).await.unwrap();
    store
        .commit_objects(
            &[
                object("a", vec![chunk(t.id, 0, 3), chunk(t.id, 1, 3)]),
                object("b", vec![chunk(t.id, 0, 3)]),
            ],
            NOW,
        )
        .await
        .unwrap();
    let keys =
        |v: Vec<crate::types::CollectableObject>| v.into_iter().map(|o| o.key).collect::<Vec<_>>();
    // Partition 0 emptied: "b" is referenced by nothing, "a" still by partition 1.
    store
        .advance_log_start(t.id, 0, LogStartTarget::Offset(-1))
        .await
        .unwrap();
    // Too young to be marked; then marked but within the grace period; then collectable.
    assert!(store
        .collectable_objects(NOW + 10, 100, 10)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .collectable_objects(NOW + 200, 100, 10)
        .await
        .unwrap()
        .is_empty());
    let got = store.collectable_objects(NOW + 300, 100, 10).await.unwrap();
    assert_eq!(got[0].size, 364);
    assert_eq!(keys(got), vec!["b".to_string()]);
    let all = ["a".to_string(), "b".to_string(), "x".to_string()];
    let mut known = store.known_objects(&all).await.unwrap();
    known.sort();
    assert_eq!(known, vec!["a".to_string(), "b".to_string()]);
    // Live objects are never forgotten.
    assert_eq!(store.forget_objects(&all).await.unwrap(), 1);
    assert_eq!(
        store.known_objects(&all).await.unwrap(),
        vec!["a".to_string()]
    );
    // A deleted topic, once purged, leaves its objects unreferenced.
    store.delete_topic("t").await.unwrap();
    assert_eq!(store.purge_deleted_topics(0).await.unwrap(), 0);
    assert_eq!(store.purge_deleted_topics(i64::MAX).await.unwrap(), 1);
    assert!(store
        .collectable_objects(NOW + 400, 100, 10)
        .await
        .unwrap()
        .is_empty());
    let got = store.collectable_objects(NOW + 600, 100, 10).await.unwrap();
    assert_eq!(keys(got), vec!["a".to_string()]);
    // The name is free and nothing of the old topic shows.
    assert!(store.list_topics().await.unwrap().is_empty());
    store.create_topic(&spec("t", 1), NOW).await.unwrap();
    assert_eq!(hwm(store.as_ref(), "t", 0).await, 0);
}

async fn leases_are_exclusive_until_they_expire<H: Harness>() {
    let h = H::new().await;
    let store = h.store();
    let other = h.another().await;
    assert!(store.try_lease("gc", "a", NOW, 1000).await.unwrap());
    assert!(!other.try_lease("gc", "b", NOW + 500, 1000).await.unwrap());
    // Renewed by its holder: now until NOW + 1900.
    assert!(store.try_lease("gc", "a", NOW + 900, 1000).await.unwrap());
    assert!(!other.try_lease("gc", "b", NOW + 1800, 1000).await.unwrap());
    assert!(other.try_lease("gc", "b", NOW + 2000, 1000).await.unwrap());
    assert!(!store.try_lease("gc", "a", NOW + 2100, 1000).await.unwrap());
    assert!(store
        .try_lease("other", "a", NOW + 2100, 1000)
        .await
        .unwrap());
}

async fn segments_replace_index_entries_only_if_unchanged<H: Harness>() {
    let h = H::new().await;
    let store = h.store();
    let t = store.create_topic(&spec("t", 1), NOW).await.unwrap();
    for i in 0..3 {
        store
            .commit_objects(&[object(&format!("o{i}"), vec![chunk(t.id, 0, 5)])], NOW)
            .await
            .unwrap();
    }
    let row = |base: i64, last: i64, at: i64| IndexEntry {
        base_offset: base,
        last_offset: last,
        object_key: "seg".into(),
        object_size: 2000,
        byte_offset: at,
        byte_len: 500,
        batch_count: 1,
        first_timestamp_ms: NOW,
        max_timestamp_ms: NOW + 5,
        control: None,
    };
    let swap = SegmentSwap {
        topic_id: t.id,
        partition: 0,
        replaced: vec![(0, 4, "o0".into()), (5, 9, "o1".into())],
        object_key: "seg".into(),
        object_size: 2000,
        rows: vec![row(0, 4, 0), row(5, 9, 500)],
    };
    assert!(store.swap_segment(&swap, NOW).await.unwrap());
    let entries = store.read_index(t.id, 0, 0, 10).await.unwrap();
    let keys: Vec<_> = entries
        .iter()
        .map(|e| (e.base_offset, e.object_key.as_str(), e.object_size))
        .collect();
    assert_eq!(
        keys,
        vec![(0, "seg", 2000), (5, "seg", 2000), (10, "o2", 564)]
    );
    // The same swap again: the entries it names are gone, nothing changes.
    let mut again = swap.clone();
    again.object_key = "seg2".into();
    for r in &mut again.rows {
        r.object_key = "seg2".into();
    }
    assert!(!store.swap_segment(&again, NOW).await.unwrap());
    assert_eq!(
        store.known_objects(&["seg2".to_string()]).await.unwrap(),
        Vec::<String>::new()
    );
    // Rows that do not cover the replaced offsets are refused.
    let mut bad = swap.clone();
    bad.rows.pop();
    assert!(matches!(
        store.swap_segment(&bad, NOW).await,
        Err(MetadataError::InvalidRequest(_))
    ));
    // The replaced objects are now unreferenced.
    store
        .collectable_objects(NOW + 1000, 100, 10)
        .await
        .unwrap();
    let mut gone: Vec<_> = store
        .collectable_objects(NOW + 2000, 100, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    gone.sort();
    assert_eq!(gone, vec!["o0".to_string(), "o1".to_string()]);
    // After DeleteRecords removed an entry, a swap naming it does nothing.
    store
        .advance_log_start(t.id, 0, LogStartTarget::Offset(12))
        .await
        .unwrap();
    let stale = SegmentSwap {
        replaced: vec![
            (0, 4, "seg".into()),
            (5, 9, "seg".into()),
            (10, 14, "o2".into()),
        ],
        object_key: "seg3".into(),
        rows: vec![IndexEntry {
            object_key: "seg3".into(),
            byte_len: 1500,
            last_offset: 14,
            ..row(0, 14, 0)
        }],
        ..swap.clone()
    };
    assert!(!store.swap_segment(&stale, NOW).await.unwrap());
}

fn txn_chunk(
    topic_id: TopicId,
    partition: i32,
    n: i64,
    pid: i64,
    epoch: i16,
    first: i32,
) -> ChunkCommit {
    ChunkCommit {
        producer: Some(ProducerBatch {
            producer_id: pid,
            producer_epoch: epoch,
            first_sequence: first,
            last_sequence: first + n as i32 - 1,
            transactional: true,
        }),
        ..chunk(topic_id, partition, n)
    }
}

fn txp(id: &str, pid: i64, epoch: i16) -> TxnProducer {
    TxnProducer {
        transactional_id: id.into(),
        producer_id: pid,
        producer_epoch: epoch,
    }
}

/// Runs a coordinator call, returning its reply and moved watermarks.
async fn txn(
    store: &dyn MetadataStore,
    call: TxnCall,
    now: i64,
) -> (TxnReply, Vec<PartitionWatermark>) {
    store.txn(&call, now).await.unwrap()
}

async fn init(
    store: &dyn MetadataStore,
    id: &str,
    timeout_ms: i32,
    expected: Option<(i64, i16)>,
) -> (i64, i16) {
    let call = TxnCall::InitProducer {
        transactional_id: id.into(),
        timeout_ms,
        expected,
    };
    match txn(store, call, NOW).await.0 {
        TxnReply::Producer {
            producer_id,
            producer_epoch,
        } => (producer_id, producer_epoch),
        other => panic!("InitProducer: {other:?}"),
    }
}

async fn commit_one(store: &dyn MetadataStore, key: &str, c: ChunkCommit) -> ChunkOutcome {
    store
        .commit_objects(&[object(key, vec![c])], NOW)
        .await
        .unwrap()
        .0
        .remove(0)
        .chunks
        .remove(0)
}

/// The watermark `marks` states for partition `p`.
fn mark_of(marks: &[PartitionWatermark], p: i32) -> PartitionWatermark {
    *marks
        .iter()
        .find(|m| m.partition == p)
        .expect("partition marked")
}

async fn transactions_commit_abort_fence_and_time_out<H: Harness>() {
    let h = H::new().await;
    let store = h.store();
    let s = store.as_ref();
    let t = store.create_topic(&spec("t", 2), NOW).await.unwrap();
    let (pid, epoch) = init(s, "tx", 60_000, None).await;
    assert_eq!(epoch, 0);

    // Transactional records for a partition that is not in the transaction: refused.
    assert_eq!(
        commit_one(s, "o0", txn_chunk(t.id, 0, 5, pid, 0, 0)).await,
        ChunkOutcome::Rejected(ProducerRejection::InvalidTxnState)
    );
    // An unknown partition fails the whole AddPartitions.
    let add = |parts: Vec<(TopicId, i32)>, epoch: i16| TxnCall::AddPartitions {
        producer: txp("tx", pid, epoch),
        partitions: parts,
    };
    assert_eq!(
        txn(s, add(vec![(t.id, 0), (t.id, 9)], 0), NOW).await.0,
        TxnReply::Partitions(vec![
            Some(TxnRefusal::OperationNotAttempted),
            Some(TxnRefusal::UnknownTopicOrPartition)
        ])
    );
    assert_eq!(
        txn(s, add(vec![(t.id, 0), (t.id, 1)], 0), NOW).await.0,
        TxnReply::Partitions(vec![None, None])
    );
    assert_eq!(
        commit_one(s, "o1", txn_chunk(t.id, 0, 5, pid, 0, 0)).await,
        committed(0)
    );
    // Other producers' records land after it; the stable offset stays at the transaction's
    // first offset.
    store
        .commit_objects(&[object("o2", vec![chunk(t.id, 0, 3)])], NOW)
        .await
        .unwrap();
    let marks = store.watermarks().await.unwrap();
    let m0 = marks.iter().find(|m| m.partition == 0).unwrap();
    assert_eq!((m0.high_watermark, m0.last_stable_offset), (8, Some(0)));

    // Offsets in the transaction are the group's only once it commits.
    assert_eq!(
        txn(
            s,
            TxnCall::AddOffsets {
                producer: txp("tx", pid, 0),
                group_id: "g".into()
            },
            NOW
        )
        .await
        .0,
        TxnReply::Done
    );
    let offset = CommittedOffset {
        topic_id: t.id,
        partition: 0,
        offset: 42,
        leader_epoch: None,
        metadata: None,
        commit_timestamp_ms: NOW,
    };
    let commit_offsets = TxnCall::CommitOffsets {
        producer: txp("tx", pid, 0),
        group_id: "g".into(),
        offsets: vec![offset],
    };
    assert_eq!(txn(s, commit_offsets, NOW).await.0, TxnReply::Done);
    assert!(store.fetch_offsets("g").await.unwrap().is_empty());

    let end = |commit: bool, epoch: i16| TxnCall::End {
        producer: txp("tx", pid, epoch),
        commit,
    };
    let (reply, marks) = txn(s, end(true, 0), NOW).await;
    assert_eq!(reply, TxnReply::Ended(marks.clone()));
    // A marker at the end of each partition, even one without records of the transaction.
    let (m0, m1) = (mark_of(&marks, 0), mark_of(&marks, 1));
    assert_eq!((m0.high_watermark, m0.last_stable_offset), (9, Some(9)));
    assert_eq!((m1.high_watermark, m1.last_stable_offset), (1, Some(1)));
    let index = store.read_index(t.id, 0, 8, 10).await.unwrap();
    assert_eq!(index.len(), 1);
    assert_eq!((index[0].base_offset, index[0].last_offset), (8, 8));
    assert_eq!(
        index[0].control,
        Some(ControlMarker {
            producer_id: pid,
            producer_epoch: 0,
            commit: true
        })
    );
    let stored = store.fetch_offsets("g").await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].offset, 42);
    // EndTxn retried: done already; the other outcome: refused.
    assert_eq!(txn(s, end(true, 0), NOW).await.0, TxnReply::Ended(vec![]));
    assert_eq!(
        txn(s, end(false, 0), NOW).await.0,
        TxnReply::Refused(TxnRefusal::InvalidTxnState)
    );

    // An aborted transaction: its range is listed, the partition counts the abort.
    txn(s, add(vec![(t.id, 0)], 0), NOW).await;
    assert_eq!(
        commit_one(s, "o3", txn_chunk(t.id, 0, 2, pid, 0, 5)).await,
        committed(9)
    );
    let (_, marks) = txn(s, end(false, 0), NOW).await;
    let m0 = mark_of(&marks, 0);
    assert_eq!(
        (m0.high_watermark, m0.last_stable_offset, m0.abort_count),
        (12, Some(12), 1)
    );
    let aborted = TxnCall::Aborted {
        topic_id: t.id,
        partition: 0,
        from_offset: 0,
    };
    assert_eq!(
        txn(s, aborted.clone(), NOW).await.0,
        TxnReply::Aborted(vec![AbortedTxn {
            producer_id: pid,
            first_offset: 9,
            last_offset: 11
        }])
    );
    // The list forgets a transaction once the log start passes its last record: a range
    // reaching the log start stays, one wholly below it goes.
    s.advance_log_start(t.id, 0, LogStartTarget::Offset(11))
        .await
        .unwrap();
    let TxnReply::Aborted(kept) = txn(s, aborted.clone(), NOW).await.0 else {
        panic!("aborted")
    };
    assert_eq!(kept.len(), 1);
    s.advance_log_start(t.id, 0, LogStartTarget::Offset(12))
        .await
        .unwrap();
    assert_eq!(
        txn(s, aborted.clone(), NOW).await.0,
        TxnReply::Aborted(vec![])
    );

    // A new producer with the same id fences the old one and aborts its open transaction.
    txn(s, add(vec![(t.id, 1)], 0), NOW).await;
    assert_eq!(
        commit_one(s, "o4", txn_chunk(t.id, 1, 1, pid, 0, 7)).await,
        committed(1)
    );
    let (pid2, epoch2) = init(s, "tx", 60_000, None).await;
    assert_eq!((pid2, epoch2), (pid, 1));
    assert_eq!(
        txn(s, add(vec![(t.id, 1)], 0), NOW).await.0,
        TxnReply::Refused(TxnRefusal::ProducerFenced)
    );
    assert_eq!(
        commit_one(s, "o5", txn_chunk(t.id, 1, 1, pid, 0, 8)).await,
        ChunkOutcome::Rejected(ProducerRejection::InvalidProducerEpoch)
    );
    let index = store.read_index(t.id, 1, 2, 10).await.unwrap();
    assert_eq!(
        index[0].control,
        Some(ControlMarker {
            producer_id: pid,
            producer_epoch: 1,
            commit: false
        }),
        "aborted with the new epoch"
    );
    // KIP-360: re-initialising with a stale epoch is fenced.
    let call = TxnCall::InitProducer {
        transactional_id: "tx".into(),
        timeout_ms: 60_000,
        expected: Some((pid, 0)),
    };
    assert_eq!(
        txn(s, call, NOW).await.0,
        TxnReply::Refused(TxnRefusal::ProducerFenced)
    );

    // A transaction open past its timeout is aborted by the sweep, with an epoch bump.
    let (p3, e3) = init(s, "slow", 100, None).await;
    let add3 = TxnCall::AddPartitions {
        producer: txp("slow", p3, e3),
        partitions: vec![(t.id, 1)],
    };
    txn(s, add3, NOW).await;
    assert!(matches!(
        commit_one(s, "o6", txn_chunk(t.id, 1, 3, p3, e3, 0)).await,
        ChunkOutcome::Committed { .. }
    ));
    let (reply, marks) = txn(s, TxnCall::AbortExpired, NOW + 50).await;
    assert_eq!((reply, marks.len()), (TxnReply::Count(0), 0));
    let (reply, marks) = txn(s, TxnCall::AbortExpired, NOW + 1_000).await;
    assert_eq!(reply, TxnReply::Count(1));
    let m1 = mark_of(&marks, 1);
    assert_eq!(m1.last_stable_offset, Some(m1.high_watermark));
    let late = TxnCall::End {
        producer: txp("slow", p3, e3),
        commit: true,
    };
    assert_eq!(
        txn(s, late, NOW).await.0,
        TxnReply::Refused(TxnRefusal::ProducerFenced)
    );
    // Its producer may still re-initialise from the epoch it held, and gets the current one.
    assert_eq!(init(s, "slow", 100, Some((p3, e3))).await, (p3, e3 + 1));

    // Descriptions.
    let call = TxnCall::Describe {
        transactional_ids: vec!["tx".into(), "nope".into()],
    };
    let TxnReply::Described(d) = txn(s, call, NOW).await.0 else {
        panic!("describe")
    };
    assert_eq!(d.len(), 1);
    assert_eq!((d[0].state.as_str(), d[0].producer_epoch), ("Empty", 1));
    let TxnReply::Described(all) = txn(s, TxnCall::List, NOW).await.0 else {
        panic!("list")
    };
    assert_eq!(all.len(), 2);
    let TxnReply::Producers(ps) = txn(
        s,
        TxnCall::Producers {
            topic_id: t.id,
            partition: 1,
        },
        NOW,
    )
    .await
    .0
    else {
        panic!("producers")
    };
    assert_eq!(ps.len(), 2);
    assert!(ps.iter().all(|p| p.current_txn_start_offset == -1));
    // Bad timeouts.
    let call = TxnCall::InitProducer {
        transactional_id: "bad".into(),
        timeout_ms: 0,
        expected: None,
    };
    assert_eq!(
        txn(s, call, NOW).await.0,
        TxnReply::Refused(TxnRefusal::InvalidTransactionTimeout)
    );

    // transactional.id.expiration.ms: ids without an open transaction, idle long enough.
    let (p4, _) = init(s, "busy", 60_000, None).await;
    let add4 = TxnCall::AddPartitions {
        producer: txp("busy", p4, 0),
        partitions: vec![(t.id, 0)],
    };
    txn(s, add4, NOW).await;
    let expire = TxnCall::ExpireIds {
        idle_before_ms: NOW + 2_000,
    };
    assert_eq!(txn(s, expire, NOW).await.0, TxnReply::Count(2));
    let TxnReply::Described(left) = txn(s, TxnCall::List, NOW).await.0 else {
        panic!("list")
    };
    assert_eq!(
        left.iter()
            .map(|d| d.transactional_id.as_str())
            .collect::<Vec<_>>(),
        vec!["busy"],
        "the open transaction keeps its id"
    );
    let (pid5, epoch5) = init(s, "tx", 60_000, None).await;
    assert!(pid5 != pid && epoch5 == 0, "an expired id starts afresh");
}
