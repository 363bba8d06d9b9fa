//! Folding WAL chunks into per-partition segments. A WAL object holds a little of many
//! partitions, so reading one partition's history from WAL objects costs a GET per chunk and
//! keeps every WAL object alive while any of its partitions still needs it. Per partition,
//! the compactor reads runs of WAL chunks older than `segment_delay` (and small segments
//! written earlier) in offset order, writes them as one segment object with the real offsets
//! in its batches, and swaps the index entries in one metadata transaction that succeeds only
//! if the entries are still exactly those it read. Fetch results are the same bytes before and
//! after: batches are copied verbatim except their base offset, which the read path writes
//! anyway. The replaced objects are then unreferenced and go after the grace period.

use floe_format::keys;
use floe_format::segment::{SegmentBuilder, SegmentChunk};
use floe_metadata::{IndexEntry, LifecycleCall, LifecycleReply, SegmentSwap, TopicId};
use tracing::{error, warn};

use crate::{Compactor, CompactorError};

/// Index entries asked for per round trip.
const PAGE: u32 = 1000;

/// Bytes per index row into a segment: a fetch of one partition reads about a row at a time
/// (`max.partition.fetch.bytes` is 1 MiB by default).
const ROW_BYTES: u64 = 1024 * 1024;

/// What a segment pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SegmentReport {
    /// Segments written and swapped in.
    pub segments: u64,
    /// Bytes of chunks read (and written into segments).
    pub bytes: u64,
    /// Runs skipped because a chunk was unreadable or corrupt.
    pub skipped: u64,
    /// Bytes of old WAL chunks still waiting after the pass.
    pub backlog_bytes: u64,
}

/// A new segment key: random shard (S3 request-rate spread), no write time in the name (the
/// zone cache treats segments as old data).
pub(crate) fn segment_key(
    topic_id: TopicId,
    partition: i32,
    base_offset: i64,
    kind: &str,
) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!(
        "seg/{}/{}.{partition}.{base_offset}.{id}.{kind}",
        &id[..4],
        topic_id.simple()
    )
}

