//! What agents send the group coordinator and what it answers: Kafka's classic group API
//! (JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit with membership, DescribeGroups,
//! ListGroups, DeleteGroups, OffsetDelete) reduced to the fields the coordinator needs, in a
//! protocol-agnostic form that travels over the metadata HTTP API as JSON. The agent maps
//! Kafka versions onto these and [`GroupError`] onto Kafka error codes.

use serde::{Deserialize, Serialize};

use crate::types::{CommittedOffset, TopicId};

/// Errors the coordinator answers, named as Kafka names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GroupError {
    /// The group id is empty.
    InvalidGroupId,
    /// The member id is not (or no longer) a member of the group.
    UnknownMemberId,
    /// The generation (or member epoch) is not the group's current one.
    IllegalGeneration,
    /// The group is rebalancing; the member must rejoin.
    RebalanceInProgress,
    /// Protocol type or protocols do not match the group's.
    InconsistentGroupProtocol,
    /// Session timeout outside the coordinator's bounds.
    InvalidSessionTimeout,
    /// First join of a dynamic member (v4+): retry with the member id returned.
    MemberIdRequired,
    /// Another member took over this group.instance.id.
    FencedInstanceId,
    /// The group does not exist.
    GroupIdNotFound,
    /// The group still has members.
    NonEmptyGroup,
    /// OffsetDelete of a topic the active group subscribes to.
    GroupSubscribedToTopic,
    /// The group is full (`group.max.size`).
    GroupMaxSizeReached,
    /// The coordinator could not complete the operation (e.g. the store failed); retriable.
    CoordinatorNotAvailable,
    /// KIP-848: the member's epoch is fenced; it must drop its partitions and rejoin.
    FencedMemberEpoch,
    /// KIP-848: another member still holds this group.instance.id.
    UnreleasedInstanceId,
    /// KIP-848: the named server assignor does not exist.
    UnsupportedAssignor,
    /// KIP-848: an offset commit carries an epoch other than the member's current one.
    StaleMemberEpoch,
    /// KIP-848: the subscription's regular expression does not compile.
    InvalidRegularExpression,
    /// A malformed request (e.g. a first heartbeat without a subscription).
    InvalidRequest,
}

/// One protocol (assignor) a member supports, with its opaque metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupProtocol {
    /// Assignor name (`range`, `roundrobin`, `cooperative-sticky`, ...).
    pub name: String,
    /// Client metadata (for consumers, a serialized ConsumerProtocolSubscription).
    pub metadata: Vec<u8>,
}

/// JoinGroup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinGroup {
    /// Group id.
    pub group_id: String,
    /// Member id; empty on a member's first join.
    pub member_id: String,
    /// group.instance.id of a static member.
    pub group_instance_id: Option<String>,
    /// The client's client.id.
    pub client_id: String,
    /// The client's address, as the agent saw it.
    pub client_host: String,
    /// Session timeout (ms).
    pub session_timeout_ms: i32,
    /// Rebalance timeout (ms): how long the coordinator waits for members to rejoin.
    pub rebalance_timeout_ms: i32,
    /// Protocol type (`consumer` for consumers).
    pub protocol_type: String,
    /// Supported protocols in preference order.
    pub protocols: Vec<GroupProtocol>,
    /// JoinGroup v4+: a dynamic member without an id gets MEMBER_ID_REQUIRED and an id.
    pub require_known_member_id: bool,
}

/// One member as the leader sees it in the JoinGroup response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinedMember {
    /// Member id.
    pub member_id: String,
    /// group.instance.id, if static.
    pub group_instance_id: Option<String>,
    /// The member's metadata for the chosen protocol.
    pub metadata: Vec<u8>,
}

/// JoinGroup's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct JoinResult {
    /// Error, if any.
    pub error: Option<GroupError>,
    /// New generation.
    pub generation_id: i32,
    /// The group's protocol type.
    pub protocol_type: Option<String>,
    /// The chosen protocol.
    pub protocol_name: Option<String>,
    /// Leader member id.
    pub leader: String,
    /// The member's id (newly assigned on a first join).
    pub member_id: String,
    /// All members, for the leader only.
    pub members: Vec<JoinedMember>,
    /// JoinGroup v9+: a static leader that rejoined without a rebalance must not assign.
    pub skip_assignment: bool,
}

