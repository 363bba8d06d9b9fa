"""Transactions with stock clients (confluent-kafka / librdkafka): commit and abort markers at
real offsets, read_committed against read_uncommitted, consume-transform-produce that
survives a crash exactly once, zombie fencing, the server-side timeout of an abandoned
transaction, and a randomized checker. Tests that take `floe` run on the playground
(SQLite, local object store) and again on a cluster on PostgreSQL and an S3-compatible
server; the one that takes `cluster` (a client crashing mid-transaction) runs there only."""

import os
import random
import subprocess
import sys
import textwrap
import time

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from conftest import http_get
from kafka_util import create_topic, metric_sum


class Target:
    """Where a test runs: the Kafka address, and the admin ports of the agent (EndTxn
    outcomes) and of the metadata service (timeouts)."""

    def __init__(self, bootstrap: str, agent_admin: str, metadata_admin: str):
        self.bootstrap = bootstrap
        self.agent_admin = agent_admin
        self.metadata_admin = metadata_admin


@pytest.fixture(params=["sqlite", "postgres"])
def floe(request):
    """The playground (SQLite, local object store), then a cluster on PostgreSQL and S3."""
    if request.param == "sqlite":
        pg = request.getfixturevalue("playground")
        return Target(pg.bootstrap, pg.admin_url, pg.admin_url)
    c = request.getfixturevalue("cluster")
    return Target(c.bootstrap, c.agents[0].admin_url, c.metadata.admin_url)


def txn_producer(bootstrap, txn_id, **extra):
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": txn_id,
                  "linger.ms": 5, **extra})
    p.init_transactions(30)
    return p


def read_all(bootstrap, topic, partitions, isolation, settle=3.0, timeout=60, expect=None):
    """Every record of `topic` from offset 0 as [(partition, offset, value)], reading until
    `expect` records arrived (or, without `expect`, until `settle` s pass with nothing new)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"read-{time.monotonic_ns()}",
                  "enable.auto.commit": False, "isolation.level": isolation,
                  "enable.partition.eof": False})
    c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    out, last_new = [], time.monotonic()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = c.poll(0.2)
        if m is not None and not m.error():
            out.append((m.partition(), m.offset(), m.value()))
            last_new = time.monotonic()
        if expect is not None and len(out) >= expect:
            # Anything beyond would be a duplicate or an aborted record: look a little longer.
            if time.monotonic() - last_new > 1.0:
                break
        elif expect is None and time.monotonic() - last_new > settle:
            break
    c.close()
    return out


def test_commit_abort_commit_offsets_and_isolation(floe):
    b = floe.bootstrap
    create_topic(b, "txn-basic", partitions=1)
    p = txn_producer(b, "basic")
    for tag, commit in (("c1", True), ("a", False), ("c2", True)):
        p.begin_transaction()
        for i in range(10):
            p.produce("txn-basic", value=f"{tag}-{i}".encode(), partition=0)
        p.flush(30)
        if commit:
            p.commit_transaction(30)
        else:
            p.abort_transaction(30)

    committed = read_all(b, "txn-basic", 1, "read_committed", expect=20)
    # Records at 0..9, commit marker 10, aborted 11..20, abort marker 21, 22..31, marker 32.
    assert [(o, v) for _, o, v in committed] == \
        [(i, b"c1-%d" % i) for i in range(10)] + [(22 + i, b"c2-%d" % i) for i in range(10)]
    everything = read_all(b, "txn-basic", 1, "read_uncommitted", expect=30)
    assert [o for _, o, _ in everything] == list(range(0, 10)) + list(range(11, 21)) + \
        list(range(22, 32))
    c = Consumer({"bootstrap.servers": b, "group.id": "wm", "isolation.level": "read_committed"})
    lo, hi = c.get_watermark_offsets(TopicPartition("txn-basic", 0), timeout=10)
    c.close()
    assert (lo, hi) == (0, 33), "the markers take offsets 10, 21 and 32"
    _, body = http_get(floe.agent_admin + "/metrics")
    assert metric_sum(body, "floe_transactions_ended_total", outcome="commit") == 2
    assert metric_sum(body, "floe_transactions_ended_total", outcome="abort") == 1


def test_read_committed_waits_for_the_open_transaction(floe):
    b = floe.bootstrap
    create_topic(b, "txn-open", partitions=1)
    plain = Producer({"bootstrap.servers": b})
    plain.produce("txn-open", value=b"before", partition=0)
    plain.flush(30)
    p = txn_producer(b, "open")
    p.begin_transaction()
    for i in range(5):
        p.produce("txn-open", value=b"open-%d" % i, partition=0)
    p.flush(30)
    # Records after the open transaction's first offset are not stable either.
    plain.produce("txn-open", value=b"after", partition=0)
    plain.flush(30)

    c = Consumer({"bootstrap.servers": b, "group.id": "lso", "isolation.level": "read_committed"})
    lo, hi = c.get_watermark_offsets(TopicPartition("txn-open", 0), timeout=10)
    assert hi == 1, "read_committed's latest offset is the last stable offset"
    c.close()
    assert [v for _, _, v in read_all(b, "txn-open", 1, "read_committed", settle=3)] == \
        [b"before"]
    assert len(read_all(b, "txn-open", 1, "read_uncommitted", expect=7)) == 7

    p.commit_transaction(30)
    got = [v for _, _, v in read_all(b, "txn-open", 1, "read_committed", expect=7)]
    assert got == [b"before"] + [b"open-%d" % i for i in range(5)] + [b"after"]


def test_a_second_producer_fences_the_first(floe):
    b = floe.bootstrap
    create_topic(b, "txn-fence", partitions=1)
    old = txn_producer(b, "fenced")
    old.begin_transaction()
    old.produce("txn-fence", value=b"zombie", partition=0)
    old.flush(30)
    new = txn_producer(b, "fenced")  # aborts the zombie's open transaction
    new.begin_transaction()
    new.produce("txn-fence", value=b"new", partition=0)
    new.commit_transaction(30)
    with pytest.raises(KafkaException) as e:
        old.produce("txn-fence", value=b"zombie-2", partition=0)
        old.flush(10)
        old.commit_transaction(10)
    assert e.value.args[0].fatal() or e.value.args[0].txn_requires_abort(), e.value
    assert [v for _, _, v in read_all(b, "txn-fence", 1, "read_committed", expect=1)] == [b"new"]


ABANDON = textwrap.dedent("""
    import os, sys
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": sys.argv[1], "transactional.id": "abandoned",
                  "transaction.timeout.ms": 3000})
    p.init_transactions(30)
    p.begin_transaction()
    for i in range(5):
        p.produce(sys.argv[2], value=b"lost-%d" % i, partition=0)
    p.flush(30)
    os._exit(0)  # no abort, no close: the coordinator must time the transaction out
