//! The segment object: what the compactor writes when it folds a partition's WAL chunks
//! together. One partition, batches in offset order with their real base offsets written in,
//! then a sparse offset and timestamp index and a trailer. Readers normally go by the offset
//! index in the metadata store (rows into the data section); the in-object index lets tools
//! and a rebuilt metadata find offsets and times without it.
//!
//! Layout v1 (all integers big-endian):
//!
//! ```text
//! data           batches, verbatim except base_offset (real offsets)
//! index          entry_count entries of 24 B: first offset u64 (i64), max timestamp so far
//!                i64, byte position u64 of the batch holding that offset
//! trailer 68 B   topic_id [16], partition i32, base_offset i64, last_offset i64,
//!                data_len u64, entry_count u32, index_crc32c u32, version u16, flags u16,
//!                reserved u32, end magic "FLOESEG\0"
//! ```

use bytes::{BufMut, Bytes, BytesMut};

use crate::batch::split_batches;
use crate::error::FormatError;

/// Last eight bytes of every segment object.
pub const SEGMENT_MAGIC: [u8; 8] = *b"FLOESEG\0";
/// The layout version this build writes and reads.
pub const SEGMENT_VERSION: u16 = 1;
/// Size of the trailer.
pub const SEGMENT_TRAILER_LEN: usize = 68;
/// Size of one index entry.
pub const SEGMENT_ENTRY_LEN: usize = 24;
/// Data bytes between index entries (at batch boundaries).
pub const SEGMENT_INDEX_INTERVAL: usize = 256 * 1024;

/// One sparse index entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentIndexEntry {
    /// First offset of the batch at `position`.
    pub offset: i64,
    /// Largest batch timestamp up to and including that batch.
    pub max_timestamp_ms: i64,
    /// Byte position of the batch in the data section.
    pub position: u64,
}

/// What a segment's trailer and index say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    /// Topic id.
    pub topic_id: [u8; 16],
    /// Partition.
    pub partition: i32,
    /// First offset held.
    pub base_offset: i64,
    /// Last offset held.
    pub last_offset: i64,
    /// Length of the data section (from byte 0).
    pub data_len: u64,
    /// The sparse index.
    pub index: Vec<SegmentIndexEntry>,
}

/// Builds a segment from chunks of one partition, in offset order.
pub struct SegmentBuilder {
    topic_id: [u8; 16],
    partition: i32,
    data: BytesMut,
    index: Vec<SegmentIndexEntry>,
    next_offset: Option<i64>,
    base_offset: i64,
    max_timestamp_ms: i64,
    last_indexed: Option<usize>,
}

/// Where a chunk landed in the segment's data section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentChunk {
    /// Byte position in the segment.
    pub byte_offset: u64,
    /// Length.
    pub byte_len: u64,
    /// Batches.
    pub batch_count: u32,
    /// First offset.
    pub base_offset: i64,
    /// Last offset.
    pub last_offset: i64,
    /// Smallest batch base timestamp.
    pub first_timestamp_ms: i64,
    /// Largest batch max timestamp.
    pub max_timestamp_ms: i64,
}

impl SegmentBuilder {
    /// An empty segment of one partition.
    pub fn new(topic_id: [u8; 16], partition: i32) -> Self {
        SegmentBuilder {
            topic_id,
            partition,
            data: BytesMut::new(),
            index: Vec::new(),
            next_offset: None,
            base_offset: 0,
            max_timestamp_ms: -1,
            last_indexed: None,
        }
    }

    /// Bytes of batches so far.
    pub fn data_len(&self) -> usize {
        self.data.len()
    }

    /// Appends a chunk whose first batch holds `base_offset` and whose batches must end at
    /// `last_offset`: checks every batch (CRC included), writes the real base offsets in,
    /// and refuses a chunk that does not continue the previous one.
    pub fn append(
        &mut self,
        chunk: &[u8],
        base_offset: i64,
        last_offset: i64,
    ) -> Result<SegmentChunk, FormatError> {
        self.check_continues(base_offset)?;
        let batches = split_batches(chunk)?;
        let mut placed = Vec::with_capacity(batches.len());
        let mut offset = base_offset;
        for b in batches {
            let next = offset
                .checked_add(i64::from(b.header.last_offset_delta) + 1)
                .ok_or(FormatError::OffsetOverflow)?;
            placed.push((offset, b));
            offset = next;
        }
        if offset != last_offset + 1 {
            return Err(FormatError::InvalidRecord(
                "chunk offsets disagree with the index",
            ));
        }
        Ok(self.write(chunk, &placed, base_offset, last_offset))
    }

