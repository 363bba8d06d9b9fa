//! The WAL object: what an agent uploads when it seals its open buffer, holding the produce
//! batches of many partitions. The agent fills a [`WalObjectBuilder`] from validated produce
//! requests, uploads the bytes from [`WalObjectBuilder::finish`] and commits the returned
//! [`ChunkMeta`]s; the fetch path reads chunks by byte range and checks them with
//! [`verify_chunk`]; tools and the compactor can list an object with [`read_footer`].
//!
//! Layout v1 (all integers big-endian; `docs/wal-format.md` is the full description):
//!
//! ```text
//! header  16 B  magic "FLOEWAL\0", version u16 = 1, flags u16 = 0, reserved u32 = 0
//! chunks        each partition's batches, verbatim, in order of first append
//! footer        entry_count entries of 68 B
//! trailer 32 B  footer_offset u64, entry_count u32, footer_crc32c u32,
//!               version u16, flags u16, reserved u32, end magic "FLOEEND\0"
//! ```

use std::collections::HashMap;

use bytes::{BufMut, Bytes, BytesMut};

use crate::batch::BatchHeader;
use crate::error::FormatError;

/// First eight bytes of every WAL object.
pub const WAL_MAGIC: [u8; 8] = *b"FLOEWAL\0";
/// Last eight bytes of every WAL object, so a truncated upload is caught from the tail alone.
pub const WAL_END_MAGIC: [u8; 8] = *b"FLOEEND\0";
/// The layout version this build writes and reads.
pub const WAL_VERSION: u16 = 1;
/// Size of the object header.
pub const WAL_HEADER_LEN: usize = 16;
/// Size of one footer entry.
pub const WAL_ENTRY_LEN: usize = 68;
/// Size of the trailer; a reader can fetch just this much from the end to find the footer.
pub const WAL_TRAILER_LEN: usize = 32;
/// Bytes of the trailer the footer CRC covers: `footer_offset` and `entry_count`.
const TRAILER_CRC_COVERED: usize = 12;

/// Where one partition's chunk sits in a WAL object, and what it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkMeta {
    /// Kafka topic id (a UUID).
    pub topic_id: [u8; 16],
    /// Partition index.
    pub partition: i32,
    /// Start of the chunk, from the start of the object.
    pub byte_offset: u64,
    /// Length of the chunk.
    pub byte_len: u64,
    /// Number of record batches in the chunk.
    pub batch_count: u32,
    /// Offsets the chunk occupies (sum of each batch's `last_offset_delta + 1`).
    pub offset_count: u64,
    /// `base_timestamp` of the first batch, or -1 for an empty chunk.
    pub first_timestamp_ms: i64,
    /// Largest `max_timestamp` of any batch, or -1 for an empty chunk.
    pub max_timestamp_ms: i64,
    /// CRC-32C of the chunk's bytes, checked again on every ranged read.
    pub crc32c: u32,
}

/// Where an append landed, so the agent can compute each producer's base offset once the
/// sequencer has assigned the chunk's first offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendPosition {
    /// Index of the chunk in the object (and in the `Vec<ChunkMeta>` from `finish`).
    pub chunk_index: usize,
    /// Offsets preceding this append within its chunk.
    pub offset_delta: i64,
}

/// One partition's chunk while the object is open. Batches stay as the `Bytes` they arrived in
/// until `finish`, so appends copy nothing.
#[derive(Debug)]
struct OpenChunk {
    topic_id: [u8; 16],
    partition: i32,
    parts: Vec<Bytes>,
    byte_len: u64,
    batch_count: u32,
    offset_count: i64,
    first_timestamp_ms: i64,
    max_timestamp_ms: i64,
    crc32c: u32,
}

/// Accumulates validated batches of many partitions into one WAL object.
#[derive(Debug, Default)]
pub struct WalObjectBuilder {
    chunks: Vec<OpenChunk>,
    by_partition: HashMap<([u8; 16], i32), usize>,
    data_len: usize,
}

impl WalObjectBuilder {
    /// An empty object.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends whole, already-validated batches of one partition (`headers` are theirs, from
    /// [`crate::split_batches`]). Appends to the same (topic_id, partition) go into one chunk in
    /// append order (until an [`Self::append_solo`] of the partition); chunks are laid out in
    /// order of first append.
    pub fn append(
        &mut self,
        topic_id: [u8; 16],
        partition: i32,
        batches: Bytes,
        headers: &[BatchHeader],
    ) -> AppendPosition {
        let chunk_index = match self.by_partition.get(&(topic_id, partition)) {
            Some(&i) => i,
            None => {
                let i = self.open_chunk(topic_id, partition);
                self.by_partition.insert((topic_id, partition), i);
                i
            }
        };
        self.append_to(chunk_index, batches, headers)
    }

