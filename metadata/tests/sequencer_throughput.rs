//! Measurement, not a test of speed: how many object commits per second the group-commit
//! sequencer sustains on one PostgreSQL with many concurrent committers, and how many
//! objects it folds into each database transaction. Prints figures; asserts only
//! correctness (every commit got contiguous, distinct offsets).
//!
//! `cargo test -p floe-metadata --release --test sequencer_throughput -- --ignored --nocapture`

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use floe_metadata::sequencer::GroupStats;
use floe_metadata::testing::TestPostgres;
use floe_metadata::{
    ChunkCommit, ChunkOutcome, Metadata, MetadataService, MetadataStore, ObjectCommit,
    PostgresStore, TopicSpec,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement; run explicitly with --ignored --nocapture"]
async fn sequencer_commits_per_second_on_postgres() {
    let pg = TestPostgres::start().await;
    let store: Arc<dyn MetadataStore> =
        Arc::new(PostgresStore::connect(pg.url()).await.expect("connect"));
    let groups = Arc::new(AtomicU64::new(0));
    let grouped = Arc::new(AtomicU64::new(0));
    let (g, o) = (groups.clone(), grouped.clone());
    let service = MetadataService::start(
        store,
        Arc::new(|| 0),
        Arc::new(move |s: GroupStats| {
            g.fetch_add(1, Ordering::Relaxed);
            o.fetch_add(s.objects as u64, Ordering::Relaxed);
        }),
    )
    .await
    .expect("service");
    let topic = service
        .create_topic(TopicSpec {
            name: "bench".into(),
            partitions: 16,
            configs: BTreeMap::new(),
        })
        .await
        .expect("topic");
    for &committers in &[1usize, 16, 64, 256] {
        groups.store(0, Ordering::Relaxed);
        grouped.store(0, Ordering::Relaxed);
        let per = 4000 / committers.max(1) + 1;
        let started = Instant::now();
        let mut tasks = Vec::new();
        for c in 0..committers {
            let svc = service.clone();
            let topic_id = topic.id;
            tasks.push(tokio::spawn(async move {
                let mut bases = Vec::new();
                for i in 0..per {
                    // Four partitions per object, as a busy agent's WAL object would hold.
                    let chunks = (0..4)
                        .map(|k| ChunkCommit {
                            topic_id,
                            partition: ((c + i + k) % 16) as i32,
                            byte_offset: 16 + k as i64 * 1000,
                            byte_len: 1000,
                            offset_count: 10,
                            batch_count: 1,
                            first_timestamp_ms: 0,
                            max_timestamp_ms: 0,
                            producer: None,
                        })
                        .collect();
                    let r = svc
                        .commit_object(ObjectCommit {
                            object_key: format!("bench/{committers}/{c}/{i}"),
                            object_size: 4016,
                            chunks,
                        })
                        .await
                        .expect("commit");
                    for ch in r.chunks {
                        match ch {
                            ChunkOutcome::Committed { base_offset, .. } => bases.push(base_offset),
                            other => panic!("unexpected outcome {other:?}"),
                        }
                    }
                }
                bases.len()
            }));
        }
        let mut total = 0;
        for t in tasks {
            total += t.await.expect("task");
        }
        let elapsed = started.elapsed();
        let objects = (committers * per) as f64;
        let g = groups.load(Ordering::Relaxed).max(1);
        println!(
            "committers={committers:4} objects={objects:6} elapsed={:7.3}s commits/s={:8.0} transactions={g} objects/transaction={:.1}",
            elapsed.as_secs_f64(),
            objects / elapsed.as_secs_f64().max(f64::EPSILON),
            grouped.load(Ordering::Relaxed) as f64 / g as f64
        );
        assert_eq!(total, committers * per * 4);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Correctness: every partition's offsets are contiguous from 0.
    for p in 0..16 {
        let entries = service
            .read_index(topic.id, p, 0, u32::MAX)
            .await
            .expect("index");
        let mut next = 0;
        for e in entries {
            assert_eq!(e.base_offset, next, "gap or overlap in partition {p}");
            next = e.last_offset + 1;
        }
    }
}
