//! [`MetadataStore`] on SQLite, the embedded backend of the single-process playground.
//!
//! SQLite allows one writer at a time, so all writes go through a pool of exactly one
//! connection and queue there instead of failing with `SQLITE_BUSY`; reads use a separate
//! pool of read-only connections that WAL mode lets run alongside the writer. Offsets are
//! assigned by the same `plan` code as on PostgreSQL (in `plan.rs`); with a single writer
//! the statements can simply run row by row.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::SqliteConnection;
use uuid::Uuid;

use super::plan::{self, assemble_topics, configs_to_json, CommitPlan, TopicRow};
use super::postgres::migrator;
use super::MetadataStore;
use crate::error::{MetadataError, Result};
use crate::groups::GroupRecord;
use crate::types::{
    AgentInfo, CollectableObject, CommitResult, CommittedOffset, IndexEntry, LogStartTarget,
    ObjectCommit, PartitionWatermark, SegmentSwap, TopicId, TopicInfo, TopicSpec, TxnCall,
    TxnReply,
};

/// SQLite migrations, applied in version order at open.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "initial",
        include_str!("../../migrations/sqlite/0001_initial.sql"),
    ),
    (
        2,
        "group coordinator",
        include_str!("../../migrations/sqlite/0002_group_coordinator.sql"),
    ),
    (
        3,
        "agents",
        include_str!("../../migrations/sqlite/0003_agents.sql"),
    ),
    (
        4,
        "compactor",
        include_str!("../../migrations/sqlite/0004_compactor.sql"),
    ),
    (
        5,
        "transactions",
        include_str!("../../migrations/sqlite/0005_transactions.sql"),
    ),
];

/// Read-only connections of a file database. Reads are short; 4 covers a playground's
/// concurrent fetches without holding many file handles.
const READ_CONNECTIONS: u32 = 4;

/// How long a write waits for the single writer connection before failing (retriable).
/// Generous because writes queue behind each other by design.
const WRITE_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);

/// Milliseconds since the Unix epoch by SQLite's clock (`delete_topic` has no `now_ms`).
const NOW_MS_SQL: &str = "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)";

/// The metadata store on SQLite.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// Exactly one connection: every write transaction is serialized here.
    writer: SqlitePool,
    /// Read-only connections (the writer itself for an in-memory database).
    reader: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if missing) the database file at `path` in WAL mode and applies
    /// pending migrations.
    ///
    /// `synchronous = FULL`: every commit is fsynced before it returns, so an acknowledged
    /// produce survives power loss; with the sequencer's group commit that is one fsync per
    /// group, not per object.
    pub async fn open(path: &Path) -> Result<Self> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            // Only reached if another process writes the same file.
            .busy_timeout(Duration::from_secs(10));
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(WRITE_ACQUIRE_TIMEOUT)
            .connect_with(options.clone())
            .await?;
        Self::init(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(READ_CONNECTIONS)
            .connect_with(options.read_only(true))
            .await?;
        Ok(Self { writer, reader })
    }

    /// Opens a private in-memory database (lost when the store is dropped), for tests and
    /// throw-away playgrounds. One connection serves reads and writes, and is never recycled
    /// because the database lives only as long as it does.
    pub async fn open_in_memory() -> Result<Self> {
        let options = SqliteConnectOptions::new()
            .in_memory(true)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .acquire_timeout(WRITE_ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await?;
        Self::init(&pool).await?;
        Ok(Self {
            writer: pool.clone(),
            reader: pool,
        })
    }

    /// Closes both pools, waiting for connections in use to be returned.
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }

    async fn init(writer: &SqlitePool) -> Result<()> {
        migrator(MIGRATIONS).run(writer).await?;
        sqlx::query(
            "INSERT INTO cluster (singleton, cluster_id) VALUES (1, ?) ON CONFLICT DO NOTHING",
        )
        .bind(super::plan::new_cluster_id())
        .execute(writer)
        .await?;
        Ok(())
    }

    /// Starts a write transaction. `BEGIN IMMEDIATE` takes the file's write lock up front, so
    /// a transaction that reads before it writes can never fail to upgrade its lock.
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
    }

    async fn topic_info(
        conn: &mut SqliteConnection,
        topic_id: TopicId,
    ) -> Result<Option<TopicInfo>> {
        let rows: Vec<TopicRow> = sqlx::query_as(
            "SELECT t.topic_id, t.name, t.configs, t.created_at_ms,
                    p.partition, p.high_watermark, p.log_start_offset, p.leader_epoch
             FROM topics t JOIN partitions p ON p.topic_id = t.topic_id
             WHERE t.topic_id = ? AND t.deleted_at_ms IS NULL
             ORDER BY p.partition",
        )
        .bind(topic_id)
        .fetch_all(&mut *conn)
        .await?;
        Ok(assemble_topics(rows)?.into_iter().next())
    }
}

