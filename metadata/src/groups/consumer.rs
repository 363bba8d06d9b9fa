//! KIP-848 consumer groups: the server computes the assignment (`uniform` or `range`) and
//! hands it to each member through its heartbeats, revoking before assigning, so a member
//! only receives a partition once its previous owner has released it. A slow member never
//! holds up the others: only the partitions it still owns wait for it, and it is fenced when
//! it has not released them within its rebalance timeout.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::types::{
    ConsumerGroupDescription, ConsumerHeartbeat, ConsumerHeartbeatResult,
    ConsumerMemberDescription, GroupError, MemberRecord, NamedPartitions, TopicPartitions,
};
use crate::types::{TopicId, TopicInfo};

/// Server assignors, the default first (Kafka's `group.consumer.assignors`).
pub const ASSIGNORS: [&str; 2] = ["uniform", "range"];

/// Partitions per topic.
pub type Assignment = BTreeMap<TopicId, BTreeSet<i32>>;

/// What a member subscribes to; stored as JSON in `group_members.subscription`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    /// Topic names.
    pub names: Vec<String>,
    /// Regular expression over topic names (whole-name match, as Kafka's RE2J).
    pub regex: Option<String>,
    /// Requested server assignor.
    pub assignor: Option<String>,
}

/// What a member holds; stored as JSON in `group_members.assigned_partitions`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holdings {
    /// Partitions the member owns.
    pub assigned: Vec<TopicPartitions>,
    /// Partitions it was told to give up and has not yet released.
    pub revoking: Vec<TopicPartitions>,
}

fn flatten(a: &Assignment) -> Vec<TopicPartitions> {
    a.iter()
        .filter(|(_, ps)| !ps.is_empty())
        .map(|(t, ps)| (*t, ps.iter().copied().collect()))
        .collect()
}

fn gather(v: &[TopicPartitions]) -> Assignment {
    let mut a = Assignment::new();
    for (t, ps) in v {
        a.entry(*t).or_default().extend(ps.iter().copied());
    }
    a.retain(|_, ps| !ps.is_empty());
    a
}

fn minus(a: &Assignment, b: &Assignment) -> Assignment {
    let mut out = Assignment::new();
    for (t, ps) in a {
        let rest: BTreeSet<i32> = match b.get(t) {
            Some(bs) => ps.difference(bs).copied().collect(),
            None => ps.clone(),
        };
        if !rest.is_empty() {
            out.insert(*t, rest);
        }
    }
    out
}

fn contains(a: &Assignment, t: &TopicId, p: i32) -> bool {
    a.get(t).is_some_and(|ps| ps.contains(&p))
}

/// One KIP-848 member.
pub struct ConsumerMember {
    pub(super) instance_id: Option<String>,
    pub(super) rack_id: Option<String>,
    pub(super) client_id: String,
    pub(super) client_host: String,
    pub(super) rebalance_timeout_ms: i32,
    pub(super) subscription: Subscription,
    pub(super) epoch: i32,
    pub(super) previous_epoch: i32,
    pub(super) assigned: Assignment,
    pub(super) revoking: Assignment,
    /// When the member must have released `revoking`.
    pub(super) revoke_deadline_ms: i64,
    pub(super) last_heartbeat_ms: i64,
    /// What the member was last told, so unchanged assignments are not resent.
    pub(super) sent: Option<Assignment>,
    /// Left with epoch -2 (a static member restarting): its partitions wait for its return
    /// until the session times out.
    pub(super) departed: bool,
    /// `subscription.regex`, compiled.
    pub(super) compiled: Option<Regex>,
}

impl ConsumerMember {
    fn subscribes(&self, topic: &str) -> bool {
        self.subscription.names.iter().any(|n| n == topic)
            || self.compiled.as_ref().is_some_and(|re| re.is_match(topic))
    }
}

/// A KIP-848 group's state (the members live here, not in the classic map).
#[derive(Default)]
pub struct ConsumerGroup {
    pub(super) epoch: i32,
    pub(super) assignment_epoch: i32,
    pub(super) members: BTreeMap<String, ConsumerMember>,
    pub(super) statics: HashMap<String, String>,
    pub(super) target: HashMap<String, Assignment>,
    /// Subscribed topics with their partition counts when the target was computed; a
    /// change (topic created, deleted, grown) bumps the group epoch.
    pub(super) topics_seen: Vec<(TopicId, i32)>,
    /// The target must be recomputed (after loading from the store).
    pub(super) target_stale: bool,
}

