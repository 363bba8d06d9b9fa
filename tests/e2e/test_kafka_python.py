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
