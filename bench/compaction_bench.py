#!/usr/bin/env python3
"""Compaction benchmark: `floe metadata` (PostgreSQL), a writer agent and, later, a compactor,
all started here, against an S3-compatible server; stock clients (confluent-kafka).

1. Produces `--mib` MiB into `--partitions` partitions through the writer agent (zone w).
2. Reads the whole history from offset 0 through a fresh reader agent in its own zone (cold
   cache) and counts that agent's object-store GETs: the cost of a history read from WAL
   objects.
3. Starts the compactor (segment delay 0, grace 1 s) and waits until every WAL chunk is folded
   and every WAL object deleted: prints compaction throughput (per wall second and per
   CPU second of the compactor process), write amplification (segment bytes / WAL bytes) and
   object counts.
4. Reads the whole history again through another fresh reader agent: GETs from segments.

With `--steady-seconds S`, instead: steady-state write amplification. A compactor runs from
the start (pass every `--steady-interval-ms`, segment delay `--steady-delay-ms`, default
32 MiB segments) while a producer writes `--steady-kib-per-sec` into `--partitions`
partitions for S seconds; once the compactor has folded everything, prints segment bytes
written / WAL bytes, and the segments per partition left.

Figures only: nothing here asserts a speed.

  .venv/bin/python bench/compaction_bench.py --floe /work/target-cost/release/floe \
      --database-url postgres://postgres@127.0.0.1:25432/floecb \
      --s3-endpoint http://127.0.0.1:25900 --bucket floe-test --mib 512
"""
import argparse
import json
import os
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

sys.path.insert(0, os.path.dirname(__file__))
from zone_cache_bench import Procs, free_port, scrape, summed, wait_ready  # noqa: E402


def agent(procs, a, md_port, prefix, node, zone):
    port, admin = free_port(), f"127.0.0.1:{free_port()}"
    procs.start(f"agent{node}", [
        "agent", "--metadata-url", f"http://127.0.0.1:{md_port}",
        "--object-store", f"s3://{a.bucket}/{prefix}", "--s3-endpoint", a.s3_endpoint,
        "--zone", zone, "--node-id", str(node), "--listen", f"127.0.0.1:{port}",
        "--admin-listen", admin, "--cache-listen", "off"])
    wait_ready(admin)
    return f"127.0.0.1:{port}", admin


def read_history(bootstrap, admin, topic, partitions, total):
    """Reads `partitions` (a list) from offset 0 until `total` records arrived."""
    before = scrape(admin)
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": uuid.uuid4().hex,
                  "enable.auto.commit": False, "fetch.max.bytes": 52428800})
    c.assign([TopicPartition(topic, p, 0) for p in partitions])
    got, t0 = 0, time.perf_counter()
    while got < total and time.perf_counter() - t0 < 600:
        got += sum(1 for m in c.consume(10000, 1.0) if not m.error())
    elapsed = time.perf_counter() - t0
    c.close()
    after = scrape(admin)
    gets = (summed(after, "floe_object_store_requests_total", 'op="get"', 'purpose="fetch"')
            - summed(before, "floe_object_store_requests_total", 'op="get"', 'purpose="fetch"'))
    got_bytes = (summed(after, "floe_object_store_bytes_total", 'op="get"', 'purpose="fetch"')
                 - summed(before, "floe_object_store_bytes_total", 'op="get"', 'purpose="fetch"'))
    return got, elapsed, gets, got_bytes


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--floe", default="target/release/floe")
    ap.add_argument("--database-url", required=True, help="an empty PostgreSQL database")
    ap.add_argument("--s3-endpoint", required=True)
    ap.add_argument("--bucket", default="floe-test")
    ap.add_argument("--mib", type=int, default=512)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--partitions", type=int, default=8)
    ap.add_argument("--steady-seconds", type=float, default=0)
    ap.add_argument("--steady-kib-per-sec", type=float, default=1024)
    ap.add_argument("--steady-interval-ms", type=int, default=2000)
    ap.add_argument("--steady-delay-ms", type=int, default=5000)
    a = ap.parse_args()
    for k, v in (("AWS_ACCESS_KEY_ID", "x"), ("AWS_SECRET_ACCESS_KEY", "y"),
                 ("AWS_REGION", "us-east-1")):
        os.environ.setdefault(k, v)
    procs = Procs(a.floe, tempfile.mkdtemp(prefix="cbench-"))
    try:
        (steady if a.steady_seconds > 0 else run)(a, procs)
    finally:
        procs.stop()


