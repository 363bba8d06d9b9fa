"""Classic consumer groups (JoinGroup, SyncGroup, Heartbeat, LeaveGroup, DescribeGroups,
ListGroups, DeleteGroups, OffsetDelete, membership-checked OffsetCommit) with stock clients:
confluent-kafka (librdkafka), kafka-python, kcat, and hand-encoded frames for bad input.

Apache Kafka 4.x is the spec. The assignors run in the clients (the server passes the
protocol metadata through untouched), group.min.session.timeout.ms is 6000, and the first join
to an empty group may wait group.initial.rebalance.delay.ms (3 s) for more members.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
import threading
import time
import uuid

import pytest
from confluent_kafka import (OFFSET_INVALID, ConsumerGroupState, ConsumerGroupTopicPartitions,
                             Consumer, KafkaError, KafkaException, TopicPartition)

import kwire
from kafka_util import admin, create_topic, expect_kafka_error, make_records, producer

SESSION_MS = 6000          # group.min.session.timeout.ms: the smallest legal value
HEARTBEAT_MS = 1000
INITIAL_DELAY_S = 3.0      # group.initial.rebalance.delay.ms

# Kafka error codes for raw-wire checks
NONE = 0
ILLEGAL_GENERATION = 22
INCONSISTENT_GROUP_PROTOCOL = 23
INVALID_GROUP_ID = 24
UNKNOWN_MEMBER_ID = 25
INVALID_SESSION_TIMEOUT = 26
MEMBER_ID_REQUIRED = 79


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# ---------------------------------------------------------------- confluent-kafka helpers
def _consumer(bootstrap: str, group: str, **extra) -> Consumer:
    conf = {"bootstrap.servers": bootstrap, "group.id": group,
            "auto.offset.reset": "earliest", "enable.auto.commit": False,
            "enable.partition.eof": False,
            "session.timeout.ms": SESSION_MS, "heartbeat.interval.ms": HEARTBEAT_MS}
    conf.update(extra)
    return Consumer(conf)


class Member:
    """A subscribed confluent-kafka consumer that records what it receives."""

    def __init__(self, consumer: Consumer, name: str):
        self.c = consumer
        self.name = name
        self.records: list[tuple[int, int]] = []      # (partition, offset) in delivery order
        self.values: dict[tuple[int, int], bytes] = {}
        self.errors: list = []
        self.closed = False

    limit: int | None = None   # stop receiving records at this many

    def pump(self, timeout: float = 0.05) -> None:
        if self.closed:
            return
        n = 500
        if self.limit is not None:
            n = min(n, self.limit - len(self.records))
            if n <= 0:
                return
        for m in self.c.consume(num_messages=n, timeout=timeout):
            if m.error():
                self.errors.append(m.error())
                continue
            self.records.append((m.partition(), m.offset()))
            self.values[(m.partition(), m.offset())] = m.value()

    def parts(self) -> set[int]:
        return {tp.partition for tp in self.c.assignment()}

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.c.close()


def _wait(pump, cond, timeout: float, what, settle: float = 0.0) -> float:
    """Calls pump() until cond() has held for `settle` seconds; returns the time it first held
    (monotonic). `what` is a string or a callable giving the state for the failure message."""
    deadline = time.monotonic() + timeout
    held_since = None
    while True:
        pump()
        now = time.monotonic()
        if cond():
            if held_since is None:
                held_since = now
            if now - held_since >= settle:
                return held_since
        else:
            held_since = None
        if now > deadline:
            state = what() if callable(what) else what
            raise AssertionError(f"timed out after {timeout:.0f}s: {state}")


def _pump_all(*members):
    def pump():
        for m in members:
            m.pump(0.05)
    return pump


def _drain(member: "Member", seconds: float) -> None:
    """Keeps polling for `seconds` so that extra (duplicate or unexpected) records show up."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        member.pump(0.05)


def _split_ok(sets: list[set[int]], partitions: int, sizes: list[int] | None = None) -> bool:
    union = set().union(*sets)
    if any(not s for s in sets) or union != set(range(partitions)):
        return False
    if sum(len(s) for s in sets) != partitions:  # disjoint
        return False
    return sizes is None or sorted(len(s) for s in sets) == sorted(sizes)


def _produce(bootstrap: str, topic: str,
             records: list[tuple[bytes, bytes]]) -> dict[int, list[int]]:
    """Produces with acks=all; returns the delivered offsets per partition, sorted. Unlike
    kafka_util.produce_all it does not require the partitions to start at offset 0."""
    p = producer(bootstrap)
    got: dict[int, list[int]] = {}
    errors = []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(err)
        else:
            got.setdefault(msg.partition(), []).append(msg.offset())

    for k, v in records:
        while True:
            try:
                p.produce(topic, key=k, value=v, on_delivery=on_delivery)
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)
    assert p.flush(60) == 0, "messages not delivered after flush"
    assert not errors, f"{len(errors)} delivery errors, first: {errors[0]}"
    return {part: sorted(offs) for part, offs in got.items()}


def _ends(bootstrap: str, topic: str, partitions: int) -> dict[int, int]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": _name("wm")})
    try:
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=20, cached=False)[1]
                for p in range(partitions)}
    finally:
        c.close()


def _committed(bootstrap: str, group: str, topic: str, partitions) -> dict[int, int]:
    """Committed offsets through a consumer of `group` that never joins it (OffsetFetch)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                  "enable.auto.commit": False})
    try:
        tps = c.committed([TopicPartition(topic, p) for p in partitions], timeout=20)
        assert all(tp.error is None for tp in tps), [tp.error for tp in tps]
        return {tp.partition: tp.offset for tp in tps}
    finally:
        c.close()


def _commit(c: Consumer, topic: str, offsets: dict[int, int]) -> None:
    res = c.commit(offsets=[TopicPartition(topic, p, o) for p, o in offsets.items()],
                   asynchronous=False)
    bad = [(tp.partition, tp.error) for tp in (res or []) if tp.error is not None]
    assert not bad, f"commit failed per partition: {bad}"


def _assert_exact(got: list[tuple[int, int]], want: dict[int, range], label: str) -> None:
    """`got` holds each (partition, offset) in `want` exactly once and nothing else; per
    partition, the offsets arrive in order."""
    per: dict[int, list[int]] = {}
    for p, o in got:
        per.setdefault(p, []).append(o)
    for p, offs in per.items():
        assert p in want, f"{label}: records from unexpected partition {p}: {offs[:5]}"
        assert offs == sorted(offs), f"{label}: partition {p} out of order: {offs[:10]}"
        assert len(offs) == len(set(offs)), f"{label}: partition {p} re-read records"
    for p, r in want.items():
        offs = per.get(p, [])
        assert offs == list(r), (
            f"{label}: partition {p}: got offsets {offs[:3]}..{offs[-3:]} (n={len(offs)}), "
            f"want {r.start}..{r.stop - 1} (n={len(r)})")


# ---------------------------------------------------------------- a consumer in a subprocess
CHILD = r"""
import sys
from confluent_kafka import Consumer
bootstrap, group, topic = sys.argv[1:4]
c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "client.id": "doomed",
              "session.timeout.ms": 6000, "heartbeat.interval.ms": 1000,
              "auto.offset.reset": "earliest", "enable.auto.commit": False})