/// Coordinator settings a heartbeat needs.
pub struct HeartbeatLimits {
    /// `group.consumer.heartbeat.interval.ms`.
    pub heartbeat_interval_ms: i32,
    /// `group.max.size`.
    pub max_size: usize,
}

fn compile(regex: &str) -> Result<Regex, GroupError> {
    Regex::new(&format!("^(?:{regex})$")).map_err(|_| GroupError::InvalidRegularExpression)
}

fn fail(error: GroupError, message: &str) -> ConsumerHeartbeatResult {
    ConsumerHeartbeatResult {
        error: Some(error),
        error_message: Some(message.to_string()),
        ..ConsumerHeartbeatResult::default()
    }
}

impl ConsumerGroup {
    /// Kafka's state name.
    pub fn state(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else if self
            .members
            .values()
            .all(|m| m.epoch == self.assignment_epoch && m.revoking.is_empty())
        {
            "Stable"
        } else {
            "Reconciling"
        }
    }

    /// Rebuilds a group from its stored record.
    pub fn from_records(
        epoch: i32,
        assignment_epoch: i32,
        members: Vec<MemberRecord>,
        now: i64,
    ) -> Self {
        let mut g = ConsumerGroup {
            epoch,
            assignment_epoch,
            target_stale: true,
            ..ConsumerGroup::default()
        };
        for m in members {
            let subscription: Subscription = m
                .subscription
                .as_deref()
                .and_then(|s| serde_json::from_str(s).ok())
                .unwrap_or_default();
            let holdings: Holdings = m
                .assigned_partitions
                .as_deref()
                .and_then(|s| serde_json::from_str(s).ok())
                .unwrap_or_default();
            if let Some(i) = &m.group_instance_id {
                g.statics.insert(i.clone(), m.member_id.clone());
            }
            g.members.insert(
                m.member_id,
                ConsumerMember {
                    instance_id: m.group_instance_id,
                    rack_id: m.rack_id,
                    client_id: m.client_id,
                    client_host: m.client_host,
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    epoch: m.member_epoch,
                    previous_epoch: m.member_epoch,
                    assigned: gather(&holdings.assigned),
                    revoking: gather(&holdings.revoking),
                    revoke_deadline_ms: now + i64::from(m.rebalance_timeout_ms),
                    last_heartbeat_ms: now,
                    sent: None,
                    departed: false,
                    compiled: subscription.regex.as_deref().and_then(|r| compile(r).ok()),
                    subscription,
                },
            );
        }
        g
    }

    /// The members as stored.
    pub fn records(&self) -> Vec<MemberRecord> {
        self.members
            .iter()
            .map(|(id, m)| MemberRecord {
                member_id: id.clone(),
                group_instance_id: m.instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                session_timeout_ms: 0,
                rebalance_timeout_ms: m.rebalance_timeout_ms,
                protocols: Vec::new(),
                assignment: Vec::new(),
                rack_id: m.rack_id.clone(),
                member_epoch: m.epoch,
                subscription: serde_json::to_string(&m.subscription).ok(),
                assigned_partitions: serde_json::to_string(&Holdings {
                    assigned: flatten(&m.assigned),
                    revoking: flatten(&m.revoking),
                })
                .ok(),
            })
            .collect()
    }

    /// Names of every topic some member subscribes to (for OffsetDelete).
    pub fn subscribed_names(&self, topics: &[TopicInfo]) -> Vec<String> {
        topics
            .iter()
            .filter(|t| self.members.values().any(|m| m.subscribes(&t.name)))
            .map(|t| t.name.clone())
            .collect()
    }

