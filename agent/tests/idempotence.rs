//! Idempotent producers on the wire, across two agents of one cluster: a retry that reaches
//! the other agent is answered with the original offsets and stored once; gaps, stale
//! epochs, unknown producers and transactional batches get Kafka's errors.

mod support;

use std::sync::Arc;

use bytes::Bytes;
use floe_common::Metrics;
use floe_format::batch::Compression;
use floe_format::records::{encode_batch, BatchSpec, Record};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, InitProducerIdRequest, ProducerId, TopicName, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;
use support::batches::fetched_values;
use support::client::{records, Client};
use support::harness::{config, start_agent, Backend, Stack};

/// A batch of `values` from producer `pid`/`epoch` starting at sequence `seq`.
fn batch(pid: i64, epoch: i16, seq: i32, values: &[&str], transactional: bool) -> Bytes {
    let recs: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(i, v)| Record {
            offset_delta: i as i32,
            timestamp_delta: 0,
            key: None,
            value: Some(Bytes::from(v.to_string())),
            headers: Vec::new(),
        })
        .collect();
    let spec = BatchSpec {
        base_timestamp: 1_700_000_000_000,
        max_timestamp: 1_700_000_000_000,
        producer_id: pid,
        producer_epoch: epoch,
        base_sequence: seq,
        attributes_flags: if transactional { 0x10 } else { 0 },
        ..BatchSpec::default()
    };
    encode_batch(&spec, &recs, Compression::None).expect("encoding")
}

async fn produce(c: &mut Client, b: Bytes) -> (i16, i64) {
    let r = c.produce_one("idem", 0, b).await;
    (r.error_code, r.base_offset)
}

/// InitProducerId for transactional id `id`.
fn txn_init(id: &'static str) -> InitProducerIdRequest {
    InitProducerIdRequest::default()
        .with_transactional_id(Some(TransactionalId(StrBytes::from_static_str(id))))
        .with_transaction_timeout_ms(60_000)
}

/// AddPartitionsToTxn (v0-3 fields) adding `partitions` of `topic`.
fn add_partitions(
    init: &InitProducerIdRequest,
    pid: ProducerId,
    epoch: i16,
    topic: &'static str,
    partitions: Vec<i32>,
) -> AddPartitionsToTxnRequest {
    AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(init.transactional_id.clone().unwrap_or_default())
        .with_v3_and_below_producer_id(pid)
        .with_v3_and_below_producer_epoch(epoch)
        .with_v3_and_below_topics(vec![AddPartitionsToTxnTopic::default()
            .with_name(TopicName(StrBytes::from_static_str(topic)))
            .with_partitions(partitions)])
}

