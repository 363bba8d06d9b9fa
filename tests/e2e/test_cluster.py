"""The distributed shape: `floe metadata` on PostgreSQL, `floe agent`s on S3 (moto)."""

import pytest
from confluent_kafka import Consumer, TopicPartition

from conftest import http_get
from kafka_util import (CODECS, admin, assert_same, consume_all, create_topic, make_records,
                        produce_all, producer, wait_for_topic)

N = 10_000


@pytest.mark.parametrize("codec", CODECS)
def test_codec_roundtrip_and_agent_restart(cluster, codec):
    topic = f"codec-{codec}"
    create_topic(cluster.bootstrap, topic, partitions=3)
    produced = produce_all(cluster.bootstrap, topic, make_records(N, codec), compression=codec)
    assert sum(len(v) for v in produced.values()) == N
    expected = {p: len(v) for p, v in produced.items()}
    assert_same(produced, consume_all(cluster.bootstrap, topic, expected))

    cluster.agents[0].restart()
    assert_same(produced, consume_all(cluster.bootstrap, topic, expected))


def test_metadata_restart_keeps_topics_and_offsets(cluster):
    """The metadata service restarts under a running agent: nothing is lost, and the same
    agent keeps serving (offsets continue) without being restarted itself."""
    bs = cluster.bootstrap
    create_topic(bs, "md-restart", partitions=2)
    produced = produce_all(bs, "md-restart", make_records(1000, "a"))
    rc = cluster.metadata.stop()
    assert rc == 0, f"metadata exit code after SIGTERM: {rc}"
    cluster.metadata.start()
    assert cluster.agents[0].process.running(), "agent exited when the metadata service restarted"
    expected = {p: len(v) for p, v in produced.items()}
    assert_same(produced, consume_all(bs, "md-restart", expected))

    more = make_records(100, "b")
    p = producer(bs)
    offs = []
    for k, v in more:
        p.produce("md-restart", key=k, value=v, partition=0,
                  on_delivery=lambda err, m: offs.append((err, m.offset())))
    assert p.flush(60) == 0
    assert all(err is None for err, _ in offs), offs[:3]
    n0 = expected[0]
    assert sorted(o for _, o in offs) == list(range(n0, n0 + 100))

    cluster.agents[0].restart()
    wait_for_topic(bs, "md-restart", 2)
    got = consume_all(bs, "md-restart", {0: n0 + 100, 1: expected[1]})
    assert [v for _, _, v in got[0]] == [v for _, _, v in produced[0]] + [v for _, v in more]


def test_agent_kill9_loses_nothing_acknowledged(cluster):
    create_topic(cluster.bootstrap, "crash", partitions=2)
    produced = produce_all(cluster.bootstrap, "crash", make_records(2000, "crash"))
    cluster.agents[0].process.kill()
    cluster.agents[0].start()
    expected = {p: len(v) for p, v in produced.items()}
    assert_same(produced, consume_all(cluster.bootstrap, "crash", expected))


def _topics(bootstrap):
    md = admin(bootstrap).list_topics(timeout=20)
    return {name: len(t.partitions) for name, t in md.topics.items()
            if not name.startswith("__")}


def test_two_agents_share_everything(cluster_factory):
    c = cluster_factory(2)
    a, b = c.agents
    create_topic(a.bootstrap, "from-a", partitions=3)
    create_topic(b.bootstrap, "from-b", partitions=2)
    wait_for_topic(b.bootstrap, "from-a", 3)
    wait_for_topic(a.bootstrap, "from-b", 2)
    assert _topics(a.bootstrap) == _topics(b.bootstrap) == {"from-a": 3, "from-b": 2}

    pa = produce_all(a.bootstrap, "from-a", make_records(3000, "a"), compression="lz4")
    pb = produce_all(b.bootstrap, "from-b", make_records(3000, "b"), compression="zstd")
    assert_same(pa, consume_all(b.bootstrap, "from-a", {p: len(v) for p, v in pa.items()}))
    assert_same(pb, consume_all(a.bootstrap, "from-b", {p: len(v) for p, v in pb.items()}))


def test_two_agents_interleaved_writes_to_one_partition(cluster_factory):
    """Both agents append to the same partition; offsets stay contiguous and both see all."""
    c = cluster_factory(2)
    a, b = c.agents
    create_topic(a.bootstrap, "shared", partitions=1)
    wait_for_topic(b.bootstrap, "shared", 1)
    results = []
    pa, pb = producer(a.bootstrap), producer(b.bootstrap)
    for i in range(400):
        p, tag = (pa, b"a") if i % 2 == 0 else (pb, b"b")
        p.produce("shared", key=tag, value=b"%s-%d" % (tag, i), partition=0,
                  on_delivery=lambda err, m: results.append((err, m.offset(), m.value())))
        p.poll(0)
    assert pa.flush(60) == 0 and pb.flush(60) == 0
    assert all(err is None for err, _, _ in results), [e for e, _, _ in results if e][:3]
    assert sorted(o for _, o, _ in results) == list(range(400))
    by_offset = {o: v for _, o, v in results}
    for bs in (a.bootstrap, b.bootstrap):
        got = consume_all(bs, "shared", {0: 400})[0]
        assert [(o, v) for o, _, v in got] == sorted(by_offset.items())
    # each agent's own records are in its producer's order
    for tag in (b"a", b"b"):
        seq = [int(v.split(b"-")[1]) for _, v in sorted(by_offset.items()) if v.startswith(tag)]
        assert seq == sorted(seq)


def test_agents_admin_endpoints_and_cluster_view(cluster_factory):
    c = cluster_factory(2)
    for proc in (c.metadata, *(ag.process for ag in c.agents)):
        assert http_get(proc.admin_url + "/healthz")[0] == 200
        assert http_get(proc.admin_url + "/readyz")[0] == 200
        status, body = http_get(proc.admin_url + "/metrics")
        assert status == 200 and "# TYPE" in body, proc.name
    a = admin(c.agents[0].bootstrap)
    d = a.describe_cluster(request_timeout=20).result(timeout=30)
    assert d.cluster_id, "empty cluster id"
    assert c.agents[0].port in {n.port for n in d.nodes}
    b = admin(c.agents[1].bootstrap)
    d2 = b.describe_cluster(request_timeout=20).result(timeout=30)
    assert d2.cluster_id == d.cluster_id, "agents of one cluster report different cluster ids"


def test_topic_visible_to_late_agent(cluster):
    create_topic(cluster.bootstrap, "early", partitions=4)
    produced = produce_all(cluster.bootstrap, "early", make_records(500, "early"))
    late = cluster.add_agent(zone="zone-b")
    wait_for_topic(late.bootstrap, "early", 4)
    assert_same(produced, consume_all(late.bootstrap, "early",
                                      {p: len(v) for p, v in produced.items()}))
    # a consumer that only knows the late agent can read the watermarks
    cons = Consumer({"bootstrap.servers": late.bootstrap, "group.id": "late"})
    try:
        for p, v in produced.items():
            assert cons.get_watermark_offsets(TopicPartition("early", p), timeout=20,
                                              cached=False) == (0, len(v))
    finally:
        cons.close()
