#!/usr/bin/env python3
"""Zone cache benchmark: two zones of two agents (started here) on PostgreSQL and an
S3-compatible server, stock clients (confluent-kafka / librdkafka).

Phases:
  1. history: `--history-mib` of records into a topic nobody reads yet;
  2. tail (`--seconds`): a producer in zone a at `--rate` records/s; three tailing consumers
     (zone a by client.id, zone b by client.rack through a zone-a bootstrap, zone b by
     client.id). Prints produce latency, and per zone: object-store GETs per GiB served to
     consumers, block cache hit ratio, bytes fetched from peers;
  3. catch-up (`--seconds`, starting after the history is older than the 60 s tail window):
     the same producer and tailing consumers, plus a consumer in zone b reading the history
     topic from offset 0 (in a process of its own, so that its Python work does not take the
     GIL from the producer whose latency is measured). Prints the producer's latency again,
     and the catch-up read rate.

`--agent-args` passes flags to every agent, e.g. `--catchup-read-bytes-per-sec 0` to read
the history without the catch-up byte-rate budget.

Figures only: nothing here asserts a speed.

  .venv/bin/python bench/zone_cache_bench.py --floe target/release/floe \
      --database-url postgres://postgres@127.0.0.1:25432/floezc \
      --s3-endpoint http://127.0.0.1:25900 --bucket floe-test
"""
import argparse
import multiprocessing
import os
import shlex
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

GIB = 1 << 30


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(admin):
    text = urllib.request.urlopen(f"http://{admin}/metrics", timeout=5).read().decode()
    out = {}
    for line in text.splitlines():
        m = re.match(r"^(\S+?)(\{[^}]*\})?\s+(\S+)$", line)
        if m and not line.startswith("#"):
            out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


def summed(snap, name, *must):
    return sum(v for k, v in snap.items()
               if k.split("{")[0] == name and all(x in k for x in must))


def pct(vals, q):
    vals = sorted(vals)
    return vals[min(len(vals) - 1, int(q * len(vals)))] * 1000 if vals else float("nan")


class Procs:
    def __init__(self, floe, log_dir):
        self.floe, self.log_dir, self.procs = floe, log_dir, []

    def start(self, name, args):
        log = open(os.path.join(self.log_dir, f"{name}.log"), "w")
        p = subprocess.Popen([self.floe, *args], stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(p)
        return p

    def stop(self):
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()


def wait_ready(admin, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if urllib.request.urlopen(f"http://{admin}/readyz", timeout=2).status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    sys.exit(f"{admin} not ready")


class Load:
    """A producer at a fixed rate recording send-to-ack latency, in a thread."""

    def __init__(self, bootstrap, topic, rate, size):
        self.p = Producer({"bootstrap.servers": bootstrap, "client.id": "load,floe_az=zone-a",
                           "linger.ms": 5, "acks": "all"})
        self.topic, self.rate, self.payload = topic, rate, os.urandom(size)
        self.lat, self.stop_flag, self.sent = [], threading.Event(), 0

    def run(self):
        t0 = time.perf_counter()
        while not self.stop_flag.is_set():
            sent = time.perf_counter()
            self.p.produce(self.topic, value=self.payload,
                           on_delivery=lambda e, m, s=sent: self.lat.append(time.perf_counter() - s))
            self.sent += 1
            self.p.poll(0)
            ahead = self.sent / self.rate - (time.perf_counter() - t0)
            if ahead > 0:
                time.sleep(ahead)
        self.p.flush(60)

    def window(self):
        lat, self.lat = self.lat, []
        return lat


class Tail:
    """A consumer assigned every partition, reading as records arrive, in a thread."""

    def __init__(self, bootstrap, topic, partitions, start=-1, **conf):
        self.c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"zc-{uuid.uuid4().hex}",
                           "enable.auto.commit": False, "fetch.max.bytes": 52428800, **conf})
        self.c.assign([TopicPartition(topic, p, start) for p in range(partitions)])
        self.records, self.bytes, self.stop_flag = 0, 0, threading.Event()

    def run(self):
        while not self.stop_flag.is_set():
            for m in self.c.consume(5000, 0.2):
                if not m.error():
                    self.records += 1
                    self.bytes += len(m.value() or b"")
        self.c.close()


