//! Compacted topics (`cleanup.policy` with `compact`): the latest record of each key
//! survives, earlier ones go, offsets keep their gaps, and tombstones (null values) go once
//! they are older than `delete.retention.ms`.
//!
//! Per partition, as Kafka's log cleaner: the log from its start is a clean prefix (segments
//! this cleaner wrote, keys ending `.clean`) followed by dirty entries. Nothing younger than
//! `min.compaction.lag.ms` is cleaned, and the log's last record always stays (where Kafka
//! never cleans its active segment), so a consumer at the end has a batch to move past. Cleaning starts when the dirty share of the
//! cleanable bytes reaches `min.cleanable.dirty.ratio`, or when the oldest dirty record is
//! older than `max.compaction.lag.ms`. It then reads the cleanable range twice: once to learn
//! each key's last offset, once to write every batch with only the records that are their
//! key's last (re-encoded with the same codec and offset span, see
//! `floe_format::records::retain_records`) into `.clean` segments, swapped in as any segment.
//!
//! Transactions, as Kafka's cleaner: nothing at or past the last stable offset is cleaned
//! (an open transaction's records must stay until its marker says what they are); records
//! of aborted transactions are removed; committed transactional records are compacted like
//! any others (their batches keep their transactional attributes); markers are kept.
//!
//! Tombstones, as Kafka since KIP-534: the first cleaning that keeps a batch's tombstones
//! stamps the batch with a delete horizon (cleaning time + `delete.retention.ms`, attribute
//! bit 6, see `floe_format::records::set_delete_horizon`); a later cleaning after the horizon
//! removes them. So a consumer has `delete.retention.ms` to see a tombstone however old its
//! producer timestamp (replayed or mirrored data), and a cleaned segment's key carries its
//! earliest horizon (`floe_format::keys`), which makes the partition due once it passes even
//! when nothing new was written.
//!
//! Simplifications, documented in docs/ARCHITECTURE.md: the key map covers the whole
//! cleanable range in memory; markers stay for good (Kafka removes a marker once no record
//! of its transaction is left and its delete horizon has passed).

use std::collections::{BTreeMap, HashMap};

use bytes::{Bytes, BytesMut};
use floe_format::keys;
use floe_format::records::{retain_records, set_delete_horizon, Retained};
use floe_format::segment::{SegmentBuilder, SegmentChunk};
use floe_format::split_batches;
use floe_metadata::{AbortedTxn, IndexEntry, TopicId, TxnCall, TxnReply};
use tracing::{error, warn};

use crate::{Compactor, CompactorError};

/// Most bytes one batch may decompress to while cleaning.
const MAX_DECODED: usize = 256 * 1024 * 1024;

/// A compacted topic's cleaning settings (Kafka's names and defaults).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CompactionConfig {
    /// `min.compaction.lag.ms`: records younger than this are not cleaned.
    pub min_lag_ms: i64,
    /// `max.compaction.lag.ms`: a dirty record older than this forces a cleaning.
    pub max_lag_ms: i64,
    /// `min.cleanable.dirty.ratio`.
    pub dirty_ratio: f64,
    /// `delete.retention.ms`: how long tombstones stay readable.
    pub delete_retention_ms: i64,
}

/// The cleaning settings of a topic whose `cleanup.policy` includes `compact`.
pub fn compaction_of(configs: &BTreeMap<String, String>) -> Option<CompactionConfig> {
    let policy = configs.get("cleanup.policy")?;
    if !policy.split(',').any(|p| p.trim() == "compact") {
        return None;
    }
    let num = |key: &str, default: i64| {
        configs
            .get(key)
            .and_then(|v| v.trim().parse::<i64>().ok())
            .unwrap_or(default)
    };
    Some(CompactionConfig {
        min_lag_ms: num("min.compaction.lag.ms", 0).max(0),
        max_lag_ms: num("max.compaction.lag.ms", i64::MAX).max(0),
        dirty_ratio: configs
            .get("min.cleanable.dirty.ratio")
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|r| (0.0..=1.0).contains(r))
            .unwrap_or(0.5),
        delete_retention_ms: num("delete.retention.ms", 86_400_000).max(0),
    })
}

/// What cleaning did in one pass.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CleanReport {
    /// Partitions cleaned.
    pub partitions: u64,
    /// Records removed.
    pub records_removed: u64,
}

