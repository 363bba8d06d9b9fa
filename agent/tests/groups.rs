//! The classic group APIs on the wire, at every advertised version: one member's whole life
//! (join, sync, heartbeat, commit, describe, list, leave, delete) per JoinGroup version, so
//! every version-specific field is encoded and decoded at least once.

mod support;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    DeleteGroupsRequest, DescribeGroupsRequest, GroupId, HeartbeatRequest, JoinGroupRequest,
    LeaveGroupRequest, ListGroupsRequest, OffsetCommitRequest, OffsetDeleteRequest,
    SyncGroupRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use support::harness::{config, Stack};

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn join(group: &str, member: &str) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_member_id(s(member))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(20_000)
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(s("range"))
            .with_metadata(Bytes::from_static(b"subscription"))])
}

#[tokio::test]
async fn group_apis_work_at_every_advertised_version() {
    let stack = Stack::local(config(1)).await;
    let mut c = stack.client().await;
    c.create_topic("gt", 2, &[]).await;
    for v in 0..=9i16 {
        let group = format!("g{v}");
        let mut j = c.call(&join(&group, ""), v).await;
        if v >= 4 {
            assert_eq!(j.error_code, ResponseError::MemberIdRequired.code(), "v{v}");
            assert!(j.member_id.starts_with("floe-agent-tests-"), "v{v}");
            j = c.call(&join(&group, &j.member_id), v).await;
        }
        let member = j.member_id.to_string();
        assert_eq!(j.error_code, 0, "JoinGroup v{v}");
        assert_eq!(
            (j.generation_id, j.leader.as_str(), j.members.len()),
            (1, member.as_str(), 1),
            "JoinGroup v{v}"
        );
        assert_eq!(j.protocol_name.as_deref(), Some("range"), "JoinGroup v{v}");
        assert_eq!(j.members[0].metadata.as_ref(), b"subscription");

        let sv = v.min(5);
        let mut sync = SyncGroupRequest::default()
            .with_group_id(GroupId(s(&group)))
            .with_generation_id(1)
            .with_member_id(s(&member))
            .with_assignments(vec![SyncGroupRequestAssignment::default()
                .with_member_id(s(&member))
                .with_assignment(Bytes::from_static(b"assignment"))]);
        if sv >= 5 {
            sync = sync
                .with_protocol_type(Some(s("consumer")))
                .with_protocol_name(Some(s("range")));
        }
        let r = c.call(&sync, sv).await;
        assert_eq!(
            (r.error_code, r.assignment.as_ref()),
            (0, &b"assignment"[..]),
            "SyncGroup v{sv}"
        );

        let hv = v.min(4);
        let hb = |generation| {
            HeartbeatRequest::default()
                .with_group_id(GroupId(s(&group)))
                .with_generation_id(generation)
                .with_member_id(s(&member))
        };
        assert_eq!(c.call(&hb(1), hv).await.error_code, 0, "Heartbeat v{hv}");
        assert_eq!(
            c.call(&hb(7), hv).await.error_code,
            ResponseError::IllegalGeneration.code()
        );

        let cv = (v + 2).min(9);
        let commit = OffsetCommitRequest::default()
            .with_group_id(GroupId(s(&group)))
            .with_generation_id_or_member_epoch(1)
            .with_member_id(s(&member))
            .with_topics(vec![OffsetCommitRequestTopic::default()
                .with_name(TopicName(s("gt")))
                .with_partitions(vec![OffsetCommitRequestPartition::default()
                    .with_partition_index(1)
                    .with_committed_offset(0)])]);
        let r = c.call(&commit, cv).await;
        assert_eq!(
            r.topics[0].partitions[0].error_code, 0,
            "OffsetCommit v{cv}"
        );

        let dv = v.min(6);
        let describe = DescribeGroupsRequest::default().with_groups(vec![GroupId(s(&group))]);
        let d = c.call(&describe, dv).await;
        let g = &d.groups[0];
        assert_eq!(
            (
                g.error_code,
                g.group_state.as_str(),
                g.protocol_type.as_str(),
                g.protocol_data.as_str()
            ),
            (0, "Stable", "consumer", "range"),
            "DescribeGroups v{dv}"
        );
        let m = &g.members[0];
        assert_eq!(m.member_id.as_str(), member);
        assert_eq!(m.client_id.as_str(), "floe-agent-tests");
        assert_eq!(m.client_host.as_str(), "/127.0.0.1");
        assert_eq!(m.member_assignment.as_ref(), b"assignment");

        let lv = v.min(5);
        let l = c.call(&ListGroupsRequest::default(), lv).await;
        let listed = l.groups.iter().find(|x| x.group_id.as_str() == group);
        let listed = listed.unwrap_or_else(|| panic!("ListGroups v{lv} lacks {group}"));
        assert_eq!(listed.protocol_type.as_str(), "consumer");
        if lv >= 4 {
            assert_eq!(listed.group_state.as_str(), "Stable");
            let empty_only = ListGroupsRequest::default().with_states_filter(vec![s("Empty")]);
            let l = c.call(&empty_only, lv).await;
            assert!(l.groups.iter().all(|x| x.group_id.as_str() != group));
        }

        let del = DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s(&group))]);
        let r = c.call(&del, v.min(2)).await;
        assert_eq!(r.results[0].error_code, ResponseError::NonEmptyGroup.code());

        let lv = v.min(5);
        let mut leave = LeaveGroupRequest::default().with_group_id(GroupId(s(&group)));
        if lv >= 3 {
            leave = leave.with_members(vec![MemberIdentity::default().with_member_id(s(&member))]);
        } else {
            leave = leave.with_member_id(s(&member));
        }
        let r = c.call(&leave, lv).await;
        assert_eq!(r.error_code, 0, "LeaveGroup v{lv}");
        if lv >= 3 {
            assert_eq!(r.members[0].error_code, 0);
        }
        let d = c.call(&describe, dv).await;
        assert_eq!(d.groups[0].group_state.as_str(), "Empty");

        let r = c.call(&del, v.min(2)).await;
        assert_eq!(r.results[0].error_code, 0, "DeleteGroups v{}", v.min(2));
        let d = c.call(&describe, 6).await;
        assert_eq!(
            d.groups[0].error_code,
            ResponseError::GroupIdNotFound.code()
        );
        let d = c.call(&describe, 5).await;
        assert_eq!(
            (d.groups[0].error_code, d.groups[0].group_state.as_str()),
            (0, "Dead")
        );
    }
}

