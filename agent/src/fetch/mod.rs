//! The fetch path: `index` finds which objects hold the wanted offsets, `cache` reads
//! their bytes through the zone's memory (`peer` is how agents of a zone share it), `read` assembles a partition's answer with base offsets
//! rewritten, and `handle` is the Fetch request with its long poll.

pub mod cache;
pub mod handle;
pub mod index;
pub mod pace;
pub mod peer;
pub mod read;