    /// Appends batches as a chunk of their own, never merged with other appends of the
    /// partition: the sequencer can then accept or refuse them as a unit (an idempotent
    /// producer's duplicate is refused without touching its neighbours).
    pub fn append_solo(
        &mut self,
        topic_id: [u8; 16],
        partition: i32,
        batches: Bytes,
        headers: &[BatchHeader],
    ) -> AppendPosition {
        let chunk_index = self.open_chunk(topic_id, partition);
        // Later appends of the partition open a new chunk after this one, so offsets keep
        // following arrival order.
        self.by_partition.remove(&(topic_id, partition));
        self.append_to(chunk_index, batches, headers)
    }

    fn open_chunk(&mut self, topic_id: [u8; 16], partition: i32) -> usize {
        self.chunks.push(OpenChunk {
            topic_id,
            partition,
            parts: Vec::new(),
            byte_len: 0,
            batch_count: 0,
            offset_count: 0,
            first_timestamp_ms: -1,
            max_timestamp_ms: -1,
            crc32c: 0,
        });
        self.chunks.len() - 1
    }

    fn append_to(
        &mut self,
        chunk_index: usize,
        batches: Bytes,
        headers: &[BatchHeader],
    ) -> AppendPosition {
        debug_assert_eq!(
            headers.iter().map(BatchHeader::total_len).sum::<usize>(),
            batches.len(),
            "headers must describe exactly the appended batches"
        );
        let chunk = &mut self.chunks[chunk_index];
        let position = AppendPosition {
            chunk_index,
            offset_delta: chunk.offset_count,
        };
        for header in headers {
            if chunk.batch_count == 0 {
                chunk.first_timestamp_ms = header.base_timestamp;
            }
            chunk.max_timestamp_ms = chunk.max_timestamp_ms.max(header.max_timestamp);
            chunk.batch_count = chunk.batch_count.saturating_add(1);
            // Validated headers have last_offset_delta >= 0; clamp so a bad one cannot make
            // later positions go backwards.
            chunk.offset_count = chunk
                .offset_count
                .saturating_add(header.offset_count().max(0));
        }
        chunk.crc32c = crc32c::crc32c_append(chunk.crc32c, &batches);
        chunk.byte_len += batches.len() as u64;
        self.data_len += batches.len();
        chunk.parts.push(batches);
        position
    }

    /// Bytes of batch data appended so far (what `flush_bytes` is compared against).
    pub fn data_len(&self) -> usize {
        self.data_len
    }

    /// True when nothing has been appended.
    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    /// Number of partition chunks so far.
    pub fn chunk_count(&self) -> usize {
        self.chunks.len()
    }

    /// Lays out header, chunks (verbatim bytes), footer index and trailer. Returns the object
    /// and the chunk metas, with `byte_offset` relative to the object start, in chunk order.
    pub fn finish(self) -> (Bytes, Vec<ChunkMeta>) {
        let footer_len = self.chunks.len() * WAL_ENTRY_LEN;
        let mut out =
            BytesMut::with_capacity(WAL_HEADER_LEN + self.data_len + footer_len + WAL_TRAILER_LEN);
        out.put_slice(&WAL_MAGIC);
        out.put_u16(WAL_VERSION);
        out.put_u16(0); // flags
        out.put_u32(0); // reserved

        let mut metas = Vec::with_capacity(self.chunks.len());
        for chunk in self.chunks {
            let byte_offset = out.len() as u64;
            for part in &chunk.parts {
                out.put_slice(part);
            }
            metas.push(ChunkMeta {
                topic_id: chunk.topic_id,
                partition: chunk.partition,
                byte_offset,
                byte_len: chunk.byte_len,
                batch_count: chunk.batch_count,
                offset_count: chunk.offset_count as u64,
                first_timestamp_ms: chunk.first_timestamp_ms,
                max_timestamp_ms: chunk.max_timestamp_ms,
                crc32c: chunk.crc32c,
            });
        }

        let footer_offset = out.len();
        for meta in &metas {
            put_entry(&mut out, meta);
        }
        // An object holds at most a few thousand chunks; u32 is far beyond any flush_bytes.
        out.put_u64(footer_offset as u64);
        out.put_u32(metas.len() as u32);
        let footer_crc = crc32c::crc32c(&out[footer_offset..]);
        out.put_u32(footer_crc);
        out.put_u16(WAL_VERSION);
        out.put_u16(0); // flags
        out.put_u32(0); // reserved
        out.put_slice(&WAL_END_MAGIC);
        debug_assert_eq!(out.len(), footer_offset + footer_len + WAL_TRAILER_LEN);
        (out.freeze(), metas)
    }
}

