"""Admin APIs through confluent-kafka's AdminClient."""

import time

from confluent_kafka import KafkaError
from confluent_kafka.admin import (AlterConfigOpType, ConfigEntry, ConfigResource, NewPartitions,
                                   NewTopic, ResourceType)

from kafka_util import (admin, assert_same, consume_all, create_topic, expect_kafka_error,
                        make_records, produce_all, producer, wait_for_topic)


def _describe(a, topic):
    res = ConfigResource(ResourceType.TOPIC, topic)
    fut = a.describe_configs([res], request_timeout=20)[res]
    return {k: v.value for k, v in fut.result(timeout=30).items()}


def _config_entries(a, topic):
    res = ConfigResource(ResourceType.TOPIC, topic)
    return a.describe_configs([res], request_timeout=20)[res].result(timeout=30)


def test_create_topic_with_configs_and_duplicate(playground):
    a = admin(playground.bootstrap)
    create_topic(playground.bootstrap, "cfg-create", partitions=2,
                 config={"retention.ms": "123456", "cleanup.policy": "delete"})
    cfg = _describe(a, "cfg-create")
    assert cfg["retention.ms"] == "123456"
    assert cfg["cleanup.policy"] == "delete"
    fs = a.create_topics([NewTopic("cfg-create", num_partitions=1, replication_factor=1)],
                         request_timeout=20)
    expect_kafka_error(fs["cfg-create"], KafkaError.TOPIC_ALREADY_EXISTS)
    fs = a.create_topics([NewTopic("bad-partitions", num_partitions=0, replication_factor=1)],
                         request_timeout=20)
    expect_kafka_error(fs["bad-partitions"], KafkaError.INVALID_PARTITIONS)


def test_describe_configs_defaults(playground):
    a = admin(playground.bootstrap)
    create_topic(playground.bootstrap, "cfg-defaults", partitions=1)
    entries = _config_entries(a, "cfg-defaults")
    for key in ("retention.ms", "retention.bytes", "cleanup.policy", "max.message.bytes",
                "segment.bytes", "min.insync.replicas"):
        assert key in entries, f"{key} missing from DescribeConfigs: {sorted(entries)}"
    assert entries["retention.ms"].value == "604800000"
    assert entries["cleanup.policy"].value == "delete"
    assert entries["retention.ms"].is_default
    missing = ConfigResource(ResourceType.TOPIC, "no-such-topic")
    fut = a.describe_configs([missing], request_timeout=20)[missing]
    expect_kafka_error(fut, KafkaError.UNKNOWN_TOPIC_OR_PART)


def test_alter_configs_replaces_the_set(playground):
    """Legacy AlterConfigs sets the given keys and resets every key not given."""
    a = admin(playground.bootstrap)
    create_topic(playground.bootstrap, "cfg-alter", partitions=1,
                 config={"retention.bytes": "1048576"})
    res = ConfigResource(ResourceType.TOPIC, "cfg-alter", set_config={"retention.ms": "3600000"})
    a.alter_configs([res], request_timeout=20)[res].result(timeout=30)
    cfg = _config_entries(a, "cfg-alter")
    assert cfg["retention.ms"].value == "3600000"
    assert not cfg["retention.ms"].is_default
    assert cfg["retention.bytes"].value == "-1", "AlterConfigs must reset keys it does not name"
    bad = ConfigResource(ResourceType.TOPIC, "cfg-alter", set_config={"retention.ms": "soon"})
    expect_kafka_error(a.alter_configs([bad], request_timeout=20)[bad],
                       KafkaError.INVALID_CONFIG, KafkaError.INVALID_REQUEST)
    assert _describe(a, "cfg-alter")["retention.ms"] == "3600000"


