//! The one error type of `floe-format`. Every decoder in this crate returns it instead of
//! panicking, so the agent can turn a malformed produce into a Kafka error code and the read
//! path can turn a corrupt object into a retriable fetch error.

use crate::batch::Compression;

/// Everything that can be wrong with record batch or WAL object bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// The input ends before a structure it declares.
    #[error("truncated input: need {needed} bytes, have {available}")]
    Truncated {
        /// Bytes the structure needs from its start.
        needed: usize,
        /// Bytes actually present from that start.
        available: usize,
    },
    /// A produce request carried no record batch at all.
    #[error("no record batches in input")]
    Empty,
    /// The batch is not record batch v2 (magic 0 and 1 are not supported).
    #[error("unsupported record batch magic {0}")]
    UnsupportedMagic(i8),
    /// `batch_length` is negative or too small to hold the v2 header.
    #[error("invalid batch length {0}")]
    InvalidBatchLength(i32),
    /// The stored CRC-32C does not match the bytes from `attributes` to the batch end.
    #[error("crc mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch {
        /// CRC found in the bytes.
        stored: u32,
        /// CRC computed over the bytes.
        computed: u32,
    },
    /// `last_offset_delta` is negative.
    #[error("invalid last offset delta {0}")]
    InvalidLastOffsetDelta(i32),
    /// `records_count` is negative or disagrees with the records present.
    #[error("invalid records count {0}")]
    InvalidRecordsCount(i32),
    /// The compression codec bits hold 5, 6 or 7.
    #[error("unknown compression codec {0}")]
    UnknownCompression(i16),
    /// Output would exceed the caller's bound (decompression bomb, oversized batch).
    #[error("data exceeds limit of {limit} bytes")]
    TooLarge {
        /// The bound that was hit.
        limit: usize,
    },
    /// The compressed records section could not be decompressed (or compressed).
    #[error("{codec:?} codec error: {message}")]
    Codec {
        /// Codec that failed.
        codec: Compression,
        /// The codec library's message.
        message: String,
    },
    /// A zigzag varint is longer than its type allows.
    #[error("malformed varint")]
    InvalidVarint,
    /// A record inside a batch is malformed.
    #[error("malformed record: {0}")]
    InvalidRecord(&'static str),
    /// Assigning offsets would overflow `i64`.
    #[error("offset overflow")]
    OffsetOverflow,
    /// The WAL object does not start or end with the expected magic.
    #[error("not a floe wal object: bad magic")]
    BadWalMagic,
    /// The WAL object has a version this build cannot read.
    #[error("unsupported wal object version {0}")]
    UnsupportedWalVersion(u16),
    /// The WAL object's footer checksum does not match.
    #[error("wal footer crc mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    FooterCrcMismatch {
        /// CRC found in the trailer.
        stored: u32,
        /// CRC computed over the footer.
        computed: u32,
    },
    /// The WAL object's footer or an entry in it is inconsistent with the object.
    #[error("invalid wal footer: {0}")]
    InvalidFooter(&'static str),
    /// A chunk's length differs from its footer entry.
    #[error("wal chunk length mismatch: expected {expected} bytes, got {actual}")]
    ChunkLengthMismatch {
        /// `byte_len` from the footer entry.
        expected: u64,
        /// Length of the bytes given.
        actual: usize,
    },
    /// A chunk's CRC-32C differs from its footer entry.
    #[error("wal chunk crc mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    ChunkCrcMismatch {
        /// `crc32c` from the footer entry.
        stored: u32,
        /// CRC computed over the bytes given.
        computed: u32,
    },
}