fn put_entry(out: &mut BytesMut, meta: &ChunkMeta) {
    out.put_slice(&meta.topic_id);
    out.put_i32(meta.partition);
    out.put_u64(meta.byte_offset);
    out.put_u64(meta.byte_len);
    out.put_u32(meta.batch_count);
    out.put_u64(meta.offset_count);
    out.put_i64(meta.first_timestamp_ms);
    out.put_i64(meta.max_timestamp_ms);
    out.put_u32(meta.crc32c);
}

/// Big-endian field reader over a slice whose length was checked by the caller.
struct Fields<'a>(&'a [u8]);

impl Fields<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], FormatError> {
        let (head, rest) = self
            .0
            .split_first_chunk::<N>()
            .ok_or(FormatError::InvalidFooter("short field"))?;
        self.0 = rest;
        Ok(*head)
    }
    fn u16(&mut self) -> Result<u16, FormatError> {
        self.take().map(u16::from_be_bytes)
    }
    fn u32(&mut self) -> Result<u32, FormatError> {
        self.take().map(u32::from_be_bytes)
    }
    fn i32(&mut self) -> Result<i32, FormatError> {
        self.take().map(i32::from_be_bytes)
    }
    fn u64(&mut self) -> Result<u64, FormatError> {
        self.take().map(u64::from_be_bytes)
    }
    fn i64(&mut self) -> Result<i64, FormatError> {
        self.take().map(i64::from_be_bytes)
    }
}

/// Reads and verifies the footer of a whole WAL object: both magics, version, flags, footer
/// checksum, and that every chunk lies between the header and the footer, in order and without
/// overlap. Self-describing: a tool can list an object's chunks without the database.
pub fn read_footer(object: &[u8]) -> Result<Vec<ChunkMeta>, FormatError> {
    if object.len() < WAL_HEADER_LEN + WAL_TRAILER_LEN {
        return Err(FormatError::Truncated {
            needed: WAL_HEADER_LEN + WAL_TRAILER_LEN,
            available: object.len(),
        });
    }
    let mut header = Fields(&object[..WAL_HEADER_LEN]);
    if header.take::<8>()? != WAL_MAGIC {
        return Err(FormatError::BadWalMagic);
    }
    check_version(header.u16()?, header.u16()?, header.u32()?)?;

    let trailer_start = object.len() - WAL_TRAILER_LEN;
    let mut trailer = Fields(&object[trailer_start..]);
    let footer_offset = trailer.u64()?;
    let entry_count = trailer.u32()?;
    let stored_crc = trailer.u32()?;
    let version = trailer.u16()?;
    let flags = trailer.u16()?;
    let reserved = trailer.u32()?;
    if trailer.take::<8>()? != WAL_END_MAGIC {
        return Err(FormatError::BadWalMagic);
    }
    check_version(version, flags, reserved)?;

    // The footer must fill exactly the space between its offset and the trailer.
    let footer_len = (entry_count as usize)
        .checked_mul(WAL_ENTRY_LEN)
        .ok_or(FormatError::InvalidFooter("entry count too large"))?;
    let footer_start = usize::try_from(footer_offset)
        .ok()
        .filter(|&start| {
            start >= WAL_HEADER_LEN && start.checked_add(footer_len) == Some(trailer_start)
        })
        .ok_or(FormatError::InvalidFooter(
            "footer offset and entry count disagree with object size",
        ))?;
    let computed = crc32c::crc32c(&object[footer_start..trailer_start + TRAILER_CRC_COVERED]);
    if computed != stored_crc {
        return Err(FormatError::FooterCrcMismatch {
            stored: stored_crc,
            computed,
        });
    }

    let mut metas = Vec::with_capacity(entry_count as usize);
    let mut chunks_end = WAL_HEADER_LEN as u64;
    for entry in object[footer_start..trailer_start].chunks_exact(WAL_ENTRY_LEN) {
        let meta = parse_entry(entry)?;
        let end = meta
            .byte_offset
            .checked_add(meta.byte_len)
            .ok_or(FormatError::InvalidFooter("chunk range overflows"))?;
        if meta.byte_offset < chunks_end || end > footer_offset {
            return Err(FormatError::InvalidFooter(
                "chunk outside the data section or out of order",
            ));
        }
        if meta.partition < 0 {
            return Err(FormatError::InvalidFooter("negative partition"));
        }
        chunks_end = end;
        metas.push(meta);
    }
    Ok(metas)
}