impl Compactor {
    /// Folds every partition's old WAL chunks into segments.
    pub(crate) async fn fold_segments(&self) -> Result<SegmentReport, CompactorError> {
        let mut report = SegmentReport::default();
        let now = self.clock.now_ms();
        let old_before = now.saturating_sub(crate::ms(self.settings.segment_delay));
        'topics: for topic in self.metadata.list_topics().await? {
            for p in &topic.partitions {
                if p.log_start_offset >= p.high_watermark {
                    continue;
                }
                if !self.still_leader().await? {
                    break 'topics;
                }
                // One partition's trouble (an unreadable object, a throttled GET) must not
                // stop the others, nor the deletions after this step.
                let start = p.log_start_offset;
                if let Err(e) = self
                    .fold_partition(topic.id, p.partition, start, old_before, &mut report)
                    .await
                {
                    warn!(topic = %topic.name, partition = p.partition, error = %e, "folding failed; retried next pass");
                    report.skipped += 1;
                }
            }
        }
        self.metrics
            .compactor_backlog_bytes
            .set(report.backlog_bytes as i64);
        Ok(report)
    }

    async fn fold_partition(
        &self,
        topic_id: TopicId,
        partition: i32,
        log_start: i64,
        old_before: i64,
        report: &mut SegmentReport,
    ) -> Result<(), CompactorError> {
        let target = self.settings.segment_bytes;
        let mut run: Vec<IndexEntry> = Vec::new();
        let mut run_bytes = 0u64;
        let mut from = log_start;
        'pages: loop {
            let page = self
                .metadata
                .read_index(topic_id, partition, from, PAGE)
                .await?;
            let Some(last) = page.last() else { break };
            from = last.last_offset + 1;
            let full = page.len() as u32 == PAGE;
            for e in page {
                let is_wal = keys::is_wal(&e.object_key);
                // A WAL key without a write time (written before keys carried one) is old.
                let old_wal =
                    is_wal && keys::wal_written_at_ms(&e.object_key).is_none_or(|t| t < old_before);
                // Cleaned segments of compacted topics are the cleaner's to rewrite.
                let small_segment = keys::is_segment(&e.object_key)
                    && !keys::is_cleaned(&e.object_key)
                    && (e.object_size as u64) < target / 2;
                if is_wal && !old_wal {
                    // The tail: too young to fold; everything after it is younger still.
                    break 'pages;
                }
                if !(old_wal || small_segment) {
                    self.flush(topic_id, partition, std::mem::take(&mut run), report)
                        .await?;
                    run_bytes = 0;
                    continue;
                }
                if old_wal {
                    report.backlog_bytes += e.byte_len.max(0) as u64;
                }
                run_bytes += e.byte_len.max(0) as u64;
                run.push(e);
                if run_bytes >= target {
                    self.flush(topic_id, partition, std::mem::take(&mut run), report)
                        .await?;
                    run_bytes = 0;
                }
            }
            if !full {
                break;
            }
        }
        self.flush(topic_id, partition, run, report).await
    }

    /// Writes `run` as one segment and swaps it in. A run worth nothing (no WAL chunk, and
    /// the rows of one segment object alone) is left as it is: rewriting it would produce the
    /// same segment again, pass after pass. Leading small segments larger than what follows
    /// them stay out of the run (see [`tiered`]).
    async fn flush(
        &self,
        topic_id: TopicId,
        partition: i32,
        run: Vec<IndexEntry>,
        report: &mut SegmentReport,
    ) -> Result<(), CompactorError> {
        let run = tiered(run);
        let wal_bytes: u64 = run
            .iter()
            .filter(|e| keys::is_wal(&e.object_key))
            .map(|e| e.byte_len.max(0) as u64)
            .sum();
        let has_wal = run.iter().any(|e| keys::is_wal(&e.object_key));
        let objects: std::collections::HashSet<&str> =
            run.iter().map(|e| e.object_key.as_str()).collect();
        if run.is_empty() || (!has_wal && objects.len() < 2) {
            return Ok(());
        }
        let mut builder = SegmentBuilder::new(*topic_id.as_bytes(), partition);
        let mut chunks: Vec<SegmentChunk> = Vec::with_capacity(run.len());
        for e in &run {
            let start = e.byte_offset.max(0) as u64;
            let bytes = match self
                .objects
                .get_range(
                    &e.object_key,
                    start..start + e.byte_len.max(0) as u64,
                    "compaction",
                )
                .await
            {
                Ok(b) => b,
                Err(err) if err.is_not_found() => {
                    // Swapped out by another pass meanwhile: the swap below would fail anyway.
                    warn!(key = %e.object_key, "chunk's object gone; skipping the run");
                    report.skipped += 1;
                    return Ok(());
                }
                Err(err) => return Err(err.into()),
            };
            match builder.append(&bytes, e.base_offset, e.last_offset) {
                Ok(c) => chunks.push(c),
                Err(err) => {
                    // Never fold or delete what cannot be read back: leave the run as it is.
                    error!(key = %e.object_key, base_offset = e.base_offset, error = %err, "corrupt chunk; run left unfolded");
                    self.metrics.compactor_corrupt_chunks.inc();
                    report.skipped += 1;
                    return Ok(());
                }
            }
        }
        if !self
            .swap_in(topic_id, partition, builder, &run, &chunks, "seg")
            .await?
        {
            report.skipped += 1;
            return Ok(());
        }
        report.segments += 1;
        report.bytes += chunks.iter().map(|c| c.byte_len).sum::<u64>();
        report.backlog_bytes = report.backlog_bytes.saturating_sub(wal_bytes);
        Ok(())
    }

    /// Uploads a segment replacing the index entries `replaced` (built from them into
    /// `chunks`) and swaps it in; false when the entries changed meanwhile (DeleteRecords,
    /// retention, a deleted topic, another pass): the segment, then unreferenced, is deleted
    /// at once rather than left to the orphan scan. `kind` ends the key (`seg`, or
    /// [`keys::cleaned_kind`]).
    pub(crate) async fn swap_in(
        &self,
        topic_id: TopicId,
        partition: i32,
        builder: SegmentBuilder,
        replaced: &[IndexEntry],
        chunks: &[SegmentChunk],
        kind: &str,
    ) -> Result<bool, CompactorError> {
        let object = builder.finish();
        let key = segment_key(topic_id, partition, replaced[0].base_offset, kind);
        let size = object.len() as i64;
        let written = object.len() as u64;
        self.objects.put(&key, object, "compaction").await?;
        let swap = SegmentSwap {
            topic_id,
            partition,
            replaced: replaced
                .iter()
                .map(|e| (e.base_offset, e.last_offset, e.object_key.clone()))
                .collect(),
            object_key: key.clone(),
            object_size: size,
            rows: rows(chunks, &key, size),
        };
        match self
            .metadata
            .lifecycle(LifecycleCall::SwapSegment(swap))
            .await?
        {
            LifecycleReply::Granted(true) => {
                self.metrics.compactor_segments.inc();
                self.metrics.compactor_segment_bytes.inc_by(written);
                Ok(true)
            }
            LifecycleReply::Granted(false) => {
                warn!(%key, "index changed while writing a segment; segment discarded");
                self.objects.delete(&key, "compaction").await?;
                Ok(false)
            }
            other => Err(CompactorError::Reply(format!("{other:?}"))),
        }
    }
}

