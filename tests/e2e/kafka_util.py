"""Helpers over confluent-kafka (librdkafka) for the end-to-end tests."""

from __future__ import annotations

import time
from collections import defaultdict

from confluent_kafka import (OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer,
                             TopicPartition)
from confluent_kafka.admin import AdminClient, NewTopic

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]


def metric_sum(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of `name` in a Prometheus text exposition whose labels include
    `labels`."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        series, _, value = line.rpartition(" ")
        if series.split("{")[0] != name:
            continue
        if all(f'{k}="{v}"' in series for k, v in labels.items()):
            total += float(value)
    return total


def admin(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 10000})


def create_topic(bootstrap: str, name: str, partitions: int = 1,
                 config: dict[str, str] | None = None) -> None:
    a = admin(bootstrap)  # keep the handle alive until the future resolves
    fs = a.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})],
        request_timeout=30)
    fs[name].result(timeout=30)
    wait_for_topic(bootstrap, name, partitions)


def wait_for_topic(bootstrap: str, name: str, partitions: int, timeout: float = 30) -> None:
    a = admin(bootstrap)
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        md = a.list_topics(topic=name, timeout=10)
        t = md.topics.get(name)
        if t is not None and t.error is None and len(t.partitions) == partitions:
            return
        last = t.error if t is not None else "absent"
        time.sleep(0.1)
    raise AssertionError(f"topic {name} not visible with {partitions} partitions: {last}")


def make_records(n: int, tag: str = "") -> list[tuple[bytes, bytes]]:
    """n keyed records; values are compressible and unique."""
    return [(f"key-{i % 101}".encode(),
             f"value-{tag}-{i:06d}-".encode() + b"abcdefgh" * 8) for i in range(n)]


def producer(bootstrap: str, **extra) -> Producer:
    conf = {"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5,
            "enable.idempotence": False, "message.timeout.ms": 60000}
    conf.update(extra)
    return Producer(conf)


def produce_all(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]],
                compression: str = "none", partition: int | None = None,
                **extra) -> dict[int, list[tuple[int, bytes, bytes]]]:
    """Produces `records` with acks=all and returns, per partition, the delivery reports
    (offset, key, value) in offset order. Asserts that every delivery succeeded and that the
    offsets of each partition are contiguous from 0 in produce order."""
    p = producer(bootstrap, **{"compression.type": compression, **extra})
    reports: list = []
    errors: list = []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(err)
        else:
            reports.append((msg.partition(), msg.offset(), msg.key(), msg.value()))

    for k, v in records:
        while True:
            try:
                if partition is None:
                    p.produce(topic, key=k, value=v, on_delivery=on_delivery)
                else:
                    p.produce(topic, key=k, value=v, partition=partition, on_delivery=on_delivery)
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)
    remaining = p.flush(120)
    assert remaining == 0, f"{remaining} messages not delivered after flush"
    assert not errors, f"{len(errors)} delivery errors, first: {errors[0]}"
    assert len(reports) == len(records)
    per: dict[int, list] = defaultdict(list)
    for part, off, k, v in reports:
        per[part].append((off, k, v))
    order = {v: i for i, (_, v) in enumerate(records)}
    for part, lst in per.items():
        offsets = [o for o, _, _ in lst]
        assert sorted(offsets) == list(range(len(lst))), \
            f"partition {part}: offsets not contiguous from 0: {sorted(offsets)[:5]}..."
        lst.sort()
        seq = [order[v] for _, _, v in lst]
        assert seq == sorted(seq), f"partition {part}: offsets do not follow produce order"
    return dict(per)


def consume_all(bootstrap: str, topic: str, expected: dict[int, int], timeout: float = 90,
                **extra) -> dict[int, list[tuple[int, bytes | None, bytes | None]]]:
    """Assigns each partition in `expected` from the beginning (no group subscription) and
    reads until it holds expected[p] records. Returns (offset, key, value) per partition."""
    conf = {"bootstrap.servers": bootstrap, "group.id": f"e2e-{topic}",
            "enable.auto.commit": False, "auto.offset.reset": "earliest",
            "enable.partition.eof": False}
    conf.update(extra)
    c = Consumer(conf)
    try:
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in expected])
        got: dict[int, list] = {p: [] for p in expected}
        deadline = time.monotonic() + timeout
        errors = []
        while time.monotonic() < deadline:
            if all(len(got[p]) >= n for p, n in expected.items()):
                break
            for m in c.consume(num_messages=1000, timeout=0.5):
                if m.error():
                    if m.error().code() != KafkaError._PARTITION_EOF:
                        errors.append(m.error())
                    continue
                assert m.topic() == topic
                got[m.partition()].append((m.offset(), m.key(), m.value()))
        summary = {p: len(v) for p, v in got.items()}
        assert all(len(got[p]) >= n for p, n in expected.items()), \
            f"consumed {summary}, expected {expected}; errors: {errors[:3]}"
        return got
    finally:
        c.close()


def assert_same(produced: dict[int, list], consumed: dict[int, list]) -> None:
    """Consumed records equal the produced ones: same partitions, contiguous offsets from 0,
    same keys and values in the same order."""
    assert sorted(produced) == sorted(consumed), (sorted(produced), sorted(consumed))
    for p, want in produced.items():
        got = consumed[p]
        offsets = [o for o, _, _ in got]
        assert offsets == list(range(len(want))), \
            f"partition {p}: offsets {offsets[:5]}... (n={len(offsets)}), want 0..{len(want) - 1}"
        for (o, k, v), (wo, wk, wv) in zip(got, want):
            assert (o, k, v) == (wo, wk, wv), f"partition {p} offset {o}: {(k, v)} != {(wk, wv)}"


def watermarks(bootstrap: str, topic: str, partition: int) -> tuple[int, int]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "e2e-watermarks",
                  "enable.auto.commit": False})
    try:
        return c.get_watermark_offsets(TopicPartition(topic, partition), timeout=20, cached=False)
    finally:
        c.close()


def expect_kafka_error(fut, *codes, timeout: float = 30):
    """Waits for an admin future that must fail with one of `codes`; returns the KafkaError."""
    try:
        fut.result(timeout=timeout)
    except KafkaException as e:
        err = e.args[0]
        assert err.code() in codes, f"expected one of {codes}, got {err}"
        return err
    raise AssertionError(f"expected failure with one of {codes}, but it succeeded")
