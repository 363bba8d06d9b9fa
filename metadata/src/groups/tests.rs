//! The coordinator's state machine against a real (in-memory SQLite) store and a manual
//! clock: joins, rebalances, timeouts, static members, commits, admin calls, restarts.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use uuid::Uuid;

use super::*;
use crate::store::SqliteStore;
use crate::types::{CommittedOffset, TopicInfo, TopicSpec};

const SESSION: i32 = 10_000;
const REBALANCE: i32 = 20_000;

struct Fixture {
    store: Arc<dyn MetadataStore>,
    clock: Arc<AtomicI64>,
    c: Arc<GroupCoordinator>,
}

fn settings() -> GroupSettings {
    GroupSettings {
        initial_rebalance_delay_ms: 0,
        offsets_retention_ms: 60_000,
        // Expiry is driven by the tests, not the timer task.
        retention_check_interval_ms: i64::MAX,
        ..GroupSettings::default()
    }
}

impl Fixture {
    async fn new() -> Self {
        let store: Arc<dyn MetadataStore> =
            Arc::new(SqliteStore::open_in_memory().await.expect("store"));
        Self::over(store, settings()).await
    }

    async fn over(store: Arc<dyn MetadataStore>, settings: GroupSettings) -> Self {
        let clock = Arc::new(AtomicI64::new(1_000_000));
        let c2 = clock.clone();
        let c = GroupCoordinator::start(
            store.clone(),
            Arc::new(move || c2.load(Ordering::SeqCst)),
            settings,
        )
        .await
        .expect("coordinator");
        Fixture { store, clock, c }
    }

    fn advance(&self, ms: i64) {
        self.clock.fetch_add(ms, Ordering::SeqCst);
    }

    fn join_req(&self, group: &str, member: &str, protocols: &[(&str, &[u8])]) -> JoinGroup {
        JoinGroup {
            group_id: group.into(),
            member_id: member.into(),
            group_instance_id: None,
            client_id: "client".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout_ms: SESSION,
            rebalance_timeout_ms: REBALANCE,
            protocol_type: "consumer".into(),
            protocols: protocols
                .iter()
                .map(|(n, m)| GroupProtocol {
                    name: n.to_string(),
                    metadata: m.to_vec(),
                })
                .collect(),
            require_known_member_id: true,
        }
    }

