//! Bad input: malformed frames close only their own connection (a fresh connection is
//! served afterwards), and bad produce data is refused per partition with Kafka's error
//! codes, leaving nothing visible.

mod support;

use bytes::{BufMut, Bytes, BytesMut};
use floe_agent::AgentConfig;
use floe_format::batch::Compression;
use floe_metadata::Metadata;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse, ResponseHeader};
use kafka_protocol::protocol::Decodable;
use support::batches::{self, fetched_values};
use support::client::{
    fetch, fetch_partition, produce, produce_partition, records, Client, FETCH_V, PRODUCE_V,
};
use support::harness::{config, Stack};

const T0: i64 = 1_700_000_000_000;

const CORRUPT_MESSAGE: i16 = 2;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const MESSAGE_TOO_LARGE: i16 = 10;
const UNSUPPORTED_VERSION: i16 = 35;

fn small_frames() -> AgentConfig {
    AgentConfig {
        max_request_bytes: 1 << 20,
        ..config(1)
    }
}

/// A fresh connection still gets a good ApiVersions answer.
async fn assert_served(stack: &Stack) {
    let mut c = stack.client().await;
    let v = c.api_versions().await;
    assert_eq!(v.error_code, 0);
    assert!(v
        .api_keys
        .iter()
        .any(|k| k.api_key == ApiKey::Produce as i16));
}

async fn assert_closes_connection(stack: &Stack, bytes: &[u8]) {
    let bad_frames = stack.metrics.bad_frames.get();
    let mut c = stack.client().await;
    // The agent may close before it has read everything; a failed write is fine.
    let _ = c.write_raw(bytes).await;
    c.expect_closed().await;
    assert_eq!(stack.metrics.bad_frames.get(), bad_frames + 1);
    assert_served(stack).await;
}

/// Request header v1 (key, version, correlation id, client id) followed by `body`.
fn frame(api_key: i16, version: i16, body: &[u8]) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i32(0);
    b.put_i16(api_key);
    b.put_i16(version);
    b.put_i32(7);
    b.put_i16(4);
    b.put_slice(b"test");
    b.put_slice(body);
    let len = (b.len() - 4) as i32;
    b[..4].copy_from_slice(&len.to_be_bytes());
    b.freeze()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_close_only_their_connection() {
    let stack = Stack::local(small_frames()).await;
    // An idle connection opened before the bad ones must survive them.
    let mut bystander = stack.client().await;

    // Negative length.
    assert_closes_connection(&stack, &(-1i32).to_be_bytes()).await;
    // Zero length.
    assert_closes_connection(&stack, &0i32.to_be_bytes()).await;
    // 200 MiB declared, 1 MiB allowed.
    let mut big = (200i32 << 20).to_be_bytes().to_vec();
    big.extend_from_slice(&[0u8; 64]);
    assert_closes_connection(&stack, &big).await;
    // Garbage after a valid length.
    let mut garbage = 32i32.to_be_bytes().to_vec();
    garbage.extend((0..32u8).map(|i| i.wrapping_mul(37).wrapping_add(0xa5)));
    assert_closes_connection(&stack, &garbage).await;
    // A valid Produce v9 header followed by garbage.
    assert_closes_connection(&stack, &frame(0, 9, &[0xff; 40])).await;
    // A Metadata v12 header with a truncated body.
    assert_closes_connection(&stack, &frame(3, 12, &[0x02])).await;
    // Shorter than a request header.
    let mut short = 3i32.to_be_bytes().to_vec();
    short.extend_from_slice(&[0, 3, 0]);
    assert_closes_connection(&stack, &short).await;
    // Unknown API key.
    assert_closes_connection(&stack, &frame(999, 0, &[])).await;
    // A known API the agent does not serve (OffsetCommit is not advertised).
    assert_closes_connection(&stack, &frame(ApiKey::OffsetCommit as i16, 8, &[0; 16])).await;
    // A served API at a version outside its range.
    assert_closes_connection(&stack, &frame(ApiKey::Produce as i16, 99, &[])).await;

    let v = bystander.api_versions().await;
    assert_eq!(v.error_code, 0, "the idle connection is still served");
    stack.agent.shutdown().await;
}

/// KIP-511: an ApiVersions version the agent does not know gets a v0 answer with
/// UNSUPPORTED_VERSION and the supported ranges, and the connection stays open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_versions_with_unknown_version() {
    let stack = Stack::local(config(1)).await;
    let mut c = stack.client().await;
    c.write_raw(&frame(ApiKey::ApiVersions as i16, 99, &[]))
        .await
        .expect("write");
    let mut body = c.read_frame().await.expect("an ApiVersions answer");
    let header = ResponseHeader::decode(&mut body, 0).expect("v0 response header");
    assert_eq!(header.correlation_id, 7);
    let resp = ApiVersionsResponse::decode(&mut body, 0).expect("v0 ApiVersions body");
    assert_eq!(resp.error_code, UNSUPPORTED_VERSION);
    assert_eq!(
        UNSUPPORTED_VERSION,
        ResponseError::UnsupportedVersion.code()
    );
    let api = resp
        .api_keys
        .iter()
        .find(|k| k.api_key == ApiKey::ApiVersions as i16)
        .expect("ApiVersions listed");
    assert_eq!((api.min_version, api.max_version), (0, 4));
    let produce = resp
        .api_keys
        .iter()
        .find(|k| k.api_key == ApiKey::Produce as i16)
        .expect("Produce listed");
    assert!(produce.min_version <= 9 && produce.max_version >= 9);
    assert!(resp.api_keys.len() >= 6);

    // The client retries with a version from the list, on the same connection.
    let v = c.api_versions().await;
    assert_eq!(v.error_code, 0);
    assert_eq!(v.api_keys, resp.api_keys);
    stack.agent.shutdown().await;
}

