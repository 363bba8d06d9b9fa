"""The compactor on PostgreSQL and the S3-compatible server, driven by stock clients: retention
moves the log start and deletes objects, DeleteRecords through the admin client, DeleteTopics
leaves no object behind, orphans are collected, a killed compactor's work is finished by its
restart, and of two compactors one works."""

from __future__ import annotations

import os
import time

import boto3
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition

from conftest import http_get
from kafka_util import admin, create_topic, metric_sum, watermarks


def s3_keys(cluster) -> set[str]:
    s3 = boto3.client("s3", endpoint_url=cluster.s3_endpoint)
    keys, token = set(), None
    while True:
        kw = {"Bucket": cluster.bucket, "Prefix": cluster.prefix + "/"}
        if token:
            kw["ContinuationToken"] = token
        r = s3.list_objects_v2(**kw)
        keys |= {o["Key"][len(cluster.prefix) + 1:] for o in r.get("Contents", [])}
        if not r.get("IsTruncated"):
            return keys
        token = r["NextContinuationToken"]


def until(what, check, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def produce(bootstrap, topic, values, partition=0, timestamp=None):
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for v in values:
        if timestamp is None:
            p.produce(topic, value=v, partition=partition)
        else:
            p.produce(topic, value=v, partition=partition, timestamp=timestamp)
    assert p.flush(30) == 0


def read_from_start(bootstrap, topic, n, partition=0):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"read-{topic}-{time.time()}",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    c.assign([TopicPartition(topic, partition, OFFSET_BEGINNING)])
    got = []
    deadline = time.monotonic() + 30
    while len(got) < n and time.monotonic() < deadline:
        for m in c.consume(500, 0.2):
            if not m.error():
                got.append((m.offset(), m.value()))
    c.close()
    return got


def compactor_metric(proc, name, **labels) -> float:
    status, body = http_get(proc.admin_url + "/metrics")
    assert status == 200
    return metric_sum(body, name, **labels)


def test_retention_moves_the_log_start_and_deletes_objects(cluster):
    create_topic(cluster.bootstrap, "ret", config={"retention.ms": "3600000"})
    create_topic(cluster.bootstrap, "keep")
    old = int(time.time() * 1000) - 2 * 3600 * 1000
    produce(cluster.bootstrap, "ret", [b"old-%03d" % i for i in range(100)], timestamp=old)
    produce(cluster.bootstrap, "keep", [b"keep"])
    produce(cluster.bootstrap, "ret", [b"new-%03d" % i for i in range(50)])
    before = s3_keys(cluster)
    assert watermarks(cluster.bootstrap, "ret", 0) == (0, 150)
    comp = cluster.add_compactor()
    until("retention", lambda: watermarks(cluster.bootstrap, "ret", 0) == (100, 150))
    # The objects that held only expired records go after the 1 s grace period.
    until("deletion", lambda: compactor_metric(
        comp, "floe_compactor_objects_deleted_total", reason="unreferenced") >= 1)
    after = s3_keys(cluster)
    assert after < before, (before, after)
    # Readers from the beginning start at the new log start; nothing else changed.
    got = read_from_start(cluster.bootstrap, "ret", 50)
    assert got == [(100 + i, b"new-%03d" % i) for i in range(50)]
    assert read_from_start(cluster.bootstrap, "keep", 1) == [(0, b"keep")]
    assert compactor_metric(comp, "floe_compactor_retention_moves_total") >= 1


def test_delete_records_through_the_admin_client(cluster):
    create_topic(cluster.bootstrap, "dr", partitions=2)
    produce(cluster.bootstrap, "dr", [b"v%03d" % i for i in range(100)])
    a = admin(cluster.bootstrap)
    fs = a.delete_records([TopicPartition("dr", 0, 40)], request_timeout=30)
    res = fs[TopicPartition("dr", 0, 40)].result(timeout=30)
    assert res.low_watermark == 40
    assert watermarks(cluster.bootstrap, "dr", 0) == (40, 100)
    assert read_from_start(cluster.bootstrap, "dr", 60) == [(40 + i, b"v%03d" % (40 + i))
                                                            for i in range(60)]
    # Backwards is a no-op; -1 means the high watermark; beyond it is OFFSET_OUT_OF_RANGE.
    res = a.delete_records([TopicPartition("dr", 0, 10)])[TopicPartition("dr", 0, 10)].result(30)
    assert res.low_watermark == 40
    fs = a.delete_records([TopicPartition("dr", 0, 1000)])
    try:
        fs[TopicPartition("dr", 0, 1000)].result(timeout=30)
        raise AssertionError("DeleteRecords beyond the high watermark succeeded")
    except Exception as e:  # KafkaException carrying the broker's error
        err = e.args[0]
        assert err.code() == KafkaError.OFFSET_OUT_OF_RANGE, err
    res = a.delete_records([TopicPartition("dr", 0, -1)])[TopicPartition("dr", 0, -1)].result(30)
    assert res.low_watermark == 100
    # The other partition is untouched.
    assert watermarks(cluster.bootstrap, "dr", 1) == (0, 0)
    # Produce goes on after the moved start.
    produce(cluster.bootstrap, "dr", [b"after"])
    assert watermarks(cluster.bootstrap, "dr", 0) == (100, 101)
    # The compactor deletes the object that now holds nothing readable.
    keys = s3_keys(cluster)
    comp = cluster.add_compactor()
    until("deletion", lambda: s3_keys(cluster) < keys)
    assert read_from_start(cluster.bootstrap, "dr", 1) == [(100, b"after")]
    comp.stop()


def test_deleted_topics_and_orphans_leave_nothing_behind(cluster):
    create_topic(cluster.bootstrap, "gone", partitions=3)
    create_topic(cluster.bootstrap, "stays")
    for p in range(3):
        produce(cluster.bootstrap, "gone", [b"x" * 100] * 50, partition=p)
    produce(cluster.bootstrap, "stays", [b"s%02d" % i for i in range(10)])
    stays_keys = s3_keys(cluster)
    # An orphan: uploaded as an agent would, never committed.
    s3 = boto3.client("s3", endpoint_url=cluster.s3_endpoint)
    orphan = "wal/0000/99-0-deadbeef.wal"
    s3.put_object(Bucket=cluster.bucket, Key=f"{cluster.prefix}/{orphan}", Body=b"junk")
    a = admin(cluster.bootstrap)
    a.delete_topics(["gone"])["gone"].result(timeout=30)
    comp = cluster.add_compactor()
    until("orphan deletion", lambda: orphan not in s3_keys(cluster))
    # Every object of the deleted topic alone is gone; those shared with "stays" remain
    # (objects hold several partitions), and "stays" reads back whole.
    until("deleted topic's objects", lambda: compactor_metric(
        comp, "floe_compactor_objects_deleted_total", reason="unreferenced") >= 1)
    assert read_from_start(cluster.bootstrap, "stays", 10) == [(i, b"s%02d" % i)
                                                               for i in range(10)]
    assert compactor_metric(comp, "floe_compactor_objects_deleted_total", reason="orphan") == 1
    remaining = s3_keys(cluster)
    assert remaining <= stays_keys - {orphan}
    assert remaining, "the objects of the live topic must stay"


def test_a_killed_compactor_is_finished_by_another(cluster):
    create_topic(cluster.bootstrap, "k", config={"retention.ms": "1000"})
    for i in range(5):
        produce(cluster.bootstrap, "k", [b"k%d" % i] * 20)
    time.sleep(1.2)  # every record is past retention.ms
    first = cluster.add_compactor(["--compactor-grace-ms", "3000"])
    until("retention", lambda: watermarks(cluster.bootstrap, "k", 0)[0] == 100)
    # Killed within its grace period: the unreferenced objects are still there.
    first.kill()
    assert len(s3_keys(cluster)) >= 5
    # A second compactor takes the lease once the dead one's lapses, and deletes them.
    second = cluster.add_compactor()
    until("takeover", lambda: compactor_metric(second, "floe_compactor_leader") == 1, timeout=40)
    until("deletion", lambda: not s3_keys(cluster), timeout=30)
    produce(cluster.bootstrap, "k", [b"later"])
    assert read_from_start(cluster.bootstrap, "k", 1) == [(100, b"later")]


def test_of_two_compactors_one_works(cluster):
    one, two = cluster.add_compactor(), cluster.add_compactor()
    until("a leader", lambda: compactor_metric(one, "floe_compactor_leader")
          + compactor_metric(two, "floe_compactor_leader") == 1)
    time.sleep(1)
    assert compactor_metric(one, "floe_compactor_leader") + \
        compactor_metric(two, "floe_compactor_leader") == 1
    standby = one if compactor_metric(one, "floe_compactor_leader") == 0 else two
    assert compactor_metric(standby, "floe_compactor_passes_total", outcome="standby") >= 1
    assert compactor_metric(standby, "floe_compactor_passes_total", outcome="ok") == 0
    assert os.environ.get("FLOE_TEST_S3_ENDPOINT")


def test_segments_read_back_identically_while_compaction_runs(cluster):
    """Many partitions in multi-partition WAL objects; a compactor folds them into segments
    (no delay) and deletes the WAL objects after its 1 s grace period while a confluent-kafka
    consumer reads everything from offset 0: the same records at the same offsets, and the
    WAL objects are gone."""
    parts = 8
    create_topic(cluster.bootstrap, "fold", partitions=parts)
    p = Producer({"bootstrap.servers": cluster.bootstrap, "linger.ms": 20})
    want = {q: [] for q in range(parts)}
    for rnd in range(6):
        for i in range(400):
            v = b"r%d-%04d" % (rnd, i)
            p.produce("fold", key=b"%d" % i, value=v, partition=i % parts)
        assert p.flush(30) == 0
    for i in range(6 * 400):
        rnd, j = divmod(i, 400)
        want[j % parts].append(b"r%d-%04d" % (rnd, j))
    wal_before = {k for k in s3_keys(cluster) if k.startswith("wal/")}
    assert len(wal_before) >= 6

    def read_all():
        c = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": f"fold-{time.time()}",
                      "enable.auto.commit": False, "fetch.max.bytes": 4096, "message.max.bytes": 4096,
                      "max.partition.fetch.bytes": 1024})
        c.assign([TopicPartition("fold", q, 0) for q in range(parts)])
        got = {q: [] for q in range(parts)}
        deadline = time.monotonic() + 60
        while sum(map(len, got.values())) < 2400 and time.monotonic() < deadline:
            for m in c.consume(200, 0.2):
                assert not m.error(), m.error()
                got[m.partition()].append((m.offset(), m.value()))
        c.close()
        return got

    # A slow reader (tiny fetches) that starts before compaction and ends after it.
    comp = cluster.add_compactor(["--compactor-segment-delay-ms", "0"])
    got = read_all()
    for q in range(parts):
        assert got[q] == list(enumerate(want[q])), f"partition {q} differs"
    until("segments", lambda: compactor_metric(comp, "floe_compactor_segments_total") >= parts)
    until("WAL objects deleted", lambda: not (wal_before & s3_keys(cluster)))
    assert any(k.startswith("seg/") for k in s3_keys(cluster))
    # Read again, now from segments only.
    got = read_all()
    for q in range(parts):
        assert got[q] == list(enumerate(want[q])), f"partition {q} differs after compaction"
    assert compactor_metric(comp, "floe_compactor_backlog_bytes") == 0