    /// Starts a join and lets it reach the coordinator (it may stay parked there).
    async fn spawn_join(&self, req: JoinGroup) -> JoinHandle<JoinResult> {
        let c = self.c.clone();
        let h = tokio::spawn(async move { c.join(req).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        h
    }

    /// A v4+ first join: MEMBER_ID_REQUIRED, then the parked second join.
    async fn new_member(&self, group: &str) -> (String, JoinHandle<JoinResult>) {
        let first = self
            .c
            .join(self.join_req(group, "", &[("range", b"m")]))
            .await;
        assert_eq!(first.error, Some(GroupError::MemberIdRequired));
        assert!(first.member_id.starts_with("client-"));
        let id = first.member_id.clone();
        let h = self
            .spawn_join(self.join_req(group, &id, &[("range", b"m")]))
            .await;
        (id, h)
    }

    async fn heartbeat(&self, group: &str, member: &str, generation: i32) -> Option<GroupError> {
        self.c
            .heartbeat(Heartbeat {
                group_id: group.into(),
                generation_id: generation,
                member_id: member.into(),
                group_instance_id: None,
            })
            .await
    }

    fn sync_req(
        &self,
        group: &str,
        member: &str,
        generation: i32,
        assign: &[(&str, &[u8])],
    ) -> SyncGroup {
        SyncGroup {
            group_id: group.into(),
            generation_id: generation,
            member_id: member.into(),
            group_instance_id: None,
            protocol_type: Some("consumer".into()),
            protocol_name: Some("range".into()),
            assignments: assign
                .iter()
                .map(|(m, a)| (m.to_string(), a.to_vec()))
                .collect(),
        }
    }

    async fn commit(
        &self,
        group: &str,
        member: &str,
        generation: i32,
        offset: i64,
    ) -> Option<GroupError> {
        self.commit_as(group, member, generation, offset, false)
            .await
    }

    /// A commit, or with `transactional` a TxnOffsetCommit's membership check.
    async fn commit_as(
        &self,
        group: &str,
        member: &str,
        generation: i32,
        offset: i64,
        transactional: bool,
    ) -> Option<GroupError> {
        let topic = self.topic().await;
        self.c
            .commit(CommitOffsets {
                group_id: group.into(),
                generation_id: generation,
                member_id: member.into(),
                group_instance_id: None,
                offsets: vec![CommittedOffset {
                    topic_id: topic,
                    partition: 0,
                    offset,
                    leader_epoch: None,
                    metadata: None,
                    commit_timestamp_ms: self.clock.load(Ordering::SeqCst),
                }],
                transactional,
            })
            .await
    }

    /// The topic `t` (created on first use).
    async fn topic(&self) -> Uuid {
        let topics = self.store.list_topics().await.expect("topics");
        if let Some(t) = topics.iter().find(|t| t.name == "t") {
            return t.id;
        }
        let spec = TopicSpec {
            name: "t".into(),
            partitions: 2,
            configs: Default::default(),
        };
        self.store.create_topic(&spec, 0).await.expect("create").id
    }
}

async fn done<T>(h: JoinHandle<T>) -> T {
    tokio::time::timeout(Duration::from_secs(5), h)
        .await
        .expect("call still parked")
        .expect("task")
}

/// Two members, generation 2, stable, each with an assignment. Returns (leader, follower).
async fn stable_pair(f: &Fixture, group: &str) -> (String, String) {
    let (a, ha) = f.new_member(group).await;
    let ja = done(ha).await;
    assert_eq!(
        (ja.error, ja.generation_id, ja.leader.as_str()),
        (None, 1, a.as_str())
    );
    let (b, hb) = f.new_member(group).await;
    // A must rejoin before generation 2 forms.
    assert_eq!(
        f.heartbeat(group, &a, 1).await,
        Some(GroupError::RebalanceInProgress)
    );
    let ha = f
        .spawn_join(f.join_req(group, &a, &[("range", b"m")]))
        .await;
    let (ja, jb) = (done(ha).await, done(hb).await);
    assert_eq!((ja.generation_id, jb.generation_id), (2, 2));
    assert_eq!(ja.leader, a);
    assert_eq!(ja.members.len(), 2, "the leader sees every member");
    assert!(jb.members.is_empty(), "followers see none");
    assert_eq!(ja.protocol_name.as_deref(), Some("range"));

    let c = f.c.clone();
    let follower = f.sync_req(group, &b, 2, &[]);
    let hs = tokio::spawn(async move { c.sync(follower).await });
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(!hs.is_finished(), "a follower's sync waits for the leader");
    let leader = f.sync_req(group, &a, 2, &[(&a, b"for-a"), (&b, b"for-b")]);
    let sa = f.c.sync(leader).await;
    assert_eq!((sa.error, sa.assignment.as_slice()), (None, &b"for-a"[..]));
    let sb = done(hs).await;
    assert_eq!((sb.error, sb.assignment.as_slice()), (None, &b"for-b"[..]));
    (a, b)
}

#[tokio::test]
async fn transactional_commits_are_fenced_by_generation_and_store_nothing() {
    let f = Fixture::new().await;
    let (a, b) = stable_pair(&f, "g").await;
    assert_eq!(f.commit_as("g", &a, 2, 7, true).await, None);
    // A zombie of an older generation, or a member that left, cannot commit (KIP-447).
    assert_eq!(
        f.commit_as("g", &b, 1, 7, true).await,
        Some(GroupError::IllegalGeneration)
    );
    assert_eq!(
        f.commit_as("g", "nobody", 2, 7, true).await,
        Some(GroupError::UnknownMemberId)
    );
    // Without membership (TxnOffsetCommit before v3) the commit is accepted, where a plain
    // OffsetCommit into a group with members is not.
    assert_eq!(f.commit_as("g", "", -1, 7, true).await, None);
    assert_eq!(
        f.commit("g", "", -1, 7).await,
        Some(GroupError::UnknownMemberId)
    );
    assert_eq!(
        f.commit_as("nogroup", "m", 1, 7, true).await,
        Some(GroupError::IllegalGeneration)
    );
    // The check stores nothing: the offsets wait for the transaction.
    assert!(f.store.fetch_offsets("g").await.expect("fetch").is_empty());
}

#[tokio::test]
async fn members_join_sync_and_heartbeat() {
    let f = Fixture::new().await;
    let (a, b) = stable_pair(&f, "g").await;
    assert_eq!(f.heartbeat("g", &a, 2).await, None);
    assert_eq!(
        f.heartbeat("g", &b, 1).await,
        Some(GroupError::IllegalGeneration)
    );
    assert_eq!(
        f.heartbeat("g", "nobody", 2).await,
        Some(GroupError::UnknownMemberId)
    );
    let d = f.c.describe("g").await;
    assert_eq!(
        (d.state.as_str(), d.protocol_name.as_str()),
        ("Stable", "range")
    );
    assert_eq!(d.members.len(), 2);
    assert!(d.members.iter().any(|m| m.assignment == b"for-b"));
}

#[tokio::test]
async fn session_expiry_removes_member_and_rebalances() {
    let f = Fixture::new().await;
    let (a, b) = stable_pair(&f, "g").await;
    f.advance(i64::from(SESSION) / 2);
    assert_eq!(f.heartbeat("g", &a, 2).await, None);
    f.advance(i64::from(SESSION) / 2 + 1);
    f.c.tick().await;
    // B never heartbeat: gone. A is told to rejoin and forms generation 3 alone.
    assert_eq!(
        f.heartbeat("g", &b, 2).await,
        Some(GroupError::UnknownMemberId)
    );
    assert_eq!(
        f.heartbeat("g", &a, 2).await,
        Some(GroupError::RebalanceInProgress)
    );
    let j = f.c.join(f.join_req("g", &a, &[("range", b"m")])).await;
    assert_eq!((j.error, j.generation_id, j.members.len()), (None, 3, 1));
}

#[tokio::test]
async fn rebalance_timeout_drops_members_that_do_not_rejoin() {
    let f = Fixture::new().await;
    let (a, b) = stable_pair(&f, "g").await;
    let _ = b;
    let (_c, hc) = f.new_member("g").await;
    // B rejoins; A keeps heartbeating but never rejoins.
    let hb = f.spawn_join(f.join_req("g", &b, &[("range", b"m")])).await;
    f.advance(i64::from(REBALANCE) - 1);
    assert_eq!(
        f.heartbeat("g", &a, 2).await,
        Some(GroupError::RebalanceInProgress)
    );
    f.c.tick().await;
    assert!(!hb.is_finished());
    f.advance(2);
    f.c.tick().await;
    let (jb, jc) = (done(hb).await, done(hc).await);
    assert_eq!((jb.generation_id, jc.generation_id), (3, 3));
    assert_eq!(
        f.heartbeat("g", &a, 3).await,
        Some(GroupError::UnknownMemberId)
    );
}

#[tokio::test]
async fn leaving_members_empty_the_group_then_it_can_be_deleted() {
    let f = Fixture::new().await;
    let (a, b) = stable_pair(&f, "g").await;
    assert_eq!(f.commit("g", &a, 2, 42).await, None);
    assert_eq!(f.c.delete("g").await, Some(GroupError::NonEmptyGroup));
    let (err, per) =
        f.c.leave(
            "g",
            &[
                LeavingMember {
                    member_id: a.clone(),
                    group_instance_id: None,
                },
                LeavingMember {
                    member_id: "ghost".into(),
                    group_instance_id: None,
                },
            ],
        )
        .await;
    assert_eq!(
        (err, per),
        (None, vec![None, Some(GroupError::UnknownMemberId)])
    );
    assert_eq!(f.c.describe("g").await.state, "PreparingRebalance");
    f.c.leave(
        "g",
        &[LeavingMember {
            member_id: b,
            group_instance_id: None,
        }],
    )
    .await;
    let d = f.c.describe("g").await;
    assert_eq!(
        (d.state.as_str(), d.members.len(), d.protocol_type.as_str()),
        ("Empty", 0, "consumer")
    );
    let listed = f.c.list(&["empty".into()], &[]).await;
    assert_eq!(
        listed
            .iter()
            .map(|g| g.group_id.as_str())
            .collect::<Vec<_>>(),
        vec!["g"]
    );
    assert!(f.c.list(&["Stable".into()], &[]).await.is_empty());
    assert_eq!(f.c.delete("g").await, None);
    assert!(
        f.store.fetch_offsets("g").await.expect("fetch").is_empty(),
        "offsets deleted with the group"
    );
    assert_eq!(f.c.delete("g").await, Some(GroupError::GroupIdNotFound));
    assert!(!f.c.describe("g").await.exists);
}

#[tokio::test]
async fn offset_commits_are_checked_against_membership() {
    let f = Fixture::new().await;
    // A group that only stores offsets.
    assert_eq!(f.commit("simple", "", -1, 5).await, None);
    assert_eq!(
        f.commit("nobody-home", "m", 3, 5).await,
        Some(GroupError::UnknownMemberId)
    );
    let (a, _b) = stable_pair(&f, "g").await;
    assert_eq!(
        f.commit("g", "", -1, 1).await,
        Some(GroupError::UnknownMemberId),
        "simple commit to an active group"
    );
    assert_eq!(
        f.commit("g", &a, 1, 1).await,
        Some(GroupError::IllegalGeneration)
    );
    assert_eq!(
        f.commit("g", "stranger", 2, 1).await,
        Some(GroupError::UnknownMemberId)
    );
    assert_eq!(f.commit("g", &a, 2, 7).await, None);
    let stored = f.store.fetch_offsets("g").await.expect("fetch");
    assert_eq!(stored.iter().map(|o| o.offset).collect::<Vec<_>>(), vec![7]);
    // During PreparingRebalance a member of the current generation may still commit
    // (eager consumers commit in onPartitionsRevoked).
    let (_c, _hc) = f.new_member("g").await;
    assert_eq!(f.commit("g", &a, 2, 8).await, None);
}

#[tokio::test]
async fn static_member_restart_keeps_assignment_without_rebalance() {
    let f = Fixture::new().await;
    let mut req = f.join_req("s", "", &[("range", b"m")]);
    req.group_instance_id = Some("instance-1".into());
    // Static members skip MEMBER_ID_REQUIRED.
    let j = f.c.join(req.clone()).await;
    assert_eq!((j.error, j.generation_id), (None, 1));
    let old = j.member_id.clone();
    let s =
        f.c.sync(SyncGroup {
            group_instance_id: Some("instance-1".into()),
            ..f.sync_req("s", &old, 1, &[(&old, b"p0")])
        })
        .await;
    assert_eq!(s.assignment, b"p0");
    // Restart: same instance id, no member id.
    let j2 = f.c.join(req.clone()).await;
    assert_eq!((j2.error, j2.generation_id), (None, 1), "no new generation");
    assert_ne!(j2.member_id, old);
    assert!(
        j2.skip_assignment,
        "the static leader keeps the current assignment"
    );
    let s2 =
        f.c.sync(SyncGroup {
            group_instance_id: Some("instance-1".into()),
            ..f.sync_req("s", &j2.member_id, 1, &[])
        })
        .await;
    assert_eq!((s2.error, s2.assignment.as_slice()), (None, &b"p0"[..]));
    // The old incarnation is fenced.
    let hb =
        f.c.heartbeat(Heartbeat {
            group_id: "s".into(),
            generation_id: 1,
            member_id: old,
            group_instance_id: Some("instance-1".into()),
        })
        .await;
    assert_eq!(hb, Some(GroupError::FencedInstanceId));
}

#[tokio::test]
async fn bad_joins_get_kafka_errors() {
    let f = Fixture::new().await;
    let j = f.c.join(f.join_req("", "", &[("range", b"")])).await;
    assert_eq!(j.error, Some(GroupError::InvalidGroupId));
    let mut short = f.join_req("g", "", &[("range", b"")]);
    short.session_timeout_ms = 1_000;
    assert_eq!(
        f.c.join(short).await.error,
        Some(GroupError::InvalidSessionTimeout)
    );
    let j = f.c.join(f.join_req("g", "", &[])).await;
    assert_eq!(j.error, Some(GroupError::InconsistentGroupProtocol));
    let j =
        f.c.join(f.join_req("g", "made-up", &[("range", b"")]))
            .await;
    assert_eq!(j.error, Some(GroupError::UnknownMemberId));
    let (_a, ha) = f.new_member("g").await;
    done(ha).await;
    let first = f.c.join(f.join_req("g", "", &[("roundrobin", b"")])).await;
    let second =
        f.c.join(f.join_req("g", &first.member_id, &[("roundrobin", b"")]))
            .await;
    assert_eq!(second.error, Some(GroupError::InconsistentGroupProtocol));
}

#[tokio::test]
async fn protocol_vote_picks_the_common_preference() {
    let f = Fixture::new().await;
    let mut a = f.join_req("v", "", &[("cooperative-sticky", b"a1"), ("range", b"a2")]);
    a.require_known_member_id = false;
    let ja = f.c.join(a.clone()).await;
    assert_eq!(ja.protocol_name.as_deref(), Some("cooperative-sticky"));
    let mut b = f.join_req("v", "", &[("range", b"b1")]);
    b.require_known_member_id = false;
    let hb = f.spawn_join(b).await;
    let ha = f
        .spawn_join(JoinGroup {
            member_id: ja.member_id.clone(),
            ..a
        })
        .await;
    let (ja, jb) = (done(ha).await, done(hb).await);
    assert_eq!(
        (ja.protocol_name.as_deref(), jb.protocol_name.as_deref()),
        (Some("range"), Some("range"))
    );
    let leader_view: Vec<&[u8]> = ja.members.iter().map(|m| m.metadata.as_slice()).collect();
    assert!(
        leader_view.contains(&&b"a2"[..]) && leader_view.contains(&&b"b1"[..]),
        "{leader_view:?}"
    );
}

#[tokio::test]
async fn a_restarted_coordinator_carries_on_with_the_stored_group() {
    let f = Fixture::new().await;
    let (a, b) = stable_pair(&f, "g").await;
    assert_eq!(f.commit("g", &a, 2, 11).await, None);
    let again = Fixture::over(f.store.clone(), settings()).await;
    assert_eq!(again.heartbeat("g", &a, 2).await, None);
    assert_eq!(again.heartbeat("g", &b, 2).await, None);
    let s = again.c.sync(again.sync_req("g", &b, 2, &[])).await;
    assert_eq!((s.error, s.assignment.as_slice()), (None, &b"for-b"[..]));
    assert_eq!(again.commit("g", &b, 2, 12).await, None);
    let d = again.c.describe("g").await;
    assert_eq!((d.state.as_str(), d.members.len()), ("Stable", 2));
}

#[tokio::test]
async fn offsets_of_empty_groups_expire() {
    let f = Fixture::new().await;
    // A consumer group that emptied: all its offsets go a retention period later.
    let (a, b) = stable_pair(&f, "g").await;
    assert_eq!(f.commit("g", &a, 2, 3).await, None);
    let leaving = [a, b].map(|m| LeavingMember {
        member_id: m,
        group_instance_id: None,
    });
    f.c.leave("g", &leaving).await;
    // A simple group: each offset expires a retention period after its commit.
    assert_eq!(f.commit("simple", "", -1, 9).await, None);
    f.advance(59_000);
    f.c.expire_offsets().await;
    assert!(f.c.describe("g").await.exists);
    assert_eq!(
        f.store.fetch_offsets("simple").await.expect("fetch").len(),
        1
    );
    f.advance(2_000);
    f.c.expire_offsets().await;
    assert!(!f.c.describe("g").await.exists);
    assert!(!f.c.describe("simple").await.exists);
    assert!(f.store.fetch_offsets("g").await.expect("fetch").is_empty());
    assert!(f.store.load_groups().await.expect("load").is_empty());
}

/// A ConsumerProtocolSubscription v0 naming `topics`.
fn subscription(topics: &[&str]) -> Vec<u8> {
    let mut out = 0i16.to_be_bytes().to_vec();
    out.extend((topics.len() as i32).to_be_bytes());
    for t in topics {
        out.extend((t.len() as i16).to_be_bytes());
        out.extend(t.as_bytes());
    }
    out.extend((-1i32).to_be_bytes()); // user data: null
    out
}

#[tokio::test]
async fn offset_delete_refuses_subscribed_topics() {
    let f = Fixture::new().await;
    let topic = f.topic().await;
    let sub = subscription(&["t"]);
    let mut req = f.join_req("d", "", &[("range", &sub)]);
    req.require_known_member_id = false;
    let j = f.c.join(req).await;
    assert_eq!(
        f.commit("d", &j.member_id, 1, 4).await,
        Some(GroupError::RebalanceInProgress),
        "CompletingRebalance"
    );
    f.c.sync(f.sync_req("d", &j.member_id, 1, &[])).await;
    assert_eq!(f.commit("d", &j.member_id, 1, 4).await, None);
    let doomed = |partition| OffsetToDelete {
        topic: "t".into(),
        topic_id: topic,
        partition,
    };
    let (err, per) = f.c.delete_offsets("d", &[doomed(0)]).await;
    assert_eq!(
        (err, per),
        (None, vec![Some(GroupError::GroupSubscribedToTopic)])
    );
    f.c.leave(
        "d",
        &[LeavingMember {
            member_id: j.member_id,
            group_instance_id: None,
        }],
    )
    .await;
    let (err, per) = f.c.delete_offsets("d", &[doomed(0)]).await;
    assert_eq!((err, per), (None, vec![None]));
    assert!(f.store.fetch_offsets("d").await.expect("fetch").is_empty());
    let (err, _) = f.c.delete_offsets("unknown", &[doomed(0)]).await;
    assert_eq!(err, Some(GroupError::GroupIdNotFound));
}

#[test]
fn subscriptions_parse_and_garbage_does_not() {
    assert_eq!(
        subscribed_topics(&subscription(&["a", "bc"])),
        Some(vec!["a".into(), "bc".into()])
    );
    assert_eq!(subscribed_topics(&[0, 0, 0, 0, 0, 9, 0, 1]), None);
    assert_eq!(subscribed_topics(&[]), None);
}

// ---- KIP-848 consumer groups ----

fn consumer_hb(group: &str, member: &str, epoch: i32) -> ConsumerHeartbeat {
    ConsumerHeartbeat {
        group_id: group.into(),
        member_id: member.into(),
        member_epoch: epoch,
        instance_id: None,
        rack_id: None,
        rebalance_timeout_ms: if epoch == 0 { REBALANCE } else { -1 },
        subscribed_topic_names: (epoch == 0).then(|| vec!["t6".to_string()]),
        subscribed_topic_regex: None,
        server_assignor: None,
        owned: None,
        client_id: "client".into(),
        client_host: "/127.0.0.1".into(),
    }
}

impl Fixture {
    async fn topic6(&self) -> Uuid {
        let spec = TopicSpec {
            name: "t6".into(),
            partitions: 6,
            configs: Default::default(),
        };
        let id = self.store.create_topic(&spec, 0).await.expect("create").id;
        self.advance(2_000); // past the coordinator's topic cache
        id
    }

    async fn chb(&self, req: ConsumerHeartbeat) -> ConsumerHeartbeatResult {
        self.c.consumer_heartbeat(req).await
    }
}

fn parts(r: &ConsumerHeartbeatResult) -> Vec<i32> {
    r.assignment
        .as_ref()
        .map(|a| a.iter().flat_map(|(_, ps)| ps.iter().copied()).collect())
        .unwrap_or_default()
}

/// A heartbeat reporting `owned` partitions of `topic`.
fn owning(mut h: ConsumerHeartbeat, topic: Uuid, owned: &[i32]) -> ConsumerHeartbeat {
    h.owned = Some(vec![(topic, owned.to_vec())]);
    h
}

#[tokio::test]
async fn kip848_members_get_disjoint_partitions_after_revocation() {
    let f = Fixture::new().await;
    let t = f.topic6().await;
    let a = f.chb(consumer_hb("k", "a", 0)).await;
    assert_eq!(
        (a.error, a.member_epoch, parts(&a)),
        (None, 1, vec![0, 1, 2, 3, 4, 5])
    );
    // B joins: epoch 2; it gets nothing until A releases half.
    let b = f.chb(consumer_hb("k", "b", 0)).await;
    assert_eq!((b.error, parts(&b)), (None, vec![]));
    assert!(
        b.assignment.is_some(),
        "a join always gets its (empty) assignment"
    );
    // A is told to keep three: the revocation, at its old epoch.
    let a = f
        .chb(owning(consumer_hb("k", "a", 1), t, &[0, 1, 2, 3, 4, 5]))
        .await;
    assert_eq!((a.member_epoch, parts(&a).len()), (1, 3));
    let kept = parts(&a);
    // Until A confirms, B still waits, and nothing is sent twice.
    let b = f.chb(owning(consumer_hb("k", "b", 2), t, &[])).await;
    assert_eq!((b.member_epoch, b.assignment), (2, None));
    let d = f.c.consumer_describe("k").await;
    assert_eq!(d.state, "Reconciling");
    // A releases: it moves to epoch 2; B gets the other three.
    let a = f.chb(owning(consumer_hb("k", "a", 1), t, &kept)).await;
    assert_eq!((a.error, a.member_epoch), (None, 2));
    let b = f.chb(owning(consumer_hb("k", "b", 2), t, &[])).await;
    let mut all = kept.clone();
    all.extend(parts(&b));
    all.sort();
    assert_eq!(all, vec![0, 1, 2, 3, 4, 5]);
    assert_eq!(parts(&b).len(), 3);
    let d = f.c.consumer_describe("k").await;
    assert_eq!(
        (d.state.as_str(), d.group_epoch, d.assignor.as_str()),
        ("Stable", 2, "uniform")
    );
    // Stale epochs are fenced; commits check the epoch.
    let stale = f.chb(owning(consumer_hb("k", "b", 1), t, &[9])).await;
    assert_eq!(stale.error, Some(GroupError::FencedMemberEpoch));
    assert_eq!(
        f.commit("k", "b", 1, 5).await,
        Some(GroupError::StaleMemberEpoch)
    );
    // A transactional commit with a stale epoch is ILLEGAL_GENERATION, as in Kafka.
    assert_eq!(
        f.commit_as("k", "b", 1, 5, true).await,
        Some(GroupError::IllegalGeneration)
    );
    assert_eq!(f.commit_as("k", "b", 2, 5, true).await, None);
    assert_eq!(f.commit("k", "b", 2, 5).await, None);
    assert_eq!(
        f.commit("k", "", -1, 5).await,
        Some(GroupError::UnknownMemberId)
    );
}

#[tokio::test]
async fn kip848_leave_expiry_and_restart() {
    let f = Fixture::new().await;
    let t = f.topic6().await;
    f.chb(consumer_hb("k", "a", 0)).await;
    let mut range = consumer_hb("k", "b", 0);
    range.server_assignor = Some("range".into());
    f.chb(range).await;
    let a = f
        .chb(owning(consumer_hb("k", "a", 1), t, &[0, 1, 2, 3, 4, 5]))
        .await;
    assert_eq!(
        parts(&a),
        vec![0, 1, 2],
        "range: the first member by id gets the first half"
    );
    f.chb(owning(consumer_hb("k", "a", 1), t, &[0, 1, 2])).await;
    let b = f.chb(owning(consumer_hb("k", "b", 2), t, &[])).await;
    assert_eq!(parts(&b), vec![3, 4, 5]);
    // The group survives a coordinator restart: members carry on at their epochs.
    let again = Fixture::over(f.store.clone(), settings()).await;
    again.advance(0);
    let b2 = again
        .chb(owning(consumer_hb("k", "b", 2), t, &[3, 4, 5]))
        .await;
    assert_eq!((b2.error, b2.member_epoch), (None, 2));
    // B's session expires on the restarted coordinator; A then gets everything.
    again.advance(i64::from(GroupSettings::default().consumer_session_timeout_ms) + 1);
    again
        .chb(owning(consumer_hb("k", "a", 2), t, &[0, 1, 2]))
        .await;
    again.c.tick().await;
    let a = again
        .chb(owning(consumer_hb("k", "a", 2), t, &[0, 1, 2]))
        .await;
    assert_eq!((a.member_epoch, parts(&a)), (3, vec![0, 1, 2, 3, 4, 5]));
    // Leaving (epoch -1) empties the group, which can then be deleted.
    let left = again.chb(consumer_hb("k", "a", -1)).await;
    assert_eq!((left.error, left.member_epoch), (None, -1));
    assert_eq!(again.c.consumer_describe("k").await.state, "Empty");
    let listed = again.c.list(&[], &["consumer".into()]).await;
    assert_eq!(
        listed
            .iter()
            .map(|g| g.group_id.as_str())
            .collect::<Vec<_>>(),
        vec!["k"]
    );
    assert_eq!(again.c.delete("k").await, None);
}

#[tokio::test]
async fn kip848_bad_heartbeats_and_protocol_conflicts() {
    let f = Fixture::new().await;
    f.topic6().await;
    let mut no_sub = consumer_hb("k", "a", 0);
    no_sub.subscribed_topic_names = None;
    assert_eq!(f.chb(no_sub).await.error, Some(GroupError::InvalidRequest));
    let mut bad_re = consumer_hb("k", "a", 0);
    bad_re.subscribed_topic_regex = Some("(unclosed".into());
    assert_eq!(
        f.chb(bad_re).await.error,
        Some(GroupError::InvalidRegularExpression)
    );
    let mut bad_assignor = consumer_hb("k", "a", 0);
    bad_assignor.server_assignor = Some("sticky-magic".into());
    assert_eq!(
        f.chb(bad_assignor).await.error,
        Some(GroupError::UnsupportedAssignor)
    );
    assert_eq!(
        f.chb(consumer_hb("k", "ghost", 3)).await.error,
        Some(GroupError::UnknownMemberId)
    );
    // A classic group with members is not a consumer group, and vice versa.
    let (_m, h) = f.new_member("classic").await;
    done(h).await;
    assert_eq!(
        f.chb(consumer_hb("classic", "a", 0)).await.error,
        Some(GroupError::GroupIdNotFound)
    );
    assert_eq!(f.chb(consumer_hb("k", "a", 0)).await.error, None);
    let mut j = f.join_req("k", "", &[("range", b"")]);
    j.require_known_member_id = false;
    assert_eq!(
        f.c.join(j).await.error,
        Some(GroupError::InconsistentGroupProtocol)
    );
    // Regex subscriptions match whole names.
    let mut re = consumer_hb("r", "x", 0);
    re.subscribed_topic_names = Some(vec![]);
    re.subscribed_topic_regex = Some("t.".into());
    let r = f.chb(re).await;
    assert_eq!(parts(&r), vec![0, 1, 2, 3, 4, 5]);
    // Static members: a second live member cannot take the instance id.
    let mut s1 = consumer_hb("s", "s1", 0);
    s1.instance_id = Some("i".into());
    assert_eq!(f.chb(s1).await.error, None);
    let mut s2 = consumer_hb("s", "s2", 0);
    s2.instance_id = Some("i".into());
    assert_eq!(
        f.chb(s2.clone()).await.error,
        Some(GroupError::UnreleasedInstanceId)
    );
    // After a temporary leave (-2) the new incarnation inherits the partitions.
    let mut leave = consumer_hb("s", "s1", -2);
    leave.instance_id = Some("i".into());
    assert_eq!(f.chb(leave).await.error, None);
    let r = f.chb(s2).await;
    assert_eq!(
        (r.error, r.member_epoch, parts(&r)),
        (None, 1, vec![0, 1, 2, 3, 4, 5])
    );
}

#[test]
fn uniform_assignment_is_balanced_and_sticky() {
    let topic = TopicInfo {
        id: Uuid::new_v4(),
        name: "t".into(),
        configs: Default::default(),
        created_at_ms: 0,
        partitions: (0..7)
            .map(|p| crate::types::PartitionInfo {
                partition: p,
                high_watermark: 0,
                log_start_offset: 0,
                leader_epoch: 0,
            })
            .collect(),
    };
    let member = |owned: &[i32]| consumer::ConsumerMember {
        instance_id: None,
        rack_id: None,
        client_id: String::new(),
        client_host: String::new(),
        rebalance_timeout_ms: 1,
        subscription: consumer::Subscription {
            names: vec!["t".into()],
            ..Default::default()
        },
        epoch: 1,
        previous_epoch: 1,
        assigned: [(topic.id, owned.iter().copied().collect())]
            .into_iter()
            .collect(),
        revoking: Default::default(),
        revoke_deadline_ms: 0,
        last_heartbeat_ms: 0,
        sent: None,
        departed: false,
        compiled: None,
    };
    // A had 4, B had 3; C joins: counts must differ by at most one and A, B keep most.
    let members: std::collections::BTreeMap<String, consumer::ConsumerMember> = [
        ("a".to_string(), member(&[0, 1, 2, 3])),
        ("b".to_string(), member(&[4, 5, 6])),
        ("c".to_string(), member(&[])),
    ]
    .into_iter()
    .collect();
    let out = consumer::assign("uniform", &members, std::slice::from_ref(&topic));
    let get = |m: &str| -> Vec<i32> {
        out[m]
            .get(&topic.id)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    };
    let counts: Vec<usize> = ["a", "b", "c"].iter().map(|m| get(m).len()).collect();
    assert_eq!(counts.iter().sum::<usize>(), 7);
    assert!(
        counts.iter().max().unwrap() - counts.iter().min().unwrap() <= 1,
        "{counts:?}"
    );
    assert!(
        get("a").iter().all(|p| [0, 1, 2, 3].contains(p)),
        "a keeps its own: {:?}",
        get("a")
    );
    assert!(
        get("b").iter().all(|p| [4, 5, 6].contains(p)),
        "b keeps its own: {:?}",
        get("b")
    );
}

#[tokio::test]
async fn stats_count_groups_members_rebalances_and_commits() {
    let f = Fixture::new().await;
    let (a, _b) = stable_pair(&f, "g").await;
    assert_eq!(f.commit("g", &a, 2, 1).await, None);
    assert_eq!(f.commit("simple", "", -1, 1).await, None);
    f.topic6().await;
    f.chb(consumer_hb("k", "x", 0)).await;
    let s = f.c.stats().await;
    let want: std::collections::BTreeMap<(String, String), u64> = [
        (("classic".to_string(), "Empty".to_string()), 1),
        (("classic".to_string(), "Stable".to_string()), 1),
        (("consumer".to_string(), "Stable".to_string()), 1),
    ]
    .into_iter()
    .collect();
    assert_eq!(s.groups, want);
    assert_eq!((s.members, s.rebalances, s.offset_commits), (3, 3, 2));
}

#[tokio::test]
async fn a_stopped_coordinator_releases_parked_calls_and_writes_nothing() {
    let f = Fixture::new().await;
    let (a, _b) = stable_pair(&f, "g").await;
    // C joins: the group prepares a rebalance and C's join is parked.
    let (_c, hc) = f.new_member("g").await;
    let before = f.store.load_groups().await.expect("load");
    f.c.stop().await;
    let parked = done(hc).await;
    assert_eq!(parked.error, Some(GroupError::CoordinatorNotAvailable));
    assert_eq!(
        f.commit("g", &a, 2, 99).await,
        Some(GroupError::CoordinatorNotAvailable)
    );
    let j = f.c.join(f.join_req("g", &a, &[("range", b"m")])).await;
    assert_eq!(j.error, Some(GroupError::CoordinatorNotAvailable));
    // Timers no longer run: far past every timeout, the stored state is untouched.
    f.advance(10 * i64::from(REBALANCE));
    f.c.tick().await;
    f.c.expire_offsets().await;
    assert_eq!(f.store.load_groups().await.expect("load"), before);
    assert!(f.store.fetch_offsets("g").await.expect("fetch").is_empty());
}

#[tokio::test]
async fn kip848_a_static_leave_from_another_incarnation_is_fenced() {
    let f = Fixture::new().await;
    f.topic6().await;
    let mut join = consumer_hb("s", "live", 0);
    join.instance_id = Some("i".into());
    assert_eq!(f.chb(join).await.error, None);
    let mut zombie = consumer_hb("s", "zombie", -1);
    zombie.instance_id = Some("i".into());
    assert_eq!(
        f.chb(zombie).await.error,
        Some(GroupError::FencedInstanceId)
    );
    assert_eq!(f.c.consumer_describe("s").await.members.len(), 1);
}