/// SyncGroup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncGroup {
    /// Group id.
    pub group_id: String,
    /// Generation the member joined.
    pub generation_id: i32,
    /// Member id.
    pub member_id: String,
    /// group.instance.id, if static.
    pub group_instance_id: Option<String>,
    /// v5+: protocol type the member expects.
    pub protocol_type: Option<String>,
    /// v5+: protocol name the member expects.
    pub protocol_name: Option<String>,
    /// The leader's assignment: member id and opaque assignment bytes.
    pub assignments: Vec<(String, Vec<u8>)>,
}

/// SyncGroup's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SyncResult {
    /// Error, if any.
    pub error: Option<GroupError>,
    /// The group's protocol type.
    pub protocol_type: Option<String>,
    /// The group's protocol.
    pub protocol_name: Option<String>,
    /// This member's assignment.
    pub assignment: Vec<u8>,
}

/// Heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// Group id.
    pub group_id: String,
    /// Generation.
    pub generation_id: i32,
    /// Member id.
    pub member_id: String,
    /// group.instance.id, if static.
    pub group_instance_id: Option<String>,
}

/// One member leaving (LeaveGroup v3+ batches them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeavingMember {
    /// Member id (may be empty when only the instance id is known).
    pub member_id: String,
    /// group.instance.id, if static.
    pub group_instance_id: Option<String>,
}

/// OffsetCommit from a group member or a simple (member-less) consumer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitOffsets {
    /// Group id.
    pub group_id: String,
    /// Generation, or -1 for a simple consumer.
    pub generation_id: i32,
    /// Member id, or empty for a simple consumer.
    pub member_id: String,
    /// group.instance.id, if static.
    pub group_instance_id: Option<String>,
    /// Offsets to store.
    pub offsets: Vec<CommittedOffset>,
    /// A TxnOffsetCommit's membership check (KIP-447): nothing is stored (the offsets wait for
    /// the transaction), a stale generation or member epoch is ILLEGAL_GENERATION, a rebalance
    /// in progress is no error, and member-less commits are accepted even into a group with
    /// members (older TxnOffsetCommit versions carry no member).
    #[serde(default)]
    pub transactional: bool,
}

/// One partition whose committed offset OffsetDelete removes; the name lets the coordinator
/// check the members' subscriptions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffsetToDelete {
    /// Topic name.
    pub topic: String,
    /// Topic id.
    pub topic_id: TopicId,
    /// Partition.
    pub partition: i32,
}

/// A call to the group coordinator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GroupCall {
    /// JoinGroup.
    Join(JoinGroup),
    /// SyncGroup.
    Sync(SyncGroup),
    /// Heartbeat.
    Heartbeat(Heartbeat),
    /// LeaveGroup.
    Leave {
        /// Group id.
        group_id: String,
        /// Members leaving.
        members: Vec<LeavingMember>,
    },
    /// OffsetCommit.
    CommitOffsets(CommitOffsets),
    /// DescribeGroups.
    Describe(Vec<String>),
    /// ListGroups; empty filters match everything.
    List {
        /// States to keep (Kafka names, case-insensitive).
        states: Vec<String>,
        /// Group types to keep (`classic`, `consumer`).
        types: Vec<String>,
    },
    /// DeleteGroups.
    Delete(Vec<String>),
    /// ConsumerGroupHeartbeat (KIP-848).
    ConsumerHeartbeat(ConsumerHeartbeat),
    /// ConsumerGroupDescribe (KIP-848).
    ConsumerDescribe(Vec<String>),
    /// OffsetDelete.
    DeleteOffsets {
        /// Group id.
        group_id: String,
        /// Partitions.
        partitions: Vec<OffsetToDelete>,
    },
}

