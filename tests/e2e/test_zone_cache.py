"""The shared zone cache (issue 6), proven by the agents' counters: two zones of two agents on
PostgreSQL and the S3-compatible server; a producer in zone a; consumers in zone a (client.id)
and zone b (one by client.id, one by client.rack that first reaches a zone-a agent and is
steered home by KIP-392's preferred read replica)."""

from __future__ import annotations

import threading
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition

from conftest import http_get
from kafka_util import assert_same, consume_all, create_topic, make_records, metric_sum

BLOCK = 4 * 1024 * 1024


def scrape(agent) -> str:
    status, body = http_get(agent.admin_url + "/metrics")
    assert status == 200, body
    return body


def total(agents, name, **labels) -> float:
    return sum(metric_sum(scrape(a), name, **labels) for a in agents)


def wait_fleet(agents, n, timeout=15):
    """Until every agent sees `n` live agents (heartbeats every second)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(metric_sum(scrape(a), "floe_fleet_agents") == n for a in agents):
            return
        time.sleep(0.2)
    raise AssertionError(f"agents did not all see {n} agents")


def _produce_in_rounds(bootstrap, topic, rounds, per_round):
    """Keyed records in `rounds` flushed rounds (so in at least that many objects, each
    owned by a rendezvous-chosen agent); returns {partition: [(offset, key, value)]}."""
    p = Producer({"bootstrap.servers": bootstrap, "client.id": "ingest,floe_az=zone-a",
                  "linger.ms": 5, "acks": "all"})
    out, errors = {}, []

    def done(err, msg):
        if err is not None:
            errors.append(err)
        else:
            out.setdefault(msg.partition(), []).append((msg.offset(), msg.key(), msg.value()))
    for r in range(rounds):
        for k, v in make_records(per_round, f"r{r}"):
            p.produce(topic, key=k, value=v, on_delivery=done)
        assert p.flush(60) == 0
    assert errors == [], errors[:3]
    return {part: sorted(v) for part, v in out.items()}


def test_each_block_is_read_once_per_zone_and_nothing_crosses_zones(cluster_factory):
    c = cluster_factory(0)
    a1, a2 = c.add_agent(zone="zone-a"), c.add_agent(zone="zone-a")
    b1, b2 = c.add_agent(zone="zone-b"), c.add_agent(zone="zone-b")
    zone_a, zone_b = [a1, a2], [b1, b2]
    wait_fleet(zone_a + zone_b, 4)
    topic = "zc-tail"
    # 16 partitions: both agents of a zone lead some (rendezvous), so both need every block.
    create_topic(a1.bootstrap, topic, partitions=16)
    produced = _produce_in_rounds(a1.bootstrap, topic, rounds=10, per_round=600)
    expected = {p: len(v) for p, v in produced.items()}

    results, failures = {}, []

    def consume(name, bootstrap, **conf):
        try:
            results[name] = consume_all(bootstrap, topic, expected, timeout=120,
                                        **{"group.id": f"zc-{name}", **conf})
        except Exception as e:  # reported below with the consumer's name
            failures.append((name, e))

    consumers = [
        ("a-client-id", a2.bootstrap, {"client.id": "reader,floe_az=zone-a"}),
        ("b-client-id", b1.bootstrap, {"client.id": "reader,floe_az=zone-b"}),
        # Reaches zone a first: its Metadata lists zone-a agents until a Fetch names its rack.
        ("b-rack", a1.bootstrap, {"client.id": "rack-reader", "client.rack": "zone-b"}),
    ]
    threads = [threading.Thread(target=consume, args=(n, b), kwargs=kw) for n, b, kw in consumers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures
    for name, got in results.items():
        assert_same(produced, got)

    # No byte served to a client of another zone, and no owner was ever unreachable.
    assert total(zone_a + zone_b, "floe_cross_zone_bytes_total") == 0
    assert total(zone_a + zone_b, "floe_cache_peer_fallbacks_total") == 0
    assert total(zone_a, "floe_cache_push_failures_total") == 0
    # The client.rack consumer was steered to its zone.
    assert total(zone_a, "floe_fetch_preferred_replica_total") > 0
    produced_bytes = total(zone_a, "floe_produce_bytes_total")
    assert total(zone_b, "floe_fetch_bytes_total") >= 2 * produced_bytes

    # Zone a: the writer pushed every block to its owner, so no consumer read caused a GET.
    assert total(zone_a, "floe_object_store_requests_total", op="get", purpose="fetch") == 0
    assert total(zone_a, "floe_cache_peer_bytes_total", direction="pushed") > 0
    # Zone b: each block read from the store at most once for the zone, though both zone-b
    # agents needed every block (8 partitions spread over both, in multi-partition objects)
    # and two consumers read everything.
    objects = total(zone_a, "floe_object_store_requests_total", op="put", purpose="wal")
    put_bytes = total(zone_a, "floe_object_store_bytes_total", op="put", purpose="wal")
    assert objects >= 10
    max_blocks = objects + put_bytes // BLOCK  # each object: ceil(size / 4 MiB) blocks
    gets_b = total(zone_b, "floe_object_store_requests_total", op="get", purpose="fetch")
    assert 0 < gets_b <= max_blocks, (gets_b, objects, put_bytes)
    assert total(zone_b, "floe_cache_peer_bytes_total", direction="fetched") > 0
    print(f"\nzone cache: {int(objects)} objects, zone-b GETs {int(gets_b)}, "
          f"zone-a GETs 0, peer bytes fetched in zone b "
          f"{int(total(zone_b, 'floe_cache_peer_bytes_total', direction='fetched'))}")


def _retriable(err: KafkaError) -> bool:
    return err.retriable() or err.code() in (KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN,
                                             KafkaError._PARTITION_EOF)


def test_a_killed_agent_hands_its_blocks_over(cluster_factory, monkeypatch):
    monkeypatch.setenv("FLOE_AGENT_TIMEOUT_MS", "3000")
    c = cluster_factory(0)
    a1 = c.add_agent(zone="zone-a")
    b1, b2 = c.add_agent(zone="zone-b"), c.add_agent(zone="zone-b")
    wait_fleet([a1, b1, b2], 3)
    topic = "zc-kill"
    partitions = 6
    create_topic(a1.bootstrap, topic, partitions=partitions)
    n = 4000
    reports, errors = {}, []
    stop_at_half = threading.Event()

    def produce():
        p = Producer({"bootstrap.servers": a1.bootstrap, "client.id": "w,floe_az=zone-a",
                      "linger.ms": 5, "acks": "all", "message.timeout.ms": 60000})

        def done(err, msg):
            if err is not None:
                errors.append(err)
            else:
                reports.setdefault(msg.partition(), []).append((msg.offset(), msg.value()))
        for i in range(n):
            p.produce(topic, value=b"k%05d" % i, partition=i % partitions, on_delivery=done)
            if i % 100 == 0:
                p.poll(0)
                time.sleep(0.05)  # ~2,000 records/s: the consumer tails the log
            if i == n // 2:
                stop_at_half.set()
        assert p.flush(60) == 0

    producer = threading.Thread(target=produce)
    producer.start()
    cons = Consumer({"bootstrap.servers": f"{b1.bootstrap},{b2.bootstrap}",
                     "client.id": "tail,floe_az=zone-b", "group.id": "zc-kill",
                     "enable.auto.commit": False, "enable.partition.eof": False})
    cons.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    got, consumer_errors = {}, []
    killed = False
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if not killed and stop_at_half.is_set():
            b2.process.kill()  # no goodbye: it leaves the fleet after the 3 s agent timeout
            killed = True
        for m in cons.consume(num_messages=500, timeout=0.2):
            if m.error():
                consumer_errors.append(m.error())
            else:
                got.setdefault(m.partition(), []).append((m.offset(), m.value()))
        if not producer.is_alive() and sum(len(v) for v in got.values()) >= n:
            break
    producer.join()
    assert errors == [], errors[:3]
    assert killed
    assert all(_retriable(e) for e in consumer_errors), consumer_errors[:5]
    for p in range(partitions):
        assert got.get(p) == sorted(reports[p]), f"partition {p} differs"

    # b2 is gone from b1's fleet; its blocks are b1's now: more data is read with no fallback.
    wait_fleet([b1], 2)
    fallbacks = metric_sum(scrape(b1), "floe_cache_peer_fallbacks_total")
    gets_before = metric_sum(scrape(b1), "floe_object_store_requests_total", op="get",
                             purpose="fetch")
    more = [b"after-%04d" % i for i in range(600)]
    p = Producer({"bootstrap.servers": a1.bootstrap, "client.id": "w,floe_az=zone-a"})
    for v in more:
        p.produce(topic, value=v, partition=0)
    assert p.flush(60) == 0
    c2 = Consumer({"bootstrap.servers": b1.bootstrap, "client.id": "tail2,floe_az=zone-b",
                   "group.id": "zc-kill-2", "enable.auto.commit": False})
    start = len(reports[0])
    c2.assign([TopicPartition(topic, 0, start)])
    after = []
    deadline = time.monotonic() + 60
    while len(after) < len(more) and time.monotonic() < deadline:
        for m in c2.consume(num_messages=500, timeout=0.2):
            if not m.error():
                after.append(m.value())
    c2.close()
    cons.close()
    assert after == more
    assert metric_sum(scrape(b1), "floe_cache_peer_fallbacks_total") == fallbacks
    assert metric_sum(scrape(b1), "floe_object_store_requests_total", op="get",
                      purpose="fetch") > gets_before, "b1 now reads the blocks itself"
    print(f"\nfallbacks while b2 was dead but listed: {int(fallbacks)}")


def test_a_cold_catch_up_read_leaves_the_tail_alone(cluster_factory):
    """A consumer reads a whole topic from offset 0 while a producer and a tailing consumer
    run. The history is older than the (shortened) tail window, so it goes through the
    catch-up budget; the tail's blocks, pushed on write, are never missed. The producer's
    latency before and during the catch-up is printed (measured, not asserted: see
    docs/benchmarks.md for the figures on a quiet machine)."""
    c = cluster_factory(0)
    mib = 1 << 20
    a1 = c.add_agent(zone="zone-a", extra_args=[
        "--cache-tail-window-ms", "1000", "--cache-bytes", str(16 * mib),
        "--catchup-cache-bytes", str(8 * mib)])
    history, tail = "zc-history", "zc-live"
    create_topic(a1.bootstrap, history, partitions=4)
    create_topic(a1.bootstrap, tail, partitions=2)
    conf = {"bootstrap.servers": a1.bootstrap, "client.id": "w,floe_az=zone-a", "acks": "all"}
    p = Producer({**conf, "linger.ms": 20})
    n_hist, value = 24_000, b"h" * 1000
    for i in range(n_hist):
        while True:
            try:
                p.produce(history, key=b"%06d" % i, value=value, partition=i % 4)
                break
            except BufferError:
                p.poll(0.05)
    assert p.flush(60) == 0
    time.sleep(1.5)  # the history leaves the tail window

    lat, sent, stop = [], [], threading.Event()
    marks = {}

    def produce_tail():
        q = Producer({**conf, "linger.ms": 5})
        i = 0
        while not stop.is_set():
            t = time.perf_counter()
            q.produce(tail, value=b"t%06d" % i, partition=i % 2,
                      on_delivery=lambda e, m, t=t: lat.append(
                          (t, time.perf_counter() - t, e)))
            sent.append(i)
            i += 1
            q.poll(0)
            time.sleep(0.004)  # ~250 records/s
        assert q.flush(30) == 0

    tail_got = []

    def consume_tail():
        tc = Consumer({"bootstrap.servers": a1.bootstrap, "client.id": "t,floe_az=zone-a",
                       "group.id": "zc-live", "enable.auto.commit": False})
        tc.assign([TopicPartition(tail, q, OFFSET_BEGINNING) for q in range(2)])
        while not (stop.is_set() and len(tail_got) >= len(sent)):
            for m in tc.consume(500, 0.2):
                if not m.error():
                    tail_got.append(m.value())
            if stop.is_set() and time.monotonic() > marks["stopped"] + 30:
                break
        tc.close()

    threads = [threading.Thread(target=produce_tail), threading.Thread(target=consume_tail)]
    for t in threads:
        t.start()
    time.sleep(3)
    before = scrape(a1)
    marks["catch_up"] = time.perf_counter()
    got = consume_all(a1.bootstrap, history, {q: n_hist // 4 for q in range(4)}, timeout=120,
                      **{"client.id": "c,floe_az=zone-a", "group.id": "zc-catch-up"})
    marks["caught_up"] = time.perf_counter()
    after = scrape(a1)
    time.sleep(1)
    stop.set()
    marks["stopped"] = time.monotonic()
    for t in threads:
        t.join()

    for q, records in got.items():
        assert [o for o, _, _ in records] == list(range(n_hist // 4)), f"partition {q}"
    assert all(e is None for _, _, e in lat), [e for _, _, e in lat if e][:3]
    assert sorted(tail_got) == sorted(b"t%06d" % i for i in sent)

    def delta(name, **labels):
        return metric_sum(after, name, **labels) - metric_sum(before, name, **labels)
    # The history went through the catch-up budget, the tail never missed its pushed blocks.
    assert delta("floe_cache_misses_total", cache="catchup") > 0
    assert delta("floe_object_store_requests_total", op="get", purpose="fetch") > 0
    assert metric_sum(after, "floe_cache_misses_total", cache="tail") == 0

    def p99(ms):
        ms = sorted(ms)
        return ms[int(0.99 * (len(ms) - 1))] * 1000 if ms else float("nan")
    base = [d for t, d, _ in lat if t < marks["catch_up"]]
    during = [d for t, d, _ in lat if marks["catch_up"] <= t < marks["caught_up"]]
    print(f"\nproducer p99 {p99(base):.1f} ms before ({len(base)} records), "
          f"{p99(during):.1f} ms during the catch-up read ({len(during)} records, "
          f"{marks['caught_up'] - marks['catch_up']:.1f} s)")
