"""ListOffsets: watermarks and timestamp lookups through confluent-kafka."""

from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, TopicPartition

from kafka_util import create_topic, produce_all, producer, watermarks

BASE_TS = 1_700_000_000_000


def test_watermarks(playground):
    create_topic(playground.bootstrap, "wm", partitions=3)
    assert watermarks(playground.bootstrap, "wm", 0) == (0, 0)
    produce_all(playground.bootstrap, "wm", [(b"k", b"v%d" % i) for i in range(123)], partition=1)
    assert watermarks(playground.bootstrap, "wm", 1) == (0, 123)
    assert watermarks(playground.bootstrap, "wm", 0) == (0, 0)
    p = producer(playground.bootstrap)
    for i in range(7):
        p.produce("wm", value=b"x", partition=1)
    assert p.flush(30) == 0
    assert watermarks(playground.bootstrap, "wm", 1) == (0, 130)


def _produce_timestamped(bootstrap, topic, stamps, linger_ms):
    p = producer(bootstrap, **{"linger.ms": linger_ms})
    errs = []
    for i, ts in enumerate(stamps):
        p.produce(topic, key=b"k", value=b"v%d" % i, partition=0, timestamp=ts,
                  on_delivery=lambda err, m: errs.append(err))
    assert p.flush(30) == 0
    assert errs and all(e is None for e in errs), errs[:3]


def _lookup(bootstrap, topic, ts):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "e2e-times",
                  "enable.auto.commit": False})
    try:
        res = c.offsets_for_times([TopicPartition(topic, 0, ts)], timeout=20)
        assert res[0].error is None, res[0].error
        return res[0].offset
    finally:
        c.close()


def test_offsets_for_times(playground):
    bs = playground.bootstrap
    create_topic(bs, "times", partitions=1)
    # Two batches of 10 (linger makes each a single batch), timestamps 1 s apart, so the
    # lookup must find a record inside a batch, not only a batch boundary.
    stamps = [BASE_TS + i * 1000 for i in range(20)]
    _produce_timestamped(bs, "times", stamps[:10], linger_ms=200)
    _produce_timestamped(bs, "times", stamps[10:], linger_ms=200)

    for target, want in [
        (BASE_TS - 5000, 0),          # before everything: the first record
        (BASE_TS, 0),                 # exact match of the first
        (BASE_TS + 5000, 5),          # exact match inside the first batch
        (BASE_TS + 5500, 6),          # between records: the next one
        (BASE_TS + 9001, 10),         # end of batch 1 -> first of batch 2
        (BASE_TS + 12000, 12),
        (BASE_TS + 19000, 19),        # exact match of the last
    ]:
        assert _lookup(bs, "times", target) == want, f"ts {target - BASE_TS:+d}"
    # After the last record: no such offset (-1, Kafka returns offset -1 / librdkafka END).
    assert _lookup(bs, "times", BASE_TS + 20000) == OFFSET_END
    # Special timestamps: -2 earliest, -1 latest.
    assert _lookup(bs, "times", OFFSET_BEGINNING) == 0
    assert _lookup(bs, "times", OFFSET_END) == 20


def test_offsets_for_times_out_of_order_timestamps(playground):
    """CreateTime need not be monotonic: the answer is the first offset with ts >= target."""
    bs = playground.bootstrap
    create_topic(bs, "times-ooo", partitions=1)
    stamps = [BASE_TS + d for d in (0, 5000, 1000, 7000, 3000, 9000)]
    _produce_timestamped(bs, "times-ooo", stamps, linger_ms=200)
    assert _lookup(bs, "times-ooo", BASE_TS + 2000) == 1   # 5000 at offset 1 is the first >=
    assert _lookup(bs, "times-ooo", BASE_TS + 6000) == 3
    assert _lookup(bs, "times-ooo", BASE_TS + 8000) == 5


def test_list_offsets_on_cluster(cluster):
    bs = cluster.bootstrap
    create_topic(bs, "times", partitions=1)
    stamps = [BASE_TS + i * 1000 for i in range(10)]
    _produce_timestamped(bs, "times", stamps, linger_ms=100)
    assert watermarks(bs, "times", 0) == (0, 10)
    assert _lookup(bs, "times", BASE_TS + 3500) == 4
    cluster.agents[0].restart()
    assert watermarks(bs, "times", 0) == (0, 10)
    assert _lookup(bs, "times", BASE_TS + 3500) == 4
