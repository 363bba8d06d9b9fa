//! A cold agent reading a multi-partition WAL object pays one GET per 4 MiB block, shared by
//! every partition in it, not one GET per partition chunk; a warm one pays none.

mod support;

use floe_common::metrics::ObjectLabels;
use floe_format::batch::Compression;
use support::batches::{self, fetched_values};
use support::client::{produce, produce_partition, PRODUCE_V};
use support::harness::{config, Stack};

const PARTITIONS: i32 = 8;

fn fetch_gets(stack: &Stack) -> u64 {
    stack
        .metrics
        .object_requests
        .get_or_create(&ObjectLabels {
            op: "get",
            purpose: "fetch",
            outcome: "ok",
        })
        .get()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_of_one_object_share_block_reads() {
    let stack = Stack::local(config(1)).await;
    let mut c = stack.client().await;
    c.create_topic("blocks", PARTITIONS, &[]).await;
    // One request: every partition's batch lands in the same WAL object (well under 4 MiB).
    let parts = (0..PARTITIONS)
        .map(|p| {
            (
                p,
                batches::batch(
                    1_000,
                    &batches::values(&format!("p{p}"), 50),
                    Compression::None,
                ),
            )
        })
        .collect();
    let resp = c.call(&produce("blocks", parts), PRODUCE_V).await;
    for p in 0..PARTITIONS {
        assert_eq!(produce_partition(&resp, "blocks", p).error_code, 0);
    }
    // Warm: the writer cached the object, so reading every partition needs no GET.
    for p in 0..PARTITIONS {
        let fetched = c.fetch_one("blocks", p, 0, i32::MAX).await;
        assert_eq!(
            fetched_values(fetched.records.as_ref().expect("records")).len(),
            50
        );
    }
    assert_eq!(fetch_gets(&stack), 0, "fresh data is served from memory");

    // Cold: a restarted agent reads the object once for all eight partitions.
    let stack = stack.restart().await;
    let mut c = stack.client().await;
    for p in 0..PARTITIONS {
        let fetched = c.fetch_one("blocks", p, 0, i32::MAX).await;
        let values = fetched_values(fetched.records.as_ref().expect("records"));
        assert_eq!(values, batches::values(&format!("p{p}"), 50));
    }
    assert_eq!(
        fetch_gets(&stack),
        1,
        "one block GET shared by every partition"
    );
}
