"""Record details survive the round trip: headers, null and empty keys/values, timestamps,
big records, fetch positions."""

import time

from confluent_kafka import (OFFSET_BEGINNING, TIMESTAMP_CREATE_TIME, Consumer, KafkaError,
                             TopicPartition)

from kafka_util import consume_all, create_topic, producer


def _read(bootstrap, topic, partition, start, n, timeout=60, **extra):
    conf = {"bootstrap.servers": bootstrap, "group.id": "e2e-records",
            "enable.auto.commit": False, "auto.offset.reset": "earliest"}
    conf.update(extra)
    c = Consumer(conf)
    try:
        c.assign([TopicPartition(topic, partition, start)])
        out, errors = [], []
        deadline = time.monotonic() + timeout
        while len(out) < n and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                errors.append(m.error())
                continue
            out.append(m)
        assert len(out) >= n, f"read {len(out)} of {n}; errors {errors[:3]}"
        return out
    finally:
        c.close()


def test_headers_nulls_and_timestamps(playground):
    bs = playground.bootstrap
    create_topic(bs, "details", partitions=1)
    p = producer(bs)
    rows = [
        (b"k0", b"v0", [("h1", b"a"), ("h2", b"")], 1_600_000_000_000),
        (None, b"no key", None, 1_600_000_000_001),
        (b"tombstone", None, [("dup", b"1"), ("dup", b"2")], 1_600_000_000_002),
        (b"", b"", None, 1_600_000_000_003),
        (b"\x00\xff" * 10, bytes(range(256)), [("bin", bytes(range(256)))], 1_600_000_000_004),
    ]
    for k, v, h, ts in rows:
        p.produce("details", key=k, value=v, headers=h, timestamp=ts, partition=0)
    assert p.flush(30) == 0
    got = _read(bs, "details", 0, OFFSET_BEGINNING, len(rows))
    for m, (k, v, h, ts) in zip(got, rows):
        assert m.key() == k
        assert m.value() == v
        assert (m.headers() or []) == (h or []), (m.headers(), h)
        assert m.timestamp() == (TIMESTAMP_CREATE_TIME, ts)
    assert [m.offset() for m in got] == list(range(len(rows)))


def test_big_records_and_small_fetch_limits(playground):
    """Records larger than the consumer's fetch limits are still delivered (Kafka returns
    at least one batch), and a ~900 KB record fits the default max.message.bytes."""
    bs = playground.bootstrap
    create_topic(bs, "big", partitions=1)
    p = producer(bs, **{"message.max.bytes": 2_000_000, "linger.ms": 0})
    values = [bytes([i]) * 300_000 for i in range(6)] + [b"z" * 900_000]
    for v in values:
        p.produce("big", value=v, partition=0)
        p.flush(30)
    got = _read(bs, "big", 0, OFFSET_BEGINNING, len(values),
                **{"max.partition.fetch.bytes": 100_000, "fetch.max.bytes": 200_000,
                   "message.max.bytes": 200_000, "receive.message.max.bytes": 2_000_000})
    assert [m.value() for m in got] == values


def test_fetch_from_the_middle_and_out_of_range(playground):
    bs = playground.bootstrap
    create_topic(bs, "positions", partitions=1)
    p = producer(bs)
    for i in range(100):
        p.produce("positions", value=b"%d" % i, partition=0)
    assert p.flush(30) == 0
    got = _read(bs, "positions", 0, 37, 63)
    assert [(m.offset(), m.value()) for m in got] == [(i, b"%d" % i) for i in range(37, 100)]
    # Past the end: OFFSET_OUT_OF_RANGE, and auto.offset.reset=earliest starts over at 0.
    got = _read(bs, "positions", 0, 5000, 100)
    assert [m.offset() for m in got] == list(range(100))
    # With auto.offset.reset=error the client surfaces the out-of-range error.
    c = Consumer({"bootstrap.servers": bs, "group.id": "e2e-oor", "enable.auto.commit": False,
                  "auto.offset.reset": "error"})
    try:
        c.assign([TopicPartition("positions", 0, 5000)])
        deadline = time.monotonic() + 30
        err = None
        while err is None and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None:
                assert m.error() is not None, f"got a record at {m.offset()}"
                err = m.error()
        assert err is not None and err.code() == KafkaError._AUTO_OFFSET_RESET, err
    finally:
        c.close()


def test_many_partitions(playground):
    bs = playground.bootstrap
    create_topic(bs, "wide", partitions=32)
    p = producer(bs)
    for part in range(32):
        for i in range(20):
            p.produce("wide", key=b"%d" % part, value=b"%d-%d" % (part, i), partition=part)
    assert p.flush(60) == 0
    got = consume_all(bs, "wide", {part: 20 for part in range(32)})
    for part in range(32):
        assert [v for _, _, v in got[part]] == [b"%d-%d" % (part, i) for i in range(20)]