def test_compacted_topics_refuse_records_without_keys(cluster):
    """As Kafka: a keyless record on a `cleanup.policy=compact` topic is refused with
    INVALID_RECORD, compressed or not; keyed records and other topics are unaffected."""
    create_topic(cluster.bootstrap, "cmp", config={"cleanup.policy": "compact"})
    create_topic(cluster.bootstrap, "plain")
    for codec in ("none", "gzip", "zstd"):
        p = Producer({"bootstrap.servers": cluster.bootstrap, "compression.type": codec,
                      "linger.ms": 5, "retries": 0})
        results = []
        p.produce("cmp", key=b"k", value=b"keyed", on_delivery=lambda e, m: results.append(e))
        p.flush(30)
        p.produce("cmp", value=b"no key", on_delivery=lambda e, m: results.append(e))
        p.flush(30)
        p.produce("plain", value=b"no key", on_delivery=lambda e, m: results.append(e))
        p.flush(30)
        assert results[0] is None and results[2] is None, (codec, results)
        assert results[1] is not None and results[1].code() == KafkaError.INVALID_RECORD, \
            (codec, results[1])
    assert watermarks(cluster.bootstrap, "cmp", 0) == (0, 3)
    # DeleteRecords on a topic without `delete` in its policy: POLICY_VIOLATION, as Kafka.
    a = admin(cluster.bootstrap)  # kept alive until the future resolves
    fs = a.delete_records([TopicPartition("cmp", 0, 1)])
    try:
        fs[TopicPartition("cmp", 0, 1)].result(timeout=30)
        raise AssertionError("DeleteRecords on a compacted topic succeeded")
    except Exception as e:
        assert e.args[0].code() == KafkaError.POLICY_VIOLATION, e.args[0]
    assert watermarks(cluster.bootstrap, "cmp", 0) == (0, 3)