c.subscribe([topic])
last = None
while True:
    c.poll(0.1)
    cur = sorted(tp.partition for tp in c.assignment())
    if cur != last:
        print("ASSIGNED " + ",".join(map(str, cur)), flush=True)
        last = cur
"""


class ChildConsumer:
    def __init__(self, bootstrap: str, group: str, topic: str):
        self.lines: list[str] = []
        self.proc = subprocess.Popen([sys.executable, "-c", CHILD, bootstrap, group, topic],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, text=True, start_new_session=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def parts(self) -> set[int]:
        for line in reversed(list(self.lines)):
            if line.startswith("ASSIGNED "):
                rest = line[len("ASSIGNED "):]
                return {int(x) for x in rest.split(",")} if rest else set()
        return set()

    def pump(self, timeout: float = 0.05) -> None:
        assert self.proc.poll() is None, \
            f"child consumer exited {self.proc.returncode}: {self.lines[-20:]}"

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()  # SIGKILL: no LeaveGroup, no close
            self.proc.wait(10)


# ---------------------------------------------------------------- 1. split, grow, dead member
@pytest.mark.timeout(90)
def test_confluent_members_split_redistribute_and_dead_member_expires(playground):
    bs = playground.bootstrap
    topic, group = _name("grp-split"), _name("g-split")
    create_topic(bs, topic, partitions=6)
    produced = _produce(bs, topic, make_records(600, "split"))
    assert sorted(produced) == list(range(6)), f"not all 6 partitions got records: {produced}"
    all_records = {(p, o) for p, offs in produced.items() for o in offs}

    c1 = Member(_consumer(bs, group, **{"client.id": "c1"}), "c1")
    c2 = Member(_consumer(bs, group, **{"client.id": "c2"}), "c2")
    child = None
    try:
        c1.c.subscribe([topic])
        c2.c.subscribe([topic])
        pump = _pump_all(c1, c2)

        def consumed():
            return set(c1.records) | set(c2.records)

        # Two members: 3 + 3, disjoint, union = all six, and every record read by someone.
        _wait(pump, lambda: _split_ok([c1.parts(), c2.parts()], 6, [3, 3])
              and all_records <= consumed(), 30,
              lambda: f"two-member split: c1={sorted(c1.parts())} c2={sorted(c2.parts())}, "
                      f"consumed {len(consumed() & all_records)}/600, "
                      f"errors {(c1.errors + c2.errors)[:3]}", settle=1.0)

        # A third member (a separate process) joins: 2 + 2 + 2.
        child = ChildConsumer(bs, group, topic)

        def pump3():
            pump()
            child.pump()
        _wait(pump3, lambda: _split_ok([c1.parts(), c2.parts(), child.parts()], 6, [2, 2, 2]),
              30, lambda: f"three-member split: c1={sorted(c1.parts())} c2={sorted(c2.parts())} "
                          f"child={sorted(child.parts())} child output={child.lines[-5:]}",
              settle=1.0)
        child_parts = child.parts()

        # SIGKILL the child: it never sends LeaveGroup. After its session times out (6 s),
        # the survivors take its partitions: 3 + 3 again.
        t0 = time.monotonic()
        child.kill()
        margin = 10.0
        held = _wait(pump, lambda: _split_ok([c1.parts(), c2.parts()], 6, [3, 3]),
                     SESSION_MS / 1000 + margin + 5,
                     lambda: f"after SIGKILL of the member holding {sorted(child_parts)}: "
                             f"c1={sorted(c1.parts())} c2={sorted(c2.parts())}")
        elapsed = held - t0
        assert elapsed <= SESSION_MS / 1000 + margin, \
            f"the dead member's partitions moved only after {elapsed:.1f}s " \
            f"(session timeout {SESSION_MS} ms + {margin:.0f} s margin)"
        assert child_parts <= c1.parts() | c2.parts()
    finally:
        if child is not None:
            child.kill()
        c1.close()
        c2.close()


# ---------------------------------------------------------------- 2. cooperative-sticky
@pytest.mark.timeout(90)
def test_confluent_cooperative_sticky_incremental_rebalance(playground):
    bs = playground.bootstrap
    topic, group = _name("grp-coop"), _name("g-coop")
    create_topic(bs, topic, partitions=6)
    events: dict[str, list[tuple[str, list[int]]]] = {"c1": [], "c2": []}

    def callbacks(name):
        def on_assign(consumer, parts):
            events[name].append(("assign", sorted(tp.partition for tp in parts)))

        def on_revoke(consumer, parts):
            events[name].append(("revoke", sorted(tp.partition for tp in parts)))
        return on_assign, on_revoke

    conf = {"partition.assignment.strategy": "cooperative-sticky"}
    c1 = Member(_consumer(bs, group, **conf), "c1")
    c2 = Member(_consumer(bs, group, **conf), "c2")
    try:
        a, r = callbacks("c1")
        c1.c.subscribe([topic], on_assign=a, on_revoke=r)
        _wait(_pump_all(c1), lambda: c1.parts() == set(range(6)), 30,
              lambda: f"c1 alone: {sorted(c1.parts())}, events {events['c1']}", settle=0.5)
        nonempty = [e for e in events["c1"] if e[1]]
        assert nonempty == [("assign", list(range(6)))], \
            f"c1 alone should be assigned all six once: {events['c1']}"
        mark1 = len(events["c1"])

        a, r = callbacks("c2")
        c2.c.subscribe([topic], on_assign=a, on_revoke=r)
        pump = _pump_all(c1, c2)
        _wait(pump, lambda: _split_ok([c1.parts(), c2.parts()], 6, [3, 3]), 30,
              lambda: f"c1={sorted(c1.parts())} c2={sorted(c2.parts())} events={events}",
              settle=1.5)
        c1_final, c2_final = c1.parts(), c2.parts()
        after = events["c1"][mark1:]
        revoked = {p for kind, ps in after if kind == "revoke" for p in ps}
        assigned_again = {p for kind, ps in after if kind == "assign" for p in ps}
        # Incremental: c1 gives up exactly the partitions that move to c2, keeps the rest
        # throughout (never revokes everything, as the eager protocol would).
        assert revoked == c2_final, \
            f"c1 revoked {sorted(revoked)}, c2 got {sorted(c2_final)}; c1 events {after}"
        assert not revoked & c1_final, f"c1 revoked partitions it kept: {after}"
        assert not assigned_again, f"c1 was re-assigned partitions it had kept: {after}"
        c2_assigned = {p for kind, ps in events["c2"] if kind == "assign" for p in ps}
        c2_revoked = {p for kind, ps in events["c2"] if kind == "revoke" for p in ps}
        assert c2_assigned == c2_final and not c2_revoked, f"c2 events {events['c2']}"

        # c2 leaves: c1 is incrementally assigned c2's partitions and revokes nothing.
        mark1 = len(events["c1"])
        c2.close()
        _wait(_pump_all(c1), lambda: c1.parts() == set(range(6)), 20,
              lambda: f"after c2 left: c1={sorted(c1.parts())} events={events['c1'][mark1:]}",
              settle=0.5)
        after = events["c1"][mark1:]
        assert not [e for e in after if e[0] == "revoke" and e[1]], \
            f"c1 revoked partitions when c2 left: {after}"
        assert {p for kind, ps in after if kind == "assign" for p in ps} == c2_final, after
    finally:
        c1.close()
        c2.close()


# ---------------------------------------------------------------- 3. commit, close, resume
@pytest.mark.timeout(90)
def test_subscribe_commit_close_reopen_resumes_exactly(playground):
    bs = playground.bootstrap
    topic, group = _name("grp-resume"), _name("g-resume")
    create_topic(bs, topic, partitions=3)
    produced = _produce(bs, topic, make_records(300, "resume"))
    ends = {p: len(produced.get(p, [])) for p in range(3)}
    assert all(produced[p] == list(range(ends[p])) for p in produced)

    first = Member(_consumer(bs, group), "first")
    try:
        first.c.subscribe([topic])
        # exactly 120 records, one poll at a time, so that some partitions are read partly
        first.limit = 120
        _wait(_pump_all(first), lambda: len(first.records) >= 120, 30,
              lambda: f"first consumer got {len(first.records)} records, "
                      f"assignment {sorted(first.parts())}, errors {first.errors[:3]}")
        got = first.records[:]
        assert len(got) == 120
        assert len(got) == len(set(got)), "duplicate deliveries"
        last: dict[int, int] = {}
        for p, o in got:
            last[p] = max(last.get(p, -1), o)
        to_commit = {p: o + 1 for p, o in last.items()}
        _commit(first.c, topic, to_commit)
        committed = first.c.committed([TopicPartition(topic, p) for p in range(3)], timeout=20)
        assert {tp.partition: tp.offset for tp in committed} == \
            {p: to_commit.get(p, OFFSET_INVALID) for p in range(3)}
    finally:
        first.close()

    assert _committed(bs, group, topic, range(3)) == \
        {p: to_commit.get(p, OFFSET_INVALID) for p in range(3)}

    second = Member(_consumer(bs, group), "second")
    try:
        second.c.subscribe([topic])
        start = {p: to_commit.get(p, 0) for p in range(3)}   # earliest where nothing committed
        remaining = sum(ends[p] - start[p] for p in range(3))
        _wait(_pump_all(second), lambda: len(second.records) >= remaining, 30,
              lambda: f"second consumer got {len(second.records)}/{remaining}, "
                      f"assignment {sorted(second.parts())}, errors {second.errors[:3]}")
        _drain(second, 1.0)
        _assert_exact(second.records, {p: range(start[p], ends[p]) for p in range(3)
                                       if ends[p] > start[p]}, "after reopen")
        # together: every record exactly once
        assert sorted(got + second.records) == sorted((p, o) for p in range(3)
                                                      for o in range(ends[p]))
    finally:
        second.close()


# ---------------------------------------------------------------- 4. kafka-python
@pytest.mark.timeout(90)
def test_kafka_python_group_consume_commit_and_split(playground):
    from kafka import KafkaConsumer, TopicPartition as KTP

    bs = playground.bootstrap
    topic, group = _name("grp-kp"), _name("g-kp")
    create_topic(bs, topic, partitions=4)
    produced = _produce(bs, topic, make_records(400, "kp"))
    ends = {p: len(produced.get(p, [])) for p in range(4)}

    def kc():
        return KafkaConsumer(bootstrap_servers=bs, group_id=group, auto_offset_reset="earliest",
                             enable_auto_commit=False, session_timeout_ms=SESSION_MS,
                             heartbeat_interval_ms=HEARTBEAT_MS)

    got: dict[str, list[tuple[int, int]]] = {"k1": [], "k2": []}
    consumers = {}

    def pump():
        for name, c in consumers.items():
            for recs in c.poll(timeout_ms=50).values():
                got[name].extend((r.partition, r.offset) for r in recs)

    try:
        consumers["k1"] = k1 = kc()
        k1.subscribe([topic])
        _wait(pump, lambda: len(got["k1"]) >= 400, 40,
              lambda: f"k1 got {len(got['k1'])}/400, assignment {k1.assignment()}")
        _assert_exact(got["k1"], {p: range(ends[p]) for p in range(4) if ends[p]}, "k1")
        k1.commit()
        for p in range(4):
            assert k1.committed(KTP(topic, p)) == ends[p], (p, k1.committed(KTP(topic, p)))

        consumers["k2"] = k2 = kc()
        k2.subscribe([topic])

        def parts(c):
            return {tp.partition for tp in c.assignment()}
        _wait(pump, lambda: _split_ok([parts(k1), parts(k2)], 4, [2, 2]), 40,
              lambda: f"k1={sorted(parts(k1))} k2={sorted(parts(k2))}", settle=1.0)
        assert len(got["k2"]) == 0, f"k2 re-read committed records: {got['k2'][:5]}"

        # New records are shared: each consumer reads only its own partitions, from the
        # committed offsets, and together they read each new record exactly once.
        n1 = len(got["k1"])
        more = _produce(bs, topic, make_records(200, "kp-more"))
        new = {p: range(ends[p], ends[p] + len(offs)) for p, offs in more.items()}
        _wait(pump, lambda: len(got["k1"]) - n1 + len(got["k2"]) >= 200, 30,
              lambda: f"new records: k1 {len(got['k1']) - n1}, k2 {len(got['k2'])} of 200")
        new1, new2 = got["k1"][n1:], got["k2"]
        assert {p for p, _ in new1} <= parts(k1) and {p for p, _ in new2} <= parts(k2)
        assert new1 and new2, f"one consumer read nothing: k1 {len(new1)}, k2 {len(new2)}"
        _assert_exact(new1 + new2, new, "new records")
    finally:
        for c in consumers.values():
            c.close()


# ---------------------------------------------------------------- 5. kcat -G
@pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat not installed")
@pytest.mark.timeout(90)
def test_kcat_balanced_consumer(playground):
    bs = playground.bootstrap
    topic, group = _name("grp-kcat"), _name("g-kcat")
    create_topic(bs, topic, partitions=3)
    produced = _produce(bs, topic, make_records(300, "kcat"))
    ends = {p: len(produced.get(p, [])) for p in range(3)}

    def run(count: int, offset: str) -> list[tuple[int, int]]:
        try:
            r = subprocess.run(["kcat", "-b", bs, "-G", group, "-o", offset, "-c", str(count),
                                "-f", "%p:%o\\n", "-X", "session.timeout.ms=6000",
                                "-X", "auto.offset.reset=earliest", topic],
                               capture_output=True, text=True, timeout=40)
        except subprocess.TimeoutExpired as e:
            raise AssertionError(f"kcat -G did not read {count} records in 40 s; "
                                 f"stdout {len((e.stdout or b'').splitlines())} lines, "
                                 f"stderr {e.stderr!r:.2000}")
        assert r.returncode == 0, f"kcat exited {r.returncode}: {r.stderr[-2000:]}"
        return [tuple(map(int, line.split(":"))) for line in r.stdout.splitlines() if line]

    got = run(300, "beginning")
    _assert_exact(got, {p: range(ends[p]) for p in range(3) if ends[p]}, "kcat -G")
    # kcat commits what it consumed when it closes (auto commit).
    assert _committed(bs, group, topic, range(3)) == \
        {p: ends[p] if ends[p] else OFFSET_INVALID for p in range(3)}
    # A second kcat in the group resumes from the committed offsets. (With -G, kcat applies
    # "-o beginning" to every assigned partition, overriding committed offsets; "-o stored"
    # is the committed offset.)
    more = _produce(bs, topic, make_records(60, "kcat-more"))
    got = run(60, "stored")
    _assert_exact(got, {p: range(ends[p], ends[p] + len(offs)) for p, offs in more.items()},
                  "kcat -G second run")


# ---------------------------------------------------------------- 6. AdminClient
def _listing(a, states=None) -> dict:
    kw = {"request_timeout": 20}
    if states is not None:
        kw["states"] = set(states)
    res = a.list_consumer_groups(**kw).result(timeout=30)
    assert not res.errors, f"list_consumer_groups errors: {res.errors}"
    return {g.group_id: g for g in res.valid}


def _describe(a, group):
    return a.describe_consumer_groups([group], request_timeout=20)[group].result(timeout=30)


def _wait_state(a, group, state, timeout=10.0):
    seen = []

    def cond():
        g = _listing(a).get(group)
        seen.append(None if g is None else g.state)
        return g is not None and g.state == state
    _wait(lambda: time.sleep(0.2), cond, timeout,
          lambda: f"group {group} never listed as {state}: last seen {seen[-3:]}")


@pytest.mark.timeout(120)
def test_admin_list_describe_offsets_alter_delete(playground):
    bs = playground.bootstrap
    a = admin(bs)
    topic, group = _name("grp-admin"), _name("g-admin")
    create_topic(bs, topic, partitions=2)
    produced = _produce(bs, topic, make_records(40, "admin"))
    ends = {p: len(produced.get(p, [])) for p in range(2)}
    assert all(ends.values()), ends

    m = Member(_consumer(bs, group, **{"client.id": "admin-member"}), "m")
    try:
        m.c.subscribe([topic])
        _wait(_pump_all(m), lambda: len(m.records) >= 40 and m.parts() == {0, 1}, 30,
              lambda: f"member got {len(m.records)}/40, assignment {sorted(m.parts())}")
        _commit(m.c, topic, ends)

        # ListGroups: STABLE while the member is active, and the state filter works.
        _wait_state(a, group, ConsumerGroupState.STABLE)
        g = _listing(a)[group]
        assert not g.is_simple_consumer_group
        assert group in _listing(a, [ConsumerGroupState.STABLE])
        assert group not in _listing(a, [ConsumerGroupState.EMPTY])

        # DescribeGroups
        d = _describe(a, group)
        assert d.group_id == group
        assert d.state == ConsumerGroupState.STABLE, d.state
        assert not d.is_simple_consumer_group, "protocol type must be 'consumer', not empty"
        assert d.partition_assignor == "range", d.partition_assignor  # librdkafka's first choice
        assert d.coordinator is not None and d.coordinator.port == playground.port
        assert len(d.members) == 1, d.members
        mem = d.members[0]
        assert mem.client_id == "admin-member"
        assert mem.member_id == m.c.memberid()
        assert mem.host, "member host is empty"
        assert {(tp.topic, tp.partition) for tp in mem.assignment.topic_partitions} == \
            {(topic, 0), (topic, 1)}

        # the same through kafka-python's DescribeGroups (raw protocol type and name)
        from kafka.admin import KafkaAdminClient
        ka = KafkaAdminClient(bootstrap_servers=bs)
        try:
            kd = ka.describe_groups([group])[group]
            assert kd["error"] is None, kd
            assert kd["group_state"] == "Stable", kd["group_state"]
            assert kd["protocol_type"] == "consumer", kd["protocol_type"]
            assert kd["protocol_data"] == "range", kd["protocol_data"]
            assert len(kd["members"]) == 1
            listed = {x["group_id"]: x for x in ka.list_groups()}
            assert listed[group]["protocol_type"] == "consumer", listed[group]
        finally:
            ka.close()

        # OffsetFetch through the admin client
        off = a.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)],
                                            request_timeout=20)[group].result(timeout=30)
        assert off.group_id == group
        assert {(tp.topic, tp.partition): tp.offset for tp in off.topic_partitions} == \
            {(topic, p): ends[p] for p in range(2)}

        # AlterConsumerGroupOffsets commits with no member and generation -1: refused while
        # the group has members (Kafka: UNKNOWN_MEMBER_ID).
        fut = a.alter_consumer_group_offsets(
            [ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0, 1)])],
            request_timeout=20)[group]
        try:
            res = fut.result(timeout=30)
            errs = [tp.error.code() for tp in res.topic_partitions if tp.error is not None]
            assert errs == [KafkaError.UNKNOWN_MEMBER_ID], \
                f"altering offsets of an active group must fail with UNKNOWN_MEMBER_ID: " \
                f"{[(tp.partition, tp.offset, tp.error) for tp in res.topic_partitions]}"
        except KafkaException as e:
            assert e.args[0].code() == KafkaError.UNKNOWN_MEMBER_ID, e
        assert _committed(bs, group, topic, range(2)) == ends

        # DeleteGroups while a member is active: NON_EMPTY_GROUP
        expect_kafka_error(a.delete_consumer_groups([group], request_timeout=20)[group],
                           KafkaError.NON_EMPTY_GROUP)
    finally:
        m.close()

    # After close (LeaveGroup): EMPTY, and the filter follows.
    _wait_state(a, group, ConsumerGroupState.EMPTY)
    assert group in _listing(a, [ConsumerGroupState.EMPTY])
    assert group not in _listing(a, [ConsumerGroupState.STABLE])
    d = _describe(a, group)
    assert d.state == ConsumerGroupState.EMPTY and not d.members, (d.state, d.members)

    # Alter the offsets of the empty group; a new member resumes from them.
    altered = {0: 3, 1: ends[1] - 2}
    res = a.alter_consumer_group_offsets(
        [ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p, o)
                                              for p, o in altered.items()])],
        request_timeout=20)[group].result(timeout=30)
    assert all(tp.error is None for tp in res.topic_partitions), \
        [(tp.partition, tp.error) for tp in res.topic_partitions]
    off = a.list_consumer_group_offsets(
        [ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0), TopicPartition(topic, 1)])],
        request_timeout=20)[group].result(timeout=30)
    assert {tp.partition: tp.offset for tp in off.topic_partitions} == altered

    m2 = Member(_consumer(bs, group), "m2")
    try:
        m2.c.subscribe([topic])
        want = sum(ends[p] - altered[p] for p in range(2))
        _wait(_pump_all(m2), lambda: len(m2.records) >= want, 30,
              lambda: f"resumed consumer got {len(m2.records)}/{want}")
        _drain(m2, 1.0)
        _assert_exact(m2.records, {p: range(altered[p], ends[p]) for p in range(2)},
                      "after alter")
        expect_kafka_error(a.delete_consumer_groups([group], request_timeout=20)[group],
                           KafkaError.NON_EMPTY_GROUP)
    finally:
        m2.close()

    _wait_state(a, group, ConsumerGroupState.EMPTY)
    a.delete_consumer_groups([group], request_timeout=20)[group].result(timeout=30)
    assert group not in _listing(a), "deleted group still listed"
    assert _committed(bs, group, topic, range(2)) == {0: OFFSET_INVALID, 1: OFFSET_INVALID}
    # Describing a group that does not exist: Kafka answers state Dead (DescribeGroups) or
    # GROUP_ID_NOT_FOUND; never members.
    try:
        d = _describe(a, group)
        assert d.state in (ConsumerGroupState.DEAD, ConsumerGroupState.UNKNOWN) \
            and not d.members, (d.state, d.members)
    except KafkaException as e:
        assert e.args[0].code() == KafkaError.GROUP_ID_NOT_FOUND, e

    expect_kafka_error(a.delete_consumer_groups([group], request_timeout=20)[group],
                       KafkaError.GROUP_ID_NOT_FOUND)
    unknown = _name("g-never")
    expect_kafka_error(a.delete_consumer_groups([unknown], request_timeout=20)[unknown],
                       KafkaError.GROUP_ID_NOT_FOUND)


# ---------------------------------------------------------------- OffsetDelete
@pytest.mark.timeout(90)
def test_offset_delete_refused_for_subscribed_topic(playground):
    from kafka.admin import KafkaAdminClient
    from kafka import TopicPartition as KTP
    import kafka.errors as KErr

    bs = playground.bootstrap
    topic_a, topic_b, group = _name("grp-od-a"), _name("grp-od-b"), _name("g-od")
    create_topic(bs, topic_a, partitions=2)
    create_topic(bs, topic_b, partitions=1)
    # offsets for both topics, committed while the group has no members
    simple = Consumer({"bootstrap.servers": bs, "group.id": group, "enable.auto.commit": False})
    try:
        _commit(simple, topic_a, {0: 4, 1: 5})
        _commit(simple, topic_b, {0: 6})
    finally:
        simple.close()

    ka = KafkaAdminClient(bootstrap_servers=bs)
    m = Member(_consumer(bs, group), "m")
    try:
        m.c.subscribe([topic_a])
        _wait(_pump_all(m), lambda: m.parts() == {0, 1}, 30,
              lambda: f"assignment {sorted(m.parts())}")
        res = ka.delete_group_offsets(group, [KTP(topic_a, 0), KTP(topic_b, 0)])
        assert res[KTP(topic_a, 0)] is KErr.GroupSubscribedToTopicError, res
        assert res[KTP(topic_b, 0)] is KErr.NoError, res
        assert _committed(bs, group, topic_a, [0, 1]) == {0: 4, 1: 5}
        assert _committed(bs, group, topic_b, [0]) == {0: OFFSET_INVALID}
        m.close()
        res = ka.delete_group_offsets(group, [KTP(topic_a, 0)])
        assert res == {KTP(topic_a, 0): KErr.NoError}, res
        assert _committed(bs, group, topic_a, [0, 1]) == {0: OFFSET_INVALID, 1: 5}
        with pytest.raises(KErr.GroupIdNotFoundError):
            ka.delete_group_offsets(_name("g-none"), [KTP(topic_a, 0)])
    finally:
        m.close()
        ka.close()


# ---------------------------------------------------------------- 7. restarts (cluster)
@pytest.mark.timeout(150)
def test_cluster_group_survives_agent_and_metadata_restart(cluster):
    bs = cluster.bootstrap
    topic, group = _name("grp-restart"), _name("g-restart")
    create_topic(bs, topic, partitions=3)
    a = admin(bs)
    ends = {p: 0 for p in range(3)}
    # A long session so that the member may outlive both restarts, as it does in Kafka when the
    # coordinator moves (members are reloaded with the group).
    m = Member(_consumer(bs, group, **{"session.timeout.ms": 30000,
                                       "heartbeat.interval.ms": 1000}), "m")

    def produce_and_consume(tag: str, n: int) -> None:
        more = _produce(bs, topic, make_records(n, tag))
        want = {}
        for p, offs in more.items():
            assert offs == list(range(ends[p], ends[p] + len(offs))), \
                f"{tag}: partition {p} offsets {offs[:3]}.. do not continue from {ends[p]}"
            want[p] = range(ends[p], ends[p] + len(offs))
        mark = len(m.records)
        _wait(_pump_all(m), lambda: len(m.records) - mark >= n, 40,
              lambda: f"{tag}: consumed {len(m.records) - mark}/{n}, "
                      f"assignment {sorted(m.parts())}, errors {m.errors[-3:]}")
        _drain(m, 0.5)
        _assert_exact(m.records[mark:], want, tag)
        for p, r in want.items():
            ends[p] = r.stop
        _commit(m.c, topic, ends)

    def committed_via_admin() -> dict[int, int]:
        off = a.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)],
                                            request_timeout=20)[group].result(timeout=30)
        return {tp.partition: tp.offset for tp in off.topic_partitions if tp.topic == topic}

    def committed_eventually() -> dict[int, int]:
        """OffsetFetch through the admin client, retried while the restarted process comes
        back (the consumer keeps polling meanwhile)."""
        got: dict = {}

        def fetch_ok():
            try:
                got["offsets"] = committed_via_admin()
                return True
            except KafkaException as e:
                got["error"] = e
                return False
        _wait(lambda: m.pump(0.2), fetch_ok, 30, lambda: f"OffsetFetch after restart: {got}")
        return got["offsets"]

    try:
        m.c.subscribe([topic])
        produce_and_consume("before", 300)
        member_id = m.c.memberid()
        assert committed_via_admin() == ends

        cluster.agents[0].restart()
        assert committed_eventually() == ends, "committed offsets changed across agent restart"
        assert _committed(bs, group, topic, range(3)) == ends
        produce_and_consume("after-agent-restart", 150)
        assert committed_via_admin() == ends

        rc = cluster.metadata.stop()
        assert rc == 0, f"metadata exit code after SIGTERM: {rc}"
        cluster.metadata.start()
        assert cluster.agents[0].process.running(), "agent exited when metadata restarted"
        assert committed_eventually() == ends, \
            "committed offsets changed across metadata restart"
        produce_and_consume("after-metadata-restart", 150)
        assert committed_via_admin() == ends
        assert m.parts() == {0, 1, 2}

        # The group itself (not only its offsets) is back: Stable, with this member.
        def described():
            d = _describe(a, group)
            return d.state == ConsumerGroupState.STABLE and len(d.members) == 1
        _wait(lambda: m.pump(0.2), described, 20,
              lambda: f"group after restarts: {_describe(a, group).state}")
        d = _describe(a, group)
        assert d.members[0].member_id == m.c.memberid()
        assert m.c.memberid() == member_id, \
            "the member was dropped and had to rejoin: Kafka keeps members across a " \
            "coordinator restart (the group is reloaded with them)"
    finally:
        m.close()
    assert committed_via_admin() == ends


# ---------------------------------------------------------------- 8. bad input (raw wire)
def _s(v: str, flex: bool) -> bytes:
    return kwire.compact_string(v) if flex else kwire.kstring(v)


def _ns(v: str | None, flex: bool) -> bytes:
    if flex:
        return b"\x00" if v is None else kwire.compact_string(v)
    return kwire.kstring(v)


def _b(v: bytes, flex: bool) -> bytes:
    return (kwire.uvarint(len(v) + 1) if flex else struct.pack(">i", len(v))) + v


def _arr(items: list[bytes], flex: bool) -> bytes:
    n = len(items)
    return (kwire.uvarint(n + 1) if flex else struct.pack(">i", n)) + b"".join(items)


def subscription_v0(topics: list[str]) -> bytes:
    """ConsumerProtocolSubscription v0 (always classic encoding)."""
    return struct.pack(">h", 0) + struct.pack(">i", len(topics)) + \
        b"".join(kwire.kstring(t) for t in topics) + struct.pack(">i", -1)


def join_group(version: int, group: str, session_ms: int, member_id: str = "",
               protocol_type: str = "consumer", protocols=None, correlation_id: int = 1) -> bytes:
    flex = version >= 6
    if protocols is None:
        protocols = [("range", subscription_v0(["t"]))]
    body = _s(group, flex) + struct.pack(">i", session_ms)
    if version >= 1:
        body += struct.pack(">i", 30000)            # rebalance timeout
    body += _s(member_id, flex)
    if version >= 5:
        body += _ns(None, flex)                     # group instance id
    body += _s(protocol_type, flex)
    body += _arr([_s(n, flex) + _b(md, flex) + (b"\x00" if flex else b"")
                  for n, md in protocols], flex)
    if version >= 8:
        body += _ns(None, flex)                     # reason
    if flex:
        body += b"\x00"
    return kwire.frame(11, version, correlation_id, body, flexible_header=flex)


class _R(kwire.Reader):
    def uvarint(self) -> int:
        shift = v = 0
        while True:
            b = self.d[self.i]
            self.i += 1
            v |= (b & 0x7F) << shift
            if not b & 0x80:
                return v
            shift += 7

    def str_(self, flex: bool) -> str | None:
        if not flex:
            return self.string()
        n = self.uvarint() - 1
        if n < 0:
            return None
        s = self.d[self.i:self.i + n].decode()
        self.i += n
        return s

    def tags(self) -> None:
        for _ in range(self.uvarint()):
            self.uvarint()
            self.i += self.uvarint()


def parse_join_group(resp: bytes, version: int) -> tuple[int, int, int, str | None]:
    """(correlation_id, error_code, generation_id, member_id)."""
    flex = version >= 6
    r = _R(resp)
    corr = r.take("i")
    if flex:
        r.tags()                                    # response header v1
    if version >= 2:
        r.take("i")                                 # throttle
    err, gen = r.take("hi")
    if version >= 7:
        r.str_(flex)                                # protocol type
    r.str_(flex)                                    # protocol name
    r.str_(flex)                                    # leader
    if version >= 9:
        r.take("b")                                 # skip assignment
    member = r.str_(flex)
    return corr, err, gen, member


def _join_versions(bootstrap: str) -> tuple[int, int]:
    _, err, keys = kwire.parse_api_versions_v0(
        kwire.roundtrip(bootstrap, kwire.api_versions_v0(correlation_id=3)))
    assert err == 0
    assert 11 in keys, f"JoinGroup (11) not advertised in ApiVersions: {sorted(keys)}"
    return keys[11]


def _pick(lo_hi: tuple[int, int], kind: str) -> int:
    lo, hi = lo_hi
    if kind == "classic":
        v = min(5, hi)
        if v < lo or v >= 6:
            pytest.skip(f"no non-flexible JoinGroup version in {lo}-{hi}")
        return v
    if hi < 6:
        pytest.fail(f"JoinGroup {lo}-{hi}: Kafka 4.x clients need the flexible versions (6+)")
    return hi


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", ["classic", "flexible"])
def test_join_group_invalid_group_id_and_session_timeout(playground, kind):
    bs = playground.bootstrap
    v = _pick(_join_versions(bs), kind)

    def join(group, session_ms, corr):
        corr_got, err, _, _ = parse_join_group(
            kwire.roundtrip(bs, join_group(v, group, session_ms, correlation_id=corr)), v)
        assert corr_got == corr
        return err

    assert join("", 10000, 11) == INVALID_GROUP_ID, f"v{v}: empty group id"
    g = _name("g-badjoin")
    assert join(g, 1000, 12) == INVALID_SESSION_TIMEOUT, f"v{v}: session timeout 1000 ms"
    assert join(g, SESSION_MS - 1, 13) == INVALID_SESSION_TIMEOUT, f"v{v}: 5999 ms"
    assert join(g, 1_800_001, 14) == INVALID_SESSION_TIMEOUT, \
        f"v{v}: above group.max.session.timeout.ms (1800000)"
    # none of these created a group
    listed = _listing(admin(bs))
    assert "" not in listed and g not in listed, sorted(listed)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", ["classic", "flexible"])
def test_join_group_member_id_required_and_protocol_checks(playground, kind):
    bs = playground.bootstrap
    v = _pick(_join_versions(bs), kind)
    g = _name("g-join")
    # KIP-394 (v4+): the first join without a member id gets MEMBER_ID_REQUIRED and the id
    # to use. 6000 ms, the minimum, is a legal session timeout.
    corr, err, _, member = parse_join_group(
        kwire.roundtrip(bs, join_group(v, g, SESSION_MS, correlation_id=21)), v)
    assert (corr, err) == (21, MEMBER_ID_REQUIRED), f"v{v}: error {err}"
    assert member, "MEMBER_ID_REQUIRED must carry the assigned member id"
    # No protocols at all, or an empty protocol type: INCONSISTENT_GROUP_PROTOCOL.
    g2 = _name("g-noproto")
    _, err, _, _ = parse_join_group(
        kwire.roundtrip(bs, join_group(v, g2, SESSION_MS, protocols=[], correlation_id=22)), v)
    assert err == INCONSISTENT_GROUP_PROTOCOL, f"v{v}: empty protocol list: error {err}"
    _, err, _, _ = parse_join_group(
        kwire.roundtrip(bs, join_group(v, g2, SESSION_MS, protocol_type="",
                                       correlation_id=23)), v)
    assert err == INCONSISTENT_GROUP_PROTOCOL, f"v{v}: empty protocol type: error {err}"


@pytest.mark.timeout(60)
def test_librdkafka_session_timeout_below_minimum_is_reported(playground):
    bs = playground.bootstrap
    topic, group = _name("grp-short"), _name("g-short")
    create_topic(bs, topic, partitions=1)
    c = _consumer(bs, group, **{"session.timeout.ms": 1000, "heartbeat.interval.ms": 300})
    errors = []
    try:
        c.subscribe([topic])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any(
                e.code() == KafkaError.INVALID_SESSION_TIMEOUT for e in errors):
            try:
                m = c.poll(0.2)
            except KafkaException as e:
                errors.append(e.args[0])
                continue
            if m is not None and m.error():
                errors.append(m.error())
            assert not c.assignment(), "a member with a 1000 ms session was assigned partitions"
        assert any(e.code() == KafkaError.INVALID_SESSION_TIMEOUT for e in errors), \
            f"no INVALID_SESSION_TIMEOUT error event; got {errors[:5]}"
    finally:
        c.close()


# ---------------------------------------------------------------- OffsetCommit membership
def offset_commit_v5(group: str, generation: int, member: str, topic: str, partition: int,
                     offset: int, correlation_id: int) -> bytes:
    body = kwire.kstring(group) + struct.pack(">i", generation) + kwire.kstring(member)
    body += struct.pack(">i", 1) + kwire.kstring(topic)
    body += struct.pack(">i", 1) + struct.pack(">iq", partition, offset) + kwire.kstring(None)
    return kwire.frame(8, 5, correlation_id, body)


def parse_offset_commit_v5(resp: bytes) -> tuple[int, list[tuple[str, int, int]]]:
    r = kwire.Reader(resp)
    corr, _throttle = r.take("ii")
    out = []
    for _ in range(r.take("i")):
        name = r.string()
        for _ in range(r.take("i")):
            part, err = r.take("ih")
            out.append((name, part, err))
    return corr, out


@pytest.mark.timeout(60)
def test_offset_commit_checks_membership(playground):
    bs = playground.bootstrap
    topic, group = _name("grp-oc"), _name("g-oc")
    create_topic(bs, topic, partitions=1)

    def commit(gen, member, offset, corr):
        c, parts = parse_offset_commit_v5(kwire.roundtrip(
            bs, offset_commit_v5(group, gen, member, topic, 0, offset, corr)))
        assert c == corr
        assert len(parts) == 1 and parts[0][:2] == (topic, 0), parts
        return parts[0][2]

    m = Member(_consumer(bs, group), "m")
    try:
        m.c.subscribe([topic])
        _wait(_pump_all(m), lambda: m.parts() == {0}, 30, lambda: f"assignment {m.parts()}")
        member_id = m.c.memberid()
        assert member_id
        assert commit(-1, "", 3, 31) == UNKNOWN_MEMBER_ID, "simple commit into a live group"
        assert commit(1, "not-a-member", 3, 32) == UNKNOWN_MEMBER_ID, "unknown member id"
        assert commit(99999, member_id, 3, 33) == ILLEGAL_GENERATION, "wrong generation"
        assert _committed(bs, group, topic, [0]) == {0: OFFSET_INVALID}, \
            "a refused commit changed the committed offset"
        _commit(m.c, topic, {0: 5})              # the member's own commit is accepted
        assert _committed(bs, group, topic, [0]) == {0: 5}
    finally:
        m.close()
    _wait_state(admin(bs), group, ConsumerGroupState.EMPTY)
    assert commit(-1, "", 9, 34) == NONE, "simple commit into an empty group"
    assert _committed(bs, group, topic, [0]) == {0: 9}


# ---------------------------------------------------------------- Heartbeat/SyncGroup/LeaveGroup
def heartbeat_v3(group: str, generation: int, member: str, correlation_id: int) -> bytes:
    body = kwire.kstring(group) + struct.pack(">i", generation) + kwire.kstring(member) \
        + kwire.kstring(None)
    return kwire.frame(12, 3, correlation_id, body)


def sync_group_v3(group: str, generation: int, member: str, correlation_id: int) -> bytes:
    body = kwire.kstring(group) + struct.pack(">i", generation) + kwire.kstring(member) \
        + kwire.kstring(None) + struct.pack(">i", 0)       # no assignments
    return kwire.frame(14, 3, correlation_id, body)


def leave_group_v3(group: str, members: list[str], correlation_id: int) -> bytes:
    body = kwire.kstring(group) + struct.pack(">i", len(members)) + \
        b"".join(kwire.kstring(m) + kwire.kstring(None) for m in members)
    return kwire.frame(13, 3, correlation_id, body)


def _error_after_throttle(resp: bytes, correlation_id: int) -> int:
    """Heartbeat v1+ and SyncGroup v1+ responses: correlation id, throttle, error code."""
    corr, _throttle, err = struct.unpack_from(">iih", resp)
    assert corr == correlation_id
    return err


def parse_leave_group_v3(resp: bytes) -> tuple[int, int, list[tuple[str, int]]]:
    r = kwire.Reader(resp)
    corr, _throttle, err = r.take("iih")
    members = []
    for _ in range(r.take("i")):
        mid = r.string()
        r.string()                                           # group instance id
        members.append((mid, r.take("h")))
    return corr, err, members


@pytest.mark.timeout(60)
def test_heartbeat_sync_leave_check_member_and_generation(playground):
    """Kafka 4.x answers for requests that name a wrong group, member or generation; none of
    them disturbs the real member."""
    bs = playground.bootstrap
    _, err, keys = kwire.parse_api_versions_v0(
        kwire.roundtrip(bs, kwire.api_versions_v0(correlation_id=5)))
    for key, name in ((12, "Heartbeat"), (13, "LeaveGroup"), (14, "SyncGroup")):
        assert key in keys and keys[key][0] <= 3 <= keys[key][1], \
            f"{name} v3 not served: {keys.get(key)}"
    topic, group = _name("grp-hb"), _name("g-hb")
    create_topic(bs, topic, partitions=2)
    m = Member(_consumer(bs, group), "m")
    try:
        m.c.subscribe([topic])
        _wait(_pump_all(m), lambda: m.parts() == {0, 1}, 30, lambda: f"assignment {m.parts()}")
        member_id = m.c.memberid()

        def hb(g, gen, mid, corr):
            return _error_after_throttle(kwire.roundtrip(bs, heartbeat_v3(g, gen, mid, corr)),
                                         corr)

        def sync(gen, mid, corr):
            return _error_after_throttle(kwire.roundtrip(bs, sync_group_v3(group, gen, mid, corr)),
                                         corr)

        assert hb(_name("g-nope"), 1, "x", 41) == UNKNOWN_MEMBER_ID, "heartbeat, unknown group"
        assert hb(group, 1, "not-a-member", 42) == UNKNOWN_MEMBER_ID, "heartbeat, unknown member"
        assert hb(group, 99999, member_id, 43) == ILLEGAL_GENERATION, "heartbeat, wrong generation"
        assert sync(1, "not-a-member", 44) == UNKNOWN_MEMBER_ID, "sync, unknown member"
        assert sync(99999, member_id, 45) == ILLEGAL_GENERATION, "sync, wrong generation"
        corr, err, members = parse_leave_group_v3(
            kwire.roundtrip(bs, leave_group_v3(group, ["not-a-member"], 46)))
        assert (corr, err) == (46, NONE), f"leave of an unknown member: top-level error {err}"
        assert members == [("not-a-member", UNKNOWN_MEMBER_ID)], members

        # The real member is untouched: same id, same partitions, group still Stable with it.
        _drain(m, 2 * HEARTBEAT_MS / 1000 + 0.5)
        assert m.c.memberid() == member_id and m.parts() == {0, 1}
        d = _describe(admin(bs), group)
        assert d.state == ConsumerGroupState.STABLE, d.state
        assert [x.member_id for x in d.members] == [member_id]
    finally:
        m.close()
