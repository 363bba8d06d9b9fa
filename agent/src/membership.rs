//! Classic consumer-group membership and group admin: JoinGroup, SyncGroup, Heartbeat,
//! LeaveGroup, DescribeGroups, ListGroups, DeleteGroups and OffsetDelete. The agent only
//! translates: every call goes to the group coordinator in the metadata service
//! (`floe_metadata::groups`), so any agent can serve any group and an agent's death loses
//! nothing. Version differences of the Kafka messages are handled here.

use bytes::Bytes;
use floe_metadata::groups::{
    ConsumerHeartbeat, GroupCall, GroupError, GroupProtocol, GroupReply, Heartbeat, JoinGroup,
    LeavingMember, NamedPartitions, OffsetToDelete, SyncGroup,
};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::consumer_group_describe_response::{
    Assignment as DescribedAssignment, DescribedGroup as ConsumerDescribedGroup, Member,
    TopicPartitions as DescribedTopicPartitions,
};
use kafka_protocol::messages::consumer_group_heartbeat_response::{
    Assignment, TopicPartitions as HeartbeatTopicPartitions,
};
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{
    ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, ConsumerGroupHeartbeatRequest,
    ConsumerGroupHeartbeatResponse,
};
use kafka_protocol::messages::{
    DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest, DescribeGroupsResponse,
    GroupId, HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse,
    LeaveGroupRequest, LeaveGroupResponse, ListGroupsRequest, ListGroupsResponse,
    OffsetDeleteRequest, OffsetDeleteResponse, SyncGroupRequest, SyncGroupResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use tracing::warn;

use crate::dispatch::{ClientInfo, Ctx};

/// Largest protocol metadata (JoinGroup) or assignment (SyncGroup) total a member may send.
/// Kafka bounds them only through the size of the record it writes to `__consumer_offsets`;
/// 1 MiB per member is far beyond any real assignor's needs.
const MAX_MEMBER_BYTES: usize = 1 << 20;

fn s(v: impl Into<String>) -> StrBytes {
    StrBytes::from_string(v.into())
}

/// The Kafka error code of a coordinator answer.
pub(crate) fn code(e: Option<GroupError>) -> i16 {
    e.map_or(0, |e| response_error(e).code())
}

/// The Kafka error of a coordinator error.
pub(crate) fn response_error(e: GroupError) -> ResponseError {
    match e {
        GroupError::InvalidGroupId => ResponseError::InvalidGroupId,
        GroupError::UnknownMemberId => ResponseError::UnknownMemberId,
        GroupError::IllegalGeneration => ResponseError::IllegalGeneration,
        GroupError::RebalanceInProgress => ResponseError::RebalanceInProgress,
        GroupError::InconsistentGroupProtocol => ResponseError::InconsistentGroupProtocol,
        GroupError::InvalidSessionTimeout => ResponseError::InvalidSessionTimeout,
        GroupError::MemberIdRequired => ResponseError::MemberIdRequired,
        GroupError::FencedInstanceId => ResponseError::FencedInstanceId,
        GroupError::GroupIdNotFound => ResponseError::GroupIdNotFound,
        GroupError::NonEmptyGroup => ResponseError::NonEmptyGroup,
        GroupError::GroupSubscribedToTopic => ResponseError::GroupSubscribedToTopic,
        GroupError::GroupMaxSizeReached => ResponseError::GroupMaxSizeReached,
        GroupError::CoordinatorNotAvailable => ResponseError::CoordinatorNotAvailable,
        GroupError::FencedMemberEpoch => ResponseError::FencedMemberEpoch,
        GroupError::UnreleasedInstanceId => ResponseError::UnreleasedInstanceId,
        GroupError::UnsupportedAssignor => ResponseError::UnsupportedAssignor,
        GroupError::StaleMemberEpoch => ResponseError::StaleMemberEpoch,
        GroupError::InvalidRegularExpression => ResponseError::InvalidRegularExpression,
        GroupError::InvalidRequest => ResponseError::InvalidRequest,
    }
}

/// One coordinator call; an unreachable metadata service is COORDINATOR_NOT_AVAILABLE,
/// which makes clients look the coordinator up again and retry.
pub(crate) async fn call(ctx: &Ctx, call: GroupCall) -> Result<GroupReply, GroupError> {
    ctx.metadata.group(call).await.map_err(|e| {
        warn!(error = %e, "group coordinator call failed");
        GroupError::CoordinatorNotAvailable
    })
}

/// A reply of the wrong kind means a confused service; treat it as unavailable.
fn unexpected(reply: &GroupReply) -> GroupError {
    warn!(?reply, "group coordinator answered a different call");
    GroupError::CoordinatorNotAvailable
}

fn opt(v: &Option<StrBytes>) -> Option<String> {
    v.as_ref().map(|x| x.to_string())
}

/// JoinGroup v0–9.
pub async fn join_group(
    ctx: &Ctx,
    req: JoinGroupRequest,
    version: i16,
    client: &ClientInfo,
) -> JoinGroupResponse {
    let member_id = req.member_id.to_string();
    let fail = |error_code: i16| {
        let r = JoinGroupResponse::default()
            .with_error_code(error_code)
            .with_generation_id(-1)
            .with_member_id(s(member_id.clone()));
        if version >= 7 {
            r
        } else {
            r.with_protocol_name(Some(StrBytes::default()))
        }
    };
    let metadata_bytes: usize = req.protocols.iter().map(|p| p.metadata.len()).sum();
    if metadata_bytes > MAX_MEMBER_BYTES {
        return fail(ResponseError::InvalidRequest.code());
    }
    let join = JoinGroup {
        group_id: req.group_id.to_string(),
        member_id: member_id.clone(),
        group_instance_id: opt(&req.group_instance_id),
        client_id: client.id.clone(),
        client_host: client.host.clone(),
        session_timeout_ms: req.session_timeout_ms,
        // v0 has no rebalance timeout: Kafka uses the session timeout.
        rebalance_timeout_ms: if version >= 1 {
            req.rebalance_timeout_ms
        } else {
            req.session_timeout_ms
        },
        protocol_type: req.protocol_type.to_string(),
        protocols: req
            .protocols
            .into_iter()
            .map(|p| GroupProtocol {
                name: p.name.to_string(),
                metadata: p.metadata.to_vec(),
            })
            .collect(),
        require_known_member_id: version >= 4,
    };
    let j = match call(ctx, GroupCall::Join(join)).await {
        Ok(GroupReply::Join(j)) => j,
        Ok(other) => return fail(code(Some(unexpected(&other)))),
        Err(e) => return fail(code(Some(e))),
    };
    let members = j
        .members
        .into_iter()
        .map(|m| {
            let r = JoinGroupResponseMember::default()
                .with_member_id(s(m.member_id))
                .with_metadata(Bytes::from(m.metadata));
            if version >= 5 {
                r.with_group_instance_id(m.group_instance_id.map(s))
            } else {
                r
            }
        })
        .collect();
    let mut r = JoinGroupResponse::default()
        .with_error_code(code(j.error))
        .with_generation_id(j.generation_id)
        .with_leader(s(j.leader))
        .with_member_id(s(j.member_id))
        .with_members(members);
    if version >= 7 {
        r = r
            .with_protocol_type(j.protocol_type.map(s))
            .with_protocol_name(j.protocol_name.map(s));
    } else {
        r = r.with_protocol_name(Some(s(j.protocol_name.unwrap_or_default())));
    }
    if version >= 9 {
        r = r.with_skip_assignment(j.skip_assignment);
    }
    r
}

/// SyncGroup v0–5.
pub async fn sync_group(ctx: &Ctx, req: SyncGroupRequest, version: i16) -> SyncGroupResponse {
    let fail = |e: GroupError| SyncGroupResponse::default().with_error_code(code(Some(e)));
    if req
        .assignments
        .iter()
        .any(|a| a.assignment.len() > MAX_MEMBER_BYTES)
    {
        return SyncGroupResponse::default().with_error_code(ResponseError::InvalidRequest.code());
    }
    let sync = SyncGroup {
        group_id: req.group_id.to_string(),
        generation_id: req.generation_id,
        member_id: req.member_id.to_string(),
        group_instance_id: opt(&req.group_instance_id),
        protocol_type: opt(&req.protocol_type),
        protocol_name: opt(&req.protocol_name),
        assignments: req
            .assignments
            .into_iter()
            .map(|a| (a.member_id.to_string(), a.assignment.to_vec()))
            .collect(),
    };
    let r = match call(ctx, GroupCall::Sync(sync)).await {
        Ok(GroupReply::Sync(r)) => r,
        Ok(other) => return fail(unexpected(&other)),
        Err(e) => return fail(e),
    };
    let out = SyncGroupResponse::default()
        .with_error_code(code(r.error))
        .with_assignment(Bytes::from(r.assignment));
    if version >= 5 {
        out.with_protocol_type(r.protocol_type.map(s))
            .with_protocol_name(r.protocol_name.map(s))
    } else {
        out
    }
}

/// Heartbeat v0–4.
pub async fn heartbeat(ctx: &Ctx, req: HeartbeatRequest) -> HeartbeatResponse {
    let hb = Heartbeat {
        group_id: req.group_id.to_string(),
        generation_id: req.generation_id,
        member_id: req.member_id.to_string(),
        group_instance_id: opt(&req.group_instance_id),
    };
    let error = match call(ctx, GroupCall::Heartbeat(hb)).await {
        Ok(GroupReply::Done(e)) => e,
        Ok(other) => Some(unexpected(&other)),
        Err(e) => Some(e),
    };
    HeartbeatResponse::default().with_error_code(code(error))
}

/// LeaveGroup v0–5 (v3+ batches members).
pub async fn leave_group(ctx: &Ctx, req: LeaveGroupRequest, version: i16) -> LeaveGroupResponse {
    let members: Vec<LeavingMember> = if version >= 3 {
        req.members
            .iter()
            .map(|m| LeavingMember {
                member_id: m.member_id.to_string(),
                group_instance_id: opt(&m.group_instance_id),
            })
            .collect()
    } else {
        vec![LeavingMember {
            member_id: req.member_id.to_string(),
            group_instance_id: None,
        }]
    };
    let call_members = members.clone();
    let leave = GroupCall::Leave {
        group_id: req.group_id.to_string(),
        members: call_members,
    };
    let (error, per) = match call(ctx, leave).await {
        Ok(GroupReply::Leave { error, members }) => (error, members),
        Ok(other) => (Some(unexpected(&other)), Vec::new()),
        Err(e) => (Some(e), Vec::new()),
    };
    if version < 3 {
        let e = error.or_else(|| per.first().copied().flatten());
        return LeaveGroupResponse::default().with_error_code(code(e));
    }
    let responses = if error.is_some() {
        Vec::new()
    } else {
        members
            .into_iter()
            .zip(per)
            .map(|(m, e)| {
                MemberResponse::default()
                    .with_member_id(s(m.member_id))
                    .with_group_instance_id(m.group_instance_id.map(s))
                    .with_error_code(code(e))
            })
            .collect()
    };
    LeaveGroupResponse::default()
        .with_error_code(code(error))
        .with_members(responses)
}

/// DescribeGroups v0–6. An unknown group is state `Dead` (v6 adds GROUP_ID_NOT_FOUND).
pub async fn describe_groups(
    ctx: &Ctx,
    req: DescribeGroupsRequest,
    version: i16,
) -> DescribeGroupsResponse {
    let ids: Vec<String> = req.groups.iter().map(|g| g.to_string()).collect();
    let reply = call(ctx, GroupCall::Describe(ids.clone())).await;
    let described = match reply {
        Ok(GroupReply::Describe(d)) => Ok(d),
        Ok(other) => Err(unexpected(&other)),
        Err(e) => Err(e),
    };
    let groups = match described {
        Err(e) => ids
            .into_iter()
            .map(|id| {
                DescribedGroup::default()
                    .with_group_id(GroupId(s(id)))
                    .with_error_code(code(Some(e)))
            })
            .collect(),
        Ok(ds) => ds
            .into_iter()
            .map(|d| {
                let mut g = DescribedGroup::default()
                    .with_group_id(GroupId(s(d.group_id.clone())))
                    .with_group_state(s(d.state))
                    .with_protocol_type(s(d.protocol_type))
                    .with_protocol_data(s(d.protocol_name))
                    .with_members(
                        d.members
                            .into_iter()
                            .map(|m| {
                                let r = DescribedGroupMember::default()
                                    .with_member_id(s(m.member_id))
                                    .with_client_id(s(m.client_id))
                                    .with_client_host(s(m.client_host))
                                    .with_member_metadata(Bytes::from(m.metadata))
                                    .with_member_assignment(Bytes::from(m.assignment));
                                if version >= 4 {
                                    r.with_group_instance_id(m.group_instance_id.map(s))
                                } else {
                                    r
                                }
                            })
                            .collect(),
                    );
                if d.group_id.is_empty() {
                    g.error_code = ResponseError::InvalidGroupId.code();
                } else if !d.exists && version >= 6 {
                    g.error_code = ResponseError::GroupIdNotFound.code();
                    g.error_message = Some(s(format!("group {} not found", d.group_id)));
                }
                g
            })
            .collect(),
    };
    DescribeGroupsResponse::default().with_groups(groups)
}

/// ListGroups v0–5 (v4 filters by state, v5 by type).
pub async fn list_groups(ctx: &Ctx, req: ListGroupsRequest, version: i16) -> ListGroupsResponse {
    let list = GroupCall::List {
        states: req.states_filter.iter().map(|x| x.to_string()).collect(),
        types: req.types_filter.iter().map(|x| x.to_string()).collect(),
    };
    let listed = match call(ctx, list).await {
        Ok(GroupReply::List(l)) => l,
        Ok(other) => {
            return ListGroupsResponse::default().with_error_code(code(Some(unexpected(&other))))
        }
        Err(e) => return ListGroupsResponse::default().with_error_code(code(Some(e))),
    };
    let groups = listed
        .into_iter()
        .map(|g| {
            let mut r = ListedGroup::default()
                .with_group_id(GroupId(s(g.group_id)))
                .with_protocol_type(s(g.protocol_type));
            if version >= 4 {
                r = r.with_group_state(s(g.state));
            }
            if version >= 5 {
                r = r.with_group_type(s(g.group_type));
            }
            r
        })
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}

/// DeleteGroups v0–2.
pub async fn delete_groups(ctx: &Ctx, req: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let ids: Vec<String> = req.groups_names.iter().map(|g| g.to_string()).collect();
    let errors = match call(ctx, GroupCall::Delete(ids.clone())).await {
        Ok(GroupReply::Delete(e)) if e.len() == ids.len() => e,
        Ok(other) => vec![Some(unexpected(&other)); ids.len()],
        Err(e) => vec![Some(e); ids.len()],
    };
    let results = ids
        .into_iter()
        .zip(errors)
        .map(|(id, e)| {
            DeletableGroupResult::default()
                .with_group_id(GroupId(s(id)))
                .with_error_code(code(e))
        })
        .collect();
    DeleteGroupsResponse::default().with_results(results)
}

/// OffsetDelete v0.
pub async fn offset_delete(ctx: &Ctx, req: OffsetDeleteRequest) -> OffsetDeleteResponse {
    // Partitions of unknown topics are answered here; the rest go to the coordinator.
    let mut slots = Vec::new();
    let mut wanted = Vec::new();
    let mut topics = Vec::with_capacity(req.topics.len());
    for t in &req.topics {
        let topic = ctx.catalog.lookup(t.name.as_str()).await;
        let mut tr = OffsetDeleteResponseTopic::default().with_name(t.name.clone());
        for p in &t.partitions {
            let mut pr =
                OffsetDeleteResponsePartition::default().with_partition_index(p.partition_index);
            match &topic {
                Some(info) if p.partition_index >= 0 && p.partition_index < info.partitions => {
                    slots.push((topics.len(), tr.partitions.len()));
                    wanted.push(OffsetToDelete {
                        topic: t.name.to_string(),
                        topic_id: info.id,
                        partition: p.partition_index,
                    });
                }
                _ => pr.error_code = ResponseError::UnknownTopicOrPartition.code(),
            }
            tr.partitions.push(pr);
        }
        topics.push(tr);
    }
    let delete = GroupCall::DeleteOffsets {
        group_id: req.group_id.to_string(),
        partitions: wanted,
    };
    let (error, per) = match call(ctx, delete).await {
        Ok(GroupReply::DeleteOffsets { error, partitions }) => (error, partitions),
        Ok(other) => (Some(unexpected(&other)), Vec::new()),
        Err(e) => (Some(e), Vec::new()),
    };
    if error.is_some() {
        return OffsetDeleteResponse::default().with_error_code(code(error));
    }
    for ((t, p), e) in slots.into_iter().zip(per) {
        topics[t].partitions[p].error_code = code(e);
    }
    OffsetDeleteResponse::default().with_topics(topics)
}

/// ConsumerGroupHeartbeat v0–1 (KIP-848): the coordinator computes the assignment.
pub async fn consumer_group_heartbeat(
    ctx: &Ctx,
    req: ConsumerGroupHeartbeatRequest,
    version: i16,
    client: &ClientInfo,
) -> ConsumerGroupHeartbeatResponse {
    // v1 (KIP-1082) members choose their own id; v0 members get one on their first call.
    if version >= 1 && req.member_id.is_empty() {
        return ConsumerGroupHeartbeatResponse::default()
            .with_error_code(ResponseError::InvalidRequest.code())
            .with_error_message(Some(s("member id must be set")));
    }
    let hb = ConsumerHeartbeat {
        group_id: req.group_id.to_string(),
        member_id: req.member_id.to_string(),
        member_epoch: req.member_epoch,
        instance_id: opt(&req.instance_id),
        rack_id: opt(&req.rack_id),
        rebalance_timeout_ms: req.rebalance_timeout_ms,
        subscribed_topic_names: req
            .subscribed_topic_names
            .as_ref()
            .map(|v| v.iter().map(|t| t.to_string()).collect()),
        subscribed_topic_regex: opt(&req.subscribed_topic_regex),
        server_assignor: opt(&req.server_assignor),
        owned: req.topic_partitions.as_ref().map(|v| {
            v.iter()
                .map(|t| (t.topic_id, t.partitions.clone()))
                .collect()
        }),
        client_id: client.id.clone(),
        client_host: client.host.clone(),
    };
    let r = match call(ctx, GroupCall::ConsumerHeartbeat(hb)).await {
        Ok(GroupReply::ConsumerHeartbeat(r)) => r,
        Ok(other) => {
            return ConsumerGroupHeartbeatResponse::default()
                .with_error_code(code(Some(unexpected(&other))))
        }
        Err(e) => return ConsumerGroupHeartbeatResponse::default().with_error_code(code(Some(e))),
    };
    let assignment = r.assignment.map(|parts| {
        Assignment::default().with_topic_partitions(
            parts
                .into_iter()
                .map(|(topic_id, partitions)| {
                    HeartbeatTopicPartitions::default()
                        .with_topic_id(topic_id)
                        .with_partitions(partitions)
                })
                .collect(),
        )
    });
    let mut out = ConsumerGroupHeartbeatResponse::default()
        .with_error_code(code(r.error))
        .with_error_message(r.error_message.map(s))
        .with_member_epoch(r.member_epoch)
        .with_heartbeat_interval_ms(r.heartbeat_interval_ms)
        .with_assignment(assignment);
    if !r.member_id.is_empty() {
        out = out.with_member_id(Some(s(r.member_id)));
    }
    out
}

fn described(parts: Vec<NamedPartitions>) -> DescribedAssignment {
    DescribedAssignment::default().with_topic_partitions(
        parts
            .into_iter()
            .map(|p| {
                DescribedTopicPartitions::default()
                    .with_topic_id(p.topic_id)
                    .with_topic_name(TopicName(s(p.topic)))
                    .with_partitions(p.partitions)
            })
            .collect(),
    )
}

/// ConsumerGroupDescribe v0–1.
pub async fn consumer_group_describe(
    ctx: &Ctx,
    req: ConsumerGroupDescribeRequest,
) -> ConsumerGroupDescribeResponse {
    let ids: Vec<String> = req.group_ids.iter().map(|g| g.to_string()).collect();
    let groups = match call(ctx, GroupCall::ConsumerDescribe(ids.clone())).await {
        Ok(GroupReply::ConsumerDescribe(d)) => d
            .into_iter()
            .map(|d| {
                let g = ConsumerDescribedGroup::default()
                    .with_group_id(GroupId(s(d.group_id.clone())))
                    .with_error_code(code(d.error))
                    .with_group_state(s(d.state))
                    .with_group_epoch(d.group_epoch)
                    .with_assignment_epoch(d.assignment_epoch)
                    .with_assignor_name(s(d.assignor));
                if d.error.is_some() {
                    let why = format!("group {} is not a consumer group", d.group_id);
                    return g.with_error_message(Some(s(why)));
                }
                g.with_members(
                    d.members
                        .into_iter()
                        .map(|m| {
                            Member::default()
                                .with_member_id(s(m.member_id))
                                .with_instance_id(m.instance_id.map(s))
                                .with_rack_id(m.rack_id.map(s))
                                .with_member_epoch(m.member_epoch)
                                .with_client_id(s(m.client_id))
                                .with_client_host(s(m.client_host))
                                .with_subscribed_topic_names(
                                    m.subscribed_topic_names
                                        .into_iter()
                                        .map(|t| TopicName(s(t)))
                                        .collect(),
                                )
                                .with_subscribed_topic_regex(m.subscribed_topic_regex.map(s))
                                .with_assignment(described(m.assignment))
                                .with_target_assignment(described(m.target_assignment))
                        })
                        .collect(),
                )
            })
            .collect(),
        Ok(other) => {
            let e = code(Some(unexpected(&other)));
            ids.into_iter()
                .map(|id| {
                    ConsumerDescribedGroup::default()
                        .with_group_id(GroupId(s(id)))
                        .with_error_code(e)
                })
                .collect()
        }
        Err(e) => ids
            .into_iter()
            .map(|id| {
                ConsumerDescribedGroup::default()
                    .with_group_id(GroupId(s(id)))
                    .with_error_code(code(Some(e)))
            })
            .collect(),
    };
    ConsumerGroupDescribeResponse::default().with_groups(groups)
}