    /// Appends the cleaned batches of offsets `base_offset..=last_offset` (a compacted
    /// topic): batches carry their real base offsets already and may leave gaps, or be none
    /// at all; they must lie in the range, in order. The range must continue the previous one.
    pub fn append_sparse(
        &mut self,
        batches: &[u8],
        base_offset: i64,
        last_offset: i64,
    ) -> Result<SegmentChunk, FormatError> {
        self.check_continues(base_offset)?;
        let refs = if batches.is_empty() {
            Vec::new()
        } else {
            split_batches(batches)?
        };
        let mut after = base_offset;
        let mut placed = Vec::with_capacity(refs.len());
        for b in refs {
            let last = b.header.base_offset + i64::from(b.header.last_offset_delta);
            if b.header.base_offset < after || last > last_offset {
                return Err(FormatError::InvalidRecord(
                    "cleaned batches out of order or outside their range",
                ));
            }
            after = last + 1;
            placed.push((b.header.base_offset, b));
        }
        Ok(self.write(batches, &placed, base_offset, last_offset))
    }

    /// Refuses a range that does not continue the previous one.
    fn check_continues(&self, base_offset: i64) -> Result<(), FormatError> {
        match self.next_offset {
            Some(next) if next != base_offset => Err(FormatError::InvalidRecord(
                "segment chunks must be contiguous",
            )),
            _ => Ok(()),
        }
    }

    /// Writes validated batches of `src`, each with its real base offset, as the chunk of
    /// offsets `base_offset..=last_offset`, indexing every [`SEGMENT_INDEX_INTERVAL`].
    fn write(
        &mut self,
        src: &[u8],
        placed: &[(i64, crate::batch::BatchRef)],
        base_offset: i64,
        last_offset: i64,
    ) -> SegmentChunk {
        if self.next_offset.is_none() {
            self.base_offset = base_offset;
        }
        let start = self.data.len();
        let (mut first_ts, mut max_ts) = (i64::MAX, i64::MIN);
        for (offset, b) in placed {
            let pos = self.data.len();
            if self
                .last_indexed
                .is_none_or(|last| pos - last >= SEGMENT_INDEX_INTERVAL)
            {
                self.index.push(SegmentIndexEntry {
                    offset: *offset,
                    max_timestamp_ms: self.max_timestamp_ms.max(b.header.max_timestamp),
                    position: pos as u64,
                });
                self.last_indexed = Some(pos);
            }
            self.data.extend_from_slice(&src[b.range.clone()]);
            self.data[pos..pos + 8].copy_from_slice(&offset.to_be_bytes());
            // A batch with a delete horizon keeps the horizon in its base timestamp; its
            // records are no later than its max timestamp.
            let first = match b.header.delete_horizon_ms() {
                Some(_) => b.header.max_timestamp,
                None => b.header.base_timestamp,
            };
            first_ts = first_ts.min(first);
            max_ts = max_ts.max(b.header.max_timestamp);
            self.max_timestamp_ms = self.max_timestamp_ms.max(b.header.max_timestamp);
        }
        self.next_offset = Some(last_offset + 1);
        let none = placed.is_empty();
        SegmentChunk {
            byte_offset: start as u64,
            byte_len: (self.data.len() - start) as u64,
            batch_count: placed.len() as u32,
            base_offset,
            last_offset,
            // No batch (a range cleaned empty): no timestamp.
            first_timestamp_ms: if none { -1 } else { first_ts },
            max_timestamp_ms: if none { -1 } else { max_ts },
        }
    }

    /// The object bytes: data, index, trailer.
    pub fn finish(self) -> Bytes {
        let data_len = self.data.len() as u64;
        let mut out = self.data;
        let index_start = out.len();
        for e in &self.index {
            out.put_i64(e.offset);
            out.put_i64(e.max_timestamp_ms);
            out.put_u64(e.position);
        }
        let crc = crc32c::crc32c(&out[index_start..]);
        out.put_slice(&self.topic_id);
        out.put_i32(self.partition);
        out.put_i64(self.base_offset);
        out.put_i64(self.next_offset.map_or(self.base_offset - 1, |n| n - 1));
        out.put_u64(data_len);
        out.put_u32(self.index.len() as u32);
        out.put_u32(crc);
        out.put_u16(SEGMENT_VERSION);
        out.put_u16(0);
        out.put_u32(0);
        out.put_slice(&SEGMENT_MAGIC);
        out.freeze()
    }
}

fn be<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&b[at..at + N]);
    a
}