/// One batch of a chunk with its real base offset.
struct Batch<'a> {
    base: i64,
    bytes: &'a [u8],
    /// A transaction marker (kept as it is).
    control: bool,
    /// Records of an aborted transaction (removed).
    aborted: bool,
}

/// Whether a transactional batch of `producer_id` at `offset` belongs to an aborted
/// transaction: a producer has one transaction open at a time, so its records between an
/// aborted transaction's first offset and marker are that transaction's.
fn is_aborted(aborted: &[AbortedTxn], producer_id: i64, offset: i64) -> bool {
    aborted.iter().any(|a| {
        a.producer_id == producer_id && a.first_offset <= offset && offset <= a.last_offset
    })
}

/// The batches of an entry's bytes with their real offsets: stored in segments, derived from
/// the entry in WAL chunks (which carry the producer's placeholders).
fn batches<'a>(
    e: &IndexEntry,
    bytes: &'a [u8],
    aborted: &[AbortedTxn],
) -> Result<Vec<Batch<'a>>, floe_format::FormatError> {
    let real = floe_format::keys::is_segment(&e.object_key);
    let mut base = e.base_offset;
    let mut out = Vec::new();
    if bytes.is_empty() {
        return Ok(out);
    }
    for b in split_batches(bytes)? {
        if real {
            base = b.header.base_offset;
        }
        let control = b.header.is_control();
        out.push(Batch {
            base,
            bytes: &bytes[b.range.clone()],
            control,
            aborted: !control
                && b.header.is_transactional()
                && is_aborted(aborted, b.header.producer_id, base),
        });
        base += i64::from(b.header.last_offset_delta) + 1;
    }
    Ok(out)
}

