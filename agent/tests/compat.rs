//! Wire details stock clients rely on beyond produce and fetch: leader epochs
//! (OffsetForLeaderEpoch, epochs stamped into fetched batches), DescribeTopicPartitions
//! paging, and SASL on a plaintext listener.

mod support;

use floe_format::batch::Compression;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_topic_partitions_request::{Cursor, TopicRequest};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::{
    DescribeTopicPartitionsRequest, OffsetForLeaderEpochRequest, SaslHandshakeRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use support::batches::{self, decode_fetched};
use support::harness::{config, Stack};

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

#[tokio::test]
async fn offset_for_leader_epoch_answers_the_current_epoch_end() {
    let stack = Stack::local(config(1)).await;
    let mut c = stack.client().await;
    c.create_topic("epochs", 1, &[]).await;
    for i in 0..3 {
        let r = c
            .produce_one(
                "epochs",
                0,
                batches::batch(1_000 + i, &batches::values("e", 2), Compression::None),
            )
            .await;
        assert_eq!(r.error_code, 0);
    }
    let ask = |leader_epoch: i32, current: i32, partition: i32| {
        OffsetForLeaderEpochRequest::default()
            .with_replica_id((-1).into())
            .with_topics(vec![OffsetForLeaderTopic::default()
                .with_topic(name("epochs"))
                .with_partitions(vec![OffsetForLeaderPartition::default()
                    .with_partition(partition)
                    .with_current_leader_epoch(current)
                    .with_leader_epoch(leader_epoch)])])
    };
    let r = c.call(&ask(0, 0, 0), 4).await;
    let p = &r.topics[0].partitions[0];
    assert_eq!((p.error_code, p.leader_epoch, p.end_offset), (0, 0, 6));
    // An epoch the partition never had: Kafka's UNDEFINED answer.
    let r = c.call(&ask(7, -1, 0), 4).await;
    let p = &r.topics[0].partitions[0];
    assert_eq!((p.error_code, p.leader_epoch, p.end_offset), (0, -1, -1));
    // A client that thinks the epoch is newer than ours.
    let r = c.call(&ask(0, 3, 0), 4).await;
    assert_eq!(
        r.topics[0].partitions[0].error_code,
        ResponseError::UnknownLeaderEpoch.code()
    );
    let r = c.call(&ask(0, 0, 9), 4).await;
    assert_eq!(
        r.topics[0].partitions[0].error_code,
        ResponseError::UnknownTopicOrPartition.code()
    );

    // Fetched batches carry the partition epoch, as a Kafka leader stamps them.
    let fetched = c.fetch_one("epochs", 0, 0, i32::MAX).await;
    let batches = decode_fetched(fetched.records.as_ref().expect("records"));
    assert_eq!(batches.len(), 3);
    assert!(batches.iter().all(|b| b.header.partition_leader_epoch == 0));
}

#[tokio::test]
async fn describe_topic_partitions_pages_with_a_cursor() {
    let stack = Stack::local(config(1)).await;
    let mut c = stack.client().await;
    let a = c.create_topic("dtp-a", 3, &[]).await;
    let b = c.create_topic("dtp-b", 2, &[]).await;
    let req = |cursor: Option<Cursor>| {
        DescribeTopicPartitionsRequest::default()
            .with_topics(vec![
                TopicRequest::default().with_name(name("dtp-b")),
                TopicRequest::default().with_name(name("dtp-a")),
                TopicRequest::default().with_name(name("dtp-missing")),
            ])
            .with_response_partition_limit(2)
            .with_cursor(cursor)
    };
    let mut seen = Vec::new();
    let mut cursor = None;
    for _ in 0..10 {
        let r = c.call(&req(cursor.clone()), 0).await;
        for t in &r.topics {
            let n = t.name.as_ref().map(|n| n.to_string()).unwrap_or_default();
            if n == "dtp-missing" {
                assert_eq!(t.error_code, ResponseError::UnknownTopicOrPartition.code());
                continue;
            }
            assert_eq!(t.error_code, 0);
            assert_eq!(t.topic_id, if n == "dtp-a" { a } else { b });
            for p in &t.partitions {
                assert_eq!(p.leader_id, 1);
                seen.push((n.clone(), p.partition_index));
            }
        }
        assert!(r.topics.iter().map(|t| t.partitions.len()).sum::<usize>() <= 2);
        match r.next_cursor {
            Some(c) => {
                cursor = Some(
                    Cursor::default()
                        .with_topic_name(c.topic_name)
                        .with_partition_index(c.partition_index),
                )
            }
            None => break,
        }
    }
    let want: Vec<(String, i32)> = vec![
        ("dtp-a", 0),
        ("dtp-a", 1),
        ("dtp-a", 2),
        ("dtp-b", 0),
        ("dtp-b", 1),
    ]
    .into_iter()
    .map(|(n, p)| (n.to_string(), p))
    .collect();
    assert_eq!(seen, want, "every partition once, in name order");
}

#[tokio::test]
async fn sasl_handshake_on_plaintext_gets_an_error_not_a_closed_connection() {
    let stack = Stack::local(config(1)).await;
    let mut c = stack.client().await;
    let req = SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN"));
    let r = c.call(&req, 1).await;
    assert_eq!(r.error_code, ResponseError::IllegalSaslState.code());
    assert!(r.mechanisms.is_empty());
    // The connection is still served.
    let v = c.api_versions().await;
    assert_eq!(v.error_code, 0);
}

/// Every advertised version of the offset APIs encodes and round-trips a commit.
#[tokio::test]
async fn offset_apis_work_at_every_advertised_version() {
    use kafka_protocol::messages::offset_commit_request::{
        OffsetCommitRequestPartition, OffsetCommitRequestTopic,
    };
    use kafka_protocol::messages::offset_fetch_request::{
        OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
    };
    use kafka_protocol::messages::{
        FindCoordinatorRequest, GroupId, OffsetCommitRequest, OffsetFetchRequest,
    };

    let stack = Stack::local(config(1)).await;
    let mut c = stack.client().await;
    c.create_topic("offs", 2, &[]).await;
    let group = |g: &str| GroupId(StrBytes::from_string(g.to_string()));

    for v in 0..=6 {
        let mut req = FindCoordinatorRequest::default();
        if v >= 4 {
            req = req.with_coordinator_keys(vec![
                StrBytes::from_static_str("g"),
                StrBytes::from_static_str(""),
            ]);
        } else {
            req = req.with_key(StrBytes::from_static_str("g"));
        }
        let r = c.call(&req, v).await;
        if v >= 4 {
            assert_eq!(r.coordinators.len(), 2);
            assert_eq!(
                (r.coordinators[0].error_code, r.coordinators[0].node_id.0),
                (0, 1)
            );
            assert_eq!(
                r.coordinators[1].error_code,
                ResponseError::InvalidGroupId.code()
            );
        } else {
            assert_eq!((r.error_code, r.node_id.0), (0, 1), "FindCoordinator v{v}");
        }
    }
    let txn = c
        .call(
            &FindCoordinatorRequest::default()
                .with_key(StrBytes::from_static_str("tx"))
                .with_key_type(1),
            3,
        )
        .await;
    // Transactions are coordinated by whichever agent is asked, like groups.
    assert_eq!((txn.error_code, txn.node_id.0), (0, 1));

    for v in 2..=9i16 {
        let g = format!("g{v}");
        let commit = OffsetCommitRequest::default()
            .with_group_id(group(&g))
            .with_generation_id_or_member_epoch(-1)
            .with_topics(vec![OffsetCommitRequestTopic::default()
                .with_name(name("offs"))
                .with_partitions(vec![
                    OffsetCommitRequestPartition::default()
                        .with_partition_index(1)
                        .with_committed_offset(i64::from(v) * 10)
                        .with_committed_leader_epoch(if v >= 6 { 0 } else { -1 })
                        .with_committed_metadata(Some(StrBytes::from_static_str("m"))),
                    OffsetCommitRequestPartition::default()
                        .with_partition_index(9)
                        .with_committed_offset(1),
                ])]);
        let r = c.call(&commit, v).await;
        let codes: Vec<i16> = r.topics[0]
            .partitions
            .iter()
            .map(|p| p.error_code)
            .collect();
        assert_eq!(
            codes,
            vec![0, ResponseError::UnknownTopicOrPartition.code()],
            "OffsetCommit v{v}"
        );
    }
    // A commit naming a member: no members exist yet.
    let member = OffsetCommitRequest::default()
        .with_group_id(group("g9"))
        .with_generation_id_or_member_epoch(3)
        .with_member_id(StrBytes::from_static_str("m-1"))
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(name("offs"))
            .with_partitions(vec![
                OffsetCommitRequestPartition::default().with_partition_index(0)
            ])]);
    let r = c.call(&member, 9).await;
    assert_eq!(
        r.topics[0].partitions[0].error_code,
        ResponseError::UnknownMemberId.code()
    );

    for v in 1..=7i16 {
        let req = OffsetFetchRequest::default()
            .with_group_id(group("g5"))
            .with_topics(Some(vec![OffsetFetchRequestTopic::default()
                .with_name(name("offs"))
                .with_partition_indexes(vec![0, 1])]));
        let r = c.call(&req, v).await;
        let ps = &r.topics[0].partitions;
        assert_eq!(
            (ps[0].committed_offset, ps[1].committed_offset),
            (-1, 50),
            "OffsetFetch v{v}"
        );
        if v >= 2 {
            // Null topics: every committed partition.
            let all = c
                .call(
                    &OffsetFetchRequest::default()
                        .with_group_id(group("g5"))
                        .with_topics(None),
                    v,
                )
                .await;
            assert_eq!(all.topics.len(), 1);
            assert_eq!(all.topics[0].partitions.len(), 1);
        }
    }
    for v in 8..=9i16 {
        let req = OffsetFetchRequest::default().with_groups(vec![
            OffsetFetchRequestGroup::default()
                .with_group_id(group("g6"))
                .with_topics(Some(vec![OffsetFetchRequestTopics::default()
                    .with_name(name("offs"))
                    .with_partition_indexes(vec![1])])),
            OffsetFetchRequestGroup::default()
                .with_group_id(group("g8"))
                .with_topics(None),
        ]);
        let r = c.call(&req, v).await;
        assert_eq!(r.groups.len(), 2);
        let p = &r.groups[0].topics[0].partitions[0];
        assert_eq!(
            (p.committed_offset, p.committed_leader_epoch),
            (60, 0),
            "OffsetFetch v{v}"
        );
        assert_eq!(r.groups[1].topics[0].partitions[0].committed_offset, 80);
    }
}

