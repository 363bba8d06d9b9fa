//! Floe's on-object formats, shared by the agent (write path), the fetch path and the compactor.
//!
//! - [`batch`]: Kafka record batch v2 headers: split and validate a produce request's `records`,
//!   rewrite placeholder base offsets on fetch.
//! - [`records`]: the records inside a batch, with every Kafka compression codec.
//! - [`wal`]: the WAL object an agent uploads, holding many partitions' chunks plus a footer index.
//! - [`segment`]: the segment object the compactor writes: one partition's batches with real
//!   offsets, plus a sparse offset and timestamp index.
//!
//! Pure: bytes in, bytes out. No I/O, no async, and no panics on input bytes.

pub mod batch;
mod codec;
pub mod error;
pub mod keys;
pub mod records;
pub mod segment;
mod varint;
pub mod wal;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod test_support;

pub use batch::{
    rewrite_base_offsets, scan_batches, split_batches, BatchHeader, BatchRef, Compression,
    BATCH_HEADER_LEN,
};
pub use error::FormatError;
pub use records::{decode_records, encode_batch, BatchSpec, Record};
pub use wal::{read_footer, verify_chunk, AppendPosition, ChunkMeta, WalObjectBuilder};
