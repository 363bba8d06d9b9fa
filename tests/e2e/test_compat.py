"""Wire details stock clients rely on (issue 10): topic auto-creation on and off, topic ids
(Fetch by id, a re-created topic gets a new id), and positions kept across agent restarts."""

import re
import time

import pytest

from confluent_kafka import Consumer, KafkaError, TopicCollection, TopicPartition

from conftest import http_get
from kafka_util import admin, create_topic, make_records, produce_all, producer


def _auto_create(playground_factory, enabled: bool, partitions: int = 3):
    return playground_factory(flags=False, env={
        "FLOE_AUTO_CREATE_TOPICS_ENABLE": "true" if enabled else "false",
        "FLOE_NUM_PARTITIONS": str(partitions),
    }).start()


def test_producer_auto_creates_a_new_topic_with_num_partitions(playground_factory):
    pg = _auto_create(playground_factory, True, partitions=3)
    produced = produce_all(pg.bootstrap, "auto-new", make_records(30, "auto"))
    assert sum(len(v) for v in produced.values()) == 30
    md = admin(pg.bootstrap).list_topics(topic="auto-new", timeout=10)
    assert md.topics["auto-new"].error is None
    assert len(md.topics["auto-new"].partitions) == 3, "num.partitions applies"


def test_no_topic_is_created_when_auto_creation_is_off(playground_factory):
    pg = _auto_create(playground_factory, False)
    errors = []
    p = producer(pg.bootstrap, **{"message.timeout.ms": 5000,
                                  "topic.metadata.propagation.max.ms": 1000})
    p.produce("never-created", value=b"x", on_delivery=lambda err, msg: errors.append(err))
    p.flush(20)
    assert len(errors) == 1 and errors[0] is not None, "delivery must fail"
    assert errors[0].code() in (KafkaError._UNKNOWN_TOPIC, KafkaError.UNKNOWN_TOPIC_OR_PART,
                                KafkaError._MSG_TIMED_OUT), errors[0]
    md = admin(pg.bootstrap).list_topics(timeout=10)
    assert "never-created" not in md.topics


def _topic_id(bootstrap: str, topic: str):
    a = admin(bootstrap)  # keep the handle alive until the future resolves
    fs = a.describe_topics(TopicCollection([topic]), request_timeout=10)
    return fs[topic].result(timeout=20).topic_id


def _fetch_versions(admin_url: str) -> set[int]:
    status, body = http_get(f"{admin_url}/metrics")
    assert status == 200
    return {int(v) for v in re.findall(r'floe_kafka_requests_total\{api="Fetch",version="(\d+)"', body)}