/// One member in DescribeGroups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberDescription {
    /// Member id.
    pub member_id: String,
    /// group.instance.id, if static.
    pub group_instance_id: Option<String>,
    /// client.id.
    pub client_id: String,
    /// Client address.
    pub client_host: String,
    /// Metadata for the group's protocol.
    pub metadata: Vec<u8>,
    /// Current assignment.
    pub assignment: Vec<u8>,
}

/// One group in DescribeGroups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupDescription {
    /// Group id.
    pub group_id: String,
    /// Whether the group exists (Kafka describes an unknown group as state `Dead`).
    pub exists: bool,
    /// Kafka state name: Empty, PreparingRebalance, CompletingRebalance, Stable, Dead.
    pub state: String,
    /// Protocol type ("" for a group that only stores offsets).
    pub protocol_type: String,
    /// Chosen protocol ("" outside Stable / CompletingRebalance).
    pub protocol_name: String,
    /// Members.
    pub members: Vec<MemberDescription>,
}

/// One group in ListGroups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupListing {
    /// Group id.
    pub group_id: String,
    /// Protocol type ("" for a group that only stores offsets).
    pub protocol_type: String,
    /// Kafka state name.
    pub state: String,
    /// Group type: `classic`.
    pub group_type: String,
}

/// The coordinator's answer, matching the call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GroupReply {
    /// To Join.
    Join(JoinResult),
    /// To Sync.
    Sync(SyncResult),
    /// To Heartbeat, CommitOffsets: one error or none.
    Done(Option<GroupError>),
    /// To Leave: a group-level error, and per member.
    Leave {
        /// Group-level error.
        error: Option<GroupError>,
        /// Per member, in request order.
        members: Vec<Option<GroupError>>,
    },
    /// To Describe, in request order.
    Describe(Vec<GroupDescription>),
    /// To List.
    List(Vec<GroupListing>),
    /// To Delete, per group in request order.
    Delete(Vec<Option<GroupError>>),
    /// To ConsumerHeartbeat.
    ConsumerHeartbeat(ConsumerHeartbeatResult),
    /// To ConsumerDescribe, in request order.
    ConsumerDescribe(Vec<ConsumerGroupDescription>),
    /// To DeleteOffsets: group-level error, and per partition in request order.
    DeleteOffsets {
        /// Group-level error.
        error: Option<GroupError>,
        /// Per partition.
        partitions: Vec<Option<GroupError>>,
    },
}

impl GroupCall {
    /// The longest the coordinator may take to answer (a JoinGroup waits for the rebalance,
    /// a SyncGroup for the leader), so an HTTP client can set its timeout.
    pub fn max_wait_ms(&self) -> i64 {
        match self {
            GroupCall::Join(j) => i64::from(j.rebalance_timeout_ms.max(j.session_timeout_ms)),
            // A sync waits for the leader at most a rebalance timeout, which only the
            // coordinator knows; Kafka clients cap theirs at max.poll.interval.ms (5 min).
            GroupCall::Sync(_) => 300_000,
            _ => 0,
        }
    }
}

/// A classic group as the store keeps it: written when the group becomes Stable or Empty,
/// read back when the metadata service starts, so members carry on across a restart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRecord {
    /// Group id.
    pub group_id: String,
    /// Protocol type; `None` for a group that only stores offsets.
    pub protocol_type: Option<String>,
    /// Chosen protocol.
    pub protocol_name: Option<String>,
    /// `Stable` or `Empty`.
    pub state: String,
    /// Generation.
    pub generation_id: i32,
    /// Leader member id.
    pub leader: Option<String>,
    /// `classic` or `consumer` (KIP-848).
    pub group_type: String,
    /// KIP-848: epoch of the assignment the members were last given.
    pub assignment_epoch: i32,
    /// When the group entered its state (ms); for an Empty group, the start of offset
    /// retention.
    pub state_since_ms: i64,
    /// Members.
    pub members: Vec<MemberRecord>,
}