""")


def test_an_abandoned_transaction_is_aborted_after_its_timeout(floe):
    b = floe.bootstrap
    create_topic(b, "txn-timeout", partitions=1)
    subprocess.run([sys.executable, "-c", ABANDON, b, "txn-timeout"], check=True, timeout=60)
    plain = Producer({"bootstrap.servers": b})
    plain.produce("txn-timeout", value=b"later", partition=0)
    plain.flush(30)
    t0 = time.monotonic()
    got = read_all(b, "txn-timeout", 1, "read_committed", expect=1, timeout=30)
    waited = time.monotonic() - t0
    assert [v for _, _, v in got] == [b"later"], "the abandoned records were aborted"
    print(f"read_committed consumer moved on after {waited:.1f} s (timeout 3 s)")
    # The partition: 5 aborted records, "later", then the abort marker written at the timeout.
    assert got[0][1] == 5
    c = Consumer({"bootstrap.servers": b, "group.id": "wm", "isolation.level": "read_committed"})
    assert c.get_watermark_offsets(TopicPartition("txn-timeout", 0), timeout=10) == (0, 7)
    c.close()
    # The server's abort is counted (the metric is refreshed every 10 s).
    deadline, timed_out = time.monotonic() + 30, 0
    while time.monotonic() < deadline and timed_out == 0:
        _, body = http_get(floe.metadata_admin + "/metrics")
        timed_out = metric_sum(body, "floe_transactions_ended_total", outcome="timeout")
        time.sleep(0.5)
    assert timed_out == 1


TRANSFORM = textwrap.dedent("""
    import os, sys, time
    from confluent_kafka import Consumer, Producer, TopicPartition
    bootstrap, crash_after = sys.argv[1], int(sys.argv[2])
    # A short session: the crashed run's member leaves the group soon.
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "ctp",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest",
                  "isolation.level": "read_committed", "session.timeout.ms": 6000})
    c.subscribe(["ctp-in"])
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": "ctp-1",
                  "linger.ms": 5})
    p.init_transactions(30)
    done = 0
    idle = 0
    started = time.monotonic()
    # Until the input is drained: idle for 5 s once assigned, or 90 s at most.
    while idle < 10 and time.monotonic() - started < 90:
        batch = c.consume(10, 0.5)
        batch = [m for m in batch if not m.error()]
        if not batch:
            if c.assignment():
                idle += 1
            continue
        idle = 0
        p.begin_transaction()
        for m in batch:
            p.produce("ctp-out", key=m.key(), value=b"out-" + m.value(), partition=m.partition())
        done += 1
        if done == crash_after:
            p.flush(30)
            os._exit(3)  # mid-transaction: produced, offsets not committed
        p.send_offsets_to_transaction(c.position(c.assignment()),
                                      c.consumer_group_metadata(), 30)
        p.commit_transaction(30)
    c.close()
