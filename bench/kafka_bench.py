#!/usr/bin/env python3
"""Produce/consume benchmark with a stock client (confluent-kafka, i.e. librdkafka).

Prints produce throughput (MB/s, records/s), produce latency p50/p99/p99.9 (send to delivery
report), consume throughput, and, when --admin is given, the agent's latency split (flush wait,
upload, commit) and object-store GETs from /metrics before and after. Figures only: nothing
here asserts a speed.

  .venv/bin/python bench/kafka_bench.py --bootstrap 127.0.0.1:9092 --admin 127.0.0.1:9644
"""
import argparse
import json
import os
import re
import time
import urllib.request
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def scrape(admin):
    if not admin:
        return {}
    text = urllib.request.urlopen(f"http://{admin}/metrics", timeout=5).read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = re.match(r"^(\S+?)(\{[^}]*\})?\s+(\S+)$", line)
        if m:
            out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


def delta(before, after, key):
    return after.get(key, 0.0) - before.get(key, 0.0)


def hist_mean(before, after, name):
    s = delta(before, after, f"floe_{name}_sum")
    c = delta(before, after, f"floe_{name}_count")
    return (s / c * 1000.0, int(c)) if c else (float("nan"), 0)


def hist_quantile(before, after, name, q):
    buckets = []
    for k, v in after.items():
        m = re.match(rf'^floe_{name}_bucket\{{le="([^"]+)"\}}$', k)
        if m:
            le = float("inf") if m.group(1) == "+Inf" else float(m.group(1))
            buckets.append((le, v - before.get(k, 0.0)))
    buckets.sort()
    if not buckets or buckets[-1][1] == 0:
        return float("nan")
    target = q * buckets[-1][1]
    for le, c in buckets:
        if c >= target:
            return le * 1000.0
    return float("nan")


def pct(sorted_vals, q):
    if not sorted_vals:
        return float("nan")
    return sorted_vals[min(len(sorted_vals) - 1, int(q * len(sorted_vals)))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", default="127.0.0.1:9092")
    ap.add_argument("--admin", default=None, help="agent admin host:port for /metrics")
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--partitions", type=int, default=8)
    ap.add_argument("--acks", default="all")
    ap.add_argument("--compression", default="none")
    ap.add_argument("--linger-ms", type=int, default=5)
    ap.add_argument("--rate", type=float, default=0, help="records/s; 0 = as fast as possible")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()

    topic = f"bench-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": a.bootstrap})
    for f in admin.create_topics([NewTopic(topic, a.partitions, 1)]).values():
        f.result()

    before = scrape(a.admin)
    payload = os.urandom(a.size)
    lat = []
    errors = [0]

    def on_delivery(err, msg, sent=None):
        if err:
            errors[0] += 1

    p = Producer({"bootstrap.servers": a.bootstrap, "acks": a.acks, "linger.ms": a.linger_ms,
                  "compression.type": a.compression, "queue.buffering.max.messages": 1_000_000})
    t0 = time.perf_counter()
    for i in range(a.records):
        sent = time.perf_counter()
        cb = (lambda err, msg, sent=sent: (lat.append(time.perf_counter() - sent), on_delivery(err, msg)))
        while True:
            try:
                p.produce(topic, value=payload, key=str(i).encode(), on_delivery=cb)
                break
            except BufferError:
                p.poll(0.01)
        p.poll(0)
        if a.rate:
            ahead = (i + 1) / a.rate - (time.perf_counter() - t0)
            if ahead > 0:
                time.sleep(ahead)
    p.flush(120)
    t1 = time.perf_counter()
    after_produce = scrape(a.admin)

    c = Consumer({"bootstrap.servers": a.bootstrap, "group.id": topic, "enable.auto.commit": False,
                  "fetch.max.bytes": 52428800})
    c.assign([TopicPartition(topic, q, 0) for q in range(a.partitions)])
    got = 0
    t2 = time.perf_counter()
    while got < a.records and time.perf_counter() - t2 < 120:
        msgs = c.consume(10000, 1.0)
        got += sum(1 for m in msgs if not m.error())
    t3 = time.perf_counter()
    c.close()
    after = scrape(a.admin)

    lat.sort()
    mb = a.records * a.size / 1e6
    res = {
        "records": a.records, "size": a.size, "partitions": a.partitions, "acks": a.acks,
        "compression": a.compression, "linger_ms": a.linger_ms, "produce_errors": errors[0],
        "produce_seconds": t1 - t0, "produce_mb_s": mb / (t1 - t0), "produce_records_s": a.records / (t1 - t0),
        "latency_ms_p50": pct(lat, 0.50) * 1000, "latency_ms_p99": pct(lat, 0.99) * 1000,
        "latency_ms_p999": pct(lat, 0.999) * 1000,
        "consumed": got, "consume_seconds": t3 - t2, "consume_mb_s": got * a.size / 1e6 / (t3 - t2),
        "consume_records_s": got / (t3 - t2),
    }
    if a.admin:
        for name in ("produce_flush_wait_seconds", "produce_upload_seconds", "produce_commit_seconds"):
            mean, n = hist_mean(before, after_produce, name)
            res[f"{name}_mean_ms"] = mean
            res[f"{name}_p99_ms_bucket"] = hist_quantile(before, after_produce, name, 0.99)
        for q in (0.5, 0.99):
            res[f"agent_overhead_ms_p{int(q*100)}_bucket"] = hist_quantile(
                before, after_produce, "produce_agent_overhead_seconds", q)
        res["wal_objects"] = delta(before, after_produce, "floe_wal_objects_total")
        gets = sum(v - before.get(k, 0.0) for k, v in after.items()
                   if k.startswith("floe_object_store_requests_total") and 'op="get"' in k)
        puts = sum(v - before.get(k, 0.0) for k, v in after.items()
                   if k.startswith("floe_object_store_requests_total") and 'op="put"' in k)
        res["object_store_gets"] = gets
        res["object_store_puts"] = puts
    for k, v in res.items():
        print(f"{k:40s} {v:.3f}" if isinstance(v, float) else f"{k:40s} {v}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