#[tokio::test]
async fn offset_delete_and_bad_group_input() {
    let stack = Stack::local(config(1)).await;
    let mut c = stack.client().await;
    c.create_topic("od", 1, &[]).await;
    // A simple group's offset, then OffsetDelete of it and of an unknown topic.
    let commit = OffsetCommitRequest::default()
        .with_group_id(GroupId(s("od-group")))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(TopicName(s("od")))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(3)])]);
    assert_eq!(
        c.call(&commit, 8).await.topics[0].partitions[0].error_code,
        0
    );
    let delete = |group: &str| {
        OffsetDeleteRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_topics(vec![
                OffsetDeleteRequestTopic::default()
                    .with_name(TopicName(s("od")))
                    .with_partitions(vec![
                        OffsetDeleteRequestPartition::default().with_partition_index(0)
                    ]),
                OffsetDeleteRequestTopic::default()
                    .with_name(TopicName(s("nope")))
                    .with_partitions(vec![
                        OffsetDeleteRequestPartition::default().with_partition_index(0)
                    ]),
            ])
    };
    let r = c.call(&delete("od-group"), 0).await;
    assert_eq!(r.error_code, 0);
    assert_eq!(
        (
            r.topics[0].partitions[0].error_code,
            r.topics[1].partitions[0].error_code
        ),
        (0, ResponseError::UnknownTopicOrPartition.code())
    );
    let r = c.call(&delete("no-such-group"), 0).await;
    assert_eq!(r.error_code, ResponseError::GroupIdNotFound.code());

    // Bad joins get Kafka's errors, not a closed connection.
    let r = c.call(&join("", ""), 9).await;
    assert_eq!(r.error_code, ResponseError::InvalidGroupId.code());
    let r = c.call(&join("g", "").with_session_timeout_ms(10), 9).await;
    assert_eq!(r.error_code, ResponseError::InvalidSessionTimeout.code());
    let r = c.call(&join("g", "").with_protocol_type(s("")), 9).await;
    assert_eq!(
        r.error_code,
        ResponseError::InconsistentGroupProtocol.code()
    );
    let huge = JoinGroupRequestProtocol::default()
        .with_name(s("range"))
        .with_metadata(Bytes::from(vec![0u8; 2 << 20]));
    let r = c.call(&join("g", "").with_protocols(vec![huge]), 9).await;
    assert_eq!(r.error_code, ResponseError::InvalidRequest.code());
    let r = c.call(&join("g", "not-a-member"), 9).await;
    assert_eq!(r.error_code, ResponseError::UnknownMemberId.code());
    // The connection still works.
    let r = c
        .call(
            &HeartbeatRequest::default().with_group_id(GroupId(s("g"))),
            4,
        )
        .await;
    assert_eq!(r.error_code, ResponseError::UnknownMemberId.code());
}