fn check_version(version: u16, flags: u16, reserved: u32) -> Result<(), FormatError> {
    if version != WAL_VERSION {
        return Err(FormatError::UnsupportedWalVersion(version));
    }
    // v1 defines no flags and no reserved bits: a writer that needs them bumps the version, so
    // a non-zero value here is corruption.
    if flags != 0 || reserved != 0 {
        return Err(FormatError::InvalidFooter(
            "non-zero flags or reserved bits",
        ));
    }
    Ok(())
}

fn parse_entry(entry: &[u8]) -> Result<ChunkMeta, FormatError> {
    let mut f = Fields(entry);
    Ok(ChunkMeta {
        topic_id: f.take()?,
        partition: f.i32()?,
        byte_offset: f.u64()?,
        byte_len: f.u64()?,
        batch_count: f.u32()?,
        offset_count: f.u64()?,
        first_timestamp_ms: f.i64()?,
        max_timestamp_ms: f.i64()?,
        crc32c: f.u32()?,
    })
}

/// Verifies a chunk's bytes (e.g. from a ranged GET) against its meta's length and CRC-32C.
pub fn verify_chunk(bytes: &[u8], meta: &ChunkMeta) -> Result<(), FormatError> {
    if bytes.len() as u64 != meta.byte_len {
        return Err(FormatError::ChunkLengthMismatch {
            expected: meta.byte_len,
            actual: bytes.len(),
        });
    }
    let computed = crc32c::crc32c(bytes);
    if computed != meta.crc32c {
        return Err(FormatError::ChunkCrcMismatch {
            stored: meta.crc32c,
            computed,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{scan_batches, split_batches, Compression};
    use crate::test_support::batch;

    const TOPIC_A: [u8; 16] = [0xaa; 16];
    const TOPIC_B: [u8; 16] = [0xbb; 16];

    fn headers(batches: &[u8]) -> Vec<BatchHeader> {
        split_batches(batches)
            .unwrap()
            .into_iter()
            .map(|r| r.header)
            .collect()
    }

    fn append(
        b: &mut WalObjectBuilder,
        topic: [u8; 16],
        partition: i32,
        data: Bytes,
    ) -> AppendPosition {
        let headers = headers(&data);
        b.append(topic, partition, data, &headers)
    }

    #[test]
    fn solo_appends_get_their_own_chunks_in_arrival_order() {
        let (x, y, z) = (
            batch(Compression::None, 2, 1),
            batch(Compression::None, 3, 2),
            batch(Compression::None, 1, 3),
        );
        let mut builder = WalObjectBuilder::new();
        let first = append(&mut builder, TOPIC_A, 0, x.clone());
        let solo = builder.append_solo(TOPIC_A, 0, y.clone(), &headers(&y));
        let after = append(&mut builder, TOPIC_A, 0, z.clone());
        let pos = |chunk_index, offset_delta| AppendPosition {
            chunk_index,
            offset_delta,
        };
        assert_eq!([first, solo, after], [pos(0, 0), pos(1, 0), pos(2, 0)]);
        let (object, metas) = builder.finish();
        assert_eq!(read_footer(&object).expect("footer"), metas);
        assert_eq!(
            metas.iter().map(|m| m.offset_count).collect::<Vec<_>>(),
            vec![2, 3, 1]
        );
    }

    #[test]
    fn interleaved_appends_roundtrip() {
        let a0_1 = batch(Compression::None, 3, 1_000);
        let b0_1 = batch(Compression::Zstd, 5, 500);
        let a1_1 = batch(Compression::Lz4, 1, 2_000);
        let a0_2 = Bytes::from(
            [
                batch(Compression::Gzip, 2, 900),
                batch(Compression::Snappy, 4, 3_000),
            ]
            .concat(),
        );

        let mut builder = WalObjectBuilder::new();
        assert!(builder.is_empty());
        let positions = [
            append(&mut builder, TOPIC_A, 0, a0_1.clone()),
            append(&mut builder, TOPIC_B, 0, b0_1.clone()),
            append(&mut builder, TOPIC_A, 1, a1_1.clone()),
            append(&mut builder, TOPIC_A, 0, a0_2.clone()),
        ];
        let pos = |chunk_index, offset_delta| AppendPosition {
            chunk_index,
            offset_delta,
        };
        assert_eq!(positions, [pos(0, 0), pos(1, 0), pos(2, 0), pos(0, 3)]);
        assert_eq!(builder.chunk_count(), 3);
        assert_eq!(
            builder.data_len(),
            a0_1.len() + b0_1.len() + a1_1.len() + a0_2.len()
        );

        let (object, metas) = builder.finish();
        assert_eq!(read_footer(&object).unwrap(), metas);

        let expected_chunks = [
            [&a0_1[..], &a0_2[..]].concat(),
            b0_1.to_vec(),
            a1_1.to_vec(),
        ];
        let keys = [(TOPIC_A, 0), (TOPIC_B, 0), (TOPIC_A, 1)];
        let mut offset = WAL_HEADER_LEN as u64;
        for ((meta, chunk), key) in metas.iter().zip(&expected_chunks).zip(keys) {
            assert_eq!((meta.topic_id, meta.partition), key);
            assert_eq!(meta.byte_offset, offset);
            assert_eq!(meta.byte_len, chunk.len() as u64);
            let range = meta.byte_offset as usize..(meta.byte_offset + meta.byte_len) as usize;
            assert_eq!(&object[range.clone()], &chunk[..]);
            verify_chunk(&object[range.clone()], meta).unwrap();
            assert_eq!(
                scan_batches(&object[range]).unwrap().len(),
                meta.batch_count as usize
            );
            offset += meta.byte_len;
        }
        assert_eq!(
            (metas[0].batch_count, metas[0].offset_count),
            (3, 3 + 2 + 4)
        );
        // First batch's base timestamp, not the minimum; max over all batches.
        assert_eq!(metas[0].first_timestamp_ms, 1_000);
        assert_eq!(metas[0].max_timestamp_ms, 4_000);
        assert_eq!((metas[1].offset_count, metas[2].offset_count), (5, 1));
    }

    #[test]
    fn empty_object_roundtrip() {
        let (object, metas) = WalObjectBuilder::default().finish();
        assert!(metas.is_empty());
        assert_eq!(object.len(), WAL_HEADER_LEN + WAL_TRAILER_LEN);
        assert_eq!(read_footer(&object), Ok(vec![]));
    }

    fn sample_object() -> Bytes {
        let mut builder = WalObjectBuilder::new();
        append(&mut builder, TOPIC_A, 0, batch(Compression::None, 2, 0));
        append(&mut builder, TOPIC_B, 3, batch(Compression::None, 1, 0));
        builder.finish().0
    }

    #[test]
    fn footer_corruption_detected() {
        let object = sample_object();
        let footer_start = object.len() - WAL_TRAILER_LEN - 2 * WAL_ENTRY_LEN;
        // Any flipped bit in the footer, trailer or header is caught; chunk bytes are covered by
        // their own CRCs instead.
        for at in (0..WAL_HEADER_LEN).chain(footer_start..object.len()) {
            let mut bad = object.to_vec();
            bad[at] ^= 0x04;
            assert!(read_footer(&bad).is_err(), "flip at {at}");
        }
        let mut bad = object.to_vec();
        bad[footer_start + 20] ^= 0x01;
        assert!(matches!(
            read_footer(&bad),
            Err(FormatError::FooterCrcMismatch { .. })
        ));
        for len in 0..object.len() {
            assert!(read_footer(&object[..len]).is_err(), "truncated to {len}");
        }
        assert!(read_footer(&[object.as_ref(), b"x"].concat()).is_err());
    }

    #[test]
    fn version_and_magic_checked() {
        let mut bad = sample_object().to_vec();
        bad[9] = 2;
        assert_eq!(
            read_footer(&bad),
            Err(FormatError::UnsupportedWalVersion(2))
        );
        let mut bad = sample_object().to_vec();
        bad[0] = b'X';
        assert_eq!(read_footer(&bad), Err(FormatError::BadWalMagic));
        let mut bad = sample_object().to_vec();
        let last = bad.len() - 1;
        bad[last] = 1;
        assert_eq!(read_footer(&bad), Err(FormatError::BadWalMagic));
    }

    /// Entries that point outside the data section are rejected even with a valid CRC, since a
    /// buggy writer would compute the CRC over its wrong entries.
    #[test]
    fn entry_bounds_checked() {
        let object = sample_object();
        let mut metas = read_footer(&object).unwrap();
        let data_end = metas[1].byte_offset + metas[1].byte_len;
        for mutate in [
            |m: &mut [ChunkMeta], _: u64| m[0].byte_offset = 0,
            |m: &mut [ChunkMeta], end: u64| m[1].byte_len = end,
            |m: &mut [ChunkMeta], _: u64| m[1].byte_offset = m[0].byte_offset,
            |m: &mut [ChunkMeta], _: u64| m[1].byte_offset = u64::MAX,
        ] {
            let mut m = metas.clone();
            mutate(&mut m, data_end);
            let rebuilt = rebuild(&object, &m);
            assert!(
                matches!(read_footer(&rebuilt), Err(FormatError::InvalidFooter(_))),
                "{m:?}"
            );
        }
        metas[0].partition = -1;
        assert!(read_footer(&rebuild(&object, &metas)).is_err());
    }

    /// Rewrites the footer of `object` with `metas`, with a correct CRC.
    fn rebuild(object: &[u8], metas: &[ChunkMeta]) -> Vec<u8> {
        let footer_start = object.len() - WAL_TRAILER_LEN - metas.len() * WAL_ENTRY_LEN;
        let mut out = BytesMut::from(&object[..footer_start]);
        for meta in metas {
            put_entry(&mut out, meta);
        }
        out.put_u64(footer_start as u64);
        out.put_u32(metas.len() as u32);
        let crc = crc32c::crc32c(&out[footer_start..]);
        out.put_u32(crc);
        out.put_slice(&object[object.len() - 16..]);
        out.to_vec()
    }

    #[test]
    fn verify_chunk_detects_corruption() {
        let object = sample_object();
        let meta = read_footer(&object).unwrap()[0];
        let range = meta.byte_offset as usize..(meta.byte_offset + meta.byte_len) as usize;
        let mut chunk = object[range].to_vec();
        verify_chunk(&chunk, &meta).unwrap();
        assert!(matches!(
            verify_chunk(&chunk[1..], &meta),
            Err(FormatError::ChunkLengthMismatch { .. })
        ));
        chunk[5] ^= 1;
        assert!(matches!(
            verify_chunk(&chunk, &meta),
            Err(FormatError::ChunkCrcMismatch { .. })
        ));
    }

    /// The deterministic object committed under `testdata/`. Regenerate only for a deliberate
    /// format change (and bump `WAL_VERSION`): print `hex(golden_object())` and `xxd -r -p` it.
    fn golden_object() -> Bytes {
        let mut builder = WalObjectBuilder::new();
        let spec = |base_timestamp| crate::records::BatchSpec {
            base_timestamp,
            max_timestamp: base_timestamp + 5,
            ..crate::records::BatchSpec::default()
        };
        let record = |i: i32| crate::records::Record {
            offset_delta: i,
            timestamp_delta: i64::from(i),
            key: Some(Bytes::from(vec![b'k'; i as usize])),
            value: (i != 1).then(|| Bytes::from_static(b"v")),
            headers: vec![(Bytes::from_static(b"h"), None)],
        };
        let encode = |ts, n: i32| {
            let records: Vec<_> = (0..n).map(record).collect();
            crate::records::encode_batch(&spec(ts), &records, Compression::None).unwrap()
        };
        append(&mut builder, [1; 16], 0, encode(1_700_000_000_000, 2));
        append(&mut builder, [2; 16], 7, encode(1_700_000_000_100, 1));
        append(&mut builder, [1; 16], 0, encode(1_700_000_000_200, 3));
        builder.finish().0
    }

    #[test]
    fn golden_bytes() {
        let golden: &[u8] = include_bytes!("../testdata/wal-v1-golden.bin");
        let object = golden_object();
        let hex: String = object.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            &object[..],
            golden,
            "wal layout changed; object is now:\n{hex}"
        );
        let metas = read_footer(golden).unwrap();
        assert_eq!(metas.len(), 2);
        assert_eq!((metas[0].batch_count, metas[0].offset_count), (2, 5));
        assert_eq!(metas[0].first_timestamp_ms, 1_700_000_000_000);
        assert_eq!(metas[0].max_timestamp_ms, 1_700_000_000_205);
        assert_eq!((metas[1].topic_id, metas[1].partition), ([2; 16], 7));
    }
}