/// Inserts what a plan decided. Statements are cached per connection, and SQLite runs them
/// in-process, so one statement per row costs microseconds.
async fn write_plan(
    conn: &mut SqliteConnection,
    plan: &CommitPlan<'_>,
    now_ms: i64,
) -> sqlx::Result<()> {
    for w in &plan.watermarks {
        sqlx::query(
            "UPDATE partitions SET high_watermark = ? WHERE topic_id = ? AND partition = ?",
        )
        .bind(w.high_watermark)
        .bind(w.topic_id)
        .bind(w.partition)
        .execute(&mut *conn)
        .await?;
    }
    for ((topic_id, partition, producer_id), s) in &plan.producer_rows {
        sqlx::query(
            "INSERT INTO producer_partitions (topic_id, partition, producer_id, producer_epoch,
                 last_sequence, last_offset, last_timestamp_ms, recent_batches, updated_at_ms)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (topic_id, partition, producer_id) DO UPDATE SET
                 producer_epoch = excluded.producer_epoch, last_sequence = excluded.last_sequence,
                 last_offset = excluded.last_offset, last_timestamp_ms = excluded.last_timestamp_ms,
                 recent_batches = excluded.recent_batches, updated_at_ms = excluded.updated_at_ms",
        )
        .bind(topic_id)
        .bind(partition)
        .bind(producer_id)
        .bind(s.epoch)
        .bind(s.last_sequence)
        .bind(s.last_offset)
        .bind(now_ms)
        .bind(s.recent_json())
        .bind(now_ms)
        .execute(&mut *conn)
        .await?;
    }
    for o in &plan.new_objects {
        sqlx::query(
            "INSERT INTO objects (object_key, kind, size_bytes, state, created_at_ms, commit_outcomes)
             VALUES (?, 'wal', ?, 'live', ?, ?)",
        )
        .bind(o.object_key)
        .bind(o.size_bytes)
        .bind(now_ms)
        .bind(&o.commit_outcomes)
        .execute(&mut *conn)
        .await?;
    }
    for r in &plan.index_rows {
        sqlx::query(
            "INSERT INTO offset_index (topic_id, partition, base_offset, last_offset, kind, object_key,
                                       byte_offset, byte_len, batch_count, first_timestamp_ms,
                                       max_timestamp_ms)
             VALUES (?, ?, ?, ?, 'data', ?, ?, ?, ?, ?, ?)",
        )
        .bind(r.topic_id)
        .bind(r.partition)
        .bind(r.base_offset)
        .bind(r.last_offset)
        .bind(r.object_key)
        .bind(r.byte_offset)
        .bind(r.byte_len)
        .bind(r.batch_count)
        .bind(r.first_timestamp_ms)
        .bind(r.max_timestamp_ms)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

#[async_trait]
impl MetadataStore for SqliteStore {
    async fn cluster_id(&self) -> Result<String> {
        let id: Option<String> = sqlx::query_scalar("SELECT cluster_id FROM cluster")
            .fetch_optional(&self.reader)
            .await?;
        id.ok_or_else(|| MetadataError::Database("cluster id missing".into()))
    }