def catch_up(bootstrap, topic, partitions, conf, records, nbytes, stop):
    """Child process: reads `topic` from offset 0, counting into shared values."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"zc-{uuid.uuid4().hex}",
                  "enable.auto.commit": False, "fetch.max.bytes": 52428800, **conf})
    c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    while not stop.is_set():
        n = b = 0
        for m in c.consume(5000, 0.2):
            if not m.error():
                n += 1
                b += len(m.value() or b"")
        with records.get_lock():
            records.value += n
        with nbytes.get_lock():
            nbytes.value += b
    c.close()


def zone_figures(agents, before, after):
    for zone in ("zone-a", "zone-b"):
        names = [n for n, z in agents if z == zone]
        d = lambda name, *must: sum(summed(after[n], name, *must) - summed(before[n], name, *must)
                                    for n in names)
        gets = d("floe_object_store_requests_total", 'op="get"', 'purpose="fetch"')
        served = d("floe_fetch_bytes_total")
        hits, misses = d("floe_cache_hits_total"), d("floe_cache_misses_total")
        peer = d("floe_cache_peer_bytes_total", 'direction="fetched"')
        cross = d("floe_cross_zone_bytes_total")
        n_peer = d("floe_cache_peer_fetch_seconds_count")
        peer_ms = d("floe_cache_peer_fetch_seconds_sum") / n_peer * 1000 if n_peer else float("nan")
        objects = d("floe_wal_objects_total")
        print(f"  {zone}: wrote {objects:.0f} WAL objects, served {served / 2**20:8.1f} MiB, GETs {gets:6.0f} "
              f"({gets / (served / GIB) if served else float('nan'):7.1f} per GiB served), "
              f"block hit ratio {hits / (hits + misses) if hits + misses else float('nan'):.3f}, "
              f"peer-fetched {peer / 2**20:7.1f} MiB in {n_peer:.0f} reads "
              f"(mean {peer_ms:.2f} ms), cross-zone bytes {cross:.0f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--floe", default="target/release/floe")
    ap.add_argument("--database-url", required=True, help="an empty PostgreSQL database")
    ap.add_argument("--s3-endpoint", required=True)
    ap.add_argument("--bucket", default="floe-test")
    ap.add_argument("--history-mib", type=int, default=256)
    ap.add_argument("--rate", type=float, default=2000, help="tail records/s")
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--partitions", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--agent-args", default="", help="extra flags for every agent")
    a = ap.parse_args()
    for k, v in (("AWS_ACCESS_KEY_ID", "x"), ("AWS_SECRET_ACCESS_KEY", "y"),
                 ("AWS_REGION", "us-east-1")):
        os.environ.setdefault(k, v)

    procs = Procs(a.floe, tempfile.mkdtemp(prefix="zcbench-"))
    md_port, md_admin = free_port(), free_port()
    procs.start("metadata", ["metadata", "--database-url", a.database_url, "--listen",
                             f"127.0.0.1:{md_port}", "--admin-listen", f"127.0.0.1:{md_admin}"])
    wait_ready(f"127.0.0.1:{md_admin}")
    prefix = f"zcbench-{uuid.uuid4().hex[:8]}"
    agents, kafka = [], {}
    for node, zone in enumerate(["zone-a", "zone-a", "zone-b", "zone-b"], start=1):
        port, admin = free_port(), f"127.0.0.1:{free_port()}"
        procs.start(f"agent{node}", [
            "agent", "--metadata-url", f"http://127.0.0.1:{md_port}",
            "--object-store", f"s3://{a.bucket}/{prefix}", "--s3-endpoint", a.s3_endpoint,
            "--zone", zone, "--node-id", str(node), "--listen", f"127.0.0.1:{port}",
            "--admin-listen", admin, *shlex.split(a.agent_args)])
        wait_ready(admin)
        agents.append((admin, zone))
        kafka.setdefault(zone, []).append(f"127.0.0.1:{port}")
    try:
        run(a, agents, kafka)
    finally:
        procs.stop()


def run(a, agents, kafka):
    boot_a, boot_b = ",".join(kafka["zone-a"]), ",".join(kafka["zone-b"])
    time.sleep(3)  # every agent learns the fleet (1 s heartbeats)
    admin = AdminClient({"bootstrap.servers": boot_a, "client.id": "floe_az=zone-a"})
    history, tail = f"history-{uuid.uuid4().hex[:6]}", f"tail-{uuid.uuid4().hex[:6]}"
    for f in admin.create_topics([NewTopic(t, a.partitions, 1) for t in (history, tail)]).values():
        f.result()
    time.sleep(1)

    n = a.history_mib * 2**20 // a.size
    p = Producer({"bootstrap.servers": boot_a, "client.id": "hist,floe_az=zone-a",
                  "linger.ms": 20, "acks": "all", "queue.buffering.max.messages": 1_000_000})
    payload = os.urandom(a.size)
    t0 = time.perf_counter()
    for _ in range(n):
        while True:
            try:
                p.produce(history, value=payload)
                break
            except BufferError:
                p.poll(0.01)
    p.flush(300)
    history_written = time.monotonic()
    print(f"history: {n} records ({a.history_mib} MiB) in {time.perf_counter() - t0:.1f} s")

    load = Load(boot_a, tail, a.rate, a.size)
    tails = [Tail(kafka["zone-a"][1], tail, a.partitions, **{"client.id": "t,floe_az=zone-a"}),
             Tail(kafka["zone-a"][0], tail, a.partitions,
                  **{"client.id": "t-rack", "client.rack": "zone-b"}),
             Tail(boot_b, tail, a.partitions, **{"client.id": "t,floe_az=zone-b"})]
    threads = [threading.Thread(target=x.run) for x in [load, *tails]]
    for t in threads:
        t.start()
    time.sleep(5)  # clients settle (the client.rack consumer is steered to zone b)
    load.window()
    before = {n: scrape(n) for n, _ in agents}
    time.sleep(a.seconds)
    after = {n: scrape(n) for n, _ in agents}
    lat = load.window()
    print(f"\ntail phase, {a.seconds:.0f} s at {a.rate:.0f} records/s of {a.size} B, "
          f"3 tailing consumers:")
    print(f"  produce latency p50 {pct(lat, .5):.1f} ms, p99 {pct(lat, .99):.1f} ms "
          f"({len(lat)} records)")
    zone_figures(agents, before, after)

    wait = 61 - (time.monotonic() - history_written)
    if wait > 0:
        time.sleep(wait)  # the history leaves the 60 s tail window: a cold catch-up read
    load.window()
    mp = multiprocessing.get_context("spawn")
    records, nbytes, stop = mp.Value("q", 0), mp.Value("q", 0), mp.Event()
    ct = mp.Process(target=catch_up, args=(boot_b, history, a.partitions,
                                           {"client.id": "c,floe_az=zone-b"}, records, nbytes,
                                           stop))
    before = {n: scrape(n) for n, _ in agents}
    t0 = time.perf_counter()
    ct.start()
    while records.value < n and time.perf_counter() - t0 < max(a.seconds, 300):
        time.sleep(0.2)
    elapsed = time.perf_counter() - t0
    lat = load.window()
    after = {n: scrape(n) for n, _ in agents}
    stop.set()
    print(f"\ncatch-up phase: a zone-b consumer read {records.value} history records "
          f"({nbytes.value / 2**20:.0f} MiB) in {elapsed:.1f} s "
          f"({nbytes.value / 2**20 / elapsed:.1f} MiB/s) while the tail load ran:")
    print(f"  produce latency p50 {pct(lat, .5):.1f} ms, p99 {pct(lat, .99):.1f} ms "
          f"({len(lat)} records)")
    zone_figures(agents, before, after)
    for x in [load, *tails]:
        x.stop_flag.set()
    for t in threads:
        t.join()
    ct.join(30)


if __name__ == "__main__":
    main()
