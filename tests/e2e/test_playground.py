"""Produce/consume round trips through `floe playground` with confluent-kafka (librdkafka)."""

import pytest

from conftest import http_get
from kafka_util import (CODECS, assert_same, consume_all, create_topic, make_records, produce_all,
                        producer)

N = 10_000


@pytest.mark.parametrize("codec", CODECS)
def test_codec_roundtrip_and_restart(playground, codec):
    topic = f"codec-{codec}"
    create_topic(playground.bootstrap, topic, partitions=3)
    records = make_records(N, codec)
    produced = produce_all(playground.bootstrap, topic, records, compression=codec)
    assert sum(len(v) for v in produced.values()) == N
    assert len(produced) == 3, f"keys spread over partitions {sorted(produced)}"
    expected = {p: len(v) for p, v in produced.items()}

    assert_same(produced, consume_all(playground.bootstrap, topic, expected))

    playground.restart()
    assert_same(produced, consume_all(playground.bootstrap, topic, expected))


def test_restart_keeps_all_codecs_and_appends_after(playground):
    """Several topics, several restarts; offsets continue after a restart."""
    topics = {}
    for codec in CODECS:
        t = f"multi-{codec}"
        create_topic(playground.bootstrap, t, partitions=2)
        topics[t] = produce_all(playground.bootstrap, t, make_records(500, t), compression=codec)
    playground.restart()
    playground.restart()
    for t, produced in topics.items():
        assert_same(produced, consume_all(playground.bootstrap, t,
                                          {p: len(v) for p, v in produced.items()}))
    # Append after restart: offsets continue where they stopped.
    t = "multi-none"
    more = make_records(300, "after")
    p = producer(playground.bootstrap)
    offs = []
    for k, v in more:
        p.produce(t, key=k, value=v, partition=0,
                  on_delivery=lambda err, m: offs.append((err, m.offset())))
    assert p.flush(60) == 0
    assert all(err is None for err, _ in offs), offs[:3]
    start = len(topics[t][0])
    assert sorted(o for _, o in offs) == list(range(start, start + len(more)))
    got = consume_all(playground.bootstrap, t, {0: start + len(more)})
    assert [v for _, _, v in got[0][start:]] == [v for _, v in more]


def test_kill9_loses_nothing_acknowledged(playground):
    """SIGKILL after acks: everything acknowledged is there after the restart."""
    topic = "crash"
    create_topic(playground.bootstrap, topic, partitions=2)
    produced = produce_all(playground.bootstrap, topic, make_records(2000, "crash"))
    playground.process.kill()
    playground.start()
    expected = {p: len(v) for p, v in produced.items()}
    assert_same(produced, consume_all(playground.bootstrap, topic, expected))


def test_config_from_environment_variables(playground_factory):
    """The same settings as FLOE_* environment variables instead of flags."""
    pg = playground_factory(flags=False).start()
    create_topic(pg.bootstrap, "env", partitions=1)
    produced = produce_all(pg.bootstrap, "env", make_records(100, "env"))
    assert_same(produced, consume_all(pg.bootstrap, "env", {0: 100}))
    assert pg.data_dir.exists() and any(pg.data_dir.iterdir()), "data dir not used"


def test_admin_http_endpoints(playground):
    status, _ = http_get(playground.admin_url + "/healthz")
    assert status == 200
    status, _ = http_get(playground.admin_url + "/readyz")
    assert status == 200
    create_topic(playground.bootstrap, "metrics", partitions=1)
    produce_all(playground.bootstrap, "metrics", make_records(10))
    status, body = http_get(playground.admin_url + "/metrics")
    assert status == 200
    assert "# TYPE" in body
    samples = [line for line in body.splitlines() if line and not line.startswith("#")]
    assert samples, "no metric samples"
    for line in samples:  # Prometheus text format: name{labels} value
        name_labels, _, value = line.rpartition(" ")
        assert name_labels, line
        float(value)
    status, _ = http_get(playground.admin_url + "/no-such-path")
    assert status == 404


def test_sigterm_exits_zero(playground):
    create_topic(playground.bootstrap, "term", partitions=1)
    produce_all(playground.bootstrap, "term", make_records(10))
    assert playground.stop() == 0