    async fn create_topic(&self, spec: &TopicSpec, now_ms: i64) -> Result<TopicInfo> {
        super::plan::check_new_topic(spec)?;
        let topic_id = Uuid::new_v4();
        let mut tx = self.begin_write().await?;
        // The partial unique index on live names is the arbiter, as on PostgreSQL.
        let inserted = sqlx::query(
            "INSERT INTO topics (topic_id, name, configs, created_at_ms) VALUES (?, ?, ?, ?)",
        )
        .bind(topic_id)
        .bind(&spec.name)
        .bind(configs_to_json(&spec.configs)?)
        .bind(now_ms)
        .execute(&mut *tx)
        .await;
        match inserted {
            Err(e) if super::plan::is_unique_violation(&e) => {
                return Err(MetadataError::TopicExists(spec.name.clone()))
            }
            other => other?,
        };
        sqlx::query(
            "WITH RECURSIVE n(partition) AS (SELECT 0 UNION ALL SELECT partition + 1 FROM n WHERE partition + 1 < ?)
             INSERT INTO partitions (topic_id, partition) SELECT ?, partition FROM n",
        )
        .bind(spec.partitions)
        .bind(topic_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(super::plan::new_topic_info(topic_id, spec, now_ms))
    }

    async fn delete_topic(&self, name: &str) -> Result<TopicId> {
        let sql = format!(
            "UPDATE topics SET deleted_at_ms = {NOW_MS_SQL}
             WHERE name = ? AND deleted_at_ms IS NULL
             RETURNING topic_id"
        );
        let mut tx = self.begin_write().await?;
        let id: Option<Uuid> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        id.ok_or_else(|| MetadataError::UnknownTopic(name.to_string()))
    }

    async fn create_partitions(&self, name: &str, total: i32) -> Result<TopicInfo> {
        let mut tx = self.begin_write().await?;
        let id: Option<Uuid> = sqlx::query_scalar(
            "SELECT topic_id FROM topics WHERE name = ? AND deleted_at_ms IS NULL",
        )
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?;
        let topic_id = id.ok_or_else(|| MetadataError::UnknownTopic(name.to_string()))?;
        let current: i64 = sqlx::query_scalar("SELECT count(*) FROM partitions WHERE topic_id = ?")
            .bind(topic_id)
            .fetch_one(&mut *tx)
            .await?;
        super::plan::check_partition_increase(name, current, total)?;
        sqlx::query(
            "WITH RECURSIVE n(partition) AS (SELECT ? UNION ALL SELECT partition + 1 FROM n WHERE partition + 1 < ?)
             INSERT INTO partitions (topic_id, partition) SELECT ?, partition FROM n",
        )
        .bind(current)
        .bind(total)
        .bind(topic_id)
        .execute(&mut *tx)
        .await?;
        let info = Self::topic_info(&mut tx, topic_id).await?;
        tx.commit().await?;
        info.ok_or_else(|| MetadataError::UnknownTopic(name.to_string()))
    }

    async fn set_topic_configs(
        &self,
        name: &str,
        configs: &BTreeMap<String, String>,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let done =
            sqlx::query("UPDATE topics SET configs = ? WHERE name = ? AND deleted_at_ms IS NULL")
                .bind(configs_to_json(configs)?)
                .bind(name)
                .execute(&mut *tx)
                .await?;
        tx.commit().await?;
        if done.rows_affected() == 0 {
            return Err(MetadataError::UnknownTopic(name.to_string()));
        }
        Ok(())
    }

    async fn list_topics(&self) -> Result<Vec<TopicInfo>> {
        let rows: Vec<TopicRow> = sqlx::query_as(super::plan::LIST_TOPICS_SQL)
            .fetch_all(&self.reader)
            .await?;
        assemble_topics(rows)
    }

    async fn commit_objects(
        &self,
        objects: &[ObjectCommit],
        now_ms: i64,
    ) -> Result<(Vec<CommitResult>, Vec<PartitionWatermark>)> {
        super::plan::check_commit(objects)?;
        if objects.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        // The write lock is held from the first read, so nothing can change between the
        // lookups below and the inserts: no retry loop is needed here.
        let mut tx = self.begin_write().await?;
        let mut existing: HashMap<String, Option<String>> = HashMap::new();
        for key in super::plan::distinct_keys(objects) {
            let outcomes: Option<Option<String>> =
                sqlx::query_scalar("SELECT commit_outcomes FROM objects WHERE object_key = ?")
                    .bind(key)
                    .fetch_optional(&mut *tx)
                    .await?;
            if let Some(outcomes) = outcomes {
                existing.insert(key.to_string(), outcomes);
            }
        }
        let mut partitions = BTreeMap::new();
        for (topic_id, partition) in super::plan::partitions_to_lock(objects, &existing) {
            let row: Option<(i64, i64)> = sqlx::query_as(
                "SELECT p.high_watermark, p.log_start_offset
                 FROM partitions p JOIN topics t ON t.topic_id = p.topic_id
                 WHERE p.topic_id = ? AND p.partition = ? AND t.deleted_at_ms IS NULL",
            )
            .bind(topic_id)
            .bind(partition)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(row) = row {
                partitions.insert((topic_id, partition), row);
            }
        }
        let mut producers = HashMap::new();
        for key in super::plan::producer_keys(objects) {
            let row: Option<(i16, i32, i64, String)> = sqlx::query_as(
                "SELECT producer_epoch, last_sequence, last_offset, recent_batches
                 FROM producer_partitions WHERE topic_id = ? AND partition = ? AND producer_id = ?",
            )
            .bind(key.0)
            .bind(key.1)
            .bind(key.2)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some((epoch, seq, last, recent)) = row {
                producers.insert(
                    key,
                    plan::ProducerState::from_row(epoch, seq, last, &recent)?,
                );
            }
        }
        let mut facts = plan::TxnFacts::default();
        for pid in plan::txn_producers(objects) {
            if let Some(t) = txn_sqlite::produce_txn(&mut tx, pid).await? {
                facts.producers.insert(pid, t);
            }
        }
        for (pid, topic_id, partition) in plan::txn_chunks(objects) {
            let Some(id) = facts
                .producers
                .get(&pid)
                .map(|t| t.transactional_id.clone())
            else {
                continue;
            };
            if let Some(first) =
                txn_sqlite::txn_partition(&mut tx, &id, topic_id, partition).await?
            {
                facts.partitions.insert((pid, topic_id, partition), first);
            }
        }
        let mut plan = CommitPlan::build(objects, &existing, &partitions, &producers, &facts)?;
        write_plan(&mut tx, &plan, now_ms).await?;
        for (id, topic_id, partition, offset) in &plan.txn_first_offsets {
            txn_sqlite::set_first_offset(&mut tx, id, *topic_id, *partition, *offset).await?;
        }
        let moved: Vec<(Uuid, i32)> = plan
            .watermarks
            .iter()
            .map(|m| (m.topic_id, m.partition))
            .collect();
        plan.watermarks = txn_sqlite::marks(&mut tx, &moved).await?;
        tx.commit().await?;
        Ok((plan.results, plan.watermarks))
    }

    async fn read_index(
        &self,
        topic_id: TopicId,
        partition: i32,
        from_offset: i64,
        max_entries: u32,
    ) -> Result<Vec<IndexEntry>> {
        if max_entries == 0 {
            return Ok(Vec::new());
        }
        // Same query as on PostgreSQL: the lower bound on base_offset keeps it on the key.
        let rows: Vec<plan::IndexRow> = sqlx::query_as(
            "SELECT i.base_offset, i.last_offset, i.object_key, i.byte_offset, i.byte_len,
                    i.batch_count, i.first_timestamp_ms, i.max_timestamp_ms, o.size_bytes,
                    i.producer_id, i.producer_epoch, i.control_type
             FROM offset_index i
             LEFT JOIN objects o ON o.object_key = i.object_key
             JOIN partitions p ON p.topic_id = i.topic_id AND p.partition = i.partition
             JOIN topics t ON t.topic_id = p.topic_id AND t.deleted_at_ms IS NULL
             WHERE i.topic_id = ?1 AND i.partition = ?2
               AND i.base_offset >= COALESCE((SELECT max(base_offset) FROM offset_index
                                              WHERE topic_id = ?1 AND partition = ?2
                                                AND base_offset <= ?3), 0)
               AND i.last_offset >= ?3 AND i.last_offset >= p.log_start_offset
             ORDER BY i.base_offset
             LIMIT ?4",
        )
        .bind(topic_id)
        .bind(partition)
        .bind(from_offset)
        .bind(i64::from(max_entries))
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter().map(super::plan::index_entry).collect()
    }

    async fn find_by_timestamp(
        &self,
        topic_id: TopicId,
        partition: i32,
        timestamp_ms: i64,
    ) -> Result<Option<IndexEntry>> {
        let row: Option<plan::IndexRow> = sqlx::query_as(
            "SELECT i.base_offset, i.last_offset, i.object_key, i.byte_offset, i.byte_len,
                    i.batch_count, i.first_timestamp_ms, i.max_timestamp_ms, o.size_bytes,
                    i.producer_id, i.producer_epoch, i.control_type
             FROM offset_index i
             JOIN objects o ON o.object_key = i.object_key
             JOIN partitions p ON p.topic_id = i.topic_id AND p.partition = i.partition
             JOIN topics t ON t.topic_id = p.topic_id AND t.deleted_at_ms IS NULL
             WHERE i.topic_id = ? AND i.partition = ? AND i.kind = 'data'
               AND i.last_offset >= p.log_start_offset AND i.max_timestamp_ms >= ?
             ORDER BY i.base_offset
             LIMIT 1",
        )
        .bind(topic_id)
        .bind(partition)
        .bind(timestamp_ms)
        .fetch_optional(&self.reader)
        .await?;
        row.map(super::plan::index_entry).transpose()
    }

    async fn find_max_timestamp(
        &self,
        topic_id: TopicId,
        partition: i32,
    ) -> Result<Option<IndexEntry>> {
        let row: Option<super::plan::IndexRow> = sqlx::query_as(
            "SELECT i.base_offset, i.last_offset, i.object_key, i.byte_offset, i.byte_len,
                    i.batch_count, i.first_timestamp_ms, i.max_timestamp_ms, o.size_bytes,
                    i.producer_id, i.producer_epoch, i.control_type
             FROM offset_index i
             JOIN objects o ON o.object_key = i.object_key
             JOIN partitions p ON p.topic_id = i.topic_id AND p.partition = i.partition
             JOIN topics t ON t.topic_id = p.topic_id AND t.deleted_at_ms IS NULL
             WHERE i.topic_id = ? AND i.partition = ? AND i.kind = 'data'
               AND i.last_offset >= p.log_start_offset
             ORDER BY i.max_timestamp_ms DESC, i.base_offset
             LIMIT 1",
        )
        .bind(topic_id)
        .bind(partition)
        .fetch_optional(&self.reader)
        .await?;
        row.map(super::plan::index_entry).transpose()
    }

    async fn watermarks(&self) -> Result<Vec<PartitionWatermark>> {
        let rows: Vec<plan::WatermarkRow> = sqlx::query_as(super::plan::WATERMARKS_SQL)
            .fetch_all(&self.reader)
            .await?;
        Ok(rows.into_iter().map(super::plan::watermark).collect())
    }
    async fn commit_offsets(&self, group_id: &str, offsets: &[CommittedOffset]) -> Result<()> {
        let now = offsets
            .iter()
            .map(|o| o.commit_timestamp_ms)
            .max()
            .unwrap_or(0);
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO consumer_groups (group_id, group_type, state, created_at_ms, updated_at_ms)
             VALUES (?, 'classic', 'Empty', ?, ?)
             ON CONFLICT (group_id) DO NOTHING",
        )
        .bind(group_id)
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        for o in offsets {
            sqlx::query(
                "INSERT INTO group_offsets (group_id, topic_id, partition, committed_offset,
                                            leader_epoch, metadata, commit_timestamp_ms)
                 VALUES (?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (group_id, topic_id, partition) DO UPDATE SET
                     committed_offset = excluded.committed_offset,
                     leader_epoch = excluded.leader_epoch,
                     metadata = excluded.metadata,
                     commit_timestamp_ms = excluded.commit_timestamp_ms",
            )
            .bind(group_id)
            .bind(o.topic_id)
            .bind(o.partition)
            .bind(o.offset)
            .bind(o.leader_epoch)
            .bind(o.metadata.as_deref())
            .bind(o.commit_timestamp_ms)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn fetch_offsets(&self, group_id: &str) -> Result<Vec<CommittedOffset>> {
        type Row = (Uuid, i32, i64, Option<i32>, Option<String>, i64);
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT o.topic_id, o.partition, o.committed_offset, o.leader_epoch, o.metadata, o.commit_timestamp_ms
             FROM group_offsets o JOIN topics t ON t.topic_id = o.topic_id
             WHERE o.group_id = ? AND t.deleted_at_ms IS NULL
             ORDER BY o.topic_id, o.partition",
        )
        .bind(group_id)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(topic_id, partition, offset, leader_epoch, metadata, ts)| CommittedOffset {
                    topic_id,
                    partition,
                    offset,
                    leader_epoch,
                    metadata,
                    commit_timestamp_ms: ts,
                },
            )
            .collect())
    }

    async fn save_group(&self, g: &GroupRecord) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO consumer_groups (group_id, group_type, protocol_type, protocol_name, state,
                 generation_id, leader_member_id, assignment_epoch, created_at_ms, updated_at_ms)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (group_id) DO UPDATE SET
                 group_type = excluded.group_type,
                 protocol_type = excluded.protocol_type, protocol_name = excluded.protocol_name,
                 state = excluded.state, generation_id = excluded.generation_id,
                 leader_member_id = excluded.leader_member_id,
                 assignment_epoch = excluded.assignment_epoch,
                 updated_at_ms = excluded.updated_at_ms",
        )
        .bind(&g.group_id)
        .bind(&g.group_type)
        .bind(g.protocol_type.as_deref())
        .bind(g.protocol_name.as_deref())
        .bind(&g.state)
        .bind(g.generation_id)
        .bind(g.leader.as_deref())
        .bind(g.assignment_epoch)
        .bind(g.state_since_ms)
        .bind(g.state_since_ms)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM group_members WHERE group_id = ?")
            .bind(&g.group_id)
            .execute(&mut *tx)
            .await?;
        for m in &g.members {
            sqlx::query(
                "INSERT INTO group_members (group_id, member_id, group_instance_id, client_id,
                     client_host, session_timeout_ms, rebalance_timeout_ms, protocols, assignment,
                     rack_id, member_epoch, subscription, assigned_partitions, last_heartbeat_ms)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&g.group_id)
            .bind(&m.member_id)
            .bind(m.group_instance_id.as_deref())
            .bind(&m.client_id)
            .bind(&m.client_host)
            .bind(m.session_timeout_ms)
            .bind(m.rebalance_timeout_ms)
            .bind(super::plan::protocols_to_json(&m.protocols)?)
            .bind(&m.assignment)
            .bind(m.rack_id.as_deref())
            .bind(m.member_epoch)
            .bind(m.subscription.as_deref())
            .bind(m.assigned_partitions.as_deref())
            .bind(g.state_since_ms)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn load_groups(&self) -> Result<Vec<GroupRecord>> {
        let groups = sqlx::query_as(super::plan::LOAD_GROUPS_SQL)
            .fetch_all(&self.reader)
            .await?;
        let members = sqlx::query_as(super::plan::LOAD_MEMBERS_SQL)
            .fetch_all(&self.reader)
            .await?;
        super::plan::assemble_groups(groups, members)
    }

    async fn delete_group(&self, group_id: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        for sql in [
            "DELETE FROM group_offsets WHERE group_id = ?",
            "DELETE FROM group_members WHERE group_id = ?",
            "DELETE FROM consumer_groups WHERE group_id = ?",
        ] {
            sqlx::query(sql).bind(group_id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn delete_offsets(&self, group_id: &str, partitions: &[(TopicId, i32)]) -> Result<()> {
        let mut tx = self.begin_write().await?;
        for (topic_id, partition) in partitions {
            sqlx::query(
                "DELETE FROM group_offsets WHERE group_id = ? AND topic_id = ? AND partition = ?",
            )
            .bind(group_id)
            .bind(topic_id)
            .bind(partition)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn expire_offsets(&self, group_id: &str, committed_before_ms: i64) -> Result<u64> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "DELETE FROM group_offsets WHERE group_id = ? AND (commit_timestamp_ms < ?
                 OR topic_id NOT IN (SELECT topic_id FROM topics WHERE deleted_at_ms IS NULL))",
        )
        .bind(group_id)
        .bind(committed_before_ms)
        .execute(&mut *tx)
        .await?;
        let (left,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM group_offsets WHERE group_id = ?")
                .bind(group_id)
                .fetch_one(&mut *tx)
                .await?;
        tx.commit().await?;
        Ok(u64::try_from(left).unwrap_or(0))
    }

    async fn lead_groups(&self) -> Result<Option<Box<dyn super::GroupLease>>> {
        Ok(Some(Box::new(super::SoleLease)))
    }

    async fn set_group_leader(&self, url: &str, instance: &str, now_ms: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO group_coordinator (singleton, url, instance, since_ms) VALUES (1, ?, ?, ?)
             ON CONFLICT (singleton) DO UPDATE SET url = excluded.url,
                 instance = excluded.instance, since_ms = excluded.since_ms",
        )
        .bind(url)
        .bind(instance)
        .bind(now_ms)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn new_producer_id(&self, now_ms: i64) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "INSERT INTO producers (created_at_ms, last_used_ms) VALUES (?, ?) RETURNING producer_id",
        )
        .bind(now_ms)
        .bind(now_ms)
        .fetch_one(&self.writer)
        .await?)
    }

    async fn agent_heartbeat(&self, a: &AgentInfo, now_ms: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO agents (node_id, zone, host, port, cache_url, instance, started_at_ms,
                                 last_heartbeat_ms)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (node_id) DO UPDATE SET zone = excluded.zone, host = excluded.host,
                 port = excluded.port, cache_url = excluded.cache_url,
                 instance = excluded.instance, started_at_ms = excluded.started_at_ms,
                 last_heartbeat_ms = excluded.last_heartbeat_ms",
        )
        .bind(a.node_id)
        .bind(a.zone.as_deref())
        .bind(&a.host)
        .bind(a.port)
        .bind(a.cache_url.as_deref())
        .bind(&a.instance)
        .bind(a.started_at_ms)
        .bind(now_ms)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn live_agents(&self, since_ms: i64) -> Result<Vec<AgentInfo>> {
        type Row = (
            i32,
            Option<String>,
            String,
            i32,
            Option<String>,
            String,
            i64,
        );
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT node_id, zone, host, port, cache_url, instance, started_at_ms
             FROM agents WHERE last_heartbeat_ms >= ? ORDER BY node_id",
        )
        .bind(since_ms)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(node_id, zone, host, port, cache_url, instance, started_at_ms)| AgentInfo {
                    node_id,
                    zone,
                    host,
                    port,
                    cache_url,
                    instance,
                    started_at_ms,
                },
            )
            .collect())
    }

    async fn remove_agent(&self, node_id: i32, instance: &str) -> Result<()> {
        sqlx::query("DELETE FROM agents WHERE node_id = ? AND instance = ?")
            .bind(node_id)
            .bind(instance)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn expire_producers(&self, before_ms: i64) -> Result<u64> {
        let states = sqlx::query("DELETE FROM producer_partitions WHERE updated_at_ms < ?")
            .bind(before_ms)
            .execute(&self.writer)
            .await?
            .rows_affected();
        sqlx::query(
            "DELETE FROM producers WHERE created_at_ms < ? AND transactional_id IS NULL
               AND NOT EXISTS (SELECT 1 FROM producer_partitions s
                               WHERE s.producer_id = producers.producer_id)",
        )
        .bind(before_ms)
        .execute(&self.writer)
        .await?;
        Ok(states)
    }

    async fn consumer_lag(&self) -> Result<Vec<(String, String, i32, i64)>> {
        Ok(sqlx::query_as(super::plan::CONSUMER_LAG_SQL)
            .fetch_all(&self.reader)
            .await?)
    }

    async fn group_leader(&self) -> Result<Option<(String, String)>> {
        Ok(
            sqlx::query_as("SELECT url, instance FROM group_coordinator")
                .fetch_optional(&self.reader)
                .await?,
        )
    }

    async fn advance_log_start(
        &self,
        topic_id: TopicId,
        partition: i32,
        target: LogStartTarget,
    ) -> Result<PartitionWatermark> {
        // The single writer connection serializes this with commits.
        let mut tx = self.writer.begin().await?;
        let row: Option<(i64, i64)> = sqlx::query_as(
            "SELECT p.high_watermark, p.log_start_offset
             FROM partitions p JOIN topics t ON t.topic_id = p.topic_id AND t.deleted_at_ms IS NULL
             WHERE p.topic_id = ?1 AND p.partition = ?2",
        )
        .bind(topic_id)
        .bind(partition)
        .fetch_optional(&mut *tx)
        .await?;
        let (high_watermark, log_start) = row.ok_or(MetadataError::UnknownTopicId(topic_id))?;
        let mut facts = plan::LogFacts {
            log_start,
            high_watermark,
            ..plan::LogFacts::default()
        };
        if let LogStartTarget::Retention {
            expire_before_ms,
            max_bytes,
        } = target
        {
            if let Some(cut) = expire_before_ms {
                facts.first_unexpired = sqlx::query_scalar(
                    "SELECT min(base_offset) FROM offset_index
                     WHERE topic_id = ?1 AND partition = ?2 AND last_offset >= ?3
                       AND max_timestamp_ms >= ?4",
                )
                .bind(topic_id)
                .bind(partition)
                .bind(log_start)
                .bind(cut)
                .fetch_one(&mut *tx)
                .await?;
            }
            if let Some(max) = max_bytes {
                facts.first_within_bytes = sqlx::query_scalar(
                    "SELECT max(base_offset) FROM (
                         SELECT base_offset,
                                sum(byte_len) OVER (ORDER BY base_offset DESC) AS newer_bytes
                         FROM offset_index
                         WHERE topic_id = ?1 AND partition = ?2 AND last_offset >= ?3) s
                     WHERE newer_bytes >= ?4",
                )
                .bind(topic_id)
                .bind(partition)
                .bind(log_start)
                .bind(max)
                .fetch_one(&mut *tx)
                .await?;
            }
        }
        let new_start = plan::new_log_start(facts, target)?;
        if new_start > log_start {
            sqlx::query(
                "UPDATE partitions SET log_start_offset = ?3 WHERE topic_id = ?1 AND partition = ?2",
            )
            .bind(topic_id)
            .bind(partition)
            .bind(new_start)
            .execute(&mut *tx)
            .await?;
            for table in plan::BELOW_LOG_START_TABLES {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DELETE FROM {table}
                     WHERE topic_id = ?1 AND partition = ?2 AND last_offset < ?3"
                )))
                .bind(topic_id)
                .bind(partition)
                .bind(new_start)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        // The stable offset and aborts are left unstated: moving the log start changes
        // neither.
        Ok(PartitionWatermark {
            topic_id,
            partition,
            high_watermark,
            log_start_offset: new_start,
            last_stable_offset: None,
            abort_count: 0,
        })
    }

    async fn purge_deleted_topics(&self, deleted_before_ms: i64) -> Result<u64> {
        let mut tx = self.writer.begin().await?;
        let ids: Vec<Uuid> = sqlx::query_scalar(
            "SELECT topic_id FROM topics WHERE deleted_at_ms IS NOT NULL AND deleted_at_ms < ?1",
        )
        .bind(deleted_before_ms)
        .fetch_all(&mut *tx)
        .await?;
        for id in &ids {
            for table in plan::TOPIC_TABLES {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DELETE FROM {table} WHERE topic_id = ?1"
                )))
                .bind(id)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(ids.len() as u64)
    }

    async fn collectable_objects(
        &self,
        now_ms: i64,
        grace_ms: i64,
        limit: u32,
    ) -> Result<Vec<CollectableObject>> {
        sqlx::query(
            "UPDATE objects SET state = 'replaced', replaced_at_ms = ?1
             WHERE state = 'live' AND created_at_ms <= ?1 - ?2
               AND NOT EXISTS (SELECT 1 FROM offset_index i WHERE i.object_key = objects.object_key)",
        )
        .bind(now_ms)
        .bind(grace_ms)
        .execute(&self.writer)
        .await?;
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT object_key, size_bytes FROM objects
             WHERE state <> 'live' AND replaced_at_ms <= ?1 - ?2
             ORDER BY replaced_at_ms, object_key LIMIT ?3",
        )
        .bind(now_ms)
        .bind(grace_ms)
        .bind(i64::from(limit))
        .fetch_all(&self.writer)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(key, size)| CollectableObject { key, size })
            .collect())
    }

    async fn forget_objects(&self, keys: &[String]) -> Result<u64> {
        Ok(sqlx::query(
            "DELETE FROM objects WHERE object_key IN (SELECT value FROM json_each(?1))
               AND state <> 'live'",
        )
        .bind(
            serde_json::to_string(keys)
                .map_err(|e| MetadataError::InvalidRequest(e.to_string()))?,
        )
        .execute(&self.writer)
        .await?
        .rows_affected())
    }

    async fn known_objects(&self, keys: &[String]) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT object_key FROM objects WHERE object_key IN (SELECT value FROM json_each(?1))",
        )
        .bind(
            serde_json::to_string(keys)
                .map_err(|e| MetadataError::InvalidRequest(e.to_string()))?,
        )
        .fetch_all(&self.reader)
        .await?)
    }

    async fn swap_segment(&self, swap: &SegmentSwap, now_ms: i64) -> Result<bool> {
        plan::check_swap(swap)?;
        let (first, last) = (swap.replaced[0].0, swap.replaced[swap.replaced.len() - 1].0);
        let mut tx = self.writer.begin().await?;
        let live: Option<i64> = sqlx::query_scalar(
            "SELECT p.high_watermark
             FROM partitions p JOIN topics t ON t.topic_id = p.topic_id AND t.deleted_at_ms IS NULL
             WHERE p.topic_id = ?1 AND p.partition = ?2",
        )
        .bind(swap.topic_id)
        .bind(swap.partition)
        .fetch_optional(&mut *tx)
        .await?;
        if live.is_none() {
            return Ok(false);
        }
        let current: Vec<(i64, i64, Option<String>)> = sqlx::query_as(
            "SELECT base_offset, last_offset, object_key FROM offset_index
             WHERE topic_id = ?1 AND partition = ?2 AND base_offset >= ?3 AND base_offset <= ?4
             ORDER BY base_offset",
        )
        .bind(swap.topic_id)
        .bind(swap.partition)
        .bind(first)
        .bind(last)
        .fetch_all(&mut *tx)
        .await?;
        let same = current.len() == swap.replaced.len()
            && current
                .iter()
                .zip(&swap.replaced)
                .all(|((b, l, k), (rb, rl, rk))| {
                    // A marker row has no object ("" as read).
                    b == rb && l == rl && k.as_deref().unwrap_or("") == rk.as_str()
                });
        if !same {
            return Ok(false);
        }
        sqlx::query(
            "DELETE FROM offset_index
             WHERE topic_id = ?1 AND partition = ?2 AND base_offset >= ?3 AND base_offset <= ?4",
        )
        .bind(swap.topic_id)
        .bind(swap.partition)
        .bind(first)
        .bind(last)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO objects (object_key, kind, size_bytes, state, created_at_ms)
             VALUES (?1, 'segment', ?2, 'live', ?3)",
        )
        .bind(&swap.object_key)
        .bind(swap.object_size)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        for r in &swap.rows {
            sqlx::query(
                "INSERT INTO offset_index (topic_id, partition, base_offset, last_offset, kind,
                     object_key, byte_offset, byte_len, batch_count, first_timestamp_ms,
                     max_timestamp_ms)
                 VALUES (?1, ?2, ?3, ?4, 'data', ?5, ?6, ?7, ?8, ?9, ?10)",
            )
            .bind(swap.topic_id)
            .bind(swap.partition)
            .bind(r.base_offset)
            .bind(r.last_offset)
            .bind(&swap.object_key)
            .bind(r.byte_offset)
            .bind(r.byte_len)
            .bind(r.batch_count)
            .bind(r.first_timestamp_ms)
            .bind(r.max_timestamp_ms)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn try_lease(&self, name: &str, holder: &str, now_ms: i64, ttl_ms: i64) -> Result<bool> {
        let got: Option<String> = sqlx::query_scalar(
            "INSERT INTO leases (name, holder, expires_at_ms) VALUES (?1, ?2, ?3 + ?4)
             ON CONFLICT (name) DO UPDATE
                 SET holder = excluded.holder, expires_at_ms = excluded.expires_at_ms
                 WHERE leases.holder = excluded.holder OR leases.expires_at_ms < ?3
             RETURNING holder",
        )
        .bind(name)
        .bind(holder)
        .bind(now_ms)
        .bind(ttl_ms)
        .fetch_optional(&self.writer)
        .await?;
        Ok(got.is_some())
    }

    async fn txn(
        &self,
        call: &TxnCall,
        now_ms: i64,
    ) -> Result<(TxnReply, Vec<PartitionWatermark>)> {
        if let TxnCall::AbortExpired = call {
            let ids = {
                let mut c = self.reader.acquire().await?;
                txn_sqlite::expired(&mut c, now_ms, super::EXPIRED_PER_SWEEP).await?
            };
            let (mut marks, mut aborted) = (Vec::new(), 0u64);
            for id in ids {
                let mut tx = self.begin_write().await?;
                if let Some(moved) = txn_sqlite::abort_expired(&mut tx, &id, now_ms).await? {
                    marks.extend(moved);
                    aborted += 1;
                }
                tx.commit().await?;
            }
            return Ok((TxnReply::Count(aborted), marks));
        }
        let mut tx = self.begin_write().await?;
        let out = txn_sqlite::call(&mut tx, call, now_ms).await?;
        tx.commit().await?;
        Ok(out)
    }
}

mod txn_sqlite {
    super::super::txn_sql::txn_ops!(sqlx::SqliteConnection, "", |s: &str| s.replace('$', "?"));
}
