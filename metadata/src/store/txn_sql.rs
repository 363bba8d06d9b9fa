//! The transaction coordinator's SQL, written once for both backends. The statements are
//! the same on PostgreSQL and SQLite except for row locks (`FOR UPDATE`, which SQLite does
//! not have: its single writer already serializes everything) and parameter markers (`$n`
//! here, `?n` for SQLite); [`txn_ops!`] instantiates the functions for one connection type.
//!
//! Every function runs inside the caller's database transaction.

/// Expands to the transaction functions for connection type `$conn`. `$lock` is appended
/// to row-locking reads; `$sql` turns a statement into the backend's parameter style.
macro_rules! txn_ops {
    ($conn:ty, $lock:expr, $sql:expr) => {
        use std::collections::BTreeSet;

        use uuid::Uuid;

        use crate::error::Result;
        use crate::store::txn::{self, End, Init, TxnRow, TxnState};
        use crate::types::{
            AbortedTxn, CommittedOffset, PartitionWatermark, ProducerListing, TxnCall,
            TxnDescription, TxnProducer, TxnRefusal, TxnReply,
        };

        fn q(s: &str) -> sqlx::AssertSqlSafe<String> {
            sqlx::AssertSqlSafe(($sql)(s))
        }

        fn locked(s: &str) -> sqlx::AssertSqlSafe<String> {
            sqlx::AssertSqlSafe(($sql)(&format!("{s}{}", $lock)))
        }

        type Row = (i64, i16, Option<i16>, String, i32, Option<i64>);

        /// The transactional id's row, locked.
        pub(crate) async fn load(c: &mut $conn, id: &str) -> Result<Option<TxnRow>> {
            let row: Option<Row> = sqlx::query_as(locked(
                "SELECT producer_id, producer_epoch, prev_epoch, state, timeout_ms, started_at_ms
                 FROM transactions WHERE transactional_id = $1",
            ))
            .bind(id)
            .fetch_optional(&mut *c)
            .await?;
            row.map(|(producer_id, producer_epoch, prev_epoch, state, timeout_ms, started)| {
                Ok(TxnRow {
                    producer_id,
                    producer_epoch,
                    prev_epoch,
                    state: TxnState::parse(&state)?,
                    timeout_ms,
                    started_at_ms: started,
                })
            })
            .transpose()
        }

        async fn save(c: &mut $conn, id: &str, r: &TxnRow, now_ms: i64) -> Result<()> {
            sqlx::query(q(
                "INSERT INTO transactions (transactional_id, producer_id, producer_epoch,
                     prev_epoch, state, timeout_ms, started_at_ms, updated_at_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (transactional_id) DO UPDATE SET
                     producer_id = excluded.producer_id, producer_epoch = excluded.producer_epoch,
                     prev_epoch = excluded.prev_epoch, state = excluded.state,
                     timeout_ms = excluded.timeout_ms, started_at_ms = excluded.started_at_ms,
                     updated_at_ms = excluded.updated_at_ms",
            ))
            .bind(id)
            .bind(r.producer_id)
            .bind(r.producer_epoch)
            .bind(r.prev_epoch)
            .bind(r.state.as_str())
            .bind(r.timeout_ms)
            .bind(r.started_at_ms)
            .bind(now_ms)
            .execute(&mut *c)
            .await?;
            Ok(())
        }

        async fn new_producer(c: &mut $conn, id: &str, now_ms: i64) -> Result<i64> {
            // A producer id belongs to one transactional id for good: a new id for an old
            // transactional id (epoch exhausted) leaves the old row behind, unnamed.
            sqlx::query(q(
                "UPDATE producers SET transactional_id = NULL WHERE transactional_id = $1",
            ))
            .bind(id)
            .execute(&mut *c)
            .await?;
            Ok(sqlx::query_scalar(q(
                "INSERT INTO producers (transactional_id, created_at_ms, last_used_ms)
                 VALUES ($1, $2, $2) RETURNING producer_id",
            ))
            .bind(id)
            .bind(now_ms)
            .fetch_one(&mut *c)
            .await?)
        }

        /// The watermarks of `parts` as the store states them (with the stable offset).
        pub(crate) async fn marks(
            c: &mut $conn,
            parts: &[(Uuid, i32)],
        ) -> Result<Vec<PartitionWatermark>> {
            let mut out = Vec::with_capacity(parts.len());
            for &(topic_id, partition) in parts {
                let row: Option<(i64, i64, i64, Option<i64>)> = sqlx::query_as(q(
                    "SELECT p.high_watermark, p.log_start_offset, p.abort_count,
                            (SELECT min(tp.first_offset) FROM transaction_partitions tp
                             WHERE tp.topic_id = p.topic_id AND tp.partition = p.partition)
                     FROM partitions p WHERE p.topic_id = $1 AND p.partition = $2",
                ))
                .bind(topic_id)
                .bind(partition)
                .fetch_optional(&mut *c)
                .await?;
                if let Some((hw, ls, aborts, open)) = row {
                    out.push(PartitionWatermark {
                        topic_id,
                        partition,
                        high_watermark: hw,
                        log_start_offset: ls,
                        last_stable_offset: Some(open.unwrap_or(hw)),
                        abort_count: aborts,
                    });
                }
            }
            Ok(out)
        }

        /// Writes a marker into every partition of `id`'s transaction, records aborted
        /// ranges, applies (commit) or drops its offsets, and completes it. Returns the
        /// marked partitions' watermarks.
        async fn complete(
            c: &mut $conn,
            id: &str,
            row: &mut TxnRow,
            commit: bool,
            now_ms: i64,
        ) -> Result<Vec<PartitionWatermark>> {
            let parts: Vec<(Uuid, i32)> = sqlx::query_as(q(
                "SELECT topic_id, partition FROM transaction_partitions
                 WHERE transactional_id = $1",
            ))
            .bind(id)
            .fetch_all(&mut *c)
            .await?;
            // Ascending order, as every writer of partition rows locks them.
            let parts: BTreeSet<(Uuid, i32)> = parts.into_iter().collect();
            let mut marked = Vec::new();
            for &(topic_id, partition) in &parts {
                let hw: Option<i64> = sqlx::query_scalar(locked(
                    "SELECT p.high_watermark FROM partitions p
                     JOIN topics t ON t.topic_id = p.topic_id AND t.deleted_at_ms IS NULL
                     WHERE p.topic_id = $1 AND p.partition = $2",
                ))
                .bind(topic_id)
                .bind(partition)
                .fetch_optional(&mut *c)
                .await?;
                let Some(marker) = hw else {
                    continue; // the topic was deleted meanwhile
                };
                // Read after the lock: a produce that held it may just have set it.
                let first: Option<i64> = sqlx::query_scalar(q(
                    "SELECT first_offset FROM transaction_partitions
                     WHERE transactional_id = $1 AND topic_id = $2 AND partition = $3",
                ))
                .bind(id)
                .bind(topic_id)
                .bind(partition)
                .fetch_one(&mut *c)
                .await?;
                sqlx::query(q(
                    "INSERT INTO offset_index (topic_id, partition, base_offset, last_offset, kind,
                         object_key, byte_offset, byte_len, batch_count, first_timestamp_ms,
                         max_timestamp_ms, producer_id, producer_epoch, control_type)
                     VALUES ($1, $2, $3, $3, 'control', NULL, 0, 0, 1, $4, $4, $5, $6, $7)",
                ))
                .bind(topic_id)
                .bind(partition)
                .bind(marker)
                .bind(now_ms)
                .bind(row.producer_id)
                .bind(row.producer_epoch)
                .bind(if commit { "commit" } else { "abort" })
                .execute(&mut *c)
                .await?;
                let aborted = !commit && first.is_some();
                sqlx::query(q(
                    "UPDATE partitions SET high_watermark = $3,
                         abort_count = abort_count + $4
                     WHERE topic_id = $1 AND partition = $2",
                ))
                .bind(topic_id)
                .bind(partition)
                .bind(marker + 1)
                .bind(i64::from(aborted))
                .execute(&mut *c)
                .await?;
                if let (true, Some(first)) = (aborted, first) {
                    sqlx::query(q(
                        "INSERT INTO aborted_transactions (topic_id, partition, producer_id,
                             first_offset, last_offset)
                         VALUES ($1, $2, $3, $4, $5)",
                    ))
                    .bind(topic_id)
                    .bind(partition)
                    .bind(row.producer_id)
                    .bind(first)
                    .bind(marker)
                    .execute(&mut *c)
                    .await?;
                }
                marked.push((topic_id, partition));
            }
            if commit {
                apply_offsets(c, id, now_ms).await?;
            }
            for table in ["transaction_partitions", "transaction_offsets"] {
                sqlx::query(q(&format!(
                    "DELETE FROM {table} WHERE transactional_id = $1"
                )))
                .bind(id)
                .execute(&mut *c)
                .await?;
            }
            row.state = if commit {
                TxnState::CompleteCommit
            } else {
                TxnState::CompleteAbort
            };
            row.started_at_ms = None;
            save(c, id, row, now_ms).await?;
            marks(c, &marked).await
        }

        /// Moves a committing transaction's offsets into its groups.
        async fn apply_offsets(c: &mut $conn, id: &str, now_ms: i64) -> Result<()> {
            sqlx::query(q(
                "INSERT INTO consumer_groups (group_id, group_type, state, created_at_ms,
                     updated_at_ms)
                 SELECT DISTINCT group_id, 'classic', 'Empty', $2, $2 FROM transaction_offsets
                 WHERE transactional_id = $1
                 ON CONFLICT (group_id) DO NOTHING",
            ))
            .bind(id)
            .bind(now_ms)
            .execute(&mut *c)
            .await?;
            sqlx::query(q(
                "INSERT INTO group_offsets (group_id, topic_id, partition, committed_offset,
                     leader_epoch, metadata, commit_timestamp_ms)
                 SELECT group_id, topic_id, partition, committed_offset, leader_epoch, metadata, $2
                 FROM transaction_offsets WHERE transactional_id = $1
                 ON CONFLICT (group_id, topic_id, partition) DO UPDATE SET
                     committed_offset = excluded.committed_offset,
                     leader_epoch = excluded.leader_epoch, metadata = excluded.metadata,
                     commit_timestamp_ms = excluded.commit_timestamp_ms",
            ))
            .bind(id)
            .bind(now_ms)
            .execute(&mut *c)
            .await?;
            Ok(())
        }

        /// Starts a transaction if none is open (the first AddPartitions/AddOffsets).
        fn begin(row: &mut TxnRow, now_ms: i64) {
            if row.state != TxnState::Ongoing {
                row.state = TxnState::Ongoing;
                row.started_at_ms = Some(now_ms);
            }
        }

        async fn init(
            c: &mut $conn,
            id: &str,
            timeout_ms: i32,
            expected: Option<(i64, i16)>,
            now_ms: i64,
        ) -> Result<(TxnReply, Vec<PartitionWatermark>)> {
            if let Err(r) = txn::check_timeout(timeout_ms) {
                return Ok((TxnReply::Refused(r), Vec::new()));
            }
            let Some(mut row) = load(c, id).await? else {
                let producer_id = new_producer(c, id, now_ms).await?;
                let row = TxnRow {
                    producer_id,
                    producer_epoch: 0,
                    prev_epoch: None,
                    state: TxnState::Empty,
                    timeout_ms,
                    started_at_ms: None,
                };
                save(c, id, &row, now_ms).await?;
                return Ok((
                    TxnReply::Producer {
                        producer_id,
                        producer_epoch: 0,
                    },
                    Vec::new(),
                ));
            };
            let plan = match txn::init(&row, expected) {
                Ok(p) => p,
                Err(r) => return Ok((TxnReply::Refused(r), Vec::new())),
            };
            let (abort_open, new_id) = match plan {
                Init::Current => {
                    return Ok((
                        TxnReply::Producer {
                            producer_id: row.producer_id,
                            producer_epoch: row.producer_epoch,
                        },
                        Vec::new(),
                    ))
                }
                Init::Bump { abort_open } => (abort_open, false),
                Init::NewId { abort_open } => (abort_open, true),
            };
            // The abort markers carry the bumped epoch: the old producer is fenced by them.
            // Only the producer itself (naming its epoch) may come back with the old one; a
            // new producer instance fences every older epoch.
            row.prev_epoch = expected.map(|_| row.producer_epoch);
            row.producer_epoch += 1;
            let mut marks = Vec::new();
            if abort_open {
                marks = complete(c, id, &mut row, false, now_ms).await?;
            }
            if new_id {
                row.producer_id = new_producer(c, id, now_ms).await?;
                row.producer_epoch = 0;
                row.prev_epoch = None;
            }
            row.state = TxnState::Empty;
            row.started_at_ms = None;
            row.timeout_ms = timeout_ms;
            save(c, id, &row, now_ms).await?;
            Ok((
                TxnReply::Producer {
                    producer_id: row.producer_id,
                    producer_epoch: row.producer_epoch,
                },
                marks,
            ))
        }

        async fn checked(
            c: &mut $conn,
            p: &TxnProducer,
        ) -> Result<std::result::Result<TxnRow, TxnRefusal>> {
            let row = load(c, &p.transactional_id).await?;
            Ok(match txn::check_producer(row.as_ref(), p) {
                Ok(()) => row.ok_or(TxnRefusal::InvalidProducerIdMapping),
                Err(r) => Err(r),
            })
        }

        async fn add_partitions(
            c: &mut $conn,
            p: &TxnProducer,
            parts: &[(Uuid, i32)],
            now_ms: i64,
        ) -> Result<TxnReply> {
            let mut row = match checked(c, p).await? {
                Ok(r) => r,
                Err(r) => return Ok(TxnReply::Refused(r)),
            };
            let mut unknown = Vec::with_capacity(parts.len());
            for &(topic_id, partition) in parts {
                let live: Option<i32> = sqlx::query_scalar(q(
                    "SELECT p.partition FROM partitions p
                     JOIN topics t ON t.topic_id = p.topic_id AND t.deleted_at_ms IS NULL
                     WHERE p.topic_id = $1 AND p.partition = $2",
                ))
                .bind(topic_id)
                .bind(partition)
                .fetch_optional(&mut *c)
                .await?;
                unknown.push(live.is_none());
            }
            if unknown.iter().any(|u| *u) {
                // Kafka adds none of them then: the others were not attempted.
                return Ok(TxnReply::Partitions(
                    unknown
                        .into_iter()
                        .map(|u| {
                            Some(if u {
                                TxnRefusal::UnknownTopicOrPartition
                            } else {
                                TxnRefusal::OperationNotAttempted
                            })
                        })
                        .collect(),
                ));
            }
            begin(&mut row, now_ms);
            for &(topic_id, partition) in parts {
                sqlx::query(q(
                    "INSERT INTO transaction_partitions (transactional_id, topic_id, partition)
                     VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                ))
                .bind(&p.transactional_id)
                .bind(topic_id)
                .bind(partition)
                .execute(&mut *c)
                .await?;
            }
            save(c, &p.transactional_id, &row, now_ms).await?;
            Ok(TxnReply::Partitions(vec![None; parts.len()]))
        }

        async fn add_offsets(c: &mut $conn, p: &TxnProducer, now_ms: i64) -> Result<TxnReply> {
            let mut row = match checked(c, p).await? {
                Ok(r) => r,
                Err(r) => return Ok(TxnReply::Refused(r)),
            };
            begin(&mut row, now_ms);
            save(c, &p.transactional_id, &row, now_ms).await?;
            Ok(TxnReply::Done)
        }

        async fn commit_offsets(
            c: &mut $conn,
            p: &TxnProducer,
            group_id: &str,
            offsets: &[CommittedOffset],
        ) -> Result<TxnReply> {
            let row = match checked(c, p).await? {
                Ok(r) => r,
                Err(r) => return Ok(TxnReply::Refused(r)),
            };
            if row.state != TxnState::Ongoing {
                // AddOffsetsToTxn must come first.
                return Ok(TxnReply::Refused(TxnRefusal::InvalidTxnState));
            }
            for o in offsets {
                sqlx::query(q(
                    "INSERT INTO transaction_offsets (transactional_id, group_id, topic_id,
                         partition, committed_offset, leader_epoch, metadata)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)
                     ON CONFLICT (transactional_id, group_id, topic_id, partition) DO UPDATE SET
                         committed_offset = excluded.committed_offset,
                         leader_epoch = excluded.leader_epoch, metadata = excluded.metadata",
                ))
                .bind(&p.transactional_id)
                .bind(group_id)
                .bind(o.topic_id)
                .bind(o.partition)
                .bind(o.offset)
                .bind(o.leader_epoch)
                .bind(o.metadata.as_deref())
                .execute(&mut *c)
                .await?;
            }
            Ok(TxnReply::Done)
        }

        async fn end(
            c: &mut $conn,
            p: &TxnProducer,
            commit: bool,
            now_ms: i64,
        ) -> Result<TxnReply> {
            let mut row = match checked(c, p).await? {
                Ok(r) => r,
                Err(r) => return Ok(TxnReply::Refused(r)),
            };
            match txn::end(&row, commit) {
                Err(r) => Ok(TxnReply::Refused(r)),
                Ok(End::AlreadyDone) => Ok(TxnReply::Ended(Vec::new())),
                Ok(End::Write) => Ok(TxnReply::Ended(
                    complete(c, &p.transactional_id, &mut row, commit, now_ms).await?,
                )),
            }
        }

        /// Transactions open past their timeout, oldest first (at most `limit`).
        pub(crate) async fn expired(c: &mut $conn, now_ms: i64, limit: i64) -> Result<Vec<String>> {
            Ok(sqlx::query_scalar(q(
                "SELECT transactional_id FROM transactions
                 WHERE state = 'ongoing' AND started_at_ms + timeout_ms < $1
                 ORDER BY started_at_ms LIMIT $2",
            ))
            .bind(now_ms)
            .bind(limit)
            .fetch_all(&mut *c)
            .await?)
        }

        /// Aborts `id`'s transaction if it is still open past its timeout, bumping the epoch
        /// as Kafka does so that its producer is fenced: the moved watermarks, or `None`
        /// when it had ended or moved on meanwhile.
        pub(crate) async fn abort_expired(
            c: &mut $conn,
            id: &str,
            now_ms: i64,
        ) -> Result<Option<Vec<PartitionWatermark>>> {
            let Some(mut row) = load(c, id).await? else {
                return Ok(None);
            };
            let expired = row.state == TxnState::Ongoing
                && row
                    .started_at_ms
                    .is_some_and(|s| s.saturating_add(i64::from(row.timeout_ms)) < now_ms);
            if !expired || row.producer_epoch >= i16::MAX - 1 {
                return Ok(None);
            }
            row.prev_epoch = Some(row.producer_epoch);
            row.producer_epoch += 1;
            complete(c, id, &mut row, false, now_ms).await.map(Some)
        }

        async fn aborted(
            c: &mut $conn,
            topic_id: Uuid,
            partition: i32,
            from: i64,
        ) -> Result<TxnReply> {
            let rows: Vec<(i64, i64, i64)> = sqlx::query_as(q(
                "SELECT producer_id, first_offset, last_offset FROM aborted_transactions
                 WHERE topic_id = $1 AND partition = $2 AND last_offset >= $3
                 ORDER BY first_offset",
            ))
            .bind(topic_id)
            .bind(partition)
            .bind(from)
            .fetch_all(&mut *c)
            .await?;
            Ok(TxnReply::Aborted(
                rows.into_iter()
                    .map(|(producer_id, first_offset, last_offset)| AbortedTxn {
                        producer_id,
                        first_offset,
                        last_offset,
                    })
                    .collect(),
            ))
        }

        async fn describe(c: &mut $conn, ids: Option<&[String]>) -> Result<TxnReply> {
            type D = (String, i64, i16, String, i32, Option<i64>);
            let rows: Vec<D> = sqlx::query_as(q(
                "SELECT transactional_id, producer_id, producer_epoch, state, timeout_ms,
                        started_at_ms
                 FROM transactions ORDER BY transactional_id",
            ))
            .fetch_all(&mut *c)
            .await?;
            let mut out = Vec::new();
            for (id, producer_id, producer_epoch, state, timeout_ms, started) in rows {
                if ids.is_some_and(|ids| !ids.contains(&id)) {
                    continue;
                }
                let partitions: Vec<(Uuid, i32)> = if ids.is_some() {
                    sqlx::query_as(q(
                        "SELECT topic_id, partition FROM transaction_partitions
                         WHERE transactional_id = $1 ORDER BY topic_id, partition",
                    ))
                    .bind(&id)
                    .fetch_all(&mut *c)
                    .await?
                } else {
                    Vec::new()
                };
                out.push(TxnDescription {
                    transactional_id: id,
                    state: TxnState::parse(&state)?.kafka_name().to_string(),
                    producer_id,
                    producer_epoch,
                    timeout_ms,
                    start_ms: started.unwrap_or(-1),
                    partitions,
                });
            }
            Ok(TxnReply::Described(out))
        }

        async fn producers(c: &mut $conn, topic_id: Uuid, partition: i32) -> Result<TxnReply> {
            type P = (i64, i16, i32, i64, Option<i64>);
            let rows: Vec<P> = sqlx::query_as(q(
                "SELECT pp.producer_id, pp.producer_epoch, pp.last_sequence,
                        pp.last_timestamp_ms,
                        (SELECT tp.first_offset FROM transaction_partitions tp
                         JOIN transactions t ON t.transactional_id = tp.transactional_id
                         WHERE t.producer_id = pp.producer_id AND tp.topic_id = pp.topic_id
                           AND tp.partition = pp.partition)
                 FROM producer_partitions pp
                 WHERE pp.topic_id = $1 AND pp.partition = $2
                 ORDER BY pp.producer_id",
            ))
            .bind(topic_id)
            .bind(partition)
            .fetch_all(&mut *c)
            .await?;
            Ok(TxnReply::Producers(
                rows.into_iter()
                    .map(|(producer_id, producer_epoch, last_sequence, ts, open)| {
                        ProducerListing {
                            producer_id,
                            producer_epoch,
                            last_sequence,
                            last_timestamp_ms: ts,
                            current_txn_start_offset: open.unwrap_or(-1),
                        }
                    })
                    .collect(),
            ))
        }

        /// Runs one coordinator call (not `AbortExpired`, which the store runs itself one
        /// transaction at a time). Returns the reply and the watermarks that moved.
        pub(crate) async fn call(
            c: &mut $conn,
            call: &TxnCall,
            now_ms: i64,
        ) -> Result<(TxnReply, Vec<PartitionWatermark>)> {
            let reply = match call {
                TxnCall::InitProducer {
                    transactional_id,
                    timeout_ms,
                    expected,
                } => return init(c, transactional_id, *timeout_ms, *expected, now_ms).await,
                TxnCall::AddPartitions {
                    producer,
                    partitions,
                } => add_partitions(c, producer, partitions, now_ms).await?,
                TxnCall::AddOffsets { producer, .. } => add_offsets(c, producer, now_ms).await?,
                TxnCall::CommitOffsets {
                    producer,
                    group_id,
                    offsets,
                } => commit_offsets(c, producer, group_id, offsets).await?,
                TxnCall::End { producer, commit } => {
                    let reply = end(c, producer, *commit, now_ms).await?;
                    let marks = match &reply {
                        TxnReply::Ended(m) => m.clone(),
                        _ => Vec::new(),
                    };
                    return Ok((reply, marks));
                }
                TxnCall::AbortExpired => TxnReply::Count(0),
                TxnCall::Aborted {
                    topic_id,
                    partition,
                    from_offset,
                } => aborted(c, *topic_id, *partition, *from_offset).await?,
                TxnCall::Describe { transactional_ids } => {
                    describe(c, Some(transactional_ids)).await?
                }
                TxnCall::List => describe(c, None).await?,
                TxnCall::Watermark {
                    topic_id,
                    partition,
                } => TxnReply::Watermark(marks(c, &[(*topic_id, *partition)]).await?.pop()),
                TxnCall::ExpireIds { idle_before_ms } => {
                    // The producer ids go with their transactional ids; an open transaction
                    // keeps its id (the timeout sweep ends it first).
                    sqlx::query(q(
                        "DELETE FROM producers WHERE transactional_id IN
                             (SELECT transactional_id FROM transactions
                              WHERE state <> 'ongoing' AND updated_at_ms < $1)",
                    ))
                    .bind(idle_before_ms)
                    .execute(&mut *c)
                    .await?;
                    let gone = sqlx::query(q(
                        "DELETE FROM transactions
                         WHERE state <> 'ongoing' AND updated_at_ms < $1",
                    ))
                    .bind(idle_before_ms)
                    .execute(&mut *c)
                    .await?
                    .rows_affected();
                    TxnReply::Count(gone)
                }
                TxnCall::PendingOffsets { group_id } => {
                    // Rows exist only while their transaction is open.
                    let rows: Vec<(Uuid, i32)> = sqlx::query_as(q(
                        "SELECT DISTINCT topic_id, partition FROM transaction_offsets
                         WHERE group_id = $1",
                    ))
                    .bind(group_id)
                    .fetch_all(&mut *c)
                    .await?;
                    TxnReply::Pending(rows)
                }
                TxnCall::Producers {
                    topic_id,
                    partition,
                } => producers(c, *topic_id, *partition).await?,
            };
            Ok((reply, Vec::new()))
        }

        /// The open transaction of a transactional producer, for the commit path.
        pub(crate) async fn produce_txn(
            c: &mut $conn,
            producer_id: i64,
        ) -> Result<Option<txn::ProduceTxn>> {
            let row: Option<(String, i16, String)> = sqlx::query_as(q(
                "SELECT transactional_id, producer_epoch, state FROM transactions
                 WHERE producer_id = $1",
            ))
            .bind(producer_id)
            .fetch_optional(&mut *c)
            .await?;
            Ok(row.map(|(transactional_id, producer_epoch, state)| txn::ProduceTxn {
                transactional_id,
                producer_epoch,
                ongoing: state == "ongoing",
            }))
        }

        /// Whether `(topic, partition)` is in `id`'s transaction, and its first offset there.
        pub(crate) async fn txn_partition(
            c: &mut $conn,
            id: &str,
            topic_id: Uuid,
            partition: i32,
        ) -> Result<Option<Option<i64>>> {
            Ok(sqlx::query_scalar(q(
                "SELECT first_offset FROM transaction_partitions
                 WHERE transactional_id = $1 AND topic_id = $2 AND partition = $3",
            ))
            .bind(id)
            .bind(topic_id)
            .bind(partition)
            .fetch_optional(&mut *c)
            .await?)
        }

        /// Records where a transaction's records start in a partition.
        pub(crate) async fn set_first_offset(
            c: &mut $conn,
            id: &str,
            topic_id: Uuid,
            partition: i32,
            offset: i64,
        ) -> Result<()> {
            sqlx::query(q(
                "UPDATE transaction_partitions SET first_offset = $4
                 WHERE transactional_id = $1 AND topic_id = $2 AND partition = $3
                   AND first_offset IS NULL",
            ))
            .bind(id)
            .bind(topic_id)
            .bind(partition)
            .bind(offset)
            .execute(&mut *c)
            .await?;
            Ok(())
        }
    };
}

pub(crate) use txn_ops;