impl Compactor {
    /// Cleans every partition of every compacted topic that is due.
    pub(crate) async fn clean_compacted(&self) -> Result<CleanReport, CompactorError> {
        let mut report = CleanReport::default();
        let now = self.clock.now_ms();
        'topics: for topic in self.metadata.list_topics().await? {
            let Some(cfg) = compaction_of(&topic.configs) else {
                continue;
            };
            for p in &topic.partitions {
                if p.log_start_offset >= p.high_watermark {
                    continue;
                }
                if !self.still_leader().await? {
                    break 'topics;
                }
                // One partition's trouble must not stop the others or the deletions.
                let range = (p.log_start_offset, p.high_watermark);
                if let Err(e) = self
                    .clean_partition(topic.id, p.partition, range, cfg, now, &mut report)
                    .await
                {
                    warn!(topic = %topic.name, partition = p.partition, error = %e, "cleaning failed; retried next pass");
                }
            }
        }
        Ok(report)
    }

    async fn entries_from(
        &self,
        topic_id: TopicId,
        partition: i32,
        mut from: i64,
    ) -> Result<Vec<IndexEntry>, CompactorError> {
        let mut all = Vec::new();
        loop {
            let page = self
                .metadata
                .read_index(topic_id, partition, from, 1000)
                .await?;
            let Some(last) = page.last() else { break };
            from = last.last_offset + 1;
            let full = page.len() == 1000;
            all.extend(page);
            if !full {
                break;
            }
        }
        Ok(all)
    }

    async fn read_entry(&self, e: &IndexEntry) -> Result<Bytes, CompactorError> {
        if let Some(m) = e.control {
            // A transaction marker lives in the index only; the cleaned segment carries it
            // as the control batch readers were shown, so it is kept at its offset.
            return floe_format::records::control_batch(
                e.base_offset,
                m.producer_id,
                m.producer_epoch,
                m.commit,
                e.max_timestamp_ms,
            )
            .map_err(|err| CompactorError::Marker(err.to_string()));
        }
        if e.byte_len <= 0 {
            return Ok(Bytes::new());
        }
        let start = e.byte_offset.max(0) as u64;
        Ok(self
            .objects
            .get_range(
                &e.object_key,
                start..start + e.byte_len as u64,
                "compaction",
            )
            .await?)
    }

    async fn clean_partition(
        &self,
        topic_id: TopicId,
        partition: i32,
        (log_start, high_watermark): (i64, i64),
        cfg: CompactionConfig,
        now: i64,
        report: &mut CleanReport,
    ) -> Result<(), CompactorError> {
        let entries = self.entries_from(topic_id, partition, log_start).await?;
        let (stable, aborted) = self.transactions_of(topic_id, partition, log_start).await?;
        // Nothing younger than the minimum lag (an entry's largest timestamp counts), and
        // nothing an open transaction may still abort.
        let end = entries
            .iter()
            .position(|e| {
                e.max_timestamp_ms > now.saturating_sub(cfg.min_lag_ms) || e.last_offset >= stable
            })
            .unwrap_or(entries.len());
        let cleanable = &entries[..end];
        // The log's last record always stays (it is its key's latest; even an expired
        // tombstone), so a consumer at the end always has a batch to move past, as Kafka's
        // never-cleaned active segment ensures.
        let last_offset = high_watermark - 1;
        let clean_len = cleanable
            .iter()
            .take_while(|e| keys::is_cleaned(&e.object_key))
            .count();
        // Tombstones kept by an earlier cleaning whose delete horizon has passed.
        let horizon_passed = cleanable[..clean_len]
            .iter()
            .any(|e| keys::delete_horizon_ms(&e.object_key).is_some_and(|h| h <= now));
        let dirty = &cleanable[clean_len..];
        let bytes = |es: &[IndexEntry]| es.iter().map(|e| e.byte_len.max(0) as f64).sum::<f64>();
        let ratio = bytes(dirty) / bytes(cleanable).max(1.0);
        let overdue = dirty.first().is_some_and(|d| {
            d.first_timestamp_ms >= 0 && d.first_timestamp_ms < now.saturating_sub(cfg.max_lag_ms)
        });
        let due = (!dirty.is_empty() && ratio >= cfg.dirty_ratio) || overdue || horizon_passed;
        if !due {
            return Ok(());
        }
        // Pass 1: each key's last offset in the cleanable range.
        let mut latest: HashMap<Bytes, i64> = HashMap::new();
        for e in cleanable {
            let data = self.read_entry(e).await?;
            let parsed = match batches(e, &data, &aborted) {
                Ok(b) => b,
                Err(err) => return self.corrupt(e, &err.to_string()),
            };
            for b in parsed.iter().filter(|b| !b.control && !b.aborted) {
                let mut copy = b.bytes.to_vec();
                copy[..8].copy_from_slice(&b.base.to_be_bytes());
                let records = match floe_format::decode_records(&copy, MAX_DECODED) {
                    Ok(r) => r,
                    Err(err) => return self.corrupt(e, &err.to_string()),
                };
                for r in records {
                    if let Some(k) = r.key {
                        latest.insert(
                            Bytes::copy_from_slice(&k),
                            b.base + i64::from(r.offset_delta),
                        );
                    }
                }
            }
        }
        // Pass 2: rewrite, in segments of about the target size.
        let new_horizon = now.saturating_add(cfg.delete_retention_ms);
        // The earliest delete horizon of the tombstones kept in the segment being built.
        let mut horizon: Option<i64> = None;
        let mut group: Vec<IndexEntry> = Vec::new();
        let mut chunks: Vec<SegmentChunk> = Vec::new();
        let mut builder = SegmentBuilder::new(*topic_id.as_bytes(), partition);
        let mut removed = 0u64;
        for e in cleanable {
            let data = self.read_entry(e).await?;
            let parsed = match batches(e, &data, &aborted) {
                Ok(b) => b,
                Err(err) => return self.corrupt(e, &err.to_string()),
            };
            let mut out = BytesMut::new();
            for b in parsed {
                let mut copy = b.bytes.to_vec();
                copy[..8].copy_from_slice(&b.base.to_be_bytes());
                if b.control {
                    out.extend_from_slice(&copy);
                    continue;
                }
                let header = floe_format::BatchHeader::parse(&copy)
                    .map_err(|err| CompactorError::Reply(err.to_string()))?;
                if b.aborted {
                    removed += u64::try_from(header.records_count).unwrap_or(0);
                    continue;
                }
                let expired = header.delete_horizon_ms().is_some_and(|h| h <= now);
                let mut dropped = 0u64;
                // Tombstones kept that a later cleaning will remove.
                let mut tombstones = 0u64;
                let kept = retain_records(&copy, MAX_DECODED, |offset, r| {
                    let keep = match &r.key {
                        // Keyless records cannot be compacted (produce refuses them; older
                        // data may hold some): keep them.
                        None => true,
                        Some(k) => {
                            latest.get(&k[..]) == Some(&offset)
                                && (r.value.is_some() || !expired || offset == last_offset)
                        }
                    };
                    dropped += u64::from(!keep);
                    tombstones +=
                        u64::from(keep && !expired && r.key.is_some() && r.value.is_none());
                    keep
                });
                removed += dropped;
                let kept = match kept {
                    Ok(Retained::All) => Bytes::from(copy),
                    Ok(Retained::Some(b)) => b,
                    Ok(Retained::None) => continue,
                    Err(err) => return self.corrupt(e, &err.to_string()),
                };
                if tombstones == 0 {
                    out.extend_from_slice(&kept);
                    continue;
                }
                let (kept, h) = match header.delete_horizon_ms() {
                    Some(h) => (kept, h),
                    None => match set_delete_horizon(&kept, MAX_DECODED, new_horizon) {
                        Ok(b) => (b, new_horizon),
                        Err(err) => return self.corrupt(e, &err.to_string()),
                    },
                };
                horizon = Some(horizon.map_or(h, |o| o.min(h)));
                out.extend_from_slice(&kept);
            }
            match builder.append_sparse(&out, e.base_offset, e.last_offset) {
                Ok(c) => chunks.push(c),
                Err(err) => return self.corrupt(e, &err.to_string()),
            }
            group.push(e.clone());
            if builder.data_len() as u64 >= self.settings.segment_bytes {
                let full = std::mem::replace(
                    &mut builder,
                    SegmentBuilder::new(*topic_id.as_bytes(), partition),
                );
                let kind = keys::cleaned_kind(horizon.take());
                let swapped = self
                    .swap_in(topic_id, partition, full, &group, &chunks, &kind)
                    .await?;
                group.clear();
                chunks.clear();
                if !swapped {
                    return Ok(());
                }
            }
        }
        let kind = keys::cleaned_kind(horizon);
        if !group.is_empty()
            && !self
                .swap_in(topic_id, partition, builder, &group, &chunks, &kind)
                .await?
        {
            return Ok(());
        }
        report.partitions += 1;
        report.records_removed += removed;
        self.metrics.compactor_records_cleaned.inc_by(removed);
        Ok(())
    }

    /// The partition's last stable offset and its aborted transactions still in the log.
    async fn transactions_of(
        &self,
        topic_id: TopicId,
        partition: i32,
        log_start: i64,
    ) -> Result<(i64, Vec<AbortedTxn>), CompactorError> {
        let call = TxnCall::Watermark {
            topic_id,
            partition,
        };
        let stable = match self.metadata.txn(call).await? {
            TxnReply::Watermark(Some(m)) => m.last_stable_offset.unwrap_or(m.high_watermark),
            // Deleted meanwhile: clean nothing.
            TxnReply::Watermark(None) => log_start,
            other => return Err(CompactorError::Reply(format!("{other:?}"))),
        };
        let call = TxnCall::Aborted {
            topic_id,
            partition,
            from_offset: log_start,
        };
        let aborted = match self.metadata.txn(call).await? {
            TxnReply::Aborted(a) => a,
            other => return Err(CompactorError::Reply(format!("{other:?}"))),
        };
        Ok((stable, aborted))
    }

    fn corrupt(&self, e: &IndexEntry, what: &str) -> Result<(), CompactorError> {
        error!(key = %e.object_key, base_offset = e.base_offset, error = what, "unreadable chunk; partition left uncleaned");
        self.metrics.compactor_corrupt_chunks.inc();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compaction_settings_follow_kafka() {
        let c = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>()
        };
        assert_eq!(compaction_of(&c(&[])), None);
        assert_eq!(compaction_of(&c(&[("cleanup.policy", "delete")])), None);
        let d = compaction_of(&c(&[("cleanup.policy", "compact,delete")])).expect("compact");
        assert_eq!(
            d,
            CompactionConfig {
                min_lag_ms: 0,
                max_lag_ms: i64::MAX,
                dirty_ratio: 0.5,
                delete_retention_ms: 86_400_000
            }
        );
        let d = compaction_of(&c(&[
            ("cleanup.policy", "compact"),
            ("min.cleanable.dirty.ratio", "7"),
            ("delete.retention.ms", "5"),
        ]))
        .expect("compact");
        assert_eq!((d.dirty_ratio, d.delete_retention_ms), (0.5, 5));
    }
}