#[tokio::test]
async fn retries_on_another_agent_are_stored_once() {
    let stack = Stack::local(config(1)).await;
    let metrics = Arc::new(Metrics::new());
    let second = start_agent(
        config(2),
        stack.metadata.clone(),
        stack.backend.objects(metrics.clone()),
        metrics,
    )
    .await;
    let mut a = stack.client().await;
    let mut b = Client::connect(second.local_addr()).await;
    a.create_topic("idem", 1, &[]).await;

    let init = |v: i16| {
        (
            InitProducerIdRequest::default().with_transaction_timeout_ms(60_000),
            v,
        )
    };
    let (req, v) = init(4);
    let r = a.call(&req, v).await;
    assert_eq!((r.error_code, r.producer_epoch), (0, 0));
    let pid = r.producer_id.0;
    let r = b.call(&init(0).0, 0).await;
    assert!(
        r.producer_id.0 > 0 && r.producer_id.0 != pid,
        "ids are unique across agents"
    );

    assert_eq!(
        produce(&mut a, batch(pid, 0, 0, &["a", "b", "c"], false)).await,
        (0, 0)
    );
    // The same batch again, through the other agent (a retry after a lost reply).
    assert_eq!(
        produce(&mut b, batch(pid, 0, 0, &["a", "b", "c"], false)).await,
        (0, 0)
    );
    assert_eq!(
        produce(&mut b, batch(pid, 0, 3, &["d", "e"], false)).await,
        (0, 3)
    );
    assert_eq!(
        a.high_watermark("idem", 0).await,
        5,
        "the retry was not stored"
    );

    let code = |e: ResponseError| e.code();
    let gap = produce(&mut a, batch(pid, 0, 9, &["x"], false)).await;
    assert_eq!(gap.0, code(ResponseError::OutOfOrderSequenceNumber));
    // A bumped epoch restarts at sequence 0; the old epoch is then fenced.
    assert_eq!(
        produce(&mut a, batch(pid, 1, 0, &["f"], false)).await,
        (0, 5)
    );
    let stale = produce(&mut b, batch(pid, 0, 5, &["x"], false)).await;
    assert_eq!(stale.0, code(ResponseError::InvalidProducerEpoch));
    let txn = produce(&mut a, batch(pid, 1, 1, &["x"], true)).await;
    assert_eq!(txn.0, code(ResponseError::InvalidTxnState));
    // A transactional batch behind a plain idempotent one is refused too.
    let mixed = Bytes::from(
        [
            batch(pid, 1, 1, &["y"], false),
            batch(pid, 1, 2, &["z"], true),
        ]
        .concat(),
    );
    assert_eq!(
        produce(&mut a, mixed).await.0,
        code(ResponseError::InvalidTxnState)
    );
    // Plain batches still work beside idempotent ones.
    assert_eq!(
        produce(&mut a, batch(-1, -1, -1, &["g"], false)).await,
        (0, 6)
    );

    let fetched = a.fetch_one("idem", 0, 0, 1 << 20).await;
    assert_eq!(
        fetched_values(&records(&fetched)),
        vec!["a", "b", "c", "d", "e", "f", "g"]
    );

    // A transactional id gets its own producer id; asking again (a new producer instance)
    // bumps the epoch, on either agent.
    let txn_init = txn_init("t1");
    let r = a.call(&txn_init, 4).await;
    assert_eq!((r.error_code, r.producer_epoch), (0, 0));
    let again = b.call(&txn_init, 4).await;
    assert_eq!(
        (again.error_code, again.producer_id, again.producer_epoch),
        (0, r.producer_id, 1)
    );
    let bad = txn_init.clone().with_transaction_timeout_ms(0);
    assert_eq!(
        a.call(&bad, 4).await.error_code,
        code(ResponseError::InvalidTransactionTimeout)
    );
    second.shutdown().await;
}