def test_incremental_alter_configs(playground):
    a = admin(playground.bootstrap)
    create_topic(playground.bootstrap, "cfg-incr", partitions=1,
                 config={"retention.bytes": "1048576"})
    res = ConfigResource(ResourceType.TOPIC, "cfg-incr", incremental_configs=[
        ConfigEntry("retention.ms", "7200000", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("max.message.bytes", "2000000",
                    incremental_operation=AlterConfigOpType.SET),
    ])
    a.incremental_alter_configs([res], request_timeout=20)[res].result(timeout=30)
    cfg = _describe(a, "cfg-incr")
    assert cfg["retention.ms"] == "7200000"
    assert cfg["max.message.bytes"] == "2000000"
    assert cfg["retention.bytes"] == "1048576", "incremental alter must keep other keys"
    res = ConfigResource(ResourceType.TOPIC, "cfg-incr", incremental_configs=[
        ConfigEntry("retention.ms", None, incremental_operation=AlterConfigOpType.DELETE),
    ])
    a.incremental_alter_configs([res], request_timeout=20)[res].result(timeout=30)
    cfg = _describe(a, "cfg-incr")
    assert cfg["retention.ms"] == "604800000"
    assert cfg["retention.bytes"] == "1048576"
    bad = ConfigResource(ResourceType.TOPIC, "cfg-incr", incremental_configs=[
        ConfigEntry("retention.ms", "-5x", incremental_operation=AlterConfigOpType.SET)])
    expect_kafka_error(a.incremental_alter_configs([bad], request_timeout=20)[bad],
                       KafkaError.INVALID_CONFIG, KafkaError.INVALID_REQUEST)
    missing = ConfigResource(ResourceType.TOPIC, "no-such-topic", incremental_configs=[
        ConfigEntry("retention.ms", "1", incremental_operation=AlterConfigOpType.SET)])
    expect_kafka_error(a.incremental_alter_configs([missing], request_timeout=20)[missing],
                       KafkaError.UNKNOWN_TOPIC_OR_PART)


def test_configs_survive_restart(playground):
    a = admin(playground.bootstrap)
    create_topic(playground.bootstrap, "cfg-restart", partitions=1)
    res = ConfigResource(ResourceType.TOPIC, "cfg-restart", incremental_configs=[
        ConfigEntry("retention.ms", "99999", incremental_operation=AlterConfigOpType.SET)])
    a.incremental_alter_configs([res], request_timeout=20)[res].result(timeout=30)
    del a
    playground.restart()
    assert _describe(admin(playground.bootstrap), "cfg-restart")["retention.ms"] == "99999"


def test_create_partitions(playground):
    bs = playground.bootstrap
    a = admin(bs)
    create_topic(bs, "grow", partitions=2)
    before = produce_all(bs, "grow", make_records(200, "before"))
    fs = a.create_partitions([NewPartitions("grow", 5)], request_timeout=20)
    fs["grow"].result(timeout=30)
    wait_for_topic(bs, "grow", 5)
    after = produce_all(bs, "grow", [(b"k", b"p4-%d" % i) for i in range(50)], partition=4)
    assert [o for o, _, _ in after[4]] == list(range(50))
    got = consume_all(bs, "grow", {p: len(v) for p, v in before.items()})
    assert_same(before, {p: got[p] for p in before})
    # shrinking is invalid
    fs = a.create_partitions([NewPartitions("grow", 3)], request_timeout=20)
    expect_kafka_error(fs["grow"], KafkaError.INVALID_PARTITIONS)
    fs = a.create_partitions([NewPartitions("no-such-topic", 3)], request_timeout=20)
    expect_kafka_error(fs["no-such-topic"], KafkaError.UNKNOWN_TOPIC_OR_PART)


def test_delete_topics(playground):
    bs = playground.bootstrap
    a = admin(bs)
    create_topic(bs, "doomed", partitions=2)
    create_topic(bs, "survivor", partitions=1)
    produce_all(bs, "doomed", make_records(100, "doomed"))
    a.delete_topics(["doomed"], operation_timeout=20, request_timeout=20)["doomed"].result(30)
    deadline = time.monotonic() + 20
    while "doomed" in a.list_topics(timeout=10).topics and time.monotonic() < deadline:
        time.sleep(0.1)
    topics = a.list_topics(timeout=10).topics
    assert "doomed" not in topics
    assert "survivor" in topics

    # Producing to it now fails with unknown topic (auto-creation is off in the fixture).
    p = producer(bs, **{"message.timeout.ms": 10000, "topic.metadata.propagation.max.ms": 1000})
    errs = []
    p.produce("doomed", value=b"x", partition=0, on_delivery=lambda err, m: errs.append(err))
    p.flush(30)
    assert len(errs) == 1 and errs[0] is not None, "produce to a deleted topic succeeded"
    assert errs[0].code() in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC,
                              KafkaError._UNKNOWN_PARTITION), errs[0]

    expect_kafka_error(a.delete_topics(["doomed"], request_timeout=20)["doomed"],
                       KafkaError.UNKNOWN_TOPIC_OR_PART)
    # the name can be reused, starting again from offset 0
    create_topic(bs, "doomed", partitions=1)
    again = produce_all(bs, "doomed", make_records(10, "again"))
    assert [o for o, _, _ in again[0]] == list(range(10))
    assert_same(again, consume_all(bs, "doomed", {0: 10}))


def test_describe_cluster(playground):
    a = admin(playground.bootstrap)
    d = a.describe_cluster(request_timeout=20).result(timeout=30)
    assert d.cluster_id
    assert len(d.nodes) == 1
    node = d.nodes[0]
    assert (node.host, node.port) == ("127.0.0.1", playground.port)
    assert d.controller is not None and d.controller.id == node.id
    md = a.list_topics(timeout=10)
    assert md.cluster_id == d.cluster_id
    assert {b.id for b in md.brokers.values()} == {node.id}