def test_consumers_fetch_by_topic_id_and_a_recreated_topic_is_new(playground):
    create_topic(playground.bootstrap, "reborn", partitions=1)
    first_id = _topic_id(playground.bootstrap, "reborn")
    produce_all(playground.bootstrap, "reborn", make_records(20, "old"), partition=0)

    c = Consumer({"bootstrap.servers": playground.bootstrap, "group.id": "compat",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    try:
        c.assign([TopicPartition("reborn", 0, 0)])
        got = []
        deadline = time.monotonic() + 30
        while len(got) < 20 and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None and not m.error():
                got.append(m.offset())
        assert got == list(range(20))
        # librdkafka 2.16 picks Fetch v13+ (topic ids instead of names) when advertised.
        assert max(_fetch_versions(playground.admin_url)) >= 13

        a = admin(playground.bootstrap)
        a.delete_topics(["reborn"], request_timeout=10)["reborn"].result(timeout=20)
        create_topic(playground.bootstrap, "reborn", partitions=1)
        second_id = _topic_id(playground.bootstrap, "reborn")
        assert second_id != first_id, "a re-created topic gets a new topic id"
        produce_all(playground.bootstrap, "reborn", make_records(5, "new"), partition=0)

        # The consumer's position (20) is beyond the new topic's end: like Kafka, it is reset
        # (auto.offset.reset=earliest) and reads the new topic from 0, never old records.
        new = []
        deadline = time.monotonic() + 60
        while len(new) < 5 and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None and not m.error():
                new.append((m.offset(), m.value()))
        assert [o for o, _ in new] == list(range(5)), new
        assert all(b"-new-" in v for _, v in new)
    finally:
        c.close()


def test_consumer_keeps_its_position_across_agent_restarts(playground):
    create_topic(playground.bootstrap, "steady", partitions=1)
    produce_all(playground.bootstrap, "steady", make_records(10, "a"), partition=0)
    c = Consumer({"bootstrap.servers": playground.bootstrap, "group.id": "steady",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest",
                  "reconnect.backoff.max.ms": 500})
    try:
        c.assign([TopicPartition("steady", 0, 0)])
        seen = []
        deadline = time.monotonic() + 30
        while len(seen) < 10 and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None and not m.error():
                seen.append(m.offset())
        playground.restart()
        p = producer(playground.bootstrap)
        for k, v in make_records(10, "b"):
            p.produce("steady", key=k, value=v, partition=0)
        assert p.flush(30) == 0
        deadline = time.monotonic() + 60
        while len(seen) < 20 and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None and not m.error():
                seen.append(m.offset())
        assert seen == list(range(20)), "no gap, no re-read, no reset across the restart"
    finally:
        c.close()


def test_broker_configs_and_cluster_identity(playground):
    from confluent_kafka.admin import ConfigResource, ResourceType

    a = admin(playground.bootstrap)
    res = ConfigResource(ResourceType.BROKER, "1")
    configs = a.describe_configs([res], request_timeout=10)[res].result(timeout=20)
    want = {"auto.create.topics.enable": "false", "num.partitions": "1",
            "default.replication.factor": "1", "message.max.bytes": "1048588",
            "log.retention.ms": "604800000"}
    for name, value in want.items():
        assert name in configs, f"broker config {name} missing"
        assert configs[name].value == value, (name, configs[name].value)
        assert configs[name].is_read_only
    # A stable cluster id and controller, the same across a restart.
    first = a.describe_cluster(request_timeout=10).result(timeout=20)
    assert first.cluster_id and first.controller.id == 1
    playground.restart()
    a2 = admin(playground.bootstrap)  # keep the handle alive until the future resolves
    second = a2.describe_cluster(request_timeout=10).result(timeout=20)
    assert second.cluster_id == first.cluster_id


def test_replication_factor_three_is_accepted(playground):
    from confluent_kafka.admin import NewTopic

    a = admin(playground.bootstrap)
    a.create_topics([NewTopic("rf3", 2, 3)], request_timeout=10)["rf3"].result(timeout=20)
    md = a.list_topics(topic="rf3", timeout=10)
    assert len(md.topics["rf3"].partitions) == 2


def _kv(*values: bytes) -> list[tuple[bytes, bytes]]:
    return [(b"k%d" % i, v) for i, v in enumerate(values)]


def _pattern_consumer(bootstrap: str, group: str, protocol: str) -> Consumer:
    conf = {"bootstrap.servers": bootstrap, "group.id": group,
            "auto.offset.reset": "earliest", "enable.auto.commit": False,
            # New topics are noticed at the next metadata refresh.
            "topic.metadata.refresh.interval.ms": 1000}
    if protocol == "consumer":
        conf["group.protocol"] = "consumer"
    else:
        conf["session.timeout.ms"] = 6000
    return Consumer(conf)


def _read_values(c: Consumer, want: int, timeout: float = 40) -> dict[str, list[bytes]]:
    """Polls until `want` records arrived, commits them, and returns their values by topic.
    Committing matters: the rebalance that follows a new matching topic re-assigns every
    partition, and without a committed offset a partition restarts from the beginning."""
    got: dict[str, list[bytes]] = {}
    deadline = time.monotonic() + timeout
    while sum(len(v) for v in got.values()) < want and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            got.setdefault(m.topic(), []).append(m.value())
    if got:
        c.commit(asynchronous=False)
    return got


@pytest.mark.parametrize("protocol", ["classic", "consumer"])
def test_pattern_subscriber_picks_up_an_auto_created_topic(playground_factory, protocol):
    pg = _auto_create(playground_factory, True, partitions=2)
    produce_all(pg.bootstrap, f"pat-{protocol}-first", _kv(b"a1", b"a2"))
    other = f"other-{protocol}"
    produce_all(pg.bootstrap, other, _kv(b"not-for-the-pattern"))
    c = _pattern_consumer(pg.bootstrap, f"pattern-{protocol}", protocol)
    try:
        c.subscribe([f"^pat-{protocol}-.*"])
        first = _read_values(c, 2)
        assert {t: sorted(v) for t, v in first.items()} == \
            {f"pat-{protocol}-first": [b"a1", b"a2"]}, first
        # A producer creates a new matching topic by writing to it (auto-creation on).
        produce_all(pg.bootstrap, f"pat-{protocol}-later", _kv(b"b1", b"b2", b"b3"))
        later = _read_values(c, 3)
        assert sorted(later.get(f"pat-{protocol}-later", [])) == [b"b1", b"b2", b"b3"], later
        assert other not in later and other not in first, "the pattern must not match"
        # The consumer did not create anything itself.
        names = set(admin(pg.bootstrap).list_topics(timeout=10).topics)
        assert {f"pat-{protocol}-first", f"pat-{protocol}-later", other} <= names
    finally:
        c.close()


def test_pattern_subscriber_with_auto_creation_off_sees_created_topics(playground_factory):
    pg = _auto_create(playground_factory, False)
    create_topic(pg.bootstrap, "patoff-a", partitions=1)
    produce_all(pg.bootstrap, "patoff-a", _kv(b"x1"))
    c = _pattern_consumer(pg.bootstrap, "pattern-off", "classic")
    try:
        c.subscribe(["^patoff-.*"])
        assert _read_values(c, 1) == {"patoff-a": [b"x1"]}
        create_topic(pg.bootstrap, "patoff-b", partitions=2)
        produce_all(pg.bootstrap, "patoff-b", _kv(b"y1", b"y2"))
        got = _read_values(c, 2)
        assert sorted(got.get("patoff-b", [])) == [b"y1", b"y2"], got
        names = set(admin(pg.bootstrap).list_topics(timeout=10).topics)
        assert names == {"patoff-a", "patoff-b"}, "nothing else was created"
    finally:
        c.close()