/// KIP-588: a fenced producer hears PRODUCER_FENCED only on the request versions that know
/// it; older versions (KafkaJS 2.x sends EndTxn v1) and TxnOffsetCommit hear
/// INVALID_PRODUCER_EPOCH, as from Kafka.
#[tokio::test]
async fn fencing_errors_follow_the_request_version() {
    use kafka_protocol::messages::txn_offset_commit_request::{
        TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
    };
    use kafka_protocol::messages::{
        AddOffsetsToTxnRequest, EndTxnRequest, GroupId, TxnOffsetCommitRequest,
    };

    let stack = Stack::local(config(1)).await;
    let mut c = stack.client().await;
    c.create_topic("fenced", 1, &[]).await;
    let init = txn_init("zombie");
    let tid = TransactionalId(StrBytes::from_static_str("zombie"));
    let zombie = c.call(&init, 4).await;
    assert_eq!(zombie.error_code, 0);
    let successor = c.call(&init, 4).await;
    assert_eq!(successor.producer_epoch, zombie.producer_epoch + 1);
    let (pid, epoch) = (zombie.producer_id, zombie.producer_epoch);

    let fenced = ResponseError::ProducerFenced.code();
    let old = ResponseError::InvalidProducerEpoch.code();

    let end = EndTxnRequest::default()
        .with_transactional_id(tid.clone())
        .with_producer_id(pid)
        .with_producer_epoch(epoch)
        .with_committed(true);
    assert_eq!(c.call(&end, 1).await.error_code, old);
    assert_eq!(c.call(&end, 2).await.error_code, fenced);

    let add_offsets = AddOffsetsToTxnRequest::default()
        .with_transactional_id(tid.clone())
        .with_producer_id(pid)
        .with_producer_epoch(epoch)
        .with_group_id(GroupId(StrBytes::from_static_str("g")));
    assert_eq!(c.call(&add_offsets, 1).await.error_code, old);
    assert_eq!(c.call(&add_offsets, 3).await.error_code, fenced);

    let add_partitions = add_partitions(&init, pid, epoch, "fenced", vec![0]);
    let code_of = |r: kafka_protocol::messages::AddPartitionsToTxnResponse| {
        r.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code
    };
    assert_eq!(code_of(c.call(&add_partitions, 1).await), old);
    assert_eq!(code_of(c.call(&add_partitions, 3).await), fenced);

    // KIP-360 re-initialisation with the stale epoch.
    let reinit = init
        .clone()
        .with_producer_id(ProducerId(pid.0))
        .with_producer_epoch(epoch);
    assert_eq!(c.call(&reinit, 3).await.error_code, old);
    assert_eq!(c.call(&reinit, 4).await.error_code, fenced);

    let commit = TxnOffsetCommitRequest::default()
        .with_transactional_id(tid)
        .with_group_id(GroupId(StrBytes::from_static_str("g")))
        .with_producer_id(pid)
        .with_producer_epoch(epoch)
        .with_generation_id(-1)
        .with_topics(vec![TxnOffsetCommitRequestTopic::default()
            .with_name(TopicName(StrBytes::from_static_str("fenced")))
            .with_partitions(vec![TxnOffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(1)])]);
    for v in [0, 3] {
        let r = c.call(&commit, v).await;
        assert_eq!(r.topics[0].partitions[0].error_code, old, "version {v}");
    }
}

/// Kafka handles a connection's requests one at a time, and clients rely on it: librdkafka
/// sends EndTxn right behind AddPartitionsToTxn when a transaction is aborted at once, and
/// the end must find the partitions added. Coordinator requests pipelined on one connection
/// therefore take effect in arrival order (PostgreSQL, where two calls can really overlap).
#[tokio::test]
async fn pipelined_coordinator_requests_take_effect_in_order() {
    use kafka_protocol::messages::EndTxnRequest;

    let stack = Stack::start(Backend::postgres().await, config(1)).await;
    let mut c = stack.client().await;
    c.create_topic("piped", 4, &[]).await;
    let init = txn_init("piped");
    let tid = TransactionalId(StrBytes::from_static_str("piped"));
    let r = c.call(&init, 4).await;
    assert_eq!(r.error_code, 0);
    for round in 0..40 {
        let add = add_partitions(
            &init,
            r.producer_id,
            r.producer_epoch,
            "piped",
            vec![0, 1, 2, 3],
        );
        let end = EndTxnRequest::default()
            .with_transactional_id(tid.clone())
            .with_producer_id(r.producer_id)
            .with_producer_epoch(r.producer_epoch)
            .with_committed(round % 2 == 0);
        let add_pending = c.send(&add, 3).await;
        let end_pending = c.send(&end, 3).await;
        let added = c.recv(add_pending).await;
        let ended = c.recv(end_pending).await;
        assert!(added
            .results_by_topic_v3_and_below
            .iter()
            .flat_map(|t| t.results_by_partition.iter())
            .all(|p| p.partition_error_code == 0));
        assert_eq!(
            ended.error_code, 0,
            "round {round}: EndTxn ran before AddPartitionsToTxn"
        );
    }
    // Every round wrote its four markers.
    for p in 0..4 {
        assert_eq!(c.high_watermark("piped", p).await, 40);
    }
}
