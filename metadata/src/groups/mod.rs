//! The group coordinator: Kafka's classic consumer-group protocol (JoinGroup, SyncGroup,
//! Heartbeat, LeaveGroup), membership-checked offset commits, and the admin calls
//! (DescribeGroups, ListGroups, DeleteGroups, OffsetDelete), with offset expiry.
//!
//! It runs inside the metadata service, so agents stay stateless: every agent answers
//! FindCoordinator with itself and forwards group calls here (see
//! `docs/decisions/0006-group-coordinator-in-metadata-service.md`). Each group is a state
//! machine behind its own lock; a ticker enforces session, rebalance and sync timeouts.
//! A group's state is written to the store whenever it becomes Stable or Empty and read back
//! at start-up, so a restarted service lets members carry on with their generation.

mod consumer;
mod router;
mod types;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use tokio::sync::{oneshot, Mutex};
use tracing::{debug, info, warn};
use uuid::Uuid;

pub use consumer::ASSIGNORS;
pub use router::GroupRouter;
pub use types::*;

use consumer::{ConsumerGroup, HeartbeatLimits};

use crate::error::Result;
use crate::store::MetadataStore;
use crate::types::TopicInfo;

/// Coordinator limits, with Kafka's defaults.
#[derive(Debug, Clone, Copy)]
pub struct GroupSettings {
    /// `group.min.session.timeout.ms`.
    pub min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms`.
    pub max_session_timeout_ms: i32,
    /// `group.initial.rebalance.delay.ms`: how long the first rebalance of an empty group
    /// waits for more members, so a fleet starting together is assigned once.
    pub initial_rebalance_delay_ms: i32,
    /// `group.max.size`.
    pub max_size: usize,
    /// `offsets.retention.minutes`, in ms.
    pub offsets_retention_ms: i64,
    /// `offsets.retention.check.interval.ms`.
    pub retention_check_interval_ms: i64,
    /// `group.consumer.session.timeout.ms` (KIP-848 groups).
    pub consumer_session_timeout_ms: i32,
    /// `group.consumer.heartbeat.interval.ms` (KIP-848 groups).
    pub consumer_heartbeat_interval_ms: i32,
}

impl Default for GroupSettings {
    fn default() -> Self {
        GroupSettings {
            min_session_timeout_ms: 6_000,
            max_session_timeout_ms: 1_800_000,
            initial_rebalance_delay_ms: 3_000,
            max_size: 1_000,
            offsets_retention_ms: 7 * 24 * 3_600_000,
            retention_check_interval_ms: 600_000,
            consumer_session_timeout_ms: 45_000,
            consumer_heartbeat_interval_ms: 5_000,
        }
    }
}

/// Kafka's group states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
}

impl State {
    fn name(self) -> &'static str {
        match self {
            State::Empty => "Empty",
            State::PreparingRebalance => "PreparingRebalance",
            State::CompletingRebalance => "CompletingRebalance",
            State::Stable => "Stable",
        }
    }
}

struct Member {
    instance_id: Option<String>,
    client_id: String,
    client_host: String,
    session_timeout_ms: i32,
    rebalance_timeout_ms: i32,
    protocols: Vec<GroupProtocol>,
    assignment: Vec<u8>,
    last_heartbeat_ms: i64,
    /// Order of joining, so the leader is the longest-standing member.
    seq: u64,
    /// Rejoined in the current rebalance.
    joined: bool,
    join_waiter: Option<oneshot::Sender<JoinResult>>,
    sync_waiter: Option<oneshot::Sender<SyncResult>>,
}

impl Member {
    fn supports(&self, protocol: &str) -> bool {
        self.protocols.iter().any(|p| p.name == protocol)
    }

    fn metadata_for(&self, protocol: &str) -> Vec<u8> {
        self.protocols
            .iter()
            .find(|p| p.name == protocol)
            .map(|p| p.metadata.clone())
            .unwrap_or_default()
    }

    /// Whether the member is parked on a call we owe an answer; such a member cannot
    /// heartbeat, so its session does not run.
    fn parked(&self) -> bool {
        self.join_waiter.is_some() || self.sync_waiter.is_some()
    }
}

struct Group {
    id: String,
    state: State,
    state_since_ms: i64,
    generation: i32,
    protocol_type: Option<String>,
    protocol_name: Option<String>,
    leader: Option<String>,
    members: BTreeMap<String, Member>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, with the deadline to rejoin.
    pending: HashMap<String, i64>,
    /// group.instance.id → member id.
    statics: HashMap<String, String>,
    rebalance_deadline_ms: i64,
    /// The first rebalance of an empty group completes no earlier than this.
    initial_delay_until_ms: i64,
    sync_deadline_ms: i64,
    next_seq: u64,
    /// Removed from the coordinator (deleted or expired); a caller holding it must retry.
    dead: bool,
    /// A KIP-848 group: its members live here and the classic fields stay unused (`state`
    /// only says Empty or not, for retention).
    consumer: Option<ConsumerGroup>,
}

/// Whether a call must be answered now or after the group moves on.
enum Pending<T> {
    Now(T),
    Later(oneshot::Receiver<T>),
}

impl Group {
    fn new(id: &str, now: i64) -> Self {
        Group {
            id: id.to_string(),
            state: State::Empty,
            state_since_ms: now,
            generation: 0,
            protocol_type: None,
            protocol_name: None,
            leader: None,
            members: BTreeMap::new(),
            pending: HashMap::new(),
            statics: HashMap::new(),
            rebalance_deadline_ms: 0,
            initial_delay_until_ms: 0,
            sync_deadline_ms: 0,
            next_seq: 0,
            dead: false,
            consumer: None,
        }
    }

    fn from_record(r: GroupRecord, now: i64) -> Self {
        let mut g = Group::new(&r.group_id, r.state_since_ms);
        g.generation = r.generation_id;
        g.protocol_type = r.protocol_type;
        g.protocol_name = r.protocol_name;
        g.leader = r.leader;
        if r.group_type == "consumer" {
            let c =
                ConsumerGroup::from_records(r.generation_id, r.assignment_epoch, r.members, now);
            if !c.members.is_empty() {
                g.state = State::Stable;
            }
            g.consumer = Some(c);
            return g;
        }
        for (seq, m) in r.members.into_iter().enumerate() {
            if let Some(i) = &m.group_instance_id {
                g.statics.insert(i.clone(), m.member_id.clone());
            }
            g.members.insert(
                m.member_id,
                Member {
                    instance_id: m.group_instance_id,
                    client_id: m.client_id,
                    client_host: m.client_host,
                    session_timeout_ms: m.session_timeout_ms,
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    protocols: m.protocols,
                    assignment: m.assignment,
                    // Every member gets a full session to find the restarted service.
                    last_heartbeat_ms: now,
                    seq: seq as u64,
                    joined: false,
                    join_waiter: None,
                    sync_waiter: None,
                },
            );
        }
        g.next_seq = g.members.len() as u64;
        g.state = if g.members.is_empty() {
            State::Empty
        } else {
            State::Stable
        };
        if g.leader
            .as_ref()
            .is_some_and(|l| !g.members.contains_key(l))
        {
            g.leader = None;
        }
        g
    }

    fn record(&self) -> GroupRecord {
        if let Some(c) = &self.consumer {
            return GroupRecord {
                group_id: self.id.clone(),
                protocol_type: Some("consumer".into()),
                protocol_name: None,
                state: c.state().to_string(),
                generation_id: c.epoch,
                leader: None,
                group_type: "consumer".into(),
                assignment_epoch: c.assignment_epoch,
                state_since_ms: self.state_since_ms,
                members: c.records(),
            };
        }
        GroupRecord {
            group_id: self.id.clone(),
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            state: self.state.name().to_string(),
            generation_id: self.generation,
            leader: self.leader.clone(),
            group_type: "classic".into(),
            assignment_epoch: 0,
            state_since_ms: self.state_since_ms,
            members: self
                .members
                .iter()
                .map(|(id, m)| MemberRecord {
                    member_id: id.clone(),
                    group_instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    session_timeout_ms: m.session_timeout_ms,
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    protocols: m.protocols.clone(),
                    assignment: m.assignment.clone(),
                    rack_id: None,
                    member_epoch: 0,
                    subscription: None,
                    assigned_partitions: None,
                })
                .collect(),
        }
    }

    /// Kafka's state name (KIP-848 groups have their own).
    fn state_name(&self) -> &'static str {
        match &self.consumer {
            Some(c) => c.state(),
            None => self.state.name(),
        }
    }

    /// Keeps a KIP-848 group's classic `state` at Empty or Stable, so retention knows when
    /// it emptied.
    fn track_consumer_emptiness(&mut self, now: i64) {
        let empty = self.consumer.as_ref().is_none_or(|c| c.members.is_empty());
        self.set_state(if empty { State::Empty } else { State::Stable }, now);
    }

    fn set_state(&mut self, state: State, now: i64) {
        if self.state != state {
            debug!(group = %self.id, from = self.state.name(), to = state.name(), "group state");
            self.state = state;
            self.state_since_ms = now;
        }
    }

    /// Protocols every member supports, in the preference order of the longest-standing
    /// member.
    fn candidates(&self) -> Vec<String> {
        let Some(first) = self.members.values().min_by_key(|m| m.seq) else {
            return Vec::new();
        };
        first
            .protocols
            .iter()
            .map(|p| p.name.clone())
            .filter(|name| self.members.values().all(|m| m.supports(name)))
            .collect()
    }

    /// Kafka's protocol vote: each member votes for its most preferred candidate; most
    /// votes wins, ties go to the earlier candidate.
    fn select_protocol(&self) -> Option<String> {
        let candidates = self.candidates();
        let mut votes = vec![0usize; candidates.len()];
        for m in self.members.values() {
            if let Some(i) = m
                .protocols
                .iter()
                .find_map(|p| candidates.iter().position(|c| *c == p.name))
            {
                votes[i] += 1;
            }
        }
        let mut best: Option<(usize, usize)> = None;
        for (i, v) in votes.iter().enumerate() {
            if best.is_none_or(|(_, bv)| *v > bv) {
                best = Some((i, *v));
            }
        }
        best.map(|(i, _)| candidates[i].clone())
    }

    /// Whether a joining member's protocols fit the group.
    fn compatible(&self, protocol_type: &str, protocols: &[GroupProtocol], member: &str) -> bool {
        let others: Vec<&Member> = self
            .members
            .iter()
            .filter(|(id, _)| id.as_str() != member)
            .map(|(_, m)| m)
            .collect();
        if others.is_empty() {
            return true;
        }
        if self
            .protocol_type
            .as_deref()
            .is_some_and(|t| t != protocol_type)
        {
            return false;
        }
        protocols
            .iter()
            .any(|p| others.iter().all(|m| m.supports(&p.name)))
    }

    fn max_rebalance_timeout(&self) -> i64 {
        self.members
            .values()
            .map(|m| i64::from(m.rebalance_timeout_ms))
            .max()
            .unwrap_or(0)
    }

    fn prepare_rebalance(&mut self, now: i64, initial_delay_ms: i32, reason: &str) {
        info!(group = %self.id, generation = self.generation, reason, "rebalance");
        let was_empty = self.state == State::Empty;
        if self.state == State::CompletingRebalance {
            self.fail_syncs(GroupError::RebalanceInProgress);
        }
        for m in self.members.values_mut() {
            m.joined = m.join_waiter.is_some();
        }
        self.set_state(State::PreparingRebalance, now);
        self.rebalance_deadline_ms = now + self.max_rebalance_timeout();
        self.initial_delay_until_ms = if was_empty {
            (now + i64::from(initial_delay_ms)).min(self.rebalance_deadline_ms)
        } else {
            0
        };
    }

    fn fail_syncs(&mut self, error: GroupError) {
        for m in self.members.values_mut() {
            if let Some(w) = m.sync_waiter.take() {
                let _ = w.send(SyncResult {
                    error: Some(error),
                    ..SyncResult::default()
                });
            }
        }
    }

    /// Removes a member, answering whatever it is parked on.
    fn remove_member(&mut self, id: &str) -> Option<Member> {
        let mut m = self.members.remove(id)?;
        if let Some(i) = &m.instance_id {
            if self.statics.get(i).is_some_and(|mid| mid == id) {
                self.statics.remove(i);
            }
        }
        if let Some(w) = m.join_waiter.take() {
            let _ = w.send(JoinResult {
                error: Some(GroupError::UnknownMemberId),
                member_id: id.to_string(),
                ..JoinResult::default()
            });
        }
        if let Some(w) = m.sync_waiter.take() {
            let _ = w.send(SyncResult {
                error: Some(GroupError::UnknownMemberId),
                ..SyncResult::default()
            });
        }
        if self.leader.as_deref() == Some(id) {
            self.leader = None;
        }
        Some(m)
    }

    /// After members left or expired: rebalance, or finish the one in progress.
    /// Returns whether the stored state changed.
    fn after_departure(&mut self, now: i64, initial_delay_ms: i32, reason: &str) -> bool {
        match self.state {
            State::Stable | State::CompletingRebalance => {
                self.prepare_rebalance(now, initial_delay_ms, reason);
                self.initial_delay_until_ms = 0;
                self.maybe_complete_join(now)
            }
            State::PreparingRebalance => self.maybe_complete_join(now),
            State::Empty => false,
        }
    }

    /// Completes the rebalance when every member has rejoined (or the rebalance timeout
    /// passed, dropping those that did not). Returns whether the stored state changed.
    fn maybe_complete_join(&mut self, now: i64) -> bool {
        if self.state != State::PreparingRebalance || now < self.initial_delay_until_ms {
            return false;
        }
        let all_joined = self.members.values().all(|m| m.joined) && self.pending.is_empty();
        if !all_joined && now < self.rebalance_deadline_ms {
            return false;
        }
        let laggards: Vec<String> = self
            .members
            .iter()
            .filter(|(_, m)| !m.joined)
            .map(|(id, _)| id.clone())
            .collect();
        for id in laggards {
            info!(group = %self.id, member = %id, "member did not rejoin in time; removed");
            self.remove_member(&id);
        }
        self.generation = self.generation.wrapping_add(1).max(1);
        if self.members.is_empty() {
            self.protocol_name = None;
            self.leader = None;
            self.set_state(State::Empty, now);
            return true;
        }
        self.protocol_name = self.select_protocol();
        if self.leader.is_none() {
            self.leader = self
                .members
                .iter()
                .min_by_key(|(_, m)| m.seq)
                .map(|(id, _)| id.clone());
        }
        self.set_state(State::CompletingRebalance, now);
        self.sync_deadline_ms = now + self.max_rebalance_timeout();
        let protocol = self.protocol_name.clone().unwrap_or_default();
        let leader = self.leader.clone().unwrap_or_default();
        let everyone: Vec<JoinedMember> = self
            .members
            .iter()
            .map(|(id, m)| JoinedMember {
                member_id: id.clone(),
                group_instance_id: m.instance_id.clone(),
                metadata: m.metadata_for(&protocol),
            })
            .collect();
        for (id, m) in self.members.iter_mut() {
            m.joined = false;
            m.assignment.clear();
            m.last_heartbeat_ms = now;
            if let Some(w) = m.join_waiter.take() {
                let _ = w.send(JoinResult {
                    error: None,
                    generation_id: self.generation,
                    protocol_type: self.protocol_type.clone(),
                    protocol_name: self.protocol_name.clone(),
                    leader: leader.clone(),
                    member_id: id.clone(),
                    members: if *id == leader {
                        everyone.clone()
                    } else {
                        Vec::new()
                    },
                    skip_assignment: false,
                });
            }
        }
        info!(group = %self.id, generation = self.generation, members = self.members.len(),
              protocol = %protocol, "rebalance completed; awaiting assignment");
        false
    }

    /// The answer to a member that rejoins a group that does not need to rebalance.
    fn current_join(&self, member_id: &str) -> JoinResult {
        let leader = self.leader.clone().unwrap_or_default();
        let protocol = self.protocol_name.clone().unwrap_or_default();
        JoinResult {
            error: None,
            generation_id: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader: leader.clone(),
            member_id: member_id.to_string(),
            members: if member_id == leader {
                self.members
                    .iter()
                    .map(|(id, m)| JoinedMember {
                        member_id: id.clone(),
                        group_instance_id: m.instance_id.clone(),
                        metadata: m.metadata_for(&protocol),
                    })
                    .collect()
            } else {
                Vec::new()
            },
            skip_assignment: false,
        }
    }

    /// Checks a call naming a member of a generation (SyncGroup, Heartbeat, OffsetCommit):
    /// UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID, ILLEGAL_GENERATION.
    fn check_member_generation(
        &self,
        member_id: &str,
        instance: Option<&str>,
        generation: i32,
    ) -> Option<GroupError> {
        let instance = instance.filter(|i| !i.is_empty());
        self.check_member(member_id, instance)
            .or((generation != self.generation).then_some(GroupError::IllegalGeneration))
    }

    /// Checks a call naming a member: UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID.
    fn check_member(&self, member_id: &str, instance: Option<&str>) -> Option<GroupError> {
        if let Some(i) = instance {
            if let Some(owner) = self.statics.get(i) {
                if owner != member_id {
                    return Some(GroupError::FencedInstanceId);
                }
            }
        }
        match self.members.get(member_id) {
            None => Some(GroupError::UnknownMemberId),
            Some(m) if instance.is_some() && m.instance_id.as_deref() != instance => {
                Some(GroupError::FencedInstanceId)
            }
            Some(_) => None,
        }
    }
}

fn join_error(error: GroupError, member_id: &str) -> JoinResult {
    JoinResult {
        error: Some(error),
        generation_id: -1,
        member_id: member_id.to_string(),
        ..JoinResult::default()
    }
}

fn sync_error(error: GroupError) -> SyncResult {
    SyncResult {
        error: Some(error),
        ..SyncResult::default()
    }
}

/// Topic names a member subscribes to, from a consumer's ConsumerProtocolSubscription
/// (every version starts with `version: i16` and `topics: [string]`). `None` when the bytes
/// are not one.
fn subscribed_topics(metadata: &[u8]) -> Option<Vec<String>> {
    let mut rest = metadata.get(2..)?;
    let take = |rest: &mut &[u8], n: usize| -> Option<Vec<u8>> {
        let (head, tail) = (rest.get(..n)?, rest.get(n..)?);
        *rest = tail;
        Some(head.to_vec())
    };
    let count = i32::from_be_bytes(take(&mut rest, 4)?.try_into().ok()?);
    let mut topics = Vec::new();
    for _ in 0..count.max(0) {
        let len = i16::from_be_bytes(take(&mut rest, 2)?.try_into().ok()?);
        let name = take(&mut rest, usize::try_from(len).ok()?)?;
        topics.push(String::from_utf8(name).ok()?);
    }
    Some(topics)
}

/// Clock of the coordinator, in ms since the epoch.
pub type Now = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The coordinator of every group.
pub struct GroupCoordinator {
    store: Arc<dyn MetadataStore>,
    now: Now,
    settings: GroupSettings,
    groups: StdMutex<HashMap<String, Arc<Mutex<Group>>>>,
    /// Topics as of `.0` (ms), for KIP-848 assignments; re-read at most once a second.
    topics: Mutex<(i64, Arc<Vec<TopicInfo>>)>,
    rebalances: AtomicU64,
    offset_commits: AtomicU64,
    /// Set when this process lost (or gave up) the coordinator lease: the timers stop, nothing
    /// more is written, and parked calls are told to find the coordinator again.
    stopped: AtomicBool,
}

/// A locked group whose generation (or KIP-848 group epoch) moves are counted as rebalances
/// when the lock is released.
struct Counted<'a> {
    g: tokio::sync::MutexGuard<'a, Group>,
    before: i64,
    counter: &'a AtomicU64,
}

impl Group {
    fn epoch(&self) -> i64 {
        i64::from(self.consumer.as_ref().map_or(self.generation, |c| c.epoch))
    }
}

impl std::ops::Deref for Counted<'_> {
    type Target = Group;
    fn deref(&self) -> &Group {
        &self.g
    }
}

impl std::ops::DerefMut for Counted<'_> {
    fn deref_mut(&mut self) -> &mut Group {
        &mut self.g
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        let moved = self.g.epoch() - self.before;
        if moved > 0 {
            self.counter.fetch_add(moved as u64, Ordering::Relaxed);
        }
    }
}

/// What the coordinator reports to metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CoordinatorStats {
    /// Groups by (type, state).
    pub groups: BTreeMap<(String, String), u64>,
    /// Members of all groups.
    pub members: u64,
    /// Rebalances completed since start.
    pub rebalances: u64,
    /// Offset commits stored since start.
    pub offset_commits: u64,
}

impl GroupCoordinator {
    /// Loads every stored group and starts the timer task (session, rebalance and sync
    /// timeouts every 100 ms, offset expiry every `retention_check_interval_ms`).
    pub async fn start(
        store: Arc<dyn MetadataStore>,
        now: Now,
        settings: GroupSettings,
    ) -> Result<Arc<Self>> {
        let t = now();
        let loaded = store.load_groups().await?;
        let groups = loaded
            .into_iter()
            .map(|r| {
                (
                    r.group_id.clone(),
                    Arc::new(Mutex::new(Group::from_record(r, t))),
                )
            })
            .collect();
        let c = Arc::new(GroupCoordinator {
            store,
            now,
            settings,
            groups: StdMutex::new(groups),
            topics: Mutex::new((i64::MIN, Arc::new(Vec::new()))),
            rebalances: AtomicU64::new(0),
            offset_commits: AtomicU64::new(0),
            stopped: AtomicBool::new(false),
        });
        let weak = Arc::downgrade(&c);
        tokio::spawn(async move {
            let mut last_expiry = 0i64;
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let Some(c) = weak.upgrade() else { return };
                if c.is_stopped() {
                    return;
                }
                c.tick().await;
                let t = (c.now)();
                if t - last_expiry >= c.settings.retention_check_interval_ms {
                    last_expiry = t;
                    c.expire_offsets().await;
                }
            }
        });
        Ok(c)
    }

    async fn counted<'a>(&'a self, lock: &'a Mutex<Group>) -> Counted<'a> {
        let g = lock.lock().await;
        let before = g.epoch();
        Counted {
            g,
            before,
            counter: &self.rebalances,
        }
    }

    /// Counts of groups and members, and the counters, for metrics.
    pub async fn stats(&self) -> CoordinatorStats {
        let all = self.all_groups();
        let mut s = CoordinatorStats {
            rebalances: self.rebalances.load(Ordering::Relaxed),
            offset_commits: self.offset_commits.load(Ordering::Relaxed),
            ..CoordinatorStats::default()
        };
        for lock in all {
            let g = lock.lock().await;
            if g.dead {
                continue;
            }
            let kind = if g.consumer.is_some() {
                "consumer"
            } else {
                "classic"
            };
            *s.groups
                .entry((kind.to_string(), g.state_name().to_string()))
                .or_default() += 1;
            s.members += g
                .consumer
                .as_ref()
                .map_or(g.members.len(), |c| c.members.len()) as u64;
        }
        s
    }

    fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// Stops this coordinator for good (its lease is gone): no timer runs and nothing is
    /// written any more, and every parked JoinGroup and SyncGroup is answered with
    /// COORDINATOR_NOT_AVAILABLE, so its member asks the new coordinator, which reloaded the
    /// groups from the store.
    pub async fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
        for lock in self.all_groups() {
            let mut g = lock.lock().await;
            for (id, m) in g.members.iter_mut() {
                if let Some(w) = m.join_waiter.take() {
                    let _ = w.send(join_error(GroupError::CoordinatorNotAvailable, id));
                }
                if let Some(w) = m.sync_waiter.take() {
                    let _ = w.send(sync_error(GroupError::CoordinatorNotAvailable));
                }
            }
        }
    }

    /// Every group's lock (a snapshot: groups may come and go meanwhile).
    fn all_groups(&self) -> Vec<Arc<Mutex<Group>>> {
        self.groups
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    fn lookup(&self, id: &str) -> Option<Arc<Mutex<Group>>> {
        self.groups
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    fn get_or_create(&self, id: &str) -> Arc<Mutex<Group>> {
        let now = (self.now)();
        self.groups
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(id.to_string())
            .or_insert_with(|| Arc::new(Mutex::new(Group::new(id, now))))
            .clone()
    }

    fn forget(&self, g: &mut Group) {
        g.dead = true;
        let mut map = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(&g.id);
    }

    async fn persist(&self, g: &Group) {
        if self.is_stopped() {
            return;
        }
        if let Err(e) = self.store.save_group(&g.record()).await {
            // The in-memory state stays authoritative; a restart falls back to the last
            // state written, and members then rejoin.
            warn!(group = %g.id, error = %e, "saving group state failed");
        }
    }

    /// Live topics, at most a second old.
    async fn topics(&self) -> Result<Arc<Vec<TopicInfo>>> {
        let now = (self.now)();
        let mut cache = self.topics.lock().await;
        if now.saturating_sub(cache.0) >= 1_000 {
            *cache = (now, Arc::new(self.store.list_topics().await?));
        }
        Ok(cache.1.clone())
    }

    /// Answers one call.
    pub async fn call(&self, call: GroupCall) -> GroupReply {
        match call {
            GroupCall::ConsumerHeartbeat(h) => {
                GroupReply::ConsumerHeartbeat(self.consumer_heartbeat(h).await)
            }
            GroupCall::ConsumerDescribe(ids) => {
                let mut out = Vec::with_capacity(ids.len());
                for id in ids {
                    out.push(self.consumer_describe(&id).await);
                }
                GroupReply::ConsumerDescribe(out)
            }
            GroupCall::Join(j) => GroupReply::Join(self.join(j).await),
            GroupCall::Sync(s) => GroupReply::Sync(self.sync(s).await),
            GroupCall::Heartbeat(h) => GroupReply::Done(self.heartbeat(h).await),
            GroupCall::Leave { group_id, members } => {
                let (error, members) = self.leave(&group_id, &members).await;
                GroupReply::Leave { error, members }
            }
            GroupCall::CommitOffsets(c) => GroupReply::Done(self.commit(c).await),
            GroupCall::Describe(ids) => {
                let mut out = Vec::with_capacity(ids.len());
                for id in ids {
                    out.push(self.describe(&id).await);
                }
                GroupReply::Describe(out)
            }
            GroupCall::List { states, types } => GroupReply::List(self.list(&states, &types).await),
            GroupCall::Delete(ids) => {
                let mut out = Vec::with_capacity(ids.len());
                for id in ids {
                    out.push(self.delete(&id).await);
                }
                GroupReply::Delete(out)
            }
            GroupCall::DeleteOffsets {
                group_id,
                partitions,
            } => {
                let (error, partitions) = self.delete_offsets(&group_id, &partitions).await;
                GroupReply::DeleteOffsets { error, partitions }
            }
        }
    }

    async fn join(&self, req: JoinGroup) -> JoinResult {
        let pending = match self.join_now(&req).await {
            Ok(p) => p,
            Err(e) => return join_error(e, &req.member_id),
        };
        match pending {
            Pending::Now(r) => r,
            Pending::Later(rx) => rx.await.unwrap_or_else(|_| {
                join_error(GroupError::CoordinatorNotAvailable, &req.member_id)
            }),
        }
    }

    async fn join_now(&self, req: &JoinGroup) -> Result<Pending<JoinResult>, GroupError> {
        if req.group_id.is_empty() {
            return Err(GroupError::InvalidGroupId);
        }
        let s = &self.settings;
        if req.session_timeout_ms < s.min_session_timeout_ms
            || req.session_timeout_ms > s.max_session_timeout_ms
        {
            return Err(GroupError::InvalidSessionTimeout);
        }
        if req.protocol_type.is_empty() || req.protocols.is_empty() {
            return Err(GroupError::InconsistentGroupProtocol);
        }
        let now = (self.now)();
        let lock = self.get_or_create(&req.group_id);
        let mut g = self.counted(&lock).await;
        if g.dead || self.is_stopped() {
            return Err(GroupError::CoordinatorNotAvailable);
        }
        if let Some(c) = &g.consumer {
            // A KIP-848 group takes no classic members while it has its own; an empty one
            // turns classic (its offsets stay).
            if !c.members.is_empty() {
                return Err(GroupError::InconsistentGroupProtocol);
            }
            g.consumer = None;
        }
        if !g.compatible(&req.protocol_type, &req.protocols, &req.member_id) {
            return Err(GroupError::InconsistentGroupProtocol);
        }
        let instance = req.group_instance_id.as_deref().filter(|i| !i.is_empty());
        let mut member_id = req.member_id.clone();
        let mut replaced_static = false;
        if member_id.is_empty() {
            let new_id = format!("{}-{}", req.client_id, Uuid::new_v4());
            if let Some(inst) = instance {
                if let Some(old) = g.statics.get(inst).cloned() {
                    // A static member restarted: it takes over its old place (and
                    // assignment); the old incarnation is fenced.
                    if let Some(mut m) = g.members.remove(&old) {
                        if let Some(w) = m.join_waiter.take() {
                            let _ = w.send(join_error(GroupError::FencedInstanceId, &old));
                        }
                        if let Some(w) = m.sync_waiter.take() {
                            let _ = w.send(sync_error(GroupError::FencedInstanceId));
                        }
                        g.members.insert(new_id.clone(), m);
                    }
                    if g.leader.as_deref() == Some(old.as_str()) {
                        g.leader = Some(new_id.clone());
                    }
                    replaced_static = true;
                }
                g.statics.insert(inst.to_string(), new_id.clone());
            } else if req.require_known_member_id {
                let deadline = now + i64::from(req.session_timeout_ms);
                g.pending.insert(new_id.clone(), deadline);
                return Ok(Pending::Now(JoinResult {
                    error: Some(GroupError::MemberIdRequired),
                    generation_id: -1,
                    member_id: new_id,
                    ..JoinResult::default()
                }));
            }
            member_id = new_id;
        } else if g.pending.remove(&member_id).is_some() {
            // Second join of a new dynamic member: it becomes a member below.
        } else {
            if let Some(e) = g.check_member(&member_id, instance) {
                return Err(e);
            }
        }
        let is_new = !g.members.contains_key(&member_id);
        if is_new && g.members.len() >= s.max_size {
            g.statics.retain(|_, v| *v != member_id);
            return Err(GroupError::GroupMaxSizeReached);
        }
        let protocols_changed = g
            .members
            .get(&member_id)
            .is_none_or(|m| m.protocols != req.protocols);
        let seq = g.next_seq;
        g.next_seq += 1;
        let m = g
            .members
            .entry(member_id.clone())
            .or_insert_with(|| Member {
                instance_id: None,
                client_id: String::new(),
                client_host: String::new(),
                session_timeout_ms: 0,
                rebalance_timeout_ms: 0,
                protocols: Vec::new(),
                assignment: Vec::new(),
                last_heartbeat_ms: now,
                seq,
                joined: false,
                join_waiter: None,
                sync_waiter: None,
            });
        m.instance_id = instance.map(str::to_string);
        m.client_id = req.client_id.clone();
        m.client_host = req.client_host.clone();
        m.session_timeout_ms = req.session_timeout_ms;
        m.rebalance_timeout_ms = req.rebalance_timeout_ms.max(req.session_timeout_ms);
        m.protocols = req.protocols.clone();
        m.last_heartbeat_ms = now;
        if g.members.len() == 1 {
            g.protocol_type = Some(req.protocol_type.clone());
        }
        let is_leader = g.leader.as_deref() == Some(member_id.as_str());
        // A member that rejoins without news gets the current generation back, as Kafka
        // answers one that lost a JoinGroup response.
        let unchanged = !is_new && !protocols_changed;
        match g.state {
            State::Stable if replaced_static && unchanged => {
                // Static member restart: no rebalance (KIP-345). A leader is told to skip
                // the assignment it would otherwise recompute.
                let mut r = g.current_join(&member_id);
                if is_leader {
                    r.skip_assignment = true;
                }
                self.persist(&g).await;
                return Ok(Pending::Now(r));
            }
            State::Stable if unchanged && !is_leader => {
                return Ok(Pending::Now(g.current_join(&member_id)));
            }
            State::CompletingRebalance if unchanged => {
                return Ok(Pending::Now(g.current_join(&member_id)));
            }
            State::PreparingRebalance => {
                if is_new && g.initial_delay_until_ms > 0 {
                    // Kafka's initial delay restarts as members keep arriving.
                    let extended = now + i64::from(s.initial_rebalance_delay_ms);
                    g.initial_delay_until_ms = extended.min(g.rebalance_deadline_ms);
                }
            }
            _ => {
                let reason = if is_new {
                    "member joined"
                } else {
                    "member rejoined with new metadata"
                };
                g.prepare_rebalance(now, s.initial_rebalance_delay_ms, reason);
            }
        }
        let (tx, rx) = oneshot::channel();
        let deadline = g
            .members
            .get(&member_id)
            .map_or(now, |m| now + i64::from(m.rebalance_timeout_ms));
        g.rebalance_deadline_ms = g.rebalance_deadline_ms.max(deadline);
        if let Some(m) = g.members.get_mut(&member_id) {
            m.joined = true;
            m.join_waiter = Some(tx);
        }
        if g.maybe_complete_join(now) {
            self.persist(&g).await;
        }
        Ok(Pending::Later(rx))
    }

    async fn sync(&self, req: SyncGroup) -> SyncResult {
        let rx = {
            let Some(lock) = self.lookup(&req.group_id) else {
                return sync_error(if req.group_id.is_empty() {
                    GroupError::InvalidGroupId
                } else {
                    GroupError::UnknownMemberId
                });
            };
            let mut g = lock.lock().await;
            let instance = req.group_instance_id.as_deref();
            if let Some(e) = g.check_member_generation(&req.member_id, instance, req.generation_id)
            {
                return sync_error(e);
            }
            let mismatch = |want: &Option<String>, have: &Option<String>| {
                want.as_ref().is_some_and(|w| Some(w) != have.as_ref())
            };
            if mismatch(&req.protocol_type, &g.protocol_type)
                || mismatch(&req.protocol_name, &g.protocol_name)
            {
                return sync_error(GroupError::InconsistentGroupProtocol);
            }
            let now = (self.now)();
            if let Some(m) = g.members.get_mut(&req.member_id) {
                m.last_heartbeat_ms = now;
            }
            match g.state {
                State::PreparingRebalance => return sync_error(GroupError::RebalanceInProgress),
                State::Empty => return sync_error(GroupError::UnknownMemberId),
                State::Stable => {
                    let assignment = g
                        .members
                        .get(&req.member_id)
                        .map(|m| m.assignment.clone())
                        .unwrap_or_default();
                    return SyncResult {
                        error: None,
                        protocol_type: g.protocol_type.clone(),
                        protocol_name: g.protocol_name.clone(),
                        assignment,
                    };
                }
                State::CompletingRebalance => {}
            }
            let (tx, rx) = oneshot::channel();
            if let Some(m) = g.members.get_mut(&req.member_id) {
                m.sync_waiter = Some(tx);
            }
            if g.leader.as_deref() == Some(req.member_id.as_str()) {
                let mut given: HashMap<String, Vec<u8>> = req.assignments.into_iter().collect();
                for (id, m) in g.members.iter_mut() {
                    m.assignment = given.remove(id).unwrap_or_default();
                }
                g.set_state(State::Stable, now);
                let (pt, pn) = (g.protocol_type.clone(), g.protocol_name.clone());
                for m in g.members.values_mut() {
                    m.last_heartbeat_ms = now;
                    if let Some(w) = m.sync_waiter.take() {
                        let _ = w.send(SyncResult {
                            error: None,
                            protocol_type: pt.clone(),
                            protocol_name: pn.clone(),
                            assignment: m.assignment.clone(),
                        });
                    }
                }
                info!(group = %g.id, generation = g.generation, "group stable");
                self.persist(&g).await;
            }
            rx
        };
        rx.await
            .unwrap_or_else(|_| sync_error(GroupError::CoordinatorNotAvailable))
    }

    async fn heartbeat(&self, req: Heartbeat) -> Option<GroupError> {
        let Some(lock) = self.lookup(&req.group_id) else {
            return Some(if req.group_id.is_empty() {
                GroupError::InvalidGroupId
            } else {
                GroupError::UnknownMemberId
            });
        };
        let mut g = lock.lock().await;
        let instance = req.group_instance_id.as_deref();
        if let Some(e) = g.check_member_generation(&req.member_id, instance, req.generation_id) {
            return Some(e);
        }
        let now = (self.now)();
        if let Some(m) = g.members.get_mut(&req.member_id) {
            m.last_heartbeat_ms = now;
        }
        match g.state {
            State::PreparingRebalance => Some(GroupError::RebalanceInProgress),
            State::Empty => Some(GroupError::UnknownMemberId),
            State::CompletingRebalance | State::Stable => None,
        }
    }

    async fn leave(
        &self,
        group_id: &str,
        members: &[LeavingMember],
    ) -> (Option<GroupError>, Vec<Option<GroupError>>) {
        if group_id.is_empty() {
            return (Some(GroupError::InvalidGroupId), Vec::new());
        }
        let Some(lock) = self.lookup(group_id) else {
            return (None, vec![Some(GroupError::UnknownMemberId); members.len()]);
        };
        let mut g = self.counted(&lock).await;
        let now = (self.now)();
        let mut out = Vec::with_capacity(members.len());
        let mut left = false;
        for lm in members {
            let instance = lm.group_instance_id.as_deref().filter(|i| !i.is_empty());
            let target = match instance {
                Some(i) => match g.statics.get(i) {
                    None => Err(GroupError::UnknownMemberId),
                    Some(owner) if !lm.member_id.is_empty() && *owner != lm.member_id => {
                        Err(GroupError::FencedInstanceId)
                    }
                    Some(owner) => Ok(owner.clone()),
                },
                None if g.pending.remove(&lm.member_id).is_some() => {
                    out.push(None);
                    continue;
                }
                None if g.members.contains_key(&lm.member_id) => Ok(lm.member_id.clone()),
                None => Err(GroupError::UnknownMemberId),
            };
            match target {
                Ok(id) => {
                    info!(group = %g.id, member = %id, "member left");
                    g.remove_member(&id);
                    left = true;
                    out.push(None);
                }
                Err(e) => out.push(Some(e)),
            }
        }
        if left && g.after_departure(now, self.settings.initial_rebalance_delay_ms, "member left") {
            self.persist(&g).await;
        }
        (None, out)
    }

    async fn commit(&self, req: CommitOffsets) -> Option<GroupError> {
        if req.group_id.is_empty() {
            return Some(GroupError::InvalidGroupId);
        }
        let simple = req.generation_id < 0 && req.member_id.is_empty();
        if simple && (req.offsets.is_empty() || req.transactional) {
            return None;
        }
        let lock = if simple {
            self.get_or_create(&req.group_id)
        } else {
            match self.lookup(&req.group_id) {
                Some(l) => l,
                // Kafka answers a transactional commit into an unknown group with
                // ILLEGAL_GENERATION (TxnOffsetCommit before v6).
                None if req.transactional => return Some(GroupError::IllegalGeneration),
                None => return Some(GroupError::UnknownMemberId),
            }
        };
        let g = lock.lock().await;
        if g.dead || self.is_stopped() {
            return Some(GroupError::CoordinatorNotAvailable);
        }
        if let Some(c) = &g.consumer {
            if simple {
                if !c.members.is_empty() {
                    return Some(GroupError::UnknownMemberId);
                }
            } else {
                match c.member_epoch(&req.member_id) {
                    None => return Some(GroupError::UnknownMemberId),
                    Some(e) if e != req.generation_id && req.transactional => {
                        return Some(GroupError::IllegalGeneration)
                    }
                    Some(e) if e != req.generation_id => return Some(GroupError::StaleMemberEpoch),
                    Some(_) => {}
                }
            }
        } else if simple {
            if !g.members.is_empty() {
                return Some(GroupError::UnknownMemberId);
            }
        } else {
            let instance = req.group_instance_id.as_deref();
            if let Some(e) = g.check_member_generation(&req.member_id, instance, req.generation_id)
            {
                return Some(e);
            }
            if g.state == State::CompletingRebalance && !req.transactional {
                return Some(GroupError::RebalanceInProgress);
            }
        }
        if req.offsets.is_empty() || req.transactional {
            return None;
        }
        match self.store.commit_offsets(&req.group_id, &req.offsets).await {
            Ok(()) => {
                self.offset_commits.fetch_add(1, Ordering::Relaxed);
                None
            }
            Err(e) => {
                warn!(group = %req.group_id, error = %e, "offset commit failed");
                Some(GroupError::CoordinatorNotAvailable)
            }
        }
    }

    async fn describe(&self, id: &str) -> GroupDescription {
        let Some(lock) = self.lookup(id) else {
            return GroupDescription {
                group_id: id.to_string(),
                exists: false,
                state: "Dead".into(),
                protocol_type: String::new(),
                protocol_name: String::new(),
                members: Vec::new(),
            };
        };
        let g = lock.lock().await;
        if let Some(c) = &g.consumer {
            return GroupDescription {
                group_id: id.to_string(),
                exists: !g.dead,
                state: c.state().to_string(),
                protocol_type: "consumer".into(),
                protocol_name: String::new(),
                members: c
                    .members
                    .iter()
                    .map(|(mid, m)| MemberDescription {
                        member_id: mid.clone(),
                        group_instance_id: m.instance_id.clone(),
                        client_id: m.client_id.clone(),
                        client_host: m.client_host.clone(),
                        metadata: Vec::new(),
                        assignment: Vec::new(),
                    })
                    .collect(),
            };
        }
        let shows_protocol = matches!(g.state, State::Stable | State::CompletingRebalance);
        let protocol = g.protocol_name.clone().unwrap_or_default();
        GroupDescription {
            group_id: id.to_string(),
            exists: !g.dead,
            state: if g.dead { "Dead" } else { g.state.name() }.to_string(),
            protocol_type: g.protocol_type.clone().unwrap_or_default(),
            protocol_name: if shows_protocol {
                protocol.clone()
            } else {
                String::new()
            },
            members: g
                .members
                .iter()
                .map(|(mid, m)| MemberDescription {
                    member_id: mid.clone(),
                    group_instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: if shows_protocol {
                        m.metadata_for(&protocol)
                    } else {
                        Vec::new()
                    },
                    assignment: if g.state == State::Stable {
                        m.assignment.clone()
                    } else {
                        Vec::new()
                    },
                })
                .collect(),
        }
    }

    async fn list(&self, states: &[String], types: &[String]) -> Vec<GroupListing> {
        let all = self.all_groups();
        let mut out = Vec::new();
        for lock in all {
            let g = lock.lock().await;
            if g.dead {
                continue;
            }
            let state = g.state_name();
            if !states.is_empty() && !states.iter().any(|s| s.eq_ignore_ascii_case(state)) {
                continue;
            }
            let kind = if g.consumer.is_some() {
                "consumer"
            } else {
                "classic"
            };
            if !types.is_empty() && !types.iter().any(|t| t.eq_ignore_ascii_case(kind)) {
                continue;
            }
            out.push(GroupListing {
                group_id: g.id.clone(),
                protocol_type: if g.consumer.is_some() {
                    "consumer".into()
                } else {
                    g.protocol_type.clone().unwrap_or_default()
                },
                state: state.to_string(),
                group_type: kind.into(),
            });
        }
        out.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        out
    }

    async fn delete(&self, id: &str) -> Option<GroupError> {
        if id.is_empty() {
            return Some(GroupError::InvalidGroupId);
        }
        let Some(lock) = self.lookup(id) else {
            return Some(GroupError::GroupIdNotFound);
        };
        let mut g = lock.lock().await;
        if self.is_stopped() {
            return Some(GroupError::CoordinatorNotAvailable);
        }
        if g.dead {
            return Some(GroupError::GroupIdNotFound);
        }
        if !g.members.is_empty() || g.state != State::Empty {
            return Some(GroupError::NonEmptyGroup);
        }
        if let Err(e) = self.store.delete_group(id).await {
            warn!(group = %id, error = %e, "deleting group failed");
            return Some(GroupError::CoordinatorNotAvailable);
        }
        info!(group = %id, "group deleted");
        self.forget(&mut g);
        None
    }

    async fn delete_offsets(
        &self,
        id: &str,
        partitions: &[OffsetToDelete],
    ) -> (Option<GroupError>, Vec<Option<GroupError>>) {
        if id.is_empty() {
            return (Some(GroupError::InvalidGroupId), Vec::new());
        }
        let Some(lock) = self.lookup(id) else {
            return (Some(GroupError::GroupIdNotFound), Vec::new());
        };
        let g = lock.lock().await;
        if self.is_stopped() {
            return (Some(GroupError::CoordinatorNotAvailable), Vec::new());
        }
        if g.dead {
            return (Some(GroupError::GroupIdNotFound), Vec::new());
        }
        let subscribed: Vec<String> = if g.state == State::Empty {
            Vec::new()
        } else if let Some(c) = &g.consumer {
            match self.topics().await {
                Ok(topics) => c.subscribed_names(&topics),
                Err(_) => return (Some(GroupError::CoordinatorNotAvailable), Vec::new()),
            }
        } else if g.protocol_type.as_deref() == Some("consumer") {
            let protocol = g.protocol_name.clone().unwrap_or_default();
            g.members
                .values()
                .filter_map(|m| subscribed_topics(&m.metadata_for(&protocol)))
                .flatten()
                .collect()
        } else {
            // A non-consumer group with members: Kafka refuses OffsetDelete outright.
            return (Some(GroupError::NonEmptyGroup), Vec::new());
        };
        let mut out = Vec::with_capacity(partitions.len());
        let mut doomed = Vec::new();
        for p in partitions {
            if subscribed.contains(&p.topic) {
                out.push(Some(GroupError::GroupSubscribedToTopic));
            } else {
                doomed.push((p.topic_id, p.partition));
                out.push(None);
            }
        }
        if !doomed.is_empty() {
            if let Err(e) = self.store.delete_offsets(id, &doomed).await {
                warn!(group = %id, error = %e, "deleting offsets failed");
                return (Some(GroupError::CoordinatorNotAvailable), Vec::new());
            }
        }
        (None, out)
    }

    /// Session, pending-member, rebalance and sync timeouts of every group.
    async fn tick(&self) {
        let all = self.all_groups();
        let now = (self.now)();
        let delay = self.settings.initial_rebalance_delay_ms;
        for lock in all {
            let mut g = self.counted(&lock).await;
            if g.dead {
                continue;
            }
            if g.consumer.as_ref().is_some_and(|c| !c.members.is_empty()) {
                self.tick_consumer(&mut g, now).await;
                continue;
            }
            if g.members.is_empty() && g.pending.is_empty() {
                continue;
            }
            let mut changed = false;
            g.pending.retain(|_, deadline| *deadline > now);
            let expired: Vec<String> = g
                .members
                .iter()
                .filter(|(_, m)| {
                    !m.parked() && now > m.last_heartbeat_ms + i64::from(m.session_timeout_ms)
                })
                .map(|(id, _)| id.clone())
                .collect();
            if !expired.is_empty() {
                for id in &expired {
                    info!(group = %g.id, member = %id, "session expired");
                    g.remove_member(id);
                }
                changed |= g.after_departure(now, delay, "session expired");
            }
            if g.state == State::CompletingRebalance && now >= g.sync_deadline_ms {
                let laggards: Vec<String> = g
                    .members
                    .iter()
                    .filter(|(_, m)| m.sync_waiter.is_none())
                    .map(|(id, _)| id.clone())
                    .collect();
                for id in &laggards {
                    info!(group = %g.id, member = %id, "member did not sync in time; removed");
                    g.remove_member(id);
                }
                changed |= g.after_departure(now, delay, "sync timed out");
            }
            changed |= g.maybe_complete_join(now);
            if changed {
                self.persist(&g).await;
            }
        }
    }

    /// Offset retention (KIP-211): a group without members loses all offsets once it has
    /// been empty for the retention period; a group that never had members (offsets only)
    /// loses each offset a retention period after its commit. A group left with nothing is
    /// deleted.
    async fn expire_offsets(&self) {
        if self.is_stopped() {
            return;
        }
        let all = self.all_groups();
        let now = (self.now)();
        let retention = self.settings.offsets_retention_ms;
        for lock in all {
            let mut g = lock.lock().await;
            if g.dead || g.state != State::Empty {
                continue;
            }
            let before = if g.protocol_type.is_some() {
                if now - g.state_since_ms < retention {
                    continue;
                }
                i64::MAX
            } else {
                now - retention
            };
            match self.store.expire_offsets(&g.id, before).await {
                Ok(0) => {
                    if let Err(e) = self.store.delete_group(&g.id).await {
                        warn!(group = %g.id, error = %e, "deleting expired group failed");
                        continue;
                    }
                    info!(group = %g.id, "offsets expired; group removed");
                    self.forget(&mut g);
                }
                Ok(_) => {}
                Err(e) => warn!(group = %g.id, error = %e, "expiring offsets failed"),
            }
        }
    }

    async fn tick_consumer(&self, g: &mut Group, now: i64) {
        let Ok(topics) = self.topics().await else {
            return;
        };
        let session = self.settings.consumer_session_timeout_ms;
        let expired = g
            .consumer
            .as_mut()
            .is_some_and(|c| c.expire(now, session, &topics));
        if expired {
            g.track_consumer_emptiness(now);
            self.persist(g).await;
        }
    }

    async fn consumer_heartbeat(&self, req: ConsumerHeartbeat) -> ConsumerHeartbeatResult {
        let refuse = |error, message: &str| ConsumerHeartbeatResult {
            error: Some(error),
            error_message: Some(message.to_string()),
            ..ConsumerHeartbeatResult::default()
        };
        if req.group_id.is_empty() {
            return refuse(GroupError::InvalidGroupId, "empty group id");
        }
        let topics = match self.topics().await {
            Ok(t) => t,
            Err(e) => {
                warn!(error = %e, "reading topics for a consumer group failed");
                return refuse(
                    GroupError::CoordinatorNotAvailable,
                    "metadata store unavailable",
                );
            }
        };
        let lock = if req.member_epoch == 0 {
            self.get_or_create(&req.group_id)
        } else {
            match self.lookup(&req.group_id) {
                Some(l) => l,
                None => return refuse(GroupError::UnknownMemberId, "unknown group"),
            }
        };
        let mut g = self.counted(&lock).await;
        if g.dead || self.is_stopped() {
            return refuse(
                GroupError::CoordinatorNotAvailable,
                "group was just removed",
            );
        }
        if g.consumer.is_none() {
            if !g.members.is_empty() || g.state != State::Empty {
                return refuse(GroupError::GroupIdNotFound, "the group is a classic group");
            }
            // An empty classic group (or a new one) becomes a consumer group.
            g.consumer = Some(ConsumerGroup {
                epoch: g.generation,
                ..ConsumerGroup::default()
            });
            g.protocol_type = Some("consumer".into());
        }
        let limits = HeartbeatLimits {
            heartbeat_interval_ms: self.settings.consumer_heartbeat_interval_ms,
            max_size: self.settings.max_size,
        };
        let now = (self.now)();
        let Some(c) = g.consumer.as_mut() else {
            return refuse(GroupError::CoordinatorNotAvailable, "group state lost");
        };
        let (reply, changed) = c.heartbeat(&req, now, &topics, &limits);
        if changed {
            g.track_consumer_emptiness(now);
            self.persist(&g).await;
        }
        reply
    }

    async fn consumer_describe(&self, id: &str) -> ConsumerGroupDescription {
        let missing = |error| ConsumerGroupDescription {
            group_id: id.to_string(),
            error: Some(error),
            state: "Dead".into(),
            group_epoch: -1,
            assignment_epoch: -1,
            assignor: String::new(),
            members: Vec::new(),
        };
        if id.is_empty() {
            return missing(GroupError::InvalidGroupId);
        }
        let Some(lock) = self.lookup(id) else {
            return missing(GroupError::GroupIdNotFound);
        };
        let g = lock.lock().await;
        let (Some(c), false) = (&g.consumer, g.dead) else {
            return missing(GroupError::GroupIdNotFound);
        };
        match self.topics().await {
            Ok(topics) => c.describe(id, &topics),
            Err(_) => missing(GroupError::CoordinatorNotAvailable),
        }
    }
}

#[cfg(test)]
mod tests;