def run(a, procs):
    md_port, md_admin = free_port(), free_port()
    procs.start("metadata", ["metadata", "--database-url", a.database_url, "--listen",
                             f"127.0.0.1:{md_port}", "--admin-listen", f"127.0.0.1:{md_admin}"])
    wait_ready(f"127.0.0.1:{md_admin}")
    prefix = f"cbench-{uuid.uuid4().hex[:8]}"
    writer, writer_admin = agent(procs, a, md_port, prefix, 1, "w")
    topic = f"hist-{uuid.uuid4().hex[:6]}"
    adm = AdminClient({"bootstrap.servers": writer})  # kept alive until the result
    for f in adm.create_topics([NewTopic(topic, a.partitions, 1)]).values():
        f.result()
    n = a.mib * 2**20 // a.size
    p = Producer({"bootstrap.servers": writer, "linger.ms": 20, "acks": "all",
                  "queue.buffering.max.messages": 1_000_000})
    payload = os.urandom(a.size)
    for i in range(n):
        while True:
            try:
                p.produce(topic, value=payload, partition=i % a.partitions)
                break
            except BufferError:
                p.poll(0.01)
    p.flush(600)
    w = scrape(writer_admin)
    wal_objects = summed(w, "floe_wal_objects_total")
    wal_bytes = summed(w, "floe_object_store_bytes_total", 'op="put"', 'purpose="wal"')
    print(f"produced {n} records ({a.mib} MiB) into {a.partitions} partitions: "
          f"{wal_objects:.0f} WAL objects, {wal_bytes / 2**20:.1f} MiB")

    reads(procs, a, md_port, prefix, topic, n, "WAL objects", 2)

    c_admin = f"127.0.0.1:{free_port()}"
    pid = procs.start("compactor", [
        "compactor", "--metadata-url", f"http://127.0.0.1:{md_port}",
        "--object-store", f"s3://{a.bucket}/{prefix}", "--s3-endpoint", a.s3_endpoint,
        "--admin-listen", c_admin, "--compactor-interval-ms", "1000",
        "--compactor-grace-ms", "1000", "--compactor-segment-delay-ms", "0",
        "--compactor-orphan-interval-ms", "3600000"]).pid
    wait_ready(c_admin)
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < 1200:
        m = scrape(c_admin)
        deleted = summed(m, "floe_compactor_objects_deleted_total", 'reason="unreferenced"')
        if m.get("floe_compactor_segments_total", 0) > 0 \
                and m.get("floe_compactor_backlog_bytes", 1) == 0 and deleted >= wal_objects:
            break
        time.sleep(0.5)
    time.sleep(1.5)  # the pass that saw the backlog reach zero has been timed
    m = scrape(c_admin)
    # Time spent in passes up to here: folding, then deleting the WAL objects.
    fold_secs = m.get("floe_compactor_pass_seconds_sum", float("nan"))
    seg_bytes = m.get("floe_compactor_segment_bytes_total", 0)
    segments = m.get("floe_compactor_segments_total", 0)
    cpu = m.get("floe_process_cpu_seconds", float("nan"))
    read_bytes = summed(m, "floe_object_store_bytes_total", 'op="get"', 'purpose="compaction"')
    read_gets = summed(m, "floe_object_store_requests_total", 'op="get"', 'purpose="compaction"')
    wal_deleted = summed(m, "floe_compactor_objects_deleted_total", 'reason="unreferenced"')
    print(f"compaction (pid {pid}): {segments:.0f} segments, {seg_bytes / 2**20:.1f} MiB written "
          f"in {fold_secs:.2f} s of passes, deletions included "
          f"({seg_bytes / 2**20 / fold_secs:.1f} MiB/s), "
          f"compactor CPU {cpu:.1f} s ({seg_bytes / 2**20 / cpu:.1f} MiB per CPU second); "
          f"read {read_bytes / 2**20:.1f} MiB in {read_gets:.0f} GETs; write amplification "
          f"{seg_bytes / wal_bytes:.3f} (segment bytes / WAL bytes); WAL objects deleted "
          f"{wal_deleted:.0f}")

    reads(procs, a, md_port, prefix, topic, n, "segments", 4)