#[tokio::test]
async fn consumer_group_heartbeat_and_describe_on_the_wire() {
    use kafka_protocol::messages::{ConsumerGroupDescribeRequest, ConsumerGroupHeartbeatRequest};
    let stack = Stack::local(config(1)).await;
    let mut c = stack.client().await;
    c.create_topic("k", 4, &[]).await;
    for v in 0..=1i16 {
        let group = format!("k{v}");
        // v0: the coordinator names the member; v1: the member does.
        let member = if v == 0 {
            String::new()
        } else {
            format!("member-{v}")
        };
        let join = ConsumerGroupHeartbeatRequest::default()
            .with_group_id(GroupId(s(&group)))
            .with_member_id(s(&member))
            .with_member_epoch(0)
            .with_rebalance_timeout_ms(30_000)
            .with_subscribed_topic_names(Some(vec![TopicName(s("k"))]))
            .with_topic_partitions(Some(vec![]));
        let r = c.call(&join, v).await;
        assert_eq!(
            (r.error_code, r.member_epoch),
            (0, 1),
            "ConsumerGroupHeartbeat v{v}"
        );
        let id = r
            .member_id
            .clone()
            .map(|m| m.to_string())
            .unwrap_or_default();
        assert!(!id.is_empty());
        if v == 1 {
            assert_eq!(id, member);
        }
        let a = r.assignment.expect("assignment on join");
        assert_eq!(a.topic_partitions[0].partitions, vec![0, 1, 2, 3]);
        let d = c
            .call(
                &ConsumerGroupDescribeRequest::default().with_group_ids(vec![GroupId(s(&group))]),
                v,
            )
            .await;
        let g = &d.groups[0];
        assert_eq!(
            (g.error_code, g.group_state.as_str(), g.group_epoch),
            (0, "Stable", 1)
        );
        assert_eq!(
            g.members[0].assignment.topic_partitions[0]
                .topic_name
                .as_str(),
            "k"
        );
        let leave = ConsumerGroupHeartbeatRequest::default()
            .with_group_id(GroupId(s(&group)))
            .with_member_id(s(&id))
            .with_member_epoch(-1);
        let r = c.call(&leave, v).await;
        assert_eq!((r.error_code, r.member_epoch), (0, -1));
    }
    // v1 requires a member id; a classic describe of it is GROUP_ID_NOT_FOUND.
    let r = c
        .call(
            &ConsumerGroupHeartbeatRequest::default()
                .with_group_id(GroupId(s("x")))
                .with_member_epoch(0),
            1,
        )
        .await;
    assert_eq!(r.error_code, ResponseError::InvalidRequest.code());
    let d = c
        .call(
            &ConsumerGroupDescribeRequest::default().with_group_ids(vec![GroupId(s("nope"))]),
            1,
        )
        .await;
    assert_eq!(
        d.groups[0].error_code,
        ResponseError::GroupIdNotFound.code()
    );
}