/// Flips a byte inside the CRC-covered part of a batch.
fn corrupt(batch: &Bytes) -> Bytes {
    let mut b = batch.to_vec();
    let last = b.len() - 1;
    b[last] ^= 0x55;
    Bytes::from(b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_batches_are_refused_and_invisible() {
    let stack = Stack::local(config(1)).await;
    let mut c = stack.client().await;
    c.create_topic("bad", 2, &[("max.message.bytes", "1024")])
        .await;
    let r = c.produce_one("bad", 0, batches::single(T0, "good-0")).await;
    assert_eq!((r.error_code, r.base_offset), (0, 0));

    // CRC mismatch.
    let r = c
        .produce_one("bad", 0, corrupt(&batches::single(T0 + 1, "corrupt")))
        .await;
    assert_eq!(r.error_code, CORRUPT_MESSAGE, "{:?}", r.error_message);
    assert_eq!(r.base_offset, -1);
    assert_eq!(
        c.high_watermark("bad", 0).await,
        1,
        "nothing became visible"
    );

    // Truncated records.
    let whole = batches::batch(T0 + 2, &batches::values("trunc", 3), Compression::None);
    let r = c
        .produce_one("bad", 0, whole.slice(..whole.len() - 5))
        .await;
    assert_eq!(r.error_code, CORRUPT_MESSAGE, "{:?}", r.error_message);
    // A good batch followed by a truncated one: the whole partition is refused.
    let mut two = whole.to_vec();
    two.extend_from_slice(&whole[..30]);
    let r = c.produce_one("bad", 0, Bytes::from(two)).await;
    assert_eq!(r.error_code, CORRUPT_MESSAGE, "{:?}", r.error_message);
    // Empty records.
    let r = c.produce_one("bad", 0, Bytes::new()).await;
    assert_ne!(r.error_code, 0, "empty records are refused");
    assert_eq!(
        c.high_watermark("bad", 0).await,
        1,
        "nothing became visible"
    );

    // Larger than the topic's max.message.bytes (1024).
    let big = batches::batch(T0 + 3, &["x".repeat(2_000)], Compression::None);
    assert!(big.len() > 1024);
    let r = c.produce_one("bad", 0, big).await;
    assert_eq!(r.error_code, MESSAGE_TOO_LARGE, "{:?}", r.error_message);
    // Just under it is fine.
    let fits = batches::batch(T0 + 4, &["y".repeat(900)], Compression::None);
    assert!(fits.len() <= 1024);
    let r = c.produce_one("bad", 0, fits).await;
    assert_eq!((r.error_code, r.base_offset), (0, 1));

    // Unknown partition.
    let r = c
        .produce_one("bad", 7, batches::single(T0, "nowhere"))
        .await;
    assert_eq!(r.error_code, UNKNOWN_TOPIC_OR_PARTITION);
    let r = c
        .produce_one("bad", -1, batches::single(T0, "nowhere"))
        .await;
    assert_eq!(r.error_code, UNKNOWN_TOPIC_OR_PARTITION);
    let pd = c.fetch_one("bad", 7, 0, 1 << 20).await;
    assert_eq!(pd.error_code, UNKNOWN_TOPIC_OR_PARTITION);

    // One request, a good and a corrupt partition: each gets its own answer.
    let resp = c
        .call(
            &produce(
                "bad",
                vec![
                    (0, batches::single(T0 + 5, "good-1")),
                    (1, corrupt(&batches::single(T0 + 5, "bad-1"))),
                ],
            ),
            PRODUCE_V,
        )
        .await;
    let p0 = produce_partition(&resp, "bad", 0);
    assert_eq!((p0.error_code, p0.base_offset), (0, 2));
    assert_eq!(
        produce_partition(&resp, "bad", 1).error_code,
        CORRUPT_MESSAGE
    );

    // Exactly the good batches are visible, at contiguous offsets.
    let resp = c
        .call(
            &fetch("bad", &[(0, 0, 1 << 20), (1, 0, 1 << 20)], 0, 0, i32::MAX),
            FETCH_V,
        )
        .await;
    let p0 = fetch_partition(&resp, "bad", 0);
    assert_eq!(p0.high_watermark, 3);
    let values = fetched_values(&records(p0));
    assert_eq!(values.len(), 3);
    assert_eq!(values[0], "good-0");
    assert_eq!(values[1], "y".repeat(900));
    assert_eq!(values[2], "good-1");
    let p1 = fetch_partition(&resp, "bad", 1);
    assert_eq!(p1.high_watermark, 0);
    assert!(records(p1).is_empty());
    stack.agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_topic_without_auto_create() {
    let cfg = AgentConfig {
        auto_create_topics_enable: false,
        ..config(1)
    };
    let stack = Stack::local(cfg).await;
    let mut c = stack.client().await;
    let r = c.produce_one("ghost", 0, batches::single(T0, "boo")).await;
    assert_eq!(r.error_code, UNKNOWN_TOPIC_OR_PARTITION);
    let md = c.metadata(Some(&["ghost"]), true).await;
    assert_eq!(md.topics[0].error_code, UNKNOWN_TOPIC_OR_PARTITION);
    let pd = c.fetch_one("ghost", 0, 0, 1 << 20).await;
    assert_eq!(pd.error_code, UNKNOWN_TOPIC_OR_PARTITION);

    let all = c.metadata(None, false).await;
    assert!(all.topics.is_empty(), "no topic was created: {all:?}");
    let topics = stack.metadata.list_topics().await.expect("list topics");
    assert!(topics.is_empty(), "no topic was created: {topics:?}");
    stack.agent.shutdown().await;
}

/// With auto-creation on, many concurrent Metadata requests naming one new topic create it
/// exactly once, with the configured partition count; without allow_auto_topic_creation
/// nothing is created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_create_happens_exactly_once() {
    let cfg = AgentConfig {
        auto_create_topics_enable: true,
        num_partitions: 3,
        ..config(1)
    };
    let stack = Stack::local(cfg).await;
    let addr = stack.agent.local_addr();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        tasks.push(tokio::spawn(async move {
            let mut c = Client::connect(addr).await;
            let md = c.metadata(Some(&["auto-topic"]), true).await;
            let t = md.topics[0].clone();
            assert_eq!(t.error_code, 0);
            assert_eq!(t.partitions.len(), 3);
            t.topic_id
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.expect("metadata task"));
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "every client sees the same topic id");
    let topics = stack.metadata.list_topics().await.expect("list topics");
    let auto: Vec<_> = topics.iter().filter(|t| t.name == "auto-topic").collect();
    assert_eq!(auto.len(), 1);
    assert_eq!(auto[0].id, ids[0]);
    assert_eq!(auto[0].partitions.len(), 3);

    let mut c = stack.client().await;
    let md = c.metadata(Some(&["not-asked-to-create"]), false).await;
    assert_eq!(md.topics[0].error_code, UNKNOWN_TOPIC_OR_PARTITION);
    let topics = stack.metadata.list_topics().await.expect("list topics");
    assert_eq!(topics.len(), 1, "only auto-topic exists: {topics:?}");

    // A produce to an unknown topic auto-creates it too (Kafka does the same).
    let r = c
        .produce_one("auto-by-produce", 2, batches::single(T0, "v"))
        .await;
    assert_eq!((r.error_code, r.base_offset), (0, 0));
    stack.agent.shutdown().await;
}

/// Kafka's LogValidator refuses v2 batches whose offset range disagrees with their record
/// count (`lastOffsetDelta + 1 != recordsCount`), or that hold no record, with
/// INVALID_RECORD (87). Here such batches would burn offsets no record holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]

async fn batch_with_inconsistent_record_count_is_refused() {
    use floe_format::records::{encode_batch, BatchSpec, Record};
    let stack = Stack::local(config(1)).await;
    let mut c = stack.client().await;
    c.create_topic("counts", 1, &[]).await;
    let record = |delta: i32| Record {
        offset_delta: delta,
        timestamp_delta: 0,
        key: None,
        value: Some(Bytes::from_static(b"v")),
        headers: Vec::new(),
    };
    let spec = BatchSpec {
        base_timestamp: T0,
        max_timestamp: T0,
        ..BatchSpec::default()
    };
    // Two records claiming offsets 0..=9.
    let gappy = encode_batch(&spec, &[record(0), record(9)], Compression::None).expect("batch");
    let r = c.produce_one("counts", 0, gappy).await;
    assert_eq!(
        r.error_code,
        ResponseError::InvalidRecord.code(),
        "gappy batch"
    );
    // No record at all.
    let empty = encode_batch(&spec, &[], Compression::None).expect("batch");
    let r = c.produce_one("counts", 0, empty).await;
    assert_eq!(
        r.error_code,
        ResponseError::InvalidRecord.code(),
        "empty batch"
    );
    assert_eq!(
        c.high_watermark("counts", 0).await,
        0,
        "no offsets consumed"
    );
    stack.agent.shutdown().await;
}

/// A client that announces a frame and never sends its body is disconnected after
/// `frame_body_timeout_ms`, so it cannot pin frame memory; others are still served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_frame_body_is_cut_off() {
    let stack = Stack::local(AgentConfig {
        frame_body_timeout_ms: 200,
        ..config(1)
    })
    .await;
    let mut announced = 1_000_000i32.to_be_bytes().to_vec();
    announced.extend_from_slice(&[0, 18, 0, 3]);
    assert_closes_connection(&stack, &announced).await;
}
