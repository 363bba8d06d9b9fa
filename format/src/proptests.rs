//! Decoders must return errors, never panic, on arbitrary bytes: they see producers' requests
//! and objects read back from storage.

use proptest::prelude::*;

use crate::batch::{rewrite_base_offsets, scan_batches, split_batches, Compression};
use crate::records::decode_records;
use crate::test_support::{batch, ALL_CODECS};
use crate::wal::{read_footer, WalObjectBuilder};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A valid batch with some bytes overwritten: random bytes rarely get past the first length
/// check, mutated valid ones reach the deeper decoders.
fn mutated_batch() -> impl Strategy<Value = Vec<u8>> {
    (
        0..ALL_CODECS.len(),
        1..20i32,
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        any::<prop::sample::Index>(),
    )
        .prop_map(|(codec, count, edits, cut)| {
            let mut bytes = batch(ALL_CODECS[codec], count, 0).to_vec();
            for (at, value) in edits {
                let at = at.index(bytes.len());
                bytes[at] = value;
            }
            let keep = bytes.len() - cut.index(bytes.len() / 4 + 1);
            bytes.truncate(keep);
            bytes
        })
}

fn check_all(bytes: &[u8]) {
    let _ = split_batches(bytes);
    let _ = scan_batches(bytes);
    let _ = decode_records(bytes, 1 << 20);
    let _ = rewrite_base_offsets(&mut bytes.to_vec(), 0);
    let _ = read_footer(bytes);
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check_all(&bytes);
    }

    #[test]
    fn mutated_batches_never_panic(bytes in mutated_batch()) {
        check_all(&bytes);
    }

    #[test]
    fn mutated_wal_objects_never_panic(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut builder = WalObjectBuilder::new();
        let data = batch(Compression::Lz4, 3, 0);
        let header = split_batches(&data).unwrap()[0].header;
        builder.append([9; 16], 1, data, &[header]);
        let mut object = builder.finish().0.to_vec();
        for (at, value) in edits {
            let at = at.index(object.len());
            object[at] = value;
        }
        check_all(&object);
    }
}
