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
    compactor_at(w, grace_ms, Arc::new(SystemClock))
}

/// [`compactor`] reading time from `clock`.
fn compactor_at(w: &World, grace_ms: u64, clock: Arc<dyn Clock>) -> Compactor {
    let mut c = Compactor::new(
        w.metadata.clone(),
        w.objects.clone(),
        Arc::new(Metrics::new()),
        CompactorSettings {
            interval: Duration::from_millis(100),
            grace: Duration::from_millis(grace_ms),
            orphan_interval: Duration::from_millis(100),
            ..CompactorSettings::default()
        },
        clock,
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

mod folding {
    use super::*;
    use bytes::BytesMut;
    use floe_format::records::{encode_batch, BatchSpec, Record};
    use floe_format::{split_batches, Compression};

    /// A chunk of `batches` batches of 3 records each (placeholder base offsets, as
    /// producers send them).
    fn chunk(tag: u8, batches: usize) -> Bytes {
        let mut out = BytesMut::new();
        for b in 0..batches {
            let records: Vec<Record> = (0..3)
                .map(|i| Record {
                    offset_delta: i,
                    timestamp_delta: 0,
                    key: Some(Bytes::from(vec![tag, b as u8, i as u8])),
                    value: Some(Bytes::from(vec![tag; 200])),
                    headers: Vec::new(),
                })
                .collect();
            // Timestamps as the commit says (recent, so default retention keeps them).
            let now = SystemClock.now_ms();
            let spec = BatchSpec {
                base_timestamp: now,
                max_timestamp: now,
                ..BatchSpec::default()
            };
            out.extend_from_slice(
                &encode_batch(&spec, &records, Compression::None).expect("batch"),
            );
        }
        out.freeze()
    }

    /// Uploads an object of one chunk per partition and commits it.
    async fn commit_wal(w: &World, key: &str, parts: &[(TopicId, i32, Bytes)]) {
        let mut object = BytesMut::new();
        let mut chunks = Vec::new();
        for (topic_id, partition, bytes) in parts {
            let count: i64 = floe_format::scan_batches(bytes)
                .expect("framed")
                .iter()
                .map(|b| i64::from(b.header.last_offset_delta) + 1)
                .sum();
            chunks.push(ChunkCommit {
                topic_id: *topic_id,
                partition: *partition,
                byte_offset: object.len() as i64,
                byte_len: bytes.len() as i64,
                offset_count: count,
                batch_count: 2,
                // Recent: default retention keeps them.
                first_timestamp_ms: SystemClock.now_ms(),
                max_timestamp_ms: SystemClock.now_ms(),
                producer: None,
            });
            object.extend_from_slice(bytes);
        }
        let size = object.len() as i64;
        w.objects
            .put(key, object.freeze(), "wal")
            .await
            .expect("put");
        w.metadata
            .commit_object(ObjectCommit {
                object_key: key.to_string(),
                object_size: size,
                chunks,
            })
            .await
            .expect("commit");
    }

    /// What a fetch of the whole partition returns: every batch with its real base offset
    /// and leader epoch 0 written in, as the agent's read path does.
    async fn read_all(w: &World, topic_id: TopicId, partition: i32) -> (Vec<u8>, Vec<String>) {
        let entries = w
            .metadata
            .read_index(topic_id, partition, 0, 1000)
            .await
            .expect("index");
        let mut out = Vec::new();
        for e in &entries {
            let bytes = w
                .objects
                .get_range(
                    &e.object_key,
                    e.byte_offset as u64..(e.byte_offset + e.byte_len) as u64,
                    "test",
                )
                .await
                .expect("read");
            let mut base = e.base_offset;
            for b in split_batches(&bytes).expect("valid") {
                let start = out.len();
                out.extend_from_slice(&bytes[b.range.clone()]);
                out[start..start + 8].copy_from_slice(&base.to_be_bytes());
                out[start + 12..start + 16].copy_from_slice(&0i32.to_be_bytes());
                base += i64::from(b.header.last_offset_delta) + 1;
            }
        }
        (out, entries.iter().map(|e| e.object_key.clone()).collect())
    }

    fn folding_compactor(w: &World, grace_ms: u64) -> Compactor {
        let mut c = compactor(w, grace_ms);
        c.settings.segment_delay = Duration::from_secs(60);
        c
    }

    #[tokio::test]
    async fn old_wal_chunks_fold_into_segments_and_read_back_the_same() {
        let w = world().await;
        let t = w
            .metadata
            .create_topic(TopicSpec {
                name: "t".into(),
                partitions: 2,
                configs: BTreeMap::new(),
            })
            .await
            .expect("topic")
            .id;
        let old = SystemClock.now_ms() - 3_600_000;
        for i in 0..4 {
            let key = format!("wal/000{i}/1-{old}-{i}.wal");
            commit_wal(&w, &key, &[(t, 0, chunk(i, 2)), (t, 1, chunk(10 + i, 2))]).await;
        }
        // The tail: too young to fold.
        let young = format!("wal/0009/1-{}-young.wal", SystemClock.now_ms());
        commit_wal(&w, &young, &[(t, 0, chunk(9, 2))]).await;
        let (before0, keys0) = read_all(&w, t, 0).await;
        let (before1, _) = read_all(&w, t, 1).await;
        assert_eq!(keys0.len(), 5);

        let c = folding_compactor(&w, 60_000);
        let report = c.run_once(false).await.expect("pass");
        assert_eq!(report.segments.segments, 2, "{report:?}");
        assert_eq!(report.segments.backlog_bytes, 0);
        let (after0, keys0) = read_all(&w, t, 0).await;
        let (after1, keys1) = read_all(&w, t, 1).await;
        assert_eq!(after0, before0, "partition 0 reads back the same bytes");
        assert_eq!(after1, before1, "partition 1 reads back the same bytes");
        assert!(
            keys0[0].starts_with("seg/") && keys0.last() == Some(&young),
            "{keys0:?}"
        );
        assert!(keys1.iter().all(|k| k.starts_with("seg/")), "{keys1:?}");
        // The folded WAL objects go once their grace period has passed; the young one stays.
        let c = folding_compactor(&w, 0);
        let first = c.run_once(false).await.expect("pass").unreferenced_deleted;
        let second = c.run_once(false).await.expect("pass").unreferenced_deleted;
        assert_eq!(first + second, 4);
        assert!(exists(&w, &young).await);
        assert_eq!(read_all(&w, t, 0).await.0, before0);
        // A second pass finds nothing more to fold (one segment per partition is enough).
        assert_eq!(c.run_once(false).await.expect("pass").segments.segments, 0);
    }

    #[tokio::test]
    async fn a_small_segment_of_several_rows_is_not_rewritten_every_pass() {
        let w = world().await;
        let t = topic(&w, "t", &[]).await;
        let old = SystemClock.now_ms() - 3_600_000;
        for i in 0..3 {
            // ~700 KB each: the segment gets two index rows (a row closes past 1 MiB).
            commit_wal(
                &w,
                &format!("wal/000{i}/1-{old}-{i}.wal"),
                &[(t, 0, chunk(i, 1000))],
            )
            .await;
        }
        let c = folding_compactor(&w, 60_000);
        assert_eq!(c.run_once(false).await.expect("pass").segments.segments, 1);
        let rows = w.metadata.read_index(t, 0, 0, 100).await.expect("index");
        assert_eq!(rows.len(), 2, "{rows:?}");
        for _ in 0..2 {
            assert_eq!(c.run_once(false).await.expect("pass").segments.segments, 0);
        }
        assert_eq!(
            w.metadata.read_index(t, 0, 0, 100).await.expect("index"),
            rows
        );
    }

    #[tokio::test]
    async fn a_slow_partitions_segments_merge_like_a_binary_counter() {
        let w = world().await;
        let t = topic(&w, "t", &[]).await;
        let old = SystemClock.now_ms() - 3_600_000;
        let c = folding_compactor(&w, 60_000);
        let chunk_len = chunk(0, 10).len() as u64;
        let mut written = 0;
        for i in 0..8u8 {
            // One small chunk per pass, as a partition with little traffic gets.
            commit_wal(
                &w,
                &format!("wal/000{i}/1-{old}-{i}.wal"),
                &[(t, 0, chunk(i, 10))],
            )
            .await;
            let before = read_all(&w, t, 0).await.0;
            let report = c.run_once(false).await.expect("pass");
            written += report.segments.bytes;
            assert_eq!(read_all(&w, t, 0).await.0, before, "pass {i}");
        }
        // Segments of 1, 2, 1, 4, 1, 2, 1 and 8 chunks: 20 chunks' bytes written for 8 (a
        // rewrite of the tail segment on every pass would write 1 + 2 + ... + 8 = 36).
        assert_eq!(written, 20 * chunk_len);
        let keys = read_all(&w, t, 0).await.1;
        assert_eq!(keys.len(), 1, "one segment of all 8 chunks: {keys:?}");
    }

    #[tokio::test]
    async fn a_corrupt_chunk_is_reported_and_never_folded_or_deleted() {
        let w = world().await;
        let t = topic(&w, "t", &[]).await;
        let old = SystemClock.now_ms() - 3_600_000;
        let good = format!("wal/0000/1-{old}-good.wal");
        commit_wal(&w, &good, &[(t, 0, chunk(1, 2))]).await;
        let mut bad = chunk(2, 2).to_vec();
        let last = bad.len() - 1;
        bad[last] ^= 0xff; // breaks the second batch's CRC
        let bad_key = format!("wal/0001/1-{old}-bad.wal");
        commit_wal(&w, &bad_key, &[(t, 0, Bytes::from(bad))]).await;
        let c = folding_compactor(&w, 0);
        let report = c.run_once(false).await.expect("pass");
        assert_eq!(report.segments.segments, 0);
        assert_eq!(report.segments.skipped, 1);
        assert!(report.segments.backlog_bytes > 0);
        assert_eq!(c.metrics.compactor_corrupt_chunks.get(), 1);
        c.run_once(false).await.expect("pass");
        assert!(exists(&w, &good).await && exists(&w, &bad_key).await);
    }
}

mod cleaning {
    use super::*;
    use bytes::BytesMut;
    use floe_format::records::{encode_batch, BatchSpec, Record};
    use floe_format::{decode_records, split_batches, Compression};

    fn batch(records: &[(&str, Option<&str>)], ts: i64) -> Bytes {
        let recs: Vec<Record> = records
            .iter()
            .enumerate()
            .map(|(i, (k, v))| Record {
                offset_delta: i as i32,
                timestamp_delta: 0,
                key: Some(Bytes::from(k.to_string())),
                value: v.map(|v| Bytes::from(v.to_string())),
                headers: Vec::new(),
            })
            .collect();
        let spec = BatchSpec {
            base_timestamp: ts,
            max_timestamp: ts,
            ..BatchSpec::default()
        };
        encode_batch(&spec, &recs, Compression::Lz4).expect("batch")
    }

    /// Commits one WAL object holding `batches` for partition 0; returns its offset count.
    async fn commit(w: &World, key: &str, t: TopicId, batches: &[Bytes]) -> i64 {
        let mut chunk = BytesMut::new();
        let mut count = 0;
        for b in batches {
            chunk.extend_from_slice(b);
            count += split_batches(b).expect("valid")[0].header.offset_count();
        }
        let len = chunk.len() as i64;
        w.objects
            .put(key, chunk.freeze(), "wal")
            .await
            .expect("put");
        let ts = SystemClock.now_ms() - 1000;
        w.metadata
            .commit_object(ObjectCommit {
                object_key: key.into(),
                object_size: len,
                chunks: vec![ChunkCommit {
                    topic_id: t,
                    partition: 0,
                    byte_offset: 0,
                    byte_len: len,
                    offset_count: count,
                    batch_count: batches.len() as i32,
                    first_timestamp_ms: ts,
                    max_timestamp_ms: ts,
                    producer: None,
                }],
            })
            .await
            .expect("commit");
        count
    }

    /// Every record of partition 0 as `(offset, key, value)`, real offsets.
    async fn records(w: &World, t: TopicId) -> Vec<(i64, String, Option<String>)> {
        let entries = w.metadata.read_index(t, 0, 0, 1000).await.expect("index");
        let mut out = Vec::new();
        for e in &entries {
            if e.byte_len == 0 {
                continue;
            }
            let bytes = w
                .objects
                .get_range(
                    &e.object_key,
                    e.byte_offset as u64..(e.byte_offset + e.byte_len) as u64,
                    "t",
                )
                .await
                .expect("read");
            let mut base = e.base_offset;
            for b in split_batches(&bytes).expect("valid") {
                if e.object_key.starts_with("seg/") {
                    base = b.header.base_offset;
                }
                for r in decode_records(&bytes[b.range.clone()], 1 << 20).expect("decode") {
                    let s = |b: Option<Bytes>| b.map(|b| String::from_utf8_lossy(&b).into_owned());
                    out.push((
                        base + i64::from(r.offset_delta),
                        s(r.key).unwrap_or_default(),
                        s(r.value),
                    ));
                }
                base += i64::from(b.header.last_offset_delta) + 1;
            }
        }
        out
    }

    #[tokio::test]
    async fn the_latest_record_of_each_key_survives_with_its_offset() {
        let w = world().await;
        let t = topic(
            &w,
            "c",
            &[
                ("cleanup.policy", "compact"),
                ("delete.retention.ms", "60000"),
            ],
        )
        .await;
        let now = SystemClock.now_ms();
        let old = now - 3_600_000;
        let keys = ["k0", "k1", "k2", "k3", "k4"];
        let mut offset = 0;
        let mut want = BTreeMap::new();
        for round in 0..5 {
            let v = format!("r{round}");
            let mut recs: Vec<(&str, Option<&str>)> = Vec::new();
            let mut batches = Vec::new();
            for k in keys {
                match (round, k) {
                    (3, "k1") => batches.push(batch(&[("k1", None)], old)),
                    (3, "k2") => recs.push(("k2", None)),
                    (4, "k1" | "k2") => {}
                    _ => recs.push((k, Some(v.as_str()))),
                }
            }
            batches.insert(0, batch(&recs, now - 2000));
            // Offsets of this round's records, in the order they were batched.
            let mut o = offset;
            for (k, val) in &recs {
                want.insert(k.to_string(), (o, val.map(str::to_string)));
                o += 1;
            }
            if round == 3 {
                want.insert("k1".into(), (o, None));
            }
            offset += commit(
                &w,
                &format!("wal/000{round}/1-{old}-{round}.wal"),
                t,
                &batches,
            )
            .await;
        }
        let last = commit(
            &w,
            &format!("wal/0009/1-{old}-last.wal"),
            t,
            &[batch(&[("k4", Some("r5"))], now)],
        )
        .await;
        assert_eq!(last, 1);
        want.insert("k4".into(), (offset, Some("r5".into())));
        let before = records(&w, t).await;
        let clock = ManualClock::at(now);
        let mut c = compactor_at(&w, 60_000, clock.clone());
        c.settings.segment_delay = Duration::from_secs(60);
        let report = c.run_once(false).await.expect("pass");
        assert_eq!(report.cleaned.partitions, 1, "{report:?}");
        let after = records(&w, t).await;
        // Every key keeps its latest record at its original offset, tombstones included: k1's
        // was produced an hour ago, more than delete.retention.ms, but a consumer gets
        // delete.retention.ms from this first cleaning to see it (KIP-534).
        let mut expected: Vec<(i64, String, Option<String>)> = want
            .iter()
            .map(|(k, (o, v))| (*o, k.clone(), v.clone()))
            .collect();
        expected.sort();
        assert_eq!(after, expected, "before: {before:?}");
        assert!(after.len() < before.len() / 3);
        assert_eq!(
            report.cleaned.records_removed as usize,
            before.len() - after.len()
        );
        // The tombstones' batches carry the horizon; the segment's key says when it is due.
        let horizon = now + 60_000;
        let entries = w.metadata.read_index(t, 0, 0, 1000).await.expect("index");
        assert!(
            entries
                .iter()
                .any(|e| floe_format::keys::delete_horizon_ms(&e.object_key) == Some(horizon)),
            "{entries:?}"
        );
        assert_eq!(tombstone_horizons(&w, t).await, vec![horizon, horizon]);
        // The high watermark did not move and nothing is due before the horizon.
        let p = w.metadata.list_topics().await.expect("topics")[0].partitions[0];
        assert_eq!(p.high_watermark, offset + 1);
        clock.set(horizon - 1);
        let again = c.run_once(false).await.expect("pass");
        assert_eq!(again.cleaned.partitions, 0);
        assert_eq!(records(&w, t).await, expected);
        // Past the horizon, with nothing written since, the partition is due again and both
        // tombstones go; the log's last record stays.
        clock.set(horizon);
        let third = c.run_once(false).await.expect("pass");
        assert_eq!(
            (third.cleaned.partitions, third.cleaned.records_removed),
            (1, 2)
        );
        want.remove("k1");
        want.remove("k2");
        let mut expected: Vec<(i64, String, Option<String>)> =
            want.into_iter().map(|(k, (o, v))| (o, k, v)).collect();
        expected.sort();
        assert_eq!(records(&w, t).await, expected);
        assert!(w
            .metadata
            .read_index(t, 0, 0, 1000)
            .await
            .expect("index")
            .iter()
            .all(|e| floe_format::keys::delete_horizon_ms(&e.object_key).is_none()));
        let fourth = c.run_once(false).await.expect("pass");
        assert_eq!(fourth.cleaned.partitions, 0);
    }

    /// The delete horizons of partition 0's batches that hold tombstones.
    async fn tombstone_horizons(w: &World, t: TopicId) -> Vec<i64> {
        let mut out = Vec::new();
        for e in w.metadata.read_index(t, 0, 0, 1000).await.expect("index") {
            if e.byte_len == 0 {
                continue;
            }
            let start = e.byte_offset as u64;
            let bytes = w
                .objects
                .get_range(&e.object_key, start..start + e.byte_len as u64, "t")
                .await
                .expect("read");
            for b in split_batches(&bytes).expect("valid") {
                let records = decode_records(&bytes[b.range.clone()], 1 << 20).expect("decode");
                if records.iter().any(|r| r.value.is_none()) {
                    out.extend(b.header.delete_horizon_ms());
                }
            }
        }
        out
    }

    /// A clock the test moves.
    struct ManualClock(std::sync::atomic::AtomicI64);

    impl ManualClock {
        fn at(ms: i64) -> Arc<ManualClock> {
            Arc::new(ManualClock(ms.into()))
        }

        fn set(&self, ms: i64) {
            self.0.store(ms, std::sync::atomic::Ordering::SeqCst);
        }
    }

    impl Clock for ManualClock {
        fn now_ms(&self) -> i64 {
            self.0.load(std::sync::atomic::Ordering::SeqCst)
        }
    }
}