/// Reads a segment's trailer and index (not its batches).
pub fn read_segment(object: &[u8]) -> Result<SegmentInfo, FormatError> {
    let n = object.len();
    if n < SEGMENT_TRAILER_LEN {
        return Err(FormatError::Truncated {
            needed: SEGMENT_TRAILER_LEN,
            available: n,
        });
    }
    let t = &object[n - SEGMENT_TRAILER_LEN..];
    if t[60..68] != SEGMENT_MAGIC {
        return Err(FormatError::BadWalMagic);
    }
    let version = u16::from_be_bytes(be(t, 52));
    if version != SEGMENT_VERSION {
        return Err(FormatError::UnsupportedWalVersion(version));
    }
    let data_len = u64::from_be_bytes(be(t, 36));
    let count = u32::from_be_bytes(be(t, 44)) as usize;
    let stored = u32::from_be_bytes(be(t, 48));
    let index_len = count
        .checked_mul(SEGMENT_ENTRY_LEN)
        .ok_or(FormatError::TooLarge { limit: n })?;
    let index_start = usize::try_from(data_len).map_err(|_| FormatError::TooLarge { limit: n })?;
    if index_start
        .checked_add(index_len)
        .is_none_or(|end| end != n - SEGMENT_TRAILER_LEN)
    {
        return Err(FormatError::Truncated {
            needed: index_start.saturating_add(index_len) + SEGMENT_TRAILER_LEN,
            available: n,
        });
    }
    let index_bytes = &object[index_start..index_start + index_len];
    let computed = crc32c::crc32c(index_bytes);
    if computed != stored {
        return Err(FormatError::FooterCrcMismatch { stored, computed });
    }
    let index = index_bytes
        .chunks_exact(SEGMENT_ENTRY_LEN)
        .map(|e| SegmentIndexEntry {
            offset: i64::from_be_bytes(be(e, 0)),
            max_timestamp_ms: i64::from_be_bytes(be(e, 8)),
            position: u64::from_be_bytes(be(e, 16)),
        })
        .collect();
    Ok(SegmentInfo {
        topic_id: be(t, 0),
        partition: i32::from_be_bytes(be(t, 16)),
        base_offset: i64::from_be_bytes(be(t, 20)),
        last_offset: i64::from_be_bytes(be(t, 28)),
        data_len,
        index,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{encode_batch, BatchSpec, Record};
    use crate::Compression;

    fn batch(records: usize, ts: i64, size: usize) -> Bytes {
        let recs: Vec<Record> = (0..records)
            .map(|i| Record {
                offset_delta: i as i32,
                timestamp_delta: 0,
                key: None,
                value: Some(Bytes::from(vec![7u8; size])),
                headers: Vec::new(),
            })
            .collect();
        encode_batch(
            &BatchSpec {
                base_timestamp: ts,
                max_timestamp: ts,
                ..BatchSpec::default()
            },
            &recs,
            Compression::None,
        )
        .expect("batch")
    }

    #[test]
    fn chunks_fold_into_a_segment_with_real_offsets_and_an_index() {
        let mut b = SegmentBuilder::new([1; 16], 3);
        let mut chunk = BytesMut::new();
        for i in 0..10 {
            chunk.extend_from_slice(&batch(2, 1000 + i, 100_000));
        }
        let c1 = b.append(&chunk, 100, 119).expect("first");
        assert_eq!((c1.byte_offset, c1.batch_count), (0, 10));
        assert_eq!((c1.first_timestamp_ms, c1.max_timestamp_ms), (1000, 1009));
        let c2 = b.append(&batch(3, 5000, 10), 120, 122).expect("second");
        assert_eq!(c2.byte_offset, c1.byte_len);
        // Not contiguous, or offsets that disagree: refused, nothing appended.
        assert!(b.append(&batch(1, 0, 1), 200, 200).is_err());
        let len = b.data_len();
        let mut b2 = SegmentBuilder::new([1; 16], 3);
        assert!(b2.append(&batch(3, 0, 1), 0, 1).is_err());
        assert_eq!(b2.data_len(), 0);
        let object = b.finish();
        let info = read_segment(&object).expect("read");
        assert_eq!((info.base_offset, info.last_offset), (100, 122));
        assert_eq!((info.partition, info.topic_id), (3, [1; 16]));
        assert_eq!(info.data_len as usize, len);
        assert!(info.index.len() >= 3, "{:?}", info.index);
        assert_eq!(info.index[0].offset, 100);
        // Every batch carries its real base offset and is still valid.
        let batches = split_batches(&object[..len]).expect("valid batches");
        let bases: Vec<i64> = batches.iter().map(|b| b.header.base_offset).collect();
        assert_eq!(bases[..3], [100, 102, 104]);
        assert_eq!(*bases.last().expect("last"), 120);
        for e in &info.index {
            let at = e.position as usize;
            assert_eq!(i64::from_be_bytes(be(&object[at..], 0)), e.offset);
        }
        // Garbage and truncation are errors, not panics.
        assert!(read_segment(&object[..object.len() - 1]).is_err());
        assert!(read_segment(b"short").is_err());
        let mut bad = object.to_vec();
        bad[len] ^= 1;
        assert!(matches!(
            read_segment(&bad),
            Err(FormatError::FooterCrcMismatch { .. })
        ));
    }
}