def test_compacted_topic_keeps_each_keys_latest_value(cluster):
    """10,000 updates over 100 keys, then tombstones for 10 of them: once the compactor has
    cleaned the topic (the first cleaning keeps the tombstones and stamps their delete
    horizon; the next one after delete.retention.ms removes them), a consumer from offset 0
    sees each live key's latest value once, at the offset it was written at, no tombstoned
    key, and far fewer records; producing and reading go on."""
    create_topic(cluster.bootstrap, "cmpt", config={
        "cleanup.policy": "compact", "delete.retention.ms": "1000"})
    p = Producer({"bootstrap.servers": cluster.bootstrap, "linger.ms": 20,
                  "compression.type": "lz4"})
    offsets = {}

    stamps = {}

    def done(err, msg):
        assert err is None, err
        offsets[msg.key()] = (msg.offset(), msg.value())
        stamps[msg.offset()] = msg.timestamp()[1]
    for i in range(10_000):
        k = b"key-%03d" % (i % 100)
        p.produce("cmpt", key=k, value=b"%s=%05d" % (k, i), on_delivery=done)
        if i % 1000 == 999:
            p.flush(30)
    for j in range(10):
        p.produce("cmpt", key=b"key-%03d" % j, value=None, on_delivery=done)
    assert p.flush(30) == 0
    p.produce("cmpt", key=b"final", value=b"last", on_delivery=done)
    assert p.flush(30) == 0
    hw = watermarks(cluster.bootstrap, "cmpt", 0)[1]
    assert hw == 10_011
    comp = cluster.add_compactor(["--compactor-segment-delay-ms", "0"])
    # 9,910 superseded values in the first cleaning, the 10 tombstones in a later one.
    until("cleaning", lambda: compactor_metric(comp, "floe_compactor_records_cleaned_total")
          >= 9_920)
    expected = sorted((off, k, v) for k, (off, v) in offsets.items() if v is not None)
    assert len(expected) == 91
    # An agent that cached the index before the cleaning serves the old (still readable)
    # entries for up to 30 s; a reader through a fresh agent of its own zone sees the
    # compacted log at once.
    fresh = cluster.add_agent(zone="zone-r")
    c = Consumer({"bootstrap.servers": fresh.bootstrap, "group.id": "cmpt-read",
                  "enable.auto.commit": False})
    c.assign([TopicPartition("cmpt", 0, OFFSET_BEGINNING)])
    got, deadline = [], time.monotonic() + 30
    while time.monotonic() < deadline and (not got or got[-1][0] < hw - 1):
        for m in c.consume(500, 0.2):
            assert not m.error(), m.error()
            got.append((m.offset(), m.key(), m.value()))
    c.close()
    assert got == expected, (len(got), got[:3])
    # ListOffsets by time on the cleaned log: the first surviving record at or after it.
    t = stamps[expected[40][0]]
    want = next(off for off, _, _ in expected if stamps[off] >= t)
    c = Consumer({"bootstrap.servers": fresh.bootstrap, "group.id": "cmpt-times"})
    found = c.offsets_for_times([TopicPartition("cmpt", 0, t)], timeout=20)[0]
    c.close()
    assert found.offset == want, (found, want)
    # Still a live topic: more writes land after the high watermark.
    p.produce("cmpt", key=b"more", value=b"v", on_delivery=done)
    assert p.flush(30) == 0
    assert offsets[b"more"][0] == hw