""")


def test_consume_transform_produce_is_exactly_once_across_a_crash(cluster):
    b = cluster.bootstrap
    create_topic(b, "ctp-in", partitions=2)
    create_topic(b, "ctp-out", partitions=2)
    n = 300
    src = Producer({"bootstrap.servers": b, "linger.ms": 5})
    for i in range(n):
        src.produce("ctp-in", key=b"k%d" % i, value=b"%05d" % i, partition=i % 2)
    src.flush(30)

    first = subprocess.run([sys.executable, "-c", TRANSFORM, b, "7"], timeout=180)
    assert first.returncode == 3, "the first run crashed mid-transaction as planned"
    second = subprocess.run([sys.executable, "-c", TRANSFORM, b, "0"], timeout=180)
    assert second.returncode == 0

    out = read_all(b, "ctp-out", 2, "read_committed", expect=n)
    values = sorted(v for _, _, v in out)
    assert values == sorted(b"out-%05d" % i for i in range(n)), \
        f"{len(values)} outputs, {len(set(values))} distinct, want {n} exactly once"
    # The group's committed offsets are the ends of the input partitions.
    c = Consumer({"bootstrap.servers": b, "group.id": "ctp"})
    committed = c.committed([TopicPartition("ctp-in", p) for p in range(2)], timeout=10)
    ends = [c.get_watermark_offsets(TopicPartition("ctp-in", p), timeout=10)[1]
            for p in range(2)]
    c.close()
    assert [tp.offset for tp in committed] == ends == [n // 2, n // 2]
    # read_uncommitted also sees the crashed run's aborted output.
    assert len(read_all(b, "ctp-out", 2, "read_uncommitted", expect=n + 10)) > n


def test_randomized_transactions_checker(floe):
    """Several transactional producers commit, abort or crash (abandon the transaction and
    come back with the same transactional id) at random for a bounded time; afterwards a
    read_committed consumer must see exactly the records of committed transactions: no
    aborted read, no duplicate, no lost committed record, each producer's records in order
    per partition."""
    b = floe.bootstrap
    create_topic(b, "txn-check", partitions=3)
    rng = random.Random(int(os.environ.get("FLOE_CHECKER_SEED", "7")))
    print("checker seed", rng.random())
    committed, aborted = [], set()
    producers = {f"chk-{i}": txn_producer(b, f"chk-{i}") for i in range(3)}
    seq = 0
    deadline = time.monotonic() + 20
    txns = {"commit": 0, "abort": 0, "crash": 0}
    while time.monotonic() < deadline:
        tid = rng.choice(sorted(producers))
        p = producers[tid]
        p.begin_transaction()
        values = []
        for _ in range(rng.randint(1, 20)):
            seq += 1
            v = f"{tid}:{seq}".encode()
            p.produce("txn-check", value=v, partition=rng.randrange(3))
            values.append(v)
        outcome = rng.choices(["commit", "abort", "crash"], [6, 3, 1])[0]
        txns[outcome] += 1
        if outcome == "commit":
            p.commit_transaction(30)
            committed.extend(values)
        elif outcome == "abort":
            p.abort_transaction(30)
            aborted.update(values)
        else:
            p.flush(30)
            aborted.update(values)
            # The crashed producer is never used again; its successor fences it.
            producers[tid] = txn_producer(b, tid)
    print("transactions", txns)
    got = read_all(b, "txn-check", 3, "read_committed", expect=len(committed), timeout=90)
    values = [v for _, _, v in got]
    assert not set(values) & aborted, "an aborted record was read"
    assert len(values) == len(set(values)), "a record was read twice"
    assert set(values) == set(committed), "a committed record is missing"
    for part in range(3):
        for tid in producers:
            mine = [int(v.split(b":")[1]) for p, _, v in got
                    if p == part and v.startswith(tid.encode() + b":")]
            assert mine == sorted(mine), f"{tid} out of order in partition {part}"


def test_offsets_in_an_open_transaction_are_unstable_until_it_commits(floe):
    """KIP-447: a read_committed consumer asks for stable offsets (require_stable) and gets
    UNSTABLE_OFFSET_COMMIT, retrying, while a transaction holds its group's offsets; once
    the transaction commits it sees them. A read_uncommitted one sees the old offsets."""
    b = floe.bootstrap
    create_topic(b, "txn-stable", partitions=1)
    group = Consumer({"bootstrap.servers": b, "group.id": "stable-g"})
    p = txn_producer(b, "stable")
    p.begin_transaction()
    p.produce("txn-stable", value=b"x", partition=0)
    p.send_offsets_to_transaction([TopicPartition("txn-stable", 0, 17)],
                                  group.consumer_group_metadata(), 30)
    p.flush(30)
    tp = [TopicPartition("txn-stable", 0)]
    loose = Consumer({"bootstrap.servers": b, "group.id": "stable-g",
                      "isolation.level": "read_uncommitted"})
    assert loose.committed(tp, timeout=10)[0].offset < 0, "nothing committed yet"
    strict = Consumer({"bootstrap.servers": b, "group.id": "stable-g",
                       "isolation.level": "read_committed"})
    with pytest.raises(KafkaException):
        strict.committed(tp, timeout=3)
    p.commit_transaction(30)
    assert strict.committed(tp, timeout=10)[0].offset == 17
    assert loose.committed(tp, timeout=10)[0].offset == 17
    for c in (group, loose, strict):
        c.close()


def test_a_zombie_consumers_offsets_are_fenced(floe):
    """KIP-447: send_offsets_to_transaction carries the consumer's group membership; offsets
    sent with the membership of a consumer that has left the group (a zombie whose partitions
    another member now owns) are refused and never reach the group, while a live member's
    offsets commit with its transaction."""
    b = floe.bootstrap
    create_topic(b, "txn-zombie", partitions=1)
    p0 = Producer({"bootstrap.servers": b})
    p0.produce("txn-zombie", value=b"in", partition=0)
    assert p0.flush(30) == 0

    def member():
        c = Consumer({"bootstrap.servers": b, "group.id": "zombie-g",
                      "auto.offset.reset": "earliest", "enable.auto.commit": False})
        c.subscribe(["txn-zombie"])
        deadline = time.monotonic() + 30
        while not c.assignment() and time.monotonic() < deadline:
            c.poll(0.2)
        assert c.assignment(), "never assigned"
        return c

    zombie = member()
    stale = zombie.consumer_group_metadata()
    zombie.close()  # leaves the group: its membership is gone
    p = txn_producer(b, "zombie-txn")
    p.begin_transaction()
    p.produce("txn-zombie", value=b"out", partition=0)
    with pytest.raises(KafkaException) as refused:
        p.send_offsets_to_transaction([TopicPartition("txn-zombie", 0, 1)], stale, 30)
    assert refused.value.args[0].code() in (KafkaError.UNKNOWN_MEMBER_ID,
                                            KafkaError.ILLEGAL_GENERATION), refused.value
    p.abort_transaction(30)
    live = member()
    tp = [TopicPartition("txn-zombie", 0)]
    assert live.committed(tp, timeout=10)[0].offset < 0, "the zombie's offsets never landed"
    p.begin_transaction()
    p.produce("txn-zombie", value=b"out", partition=0)
    p.send_offsets_to_transaction([TopicPartition("txn-zombie", 0, 1)],
                                  live.consumer_group_metadata(), 30)
    p.commit_transaction(30)
    assert live.committed(tp, timeout=10)[0].offset == 1
    live.close()
