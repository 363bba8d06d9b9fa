"""Idempotent producers (librdkafka `enable.idempotence=true`): every message exactly once and
in order per partition, also when the agent is killed mid-stream and the producer retries
requests whose first attempt was already committed."""

import time

from confluent_kafka import Consumer, Producer, TopicPartition

import kwire
from kafka_util import create_topic


def _produce_idempotent(bootstrap, topic, n, partitions, during=None, **conf):
    """Produces `n` values round-robin over `partitions`; calls `during()` halfway. Returns
    the delivery reports as {partition: [(offset, value)]}."""
    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                  "linger.ms": 5, "message.timeout.ms": 90000,
                  "retry.backoff.ms": 200, "socket.timeout.ms": 10000, **conf})
    reports, errors = {}, []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(err)
        else:
            reports.setdefault(msg.partition(), []).append((msg.offset(), msg.value()))

    for i in range(n):
        while True:
            try:
                p.produce(topic, value=b"v%05d" % i, partition=i % partitions,
                          on_delivery=on_delivery)
                break
            except BufferError:
                p.poll(0.1)
        if during is not None and i == n // 2:
            p.poll(0.05)  # let requests go out, so some are in flight at `during`
            during()
        p.poll(0)
    remaining = p.flush(120)
    assert remaining == 0, f"{remaining} messages undelivered"
    assert errors == [], errors[:5]
    return reports


def _consume_all(bootstrap, topic, partitions, expect):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"read-{topic}",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    got = {}
    deadline = time.monotonic() + 60
    while sum(len(v) for v in got.values()) < expect and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            got.setdefault(m.partition(), []).append((m.offset(), m.value()))
    # Anything beyond `expect` would be a duplicate: read a little longer.
    end = time.monotonic() + 2
    while time.monotonic() < end:
        m = c.poll(0.2)
        if m is not None and not m.error():
            got.setdefault(m.partition(), []).append((m.offset(), m.value()))
    c.close()
    return got


def _check_exactly_once(got, n, partitions):
    for p in range(partitions):
        want = [b"v%05d" % i for i in range(p, n, partitions)]
        records = got.get(p, [])
        assert [v for _, v in records] == want, f"partition {p}: duplicates, gaps or reordering"
        assert [o for o, _ in records] == list(range(len(want))), f"partition {p}: offsets"


def test_idempotent_producer_exactly_once_in_order(playground):
    create_topic(playground.bootstrap, "idem", partitions=3)
    reports = _produce_idempotent(playground.bootstrap, "idem", 3000, 3)
    for p, r in reports.items():
        assert [o for o, _ in r] == list(range(len(r))), f"partition {p} delivery offsets"
    _check_exactly_once(_consume_all(playground.bootstrap, "idem", 3, 3000), 3000, 3)


def test_idempotent_producer_survives_an_agent_kill(cluster):
    agent = cluster.agents[0]
    create_topic(cluster.bootstrap, "idem-kill", partitions=2)

    def kill_and_restart():
        # In-flight requests die with the agent; the producer retries them once it is back.
        agent.process.kill()
        agent.start()

    _produce_idempotent(cluster.bootstrap, "idem-kill", 2000, 2, during=kill_and_restart)
    _check_exactly_once(_consume_all(cluster.bootstrap, "idem-kill", 2, 2000), 2000, 2)


def test_20000_records_with_5_requests_in_flight_arrive_once_in_order(playground):
    create_topic(playground.bootstrap, "idem-20k", partitions=3)
    reports = _produce_idempotent(playground.bootstrap, "idem-20k", 20000, 3,
                                  **{"max.in.flight.requests.per.connection": 5,
                                     "linger.ms": 1, "batch.num.messages": 100})
    for p, r in reports.items():
        assert [o for o, _ in r] == list(range(len(r))), f"partition {p} delivery offsets"
    _check_exactly_once(_consume_all(playground.bootstrap, "idem-20k", 3, 20000), 20000, 3)


def test_a_replayed_produce_request_is_stored_once(playground):
    """A captured idempotent ProduceRequest sent again (each time on a new connection, as a
    retry after a lost reply would be) gets the original offset and adds nothing."""
    b = playground.bootstrap
    create_topic(b, "replay", partitions=1)
    _, err, pid, epoch = kwire.parse_init_producer_id_v0(
        kwire.roundtrip(b, kwire.init_producer_id_v0()))
    assert err == 0 and pid >= 0
    first = kwire.produce_v3("replay", 0, kwire.record_batch(
        [(b"k%d" % i, b"a%d" % i) for i in range(5)], producer=(pid, epoch, 0)))
    second = kwire.produce_v3("replay", 0, kwire.record_batch(
        [(b"k%d" % i, b"b%d" % i) for i in range(3)], producer=(pid, epoch, 5)))
    answers = [kwire.parse_produce_v3(kwire.roundtrip(b, req))[1][0]
               for req in (first, first, second, first, second, first)]
    assert [(err, base) for _, _, err, base in answers] == \
        [(0, 0), (0, 0), (0, 5), (0, 0), (0, 5), (0, 0)]
    # A gap in the sequence is refused (OUT_OF_ORDER_SEQUENCE_NUMBER).
    gap = kwire.produce_v3("replay", 0, kwire.record_batch(
        [(b"k", b"gap")], producer=(pid, epoch, 42)))
    assert kwire.parse_produce_v3(kwire.roundtrip(b, gap))[1][0][2] == 45
    got = _consume_all(b, "replay", 1, 8)
    assert [v for _, v in got[0]] == [b"a%d" % i for i in range(5)] + \
        [b"b%d" % i for i in range(3)]
