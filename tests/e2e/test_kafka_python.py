"""kafka-python (pure Python client, its own protocol code) against the playground."""

import time

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from kafka_util import create_topic


def _consume(bootstrap, topic, partition, n, timeout=60):
    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                      auto_offset_reset="earliest", consumer_timeout_ms=1000)
    try:
        tp = TopicPartition(topic, partition)
        c.assign([tp])
        c.seek_to_beginning(tp)
        got = []
        deadline = time.monotonic() + timeout
        while len(got) < n and time.monotonic() < deadline:
            for recs in c.poll(timeout_ms=500).values():
                got.extend(recs)
        return got
    finally:
        c.close()


@pytest.mark.parametrize("codec", [None, "gzip", "snappy", "lz4", "zstd"])
def test_kafka_python_roundtrip(playground, codec):
    topic = f"kp-{codec or 'none'}"
    create_topic(playground.bootstrap, topic, partitions=2)
    p = KafkaProducer(bootstrap_servers=playground.bootstrap, acks="all",
                      compression_type=codec, linger_ms=5, enable_idempotence=False)
    futs = [p.send(topic, key=b"k%d" % (i % 3), value=b"v%d" % i, partition=1,
                   timestamp_ms=1_700_000_000_000 + i) for i in range(300)]
    p.flush(60)
    metas = [f.get(timeout=30) for f in futs]
    p.close()
    assert [m.offset for m in metas] == list(range(300))
    assert all(m.partition == 1 for m in metas)

    got = _consume(playground.bootstrap, topic, 1, 300)
    assert [r.offset for r in got] == list(range(300))
    assert [(r.key, r.value) for r in got] == [(b"k%d" % (i % 3), b"v%d" % i) for i in range(300)]
    assert [r.timestamp for r in got] == [1_700_000_000_000 + i for i in range(300)]


def test_kafka_python_api_version_autodetect_and_admin(playground):
    """kafka-python probes ApiVersions to pick its protocol; its admin client works too."""
    a = KafkaAdminClient(bootstrap_servers=playground.bootstrap)
    try:
        assert a.config["api_version"] is None or a.config["api_version"]
        a.create_topics([NewTopic("kp-admin", num_partitions=2, replication_factor=1)])
        deadline = time.monotonic() + 20
        while "kp-admin" not in a.list_topics() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "kp-admin" in a.list_topics()
    finally:
        a.close()
    p = KafkaProducer(bootstrap_servers=playground.bootstrap, acks="all",
                      enable_idempotence=False)
    assert p.config["api_version"] is not None and p.config["api_version"] >= (0, 11), \
        f"detected api_version {p.config['api_version']}"
    md = p.send("kp-admin", key=b"k", value=b"hello", partition=0).get(timeout=30)
    p.close()
    assert md.offset == 0
    got = _consume(playground.bootstrap, "kp-admin", 0, 1)
    assert [(r.offset, r.key, r.value) for r in got] == [(0, b"k", b"hello")]


def test_kafka_python_default_idempotent_producer(playground):
    """kafka-python 3 enables idempotence by default (InitProducerId, sequence numbers)."""
    create_topic(playground.bootstrap, "kp-idem", partitions=1)
    p = KafkaProducer(bootstrap_servers=playground.bootstrap, acks="all")
    metas = [p.send("kp-idem", value=b"v%d" % i, partition=0) for i in range(50)]
    p.flush(30)
    assert [m.get(timeout=30).offset for m in metas] == list(range(50))
    p.close()
    got = _consume(playground.bootstrap, "kp-idem", 0, 50)
    assert [r.value for r in got] == [b"v%d" % i for i in range(50)]


def _read(bootstrap, topic, isolation, expect, timeout=30):
    """[(offset, value)] of partition 0 from the start, until `expect` records and 1 s more."""
    c = KafkaConsumer(bootstrap_servers=bootstrap, isolation_level=isolation,
                      enable_auto_commit=False, auto_offset_reset="earliest")
    tp = TopicPartition(topic, 0)
    c.assign([tp])
    got, deadline, settle = [], time.monotonic() + timeout, None
    while time.monotonic() < deadline and (settle is None or time.monotonic() < settle):
        for recs in c.poll(timeout_ms=200).values():
            got.extend((r.offset, r.value) for r in recs)
        if settle is None and len(got) >= expect:
            settle = time.monotonic() + 1.0
    end = c.end_offsets([tp])[tp]
    c.close()
    return got, end


def test_kafka_python_transactions_with_group_offsets(playground):
    """kafka-python's own transaction code (not librdkafka's): consume-transform-produce with
    send_offsets_to_transaction, then an aborted transaction."""
    from kafka.structs import OffsetAndMetadata

    b = playground.bootstrap
    create_topic(b, "kpt-in", partitions=1)
    create_topic(b, "kpt-out", partitions=1)
    plain = KafkaProducer(bootstrap_servers=b)
    for i in range(10):
        plain.send("kpt-in", value=b"in-%d" % i, partition=0)
    plain.flush(30)
    plain.close()

    c = KafkaConsumer("kpt-in", bootstrap_servers=b, group_id="kpt", enable_auto_commit=False,
                      auto_offset_reset="earliest", isolation_level="read_committed")
    p = KafkaProducer(bootstrap_servers=b, transactional_id="kpt-1")
    p.init_transactions()
    done, deadline = 0, time.monotonic() + 60
    while done < 10 and time.monotonic() < deadline:
        batch = [r for recs in c.poll(timeout_ms=500).values() for r in recs]
        if not batch:
            continue
        p.begin_transaction()
        for r in batch:
            p.send("kpt-out", value=b"out-" + r.value, partition=0)
        last = batch[-1]
        p.send_offsets_to_transaction(
            {TopicPartition("kpt-in", 0): OffsetAndMetadata(last.offset + 1, "", -1)}, "kpt")
        p.commit_transaction()
        done += len(batch)
    assert done == 10
    # A transaction that is aborted: its record is stored, and hidden from read_committed.
    p.begin_transaction()
    p.send("kpt-out", value=b"aborted", partition=0)
    p.flush()
    p.abort_transaction()
    p.close()
    c.close()

    committed, end = _read(b, "kpt-out", "read_committed", expect=10)
    assert [v for _, v in committed] == [b"out-in-%d" % i for i in range(10)]
    everything, end_uncommitted = _read(b, "kpt-out", "read_uncommitted", expect=11)
    assert [v for _, v in everything] == [v for _, v in committed] + [b"aborted"]
    # Each transaction's marker takes an offset after its records: the aborted record sits
    # after at least one marker, and the log ends with the abort's marker.
    assert everything[-1][0] >= committed[-1][0] + 2
    assert end == end_uncommitted == everything[-1][0] + 2

    admin = KafkaAdminClient(bootstrap_servers=b)
    offsets = admin.list_group_offsets("kpt")["kpt"]
    admin.close()
    assert offsets[TopicPartition("kpt-in", 0)].offset == 10
