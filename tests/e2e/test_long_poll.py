"""Long polling: a consumer parked on an empty partition gets a record produced later."""

import threading
import time

from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, TopicPartition

from kafka_util import create_topic, producer


def _wait_for_record(bootstrap, topic, start_offset, produce_after_s, bound_s):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "e2e-longpoll",
                  "enable.auto.commit": False, "fetch.wait.max.ms": 5000,
                  "fetch.min.bytes": 1})
    c.assign([TopicPartition(topic, 0, start_offset)])
    # Let the consumer reach the partition and park its first fetch.
    assert c.poll(1.0) is None
    sent = {}

    def produce_later():
        time.sleep(produce_after_s)
        p = producer(bootstrap)
        sent["t"] = time.monotonic()
        p.produce(topic, key=b"late", value=b"hello", partition=0)
        p.flush(30)

    th = threading.Thread(target=produce_later)
    th.start()
    try:
        deadline = time.monotonic() + bound_s
        while time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            assert m.error() is None, m.error()
            return m, time.monotonic() - sent["t"]
        raise AssertionError(f"no record within {bound_s}s")
    finally:
        th.join()
        c.close()


def test_long_poll_wakes_on_new_data(playground):
    create_topic(playground.bootstrap, "lp", partitions=1)
    m, latency = _wait_for_record(playground.bootstrap, "lp", OFFSET_BEGINNING, 1.5, 30)
    assert (m.key(), m.value(), m.offset()) == (b"late", b"hello", 0)
    print(f"long-poll delivery latency {latency * 1000:.0f} ms")  # informative only


def test_long_poll_from_end_on_cluster(cluster_factory):
    """Consumer on agent B parked at the end; producer writes through agent A."""
    c = cluster_factory(2)
    a, b = c.agents
    create_topic(a.bootstrap, "lp", partitions=1)
    p = producer(a.bootstrap)
    for i in range(5):
        p.produce("lp", value=b"old%d" % i, partition=0)
    assert p.flush(30) == 0
    m, latency = _wait_for_record(b.bootstrap, "lp", OFFSET_END, 1.5, 30)
    assert (m.key(), m.value(), m.offset()) == (b"late", b"hello", 5)
    print(f"cross-agent long-poll delivery latency {latency * 1000:.0f} ms")