def steady(a, procs):
    md_port, md_admin = free_port(), free_port()
    procs.start("metadata", ["metadata", "--database-url", a.database_url, "--listen",
                             f"127.0.0.1:{md_port}", "--admin-listen", f"127.0.0.1:{md_admin}"])
    wait_ready(f"127.0.0.1:{md_admin}")
    prefix = f"cbench-{uuid.uuid4().hex[:8]}"
    writer, writer_admin = agent(procs, a, md_port, prefix, 1, "w")
    c_admin = f"127.0.0.1:{free_port()}"
    procs.start("compactor", [
        "compactor", "--metadata-url", f"http://127.0.0.1:{md_port}",
        "--object-store", f"s3://{a.bucket}/{prefix}", "--s3-endpoint", a.s3_endpoint,
        "--admin-listen", c_admin, "--compactor-interval-ms", str(a.steady_interval_ms),
        "--compactor-grace-ms", "1000", "--compactor-segment-delay-ms", str(a.steady_delay_ms),
        "--compactor-orphan-interval-ms", "3600000"])
    wait_ready(c_admin)
    topic = f"steady-{uuid.uuid4().hex[:6]}"
    adm = AdminClient({"bootstrap.servers": writer})
    for f in adm.create_topics([NewTopic(topic, a.partitions, 1)]).values():
        f.result()
    p = Producer({"bootstrap.servers": writer, "linger.ms": 20})
    payload = os.urandom(a.size)
    rate = a.steady_kib_per_sec * 1024 / a.size
    t0, sent = time.perf_counter(), 0
    while (elapsed := time.perf_counter() - t0) < a.steady_seconds:
        while sent < elapsed * rate:
            p.produce(topic, value=payload, partition=sent % a.partitions)
            sent += 1
        p.poll(0.01)
    p.flush(60)
    w = scrape(writer_admin)
    wal_bytes = summed(w, "floe_object_store_bytes_total", 'op="put"', 'purpose="wal"')
    # Folded once the last WAL chunks are past the delay and a pass has run.
    deadline = time.perf_counter() + a.steady_delay_ms / 1000 + 600
    while time.perf_counter() < deadline:
        time.sleep(a.steady_interval_ms / 1000)
        m = scrape(c_admin)
        if m.get("floe_compactor_backlog_bytes", 1) == 0 and \
                time.perf_counter() - t0 > a.steady_seconds + a.steady_delay_ms / 1000 + \
                2 * a.steady_interval_ms / 1000:
            break
    m = scrape(c_admin)
    seg_bytes = m.get("floe_compactor_segment_bytes_total", 0)
    segments = m.get("floe_compactor_segments_total", 0)
    passes = summed(m, "floe_compactor_passes_total")
    c = Consumer({"bootstrap.servers": writer, "group.id": uuid.uuid4().hex})
    left = []
    for part in range(a.partitions):
        lo, hi = c.get_watermark_offsets(TopicPartition(topic, part), timeout=10)
        left.append(hi - lo)
    c.close()
    print(f"steady: {sent} records ({sent * a.size / 2**20:.1f} MiB) in {a.steady_seconds:.0f} s "
          f"into {a.partitions} partitions ({a.steady_kib_per_sec / a.partitions:.0f} KiB/s "
          f"each); WAL bytes {wal_bytes / 2**20:.1f} MiB; {passes:.0f} compactor passes; "
          f"{segments:.0f} segments written, {seg_bytes / 2**20:.1f} MiB; write amplification "
          f"{seg_bytes / wal_bytes:.2f} (segment bytes written / WAL bytes); records per "
          f"partition {left}")
    print("segments per partition (sizes in MiB):", segment_sizes(md_port, topic))


def segment_sizes(md_port, topic):
    """Each partition's segment objects and their sizes, from the metadata HTTP API."""
    base = f"http://127.0.0.1:{md_port}"
    topics = json.loads(urllib.request.urlopen(f"{base}/v1/topics", timeout=10).read())
    info = next(t for t in topics if t["name"] == topic)
    out = {}
    for p in info["partitions"]:
        q = urllib.parse.urlencode({"topic_id": info["id"], "partition": p["partition"],
                                    "from_offset": 0, "max_entries": 10000})
        rows = json.loads(urllib.request.urlopen(f"{base}/v1/index?{q}", timeout=10).read())
        sizes = {}
        for r in rows:
            if r["object_key"].startswith("seg/"):
                sizes[r["object_key"]] = r["object_size"]
        out[p["partition"]] = [round(v / 2**20, 1) for v in sizes.values()]
    return out


def reads(procs, a, md_port, prefix, topic, n, source, node):
    """One partition's history, then every partition's, each through a fresh reader agent
    (cold cache, its own zone)."""
    for label, parts, total in (("partition 0", [0], n // a.partitions),
                                ("all partitions", list(range(a.partitions)), n)):
        r, r_admin = agent(procs, a, md_port, prefix, node, f"r{node}")
        node += 1
        got, secs, gets, get_bytes = read_history(r, r_admin, topic, parts, total)
        print(f"history of {label} read from {source}: {got} records in {secs:.1f} s, "
              f"{gets:.0f} GETs ({get_bytes / 2**20:.1f} MiB)")


if __name__ == "__main__":
    main()