def test_old_tombstones_stay_for_delete_retention_after_the_first_cleaning(cluster):
    """KIP-534: a tombstone's delete.retention.ms counts from the cleaning that first kept it,
    not from its producer timestamp, so a tombstone replayed with an old timestamp is still
    there for consumers after the topic was cleaned."""
    b = cluster.bootstrap
    create_topic(b, "cmpold", config={"cleanup.policy": "compact",
                                      "delete.retention.ms": "600000"})
    offsets = {}

    def done(err, msg):
        assert err is None, err
        offsets[(msg.key(), msg.value())] = msg.offset()
    p = Producer({"bootstrap.servers": b, "linger.ms": 0})
    two_hours_ago = int(time.time() * 1000) - 7_200_000
    for v in (b"v1", b"v2"):
        p.produce("cmpold", key=b"k", value=v, partition=0, on_delivery=done,
                  timestamp=two_hours_ago)
        p.flush(30)
    p.produce("cmpold", key=b"k", value=None, partition=0, on_delivery=done,
              timestamp=two_hours_ago)
    p.flush(30)
    p.produce("cmpold", key=b"last", value=b"x", partition=0, on_delivery=done)
    assert p.flush(30) == 0
    comp = cluster.add_compactor(["--compactor-segment-delay-ms", "0"])
    until("cleaning", lambda: compactor_metric(comp, "floe_compactor_records_cleaned_total")
          >= 2)
    fresh = cluster.add_agent(zone="zone-o")
    c = Consumer({"bootstrap.servers": fresh.bootstrap, "group.id": "cmpold",
                  "enable.auto.commit": False})
    c.assign([TopicPartition("cmpold", 0, OFFSET_BEGINNING)])
    got, deadline = [], time.monotonic() + 30
    while time.monotonic() < deadline and len(got) < 2:
        for m in c.consume(10, 0.2):
            assert not m.error(), m.error()
            got.append((m.offset(), m.key(), m.value(), m.timestamp()[1]))
    c.close()
    assert got[0] == (offsets[(b"k", None)], b"k", None, two_hours_ago), got
    assert [g[:3] for g in got] == [(2, b"k", None), (3, b"last", b"x")]
    assert compactor_metric(comp, "floe_compactor_records_cleaned_total") == 2


