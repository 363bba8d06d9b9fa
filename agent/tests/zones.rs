//! Bytes exchanged with clients of another zone are counted (the target is zero): the zone
//! comes from `client.rack` (Fetch v11+) or a `floe_az=` token in `client.id`.

mod support;

use floe_agent::AgentConfig;
use floe_common::metrics::DirectionLabels;
use floe_format::batch::Compression;
use kafka_protocol::protocol::StrBytes;
use support::batches;
use support::client::{fetch, FETCH_V};
use support::harness::{config, Stack};

fn cross(stack: &Stack, direction: &'static str) -> u64 {
    stack
        .metrics
        .cross_zone_bytes
        .get_or_create(&DirectionLabels { direction })
        .get()
}

#[tokio::test]
async fn cross_zone_bytes_are_counted_by_client_zone() {
    let stack = Stack::local(AgentConfig {
        zone: Some("a".into()),
        ..config(1)
    })
    .await;
    let mut c = stack.client().await;
    c.create_topic("zones", 1, &[]).await;

    // Same zone by client.id: nothing crosses.
    c.set_client_id("app,floe_az=a");
    let r = c
        .produce_one(
            "zones",
            0,
            batches::batch(1_000, &batches::values("z", 4), Compression::None),
        )
        .await;
    assert_eq!(r.error_code, 0);
    let same = c.fetch_one("zones", 0, 0, i32::MAX).await;
    assert!(same.records.as_ref().is_some_and(|r| !r.is_empty()));
    assert_eq!((cross(&stack, "produce"), cross(&stack, "fetch")), (0, 0));

    // Another zone by client.id (WarpStream's spelling): both directions count.
    c.set_client_id("app ws_az=b");
    let r = c
        .produce_one(
            "zones",
            0,
            batches::batch(2_000, &batches::values("y", 4), Compression::None),
        )
        .await;
    assert_eq!(r.error_code, 0);
    let produced = cross(&stack, "produce");
    assert!(produced > 0);
    let other = c.fetch_one("zones", 0, 0, i32::MAX).await;
    let fetched = other.records.as_ref().map_or(0, |r| r.len() as u64);
    assert_eq!(cross(&stack, "fetch"), fetched);

    // client.rack wins over client.id: a client in zone a by rack is not cross-zone.
    let req = fetch("zones", &[(0, 0, i32::MAX)], 0, 0, i32::MAX)
        .with_rack_id(StrBytes::from_static_str("a"));
    let r = c.call(&req, FETCH_V).await;
    assert!(r.responses[0].partitions[0]
        .records
        .as_ref()
        .is_some_and(|r| !r.is_empty()));
    assert_eq!(
        cross(&stack, "fetch"),
        fetched,
        "rack a on an agent in zone a"
    );
}