/// Produce v13 names topics by id (KIP-516); a stale id gets UNKNOWN_TOPIC_ID.
#[tokio::test]
async fn produce_by_topic_id() {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::ProduceRequest;

    let stack = Stack::local(config(1)).await;
    let mut c = stack.client().await;
    let id = c.create_topic("by-id", 1, &[]).await;
    let req = |topic_id: uuid::Uuid| {
        ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(10_000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_topic_id(topic_id)
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(batches::batch(
                        1_000,
                        &batches::values("id", 3),
                        Compression::None,
                    )))])])
    };
    for expected_base in [0, 3] {
        let r = c.call(&req(id), 13).await;
        let t = &r.responses[0];
        assert_eq!(t.topic_id, id);
        let p = &t.partition_responses[0];
        assert_eq!((p.error_code, p.base_offset), (0, expected_base));
    }
    let r = c.call(&req(uuid::Uuid::new_v4()), 13).await;
    assert_eq!(
        r.responses[0].partition_responses[0].error_code,
        ResponseError::UnknownTopicId.code()
    );
    assert_eq!(c.high_watermark("by-id", 0).await, 6);
}

/// ListOffsets MAX_TIMESTAMP (-3, v7+): the record with the largest timestamp, not the last.
#[tokio::test]
async fn list_offsets_max_timestamp() {
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    use kafka_protocol::messages::ListOffsetsRequest;

    let stack = Stack::local(config(1)).await;
    let mut c = stack.client().await;
    c.create_topic("maxts", 1, &[]).await;
    let ask = || {
        ListOffsetsRequest::default()
            .with_replica_id((-1).into())
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(name("maxts"))
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(0)
                    .with_timestamp(-3)])])
    };
    let empty = c.call(&ask(), 7).await;
    let p = &empty.topics[0].partitions[0];
    assert_eq!(
        (p.error_code, p.offset, p.timestamp),
        (0, -1, -1),
        "empty partition"
    );
    // Batches based at 1000, 5000 and 2000: the max is the last record of the 2nd batch.
    for ts in [1_000, 5_000, 2_000] {
        let r = c
            .produce_one(
                "maxts",
                0,
                batches::batch(ts, &batches::values("t", 3), Compression::Zstd),
            )
            .await;
        assert_eq!(r.error_code, 0);
    }
    let r = c.call(&ask(), 8).await;
    let p = &r.topics[0].partitions[0];
    // batch() spaces records 10 ms apart from its base timestamp.
    assert_eq!((p.error_code, p.offset, p.timestamp), (0, 5, 5_020));
}