/// A member of a [`GroupRecord`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRecord {
    /// Member id.
    pub member_id: String,
    /// group.instance.id.
    pub group_instance_id: Option<String>,
    /// client.id.
    pub client_id: String,
    /// Client address.
    pub client_host: String,
    /// Session timeout (ms).
    pub session_timeout_ms: i32,
    /// Rebalance timeout (ms).
    pub rebalance_timeout_ms: i32,
    /// Protocols from the member's last JoinGroup.
    pub protocols: Vec<GroupProtocol>,
    /// Assignment from the last SyncGroup.
    pub assignment: Vec<u8>,
    /// KIP-848: client.rack.
    pub rack_id: Option<String>,
    /// KIP-848: member epoch.
    pub member_epoch: i32,
    /// KIP-848: subscription (JSON, owned by the coordinator).
    pub subscription: Option<String>,
    /// KIP-848: assigned and revoking partitions (JSON, owned by the coordinator).
    pub assigned_partitions: Option<String>,
}

/// Partitions of one topic.
pub type TopicPartitions = (TopicId, Vec<i32>);

/// ConsumerGroupHeartbeat (KIP-848): join (epoch 0), heartbeat, or leave (epoch -1 or -2).
/// `None` fields mean "unchanged since the last heartbeat".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerHeartbeat {
    /// Group id.
    pub group_id: String,
    /// Member id (client-generated from v1; empty on a v0 join).
    pub member_id: String,
    /// Member epoch: 0 joins, -1 leaves, -2 leaves temporarily (static member).
    pub member_epoch: i32,
    /// group.instance.id.
    pub instance_id: Option<String>,
    /// client.rack.
    pub rack_id: Option<String>,
    /// Rebalance timeout (ms), -1 when unchanged.
    pub rebalance_timeout_ms: i32,
    /// Subscribed topic names.
    pub subscribed_topic_names: Option<Vec<String>>,
    /// Subscribed topic regular expression (v1).
    pub subscribed_topic_regex: Option<String>,
    /// Server-side assignor the member asks for.
    pub server_assignor: Option<String>,
    /// Partitions the member owns now.
    pub owned: Option<Vec<TopicPartitions>>,
    /// client.id.
    pub client_id: String,
    /// Client address.
    pub client_host: String,
}

/// ConsumerGroupHeartbeat's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ConsumerHeartbeatResult {
    /// Error, if any.
    pub error: Option<GroupError>,
    /// Why, for the client's log.
    pub error_message: Option<String>,
    /// The member id.
    pub member_id: String,
    /// The member's epoch.
    pub member_epoch: i32,
    /// How often to heartbeat.
    pub heartbeat_interval_ms: i32,
    /// The member's whole assignment, when it changed.
    pub assignment: Option<Vec<TopicPartitions>>,
}

/// Partitions of one topic, with its name, as ConsumerGroupDescribe shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedPartitions {
    /// Topic id.
    pub topic_id: TopicId,
    /// Topic name.
    pub topic: String,
    /// Partitions.
    pub partitions: Vec<i32>,
}

/// One member in ConsumerGroupDescribe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerMemberDescription {
    /// Member id.
    pub member_id: String,
    /// group.instance.id.
    pub instance_id: Option<String>,
    /// client.rack.
    pub rack_id: Option<String>,
    /// Member epoch.
    pub member_epoch: i32,
    /// client.id.
    pub client_id: String,
    /// Client address.
    pub client_host: String,
    /// Subscribed names.
    pub subscribed_topic_names: Vec<String>,
    /// Subscribed regex.
    pub subscribed_topic_regex: Option<String>,
    /// Current assignment.
    pub assignment: Vec<NamedPartitions>,
    /// Target assignment.
    pub target_assignment: Vec<NamedPartitions>,
}

/// One group in ConsumerGroupDescribe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerGroupDescription {
    /// Group id.
    pub group_id: String,
    /// GROUP_ID_NOT_FOUND for unknown and classic groups.
    pub error: Option<GroupError>,
    /// Empty, Assigning, Reconciling, Stable.
    pub state: String,
    /// Group epoch.
    pub group_epoch: i32,
    /// Epoch of the target assignment.
    pub assignment_epoch: i32,
    /// Server assignor in use.
    pub assignor: String,
    /// Members.
    pub members: Vec<ConsumerMemberDescription>,
}