def test_compacted_topic_drops_aborted_records_and_keeps_markers(cluster):
    """Transactions on a compacted topic, as Kafka's cleaner: aborted records go, committed
    transactional records are compacted like any others, markers stay at their offsets, and
    an open transaction's records are not touched until it ends."""
    b = cluster.bootstrap
    create_topic(b, "cmptx", config={"cleanup.policy": "compact"})
    p = Producer({"bootstrap.servers": b, "transactional.id": "cmptx", "linger.ms": 5})
    p.init_transactions(30)
    offsets = {}

    def done(err, msg):
        assert err is None, err
        offsets[msg.value()] = msg.offset()

    def txn(values, commit):
        p.begin_transaction()
        for k, v in values:
            p.produce("cmptx", key=k, value=v, partition=0, on_delivery=done)
        p.flush(30)
        (p.commit_transaction if commit else p.abort_transaction)(30)

    txn([(b"a", b"a1"), (b"b", b"b1")], True)            # 0, 1; marker 2
    txn([(b"a", b"a-aborted"), (b"c", b"c-aborted")], False)  # 3, 4; marker 5
    txn([(b"a", b"a2")], True)                            # 6; marker 7
    # An open transaction at the end: the cleaner must leave it alone.
    p.begin_transaction()
    p.produce("cmptx", key=b"b", value=b"b-open", partition=0, on_delivery=done)
    p.flush(30)
    assert offsets[b"b-open"] == 8
    comp = cluster.add_compactor(["--compactor-segment-delay-ms", "0"])
    # a1 (superseded by a2) and both aborted records: 3 records cleaned.
    until("cleaning", lambda: compactor_metric(comp, "floe_compactor_records_cleaned_total") >= 3)

    fresh = cluster.add_agent(zone="zone-t")

    def read(isolation, until_offset):
        c = Consumer({"bootstrap.servers": fresh.bootstrap, "group.id": f"r-{time.time()}",
                      "enable.auto.commit": False, "isolation.level": isolation})
        c.assign([TopicPartition("cmptx", 0, OFFSET_BEGINNING)])
        got, deadline = [], time.monotonic() + 30
        while time.monotonic() < deadline and (not got or got[-1][0] < until_offset):
            for m in c.consume(100, 0.2):
                assert not m.error(), m.error()
                got.append((m.offset(), m.value()))
        c.close()
        return got

    # read_uncommitted sees what is left: b1, a2 and the still-open transaction's record;
    # the aborted records are gone and the offsets keep their gaps.
    assert read("read_uncommitted", 8) == [(1, b"b1"), (6, b"a2"), (8, b"b-open")]
    p.commit_transaction(30)  # marker 9
    assert read("read_committed", 8) == [(1, b"b1"), (6, b"a2"), (8, b"b-open")]
    # The markers are still in the log: the high watermark counts them and a read of the
    # raw log from the last record ends at the last marker.
    assert watermarks(b, "cmptx", 0) == (0, 10)