/// The part of a run worth rewriting: a leading small segment is rewritten only together with
/// at least as many bytes after it. Without this rule a slow partition's tail segment would be
/// copied on every pass until it reached half the target size (a partition adding 1/50 of that
/// per pass would write each byte about 25 times); with it segments merge like a binary
/// counter, each byte rewritten about log2(target / bytes per pass) times, and a partition
/// keeps at most that many small segments.
fn tiered(mut run: Vec<IndexEntry>) -> Vec<IndexEntry> {
    let len = |e: &IndexEntry| e.byte_len.max(0) as u64;
    let mut rest: u64 = run.iter().map(len).sum();
    let mut skip = 0;
    while let Some(first) = run.get(skip) {
        if !keys::is_segment(&first.object_key) {
            break;
        }
        // A segment of several index rows counts (and stays out) as a whole.
        let rows = run[skip..]
            .iter()
            .take_while(|e| e.object_key == first.object_key)
            .count();
        let own: u64 = run[skip..skip + rows].iter().map(len).sum();
        if own <= rest - own {
            break;
        }
        rest -= own;
        skip += rows;
    }
    run.split_off(skip)
}

/// Index rows into a segment: consecutive chunks merged up to about [`ROW_BYTES`].
pub(crate) fn rows(chunks: &[SegmentChunk], key: &str, size: i64) -> Vec<IndexEntry> {
    let mut out: Vec<IndexEntry> = Vec::new();
    for c in chunks {
        match out.last_mut() {
            Some(r) if (r.byte_len as u64) < ROW_BYTES => {
                r.last_offset = c.last_offset;
                r.byte_len += c.byte_len as i64;
                r.batch_count += c.batch_count as i32;
                // -1: no batch (a range cleaned empty) has no timestamp.
                r.first_timestamp_ms = match (r.first_timestamp_ms, c.first_timestamp_ms) {
                    (a, b) if a < 0 => b,
                    (a, b) if b < 0 => a,
                    (a, b) => a.min(b),
                };
                r.max_timestamp_ms = r.max_timestamp_ms.max(c.max_timestamp_ms);
            }
            _ => out.push(IndexEntry {
                base_offset: c.base_offset,
                last_offset: c.last_offset,
                object_key: key.to_string(),
                object_size: size,
                byte_offset: c.byte_offset as i64,
                byte_len: c.byte_len as i64,
                batch_count: c.batch_count as i32,
                first_timestamp_ms: c.first_timestamp_ms,
                max_timestamp_ms: c.max_timestamp_ms,
                control: None,
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wal_keys_carry_their_time_and_segments_do_not() {
        assert_eq!(
            keys::wal_written_at_ms("wal/00ff/3-1764567890123-abc.wal"),
            Some(1_764_567_890_123)
        );
        let seg = segment_key(uuid::Uuid::nil(), 2, 40, "seg");
        assert!(seg.starts_with("seg/"));
        assert_eq!(keys::wal_written_at_ms(&seg), None);
        assert_eq!(crate::ms(std::time::Duration::from_secs(1)), 1000);
    }

    #[test]
    fn rows_merge_chunks_up_to_a_mebibyte() {
        let c = |base: i64, at: u64, len: u64| SegmentChunk {
            byte_offset: at,
            byte_len: len,
            batch_count: 1,
            base_offset: base,
            last_offset: base + 9,
            first_timestamp_ms: base,
            max_timestamp_ms: base + 1,
        };
        let chunks = [
            c(0, 0, 600_000),
            c(10, 600_000, 600_000),
            c(20, 1_200_000, 10),
        ];
        let r = rows(&chunks, "k", 2_000_000);
        assert_eq!(r.len(), 2);
        assert_eq!(
            (r[0].base_offset, r[0].last_offset, r[0].byte_len),
            (0, 19, 1_200_000)
        );
        assert_eq!((r[1].base_offset, r[1].byte_offset), (20, 1_200_000));
    }
}