    /// The assignor: the one members ask for most, else the default.
    fn assignor(&self) -> &'static str {
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for m in self.members.values() {
            if let Some(a) = m.subscription.assignor.as_deref() {
                if let Some(known) = ASSIGNORS.iter().find(|k| **k == a) {
                    *votes.entry(known).or_default() += 1;
                }
            }
        }
        let mut best = ASSIGNORS[0];
        let mut best_votes = 0;
        for (a, v) in votes {
            if v > best_votes {
                best = ASSIGNORS
                    .iter()
                    .find(|k| **k == a)
                    .copied()
                    .unwrap_or(ASSIGNORS[0]);
                best_votes = v;
            }
        }
        best
    }

    /// Subscribed topics and partition counts, in id order.
    fn topics_of_interest(&self, topics: &[TopicInfo]) -> Vec<(TopicId, i32)> {
        let mut v: Vec<(TopicId, i32)> = topics
            .iter()
            .filter(|t| self.members.values().any(|m| m.subscribes(&t.name)))
            .map(|t| (t.id, partition_count(t)))
            .collect();
        v.sort();
        v
    }

    /// Recomputes the target assignment for the current members and topics.
    fn compute_target(&mut self, topics: &[TopicInfo]) {
        let assignor = self.assignor();
        self.target = assign(assignor, &self.members, topics);
        self.assignment_epoch = self.epoch;
        self.topics_seen = self.topics_of_interest(topics);
        self.target_stale = false;
    }

    /// Bumps the group epoch and recomputes the target.
    fn bump(&mut self, topics: &[TopicInfo]) {
        self.epoch += 1;
        self.compute_target(topics);
    }

    fn remove(&mut self, id: &str) {
        if let Some(m) = self.members.remove(id) {
            if let Some(i) = &m.instance_id {
                if self.statics.get(i).is_some_and(|o| o == id) {
                    self.statics.remove(i);
                }
            }
        }
        self.target.remove(id);
    }

    /// Removes members whose session or revocation deadline passed. Returns whether any.
    pub fn expire(&mut self, now: i64, session_timeout_ms: i32, topics: &[TopicInfo]) -> bool {
        let gone: Vec<String> = self
            .members
            .iter()
            .filter(|(_, m)| {
                now > m.last_heartbeat_ms + i64::from(session_timeout_ms)
                    || (!m.revoking.is_empty() && now > m.revoke_deadline_ms)
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in &gone {
            tracing::info!(member = %id, "consumer group member expired or fenced");
            self.remove(id);
        }
        if !gone.is_empty() {
            self.bump(topics);
        }
        !gone.is_empty()
    }

    /// One heartbeat. Returns the answer and whether the stored state changed.
    pub fn heartbeat(
        &mut self,
        req: &ConsumerHeartbeat,
        now: i64,
        topics: &[TopicInfo],
        limits: &HeartbeatLimits,
    ) -> (ConsumerHeartbeatResult, bool) {
        match self.heartbeat_inner(req, now, topics, limits) {
            Ok(r) => r,
            Err(r) => (r, false),
        }
    }

    fn heartbeat_inner(
        &mut self,
        req: &ConsumerHeartbeat,
        now: i64,
        topics: &[TopicInfo],
        limits: &HeartbeatLimits,
    ) -> Result<(ConsumerHeartbeatResult, bool), ConsumerHeartbeatResult> {
        let instance = req.instance_id.as_deref().filter(|i| !i.is_empty());
        if req.member_epoch < 0 {
            return Ok(self.leave(req, instance, topics));
        }
        let mut changed = false;
        let mut bump = false;
        let mut member_id = req.member_id.clone();
        if req.member_epoch == 0 {
            if req.subscribed_topic_names.is_none() && req.subscribed_topic_regex.is_none() {
                return Err(fail(
                    GroupError::InvalidRequest,
                    "a joining member must subscribe",
                ));
            }
            if req.rebalance_timeout_ms <= 0 {
                return Err(fail(
                    GroupError::InvalidRequest,
                    "rebalance timeout must be positive",
                ));
            }
            if member_id.is_empty() {
                member_id = uuid::Uuid::new_v4().to_string();
            }
            // Checked before anything moves: a static takeover keeps the count.
            let takeover = instance.is_some_and(|i| self.statics.contains_key(i));
            if !takeover
                && !self.members.contains_key(&member_id)
                && self.members.len() >= limits.max_size
            {
                return Err(fail(GroupError::GroupMaxSizeReached, "the group is full"));
            }
            let mut inherited = None;
            if let Some(i) = instance {
                if let Some(old) = self.statics.get(i).cloned() {
                    let releasable = self.members.get(&old).is_some_and(|m| m.departed);
                    if old != member_id && !releasable {
                        return Err(fail(
                            GroupError::UnreleasedInstanceId,
                            "the instance id is still in use",
                        ));
                    }
                    if old != member_id {
                        inherited = self.members.remove(&old);
                        if let Some(t) = self.target.remove(&old) {
                            self.target.insert(member_id.clone(), t);
                        }
                    }
                }
            }
            if let Some(m) = self.members.get(&member_id) {
                // A member rejoining with epoch 0 lost its state: start it over.
                if !m.assigned.is_empty() || !m.revoking.is_empty() {
                    self.remove(&member_id);
                }
            }
            let fresh = inherited.is_none() && !self.members.contains_key(&member_id);
            let m = inherited.unwrap_or(ConsumerMember {
                instance_id: None,
                rack_id: None,
                client_id: String::new(),
                client_host: String::new(),
                rebalance_timeout_ms: req.rebalance_timeout_ms,
                subscription: Subscription::default(),
                epoch: 0,
                previous_epoch: 0,
                assigned: Assignment::new(),
                revoking: Assignment::new(),
                revoke_deadline_ms: 0,
                last_heartbeat_ms: now,
                sent: None,
                departed: false,
                compiled: None,
            });
            self.members.entry(member_id.clone()).or_insert(m);
            if let Some(i) = instance {
                self.statics.insert(i.to_string(), member_id.clone());
            }
            if let Some(m) = self.members.get_mut(&member_id) {
                m.departed = false;
                m.sent = None;
                m.instance_id = instance.map(str::to_string);
            }
            changed = true;
            bump = fresh;
        }
        let Some(m) = self.members.get_mut(&member_id) else {
            return Err(fail(GroupError::UnknownMemberId, "unknown member id"));
        };
        if instance.is_some() && m.instance_id.as_deref() != instance {
            return Err(fail(GroupError::FencedInstanceId, "instance id mismatch"));
        }
        let owned = req.owned.as_ref().map(|o| gather(o));
        if req.member_epoch != 0 && req.member_epoch != m.epoch {
            // A member whose last response was lost may repeat its previous epoch.
            let lost_reply = req.member_epoch == m.previous_epoch
                && owned
                    .as_ref()
                    .is_some_and(|o| minus(o, &m.assigned).is_empty());
            if !lost_reply {
                return Err(fail(
                    GroupError::FencedMemberEpoch,
                    "the member epoch is fenced",
                ));
            }
            m.sent = None;
        }
        m.last_heartbeat_ms = now;
        m.client_id = req.client_id.clone();
        m.client_host = req.client_host.clone();
        if let Some(r) = &req.rack_id {
            m.rack_id = Some(r.clone());
        }
        if req.rebalance_timeout_ms > 0 {
            m.rebalance_timeout_ms = req.rebalance_timeout_ms;
        }
        let mut sub = m.subscription.clone();
        if let Some(names) = &req.subscribed_topic_names {
            let mut names = names.clone();
            names.sort();
            names.dedup();
            sub.names = names;
        }
        let mut compiled = None;
        if let Some(r) = &req.subscribed_topic_regex {
            if r.is_empty() {
                sub.regex = None;
            } else {
                compiled = Some(
                    compile(r).map_err(|e| fail(e, "the regular expression does not compile"))?,
                );
                sub.regex = Some(r.clone());
            }
        }
        if let Some(a) = &req.server_assignor {
            if !ASSIGNORS.contains(&a.as_str()) {
                return Err(fail(
                    GroupError::UnsupportedAssignor,
                    "unknown server assignor",
                ));
            }
            sub.assignor = Some(a.clone());
        }
        if sub != m.subscription {
            if sub.regex != m.subscription.regex {
                m.compiled = compiled;
            }
            m.subscription = sub;
            bump = true;
            changed = true;
        }
        if bump {
            self.epoch += 1;
            self.target_stale = true;
        }
        if self.target_stale || self.topics_of_interest(topics) != self.topics_seen {
            if !self.target_stale {
                // Subscribed topics appeared, vanished or grew.
                self.epoch += 1;
            }
            self.compute_target(topics);
            changed = true;
        }
        changed |= self.reconcile(&member_id, owned.as_ref(), now);
        let Some(m) = self.members.get_mut(&member_id) else {
            return Err(fail(GroupError::UnknownMemberId, "unknown member id"));
        };
        let full_request = req.member_epoch == 0 || req.owned.is_some() && m.sent.is_none();
        let assignment = if m.sent.as_ref() != Some(&m.assigned) || full_request {
            m.sent = Some(m.assigned.clone());
            Some(flatten(&m.assigned))
        } else {
            None
        };
        Ok((
            ConsumerHeartbeatResult {
                error: None,
                error_message: None,
                member_id,
                member_epoch: m.epoch,
                heartbeat_interval_ms: limits.heartbeat_interval_ms,
                assignment,
            },
            changed,
        ))
    }

    fn leave(
        &mut self,
        req: &ConsumerHeartbeat,
        instance: Option<&str>,
        topics: &[TopicInfo],
    ) -> (ConsumerHeartbeatResult, bool) {
        let id = match instance.and_then(|i| self.statics.get(i)) {
            // Another incarnation may not make the live one leave.
            Some(owner) if !req.member_id.is_empty() && *owner != req.member_id => {
                return (
                    fail(GroupError::FencedInstanceId, "instance id fenced"),
                    false,
                );
            }
            Some(owner) => owner.clone(),
            None => req.member_id.clone(),
        };
        if !self.members.contains_key(&id) {
            return (
                fail(GroupError::UnknownMemberId, "unknown member id"),
                false,
            );
        }
        if req.member_epoch == -2 && instance.is_some() {
            // A static member restarting keeps its partitions until its session ends.
            if let Some(m) = self.members.get_mut(&id) {
                m.departed = true;
            }
        } else {
            self.remove(&id);
            self.bump(topics);
        }
        (
            ConsumerHeartbeatResult {
                member_id: id,
                member_epoch: req.member_epoch,
                ..ConsumerHeartbeatResult::default()
            },
            true,
        )
    }

    /// Moves one member towards its target: first it gives up what it must, then it gets
    /// what nobody else still holds. Returns whether anything changed.
    fn reconcile(&mut self, id: &str, owned: Option<&Assignment>, now: i64) -> bool {
        let target = self.target.get(id).cloned().unwrap_or_default();
        let held_by_others: Assignment = {
            let mut a = Assignment::new();
            for (mid, m) in &self.members {
                if mid != id {
                    for (t, ps) in m.assigned.iter().chain(m.revoking.iter()) {
                        a.entry(*t).or_default().extend(ps.iter().copied());
                    }
                }
            }
            a
        };
        let assignment_epoch = self.assignment_epoch;
        let Some(m) = self.members.get_mut(id) else {
            return false;
        };
        let mut changed = false;
        if !m.revoking.is_empty() {
            // Released once the member reports owning none of them.
            let released = owned.is_some_and(|o| {
                m.revoking
                    .iter()
                    .all(|(t, ps)| ps.iter().all(|p| !contains(o, t, *p)))
            });
            if !released {
                return false;
            }
            m.revoking.clear();
            changed = true;
        }
        let revoke = minus(&m.assigned, &target);
        if !revoke.is_empty() {
            m.assigned = minus(&m.assigned, &revoke);
            m.revoking = revoke;
            m.revoke_deadline_ms = now + i64::from(m.rebalance_timeout_ms);
            return true;
        }
        let wanted = minus(&target, &m.assigned);
        for (t, ps) in wanted {
            for p in ps {
                if !contains(&held_by_others, &t, p) {
                    m.assigned.entry(t).or_default().insert(p);
                    changed = true;
                }
            }
        }
        if m.epoch != assignment_epoch {
            m.previous_epoch = m.epoch;
            m.epoch = assignment_epoch;
            changed = true;
        }
        changed
    }

    /// ConsumerGroupDescribe's view.
    pub fn describe(&self, group_id: &str, topics: &[TopicInfo]) -> ConsumerGroupDescription {
        let names: HashMap<TopicId, &str> =
            topics.iter().map(|t| (t.id, t.name.as_str())).collect();
        let named = |a: &Assignment| -> Vec<NamedPartitions> {
            a.iter()
                .filter(|(_, ps)| !ps.is_empty())
                .map(|(t, ps)| NamedPartitions {
                    topic_id: *t,
                    topic: names.get(t).copied().unwrap_or_default().to_string(),
                    partitions: ps.iter().copied().collect(),
                })
                .collect()
        };
        ConsumerGroupDescription {
            group_id: group_id.to_string(),
            error: None,
            state: self.state().to_string(),
            group_epoch: self.epoch,
            assignment_epoch: self.assignment_epoch,
            assignor: self.assignor().to_string(),
            members: self
                .members
                .iter()
                .map(|(id, m)| ConsumerMemberDescription {
                    member_id: id.clone(),
                    instance_id: m.instance_id.clone(),
                    rack_id: m.rack_id.clone(),
                    member_epoch: m.epoch,
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    subscribed_topic_names: m.subscription.names.clone(),
                    subscribed_topic_regex: m.subscription.regex.clone(),
                    assignment: named(&m.assigned),
                    target_assignment: named(&self.target.get(id).cloned().unwrap_or_default()),
                })
                .collect(),
        }
    }

    /// The member's epoch, for offset commits.
    pub fn member_epoch(&self, id: &str) -> Option<i32> {
        self.members.get(id).map(|m| m.epoch)
    }
}

fn partition_count(t: &TopicInfo) -> i32 {
    i32::try_from(t.partitions.len()).unwrap_or(i32::MAX)
}

/// Computes a target assignment. `range`: per topic, its subscribers (by member id) get
/// contiguous ranges, the first ones one partition more. `uniform`: every partition of the
/// subscribed topics is spread so counts differ by at most one, keeping partitions where they
/// are when that is balanced (sticky), so a rebalance moves as little as possible.
pub fn assign(
    assignor: &str,
    members: &BTreeMap<String, ConsumerMember>,
    topics: &[TopicInfo],
) -> HashMap<String, Assignment> {
    let mut out: HashMap<String, Assignment> = members
        .keys()
        .map(|id| (id.clone(), Assignment::new()))
        .collect();
    let mut sorted: Vec<&TopicInfo> = topics.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let subscribers = |t: &TopicInfo| -> Vec<&String> {
        members
            .iter()
            .filter(|(_, m)| m.subscribes(&t.name))
            .map(|(id, _)| id)
            .collect()
    };
    if assignor == "range" {
        for t in sorted {
            let subs = subscribers(t);
            if subs.is_empty() {
                continue;
            }
            let n = subs.len() as i32;
            let count = partition_count(t);
            let (per, extra) = (count / n, count % n);
            let mut next = 0;
            for (i, id) in subs.iter().enumerate() {
                let count = per + i32::from((i as i32) < extra);
                let a = out.entry((*id).clone()).or_default();
                for p in next..next + count {
                    a.entry(t.id).or_default().insert(p);
                }
                next += count;
            }
        }
        return out;
    }
    // uniform
    let all: Vec<(TopicId, i32, Vec<&String>)> = sorted
        .iter()
        .flat_map(|t| {
            let subs = subscribers(t);
            (0..partition_count(t)).map(move |p| (t.id, p, subs.clone()))
        })
        .filter(|(_, _, subs)| !subs.is_empty())
        .collect();
    let active = members
        .iter()
        .filter(|(_, m)| topics.iter().any(|t| m.subscribes(&t.name)))
        .count()
        .max(1);
    // Everyone may keep up to the floor of the fair share; the remainder goes to the least
    // loaded subscribers, preferring the current owner on a tie.
    let floor = all.len() / active;
    let owner = |t: &TopicId, p: i32| {
        members
            .iter()
            .find(|(_, m)| contains(&m.assigned, t, p))
            .map(|(id, _)| id)
    };
    let mut counts: HashMap<&String, usize> = HashMap::new();
    let mut unplaced = Vec::new();
    for (t, p, subs) in &all {
        match owner(t, *p) {
            Some(id) if subs.contains(&id) && counts.get(id).copied().unwrap_or(0) < floor => {
                *counts.entry(id).or_default() += 1;
                out.entry(id.clone())
                    .or_default()
                    .entry(*t)
                    .or_default()
                    .insert(*p);
            }
            _ => unplaced.push((*t, *p, subs)),
        }
    }
    for (t, p, subs) in unplaced {
        let previous = owner(&t, p);
        let Some(id) = subs.iter().min_by_key(|id| {
            (
                counts.get(*id).copied().unwrap_or(0),
                previous != Some(**id),
                id.to_string(),
            )
        }) else {
            continue;
        };
        *counts.entry(id).or_default() += 1;
        out.entry((*id).clone())
            .or_default()
            .entry(t)
            .or_default()
            .insert(p);
    }
    out
}
