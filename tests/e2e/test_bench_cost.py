"""`floe bench` against a playground, then `floe cost --bench` on its JSON (issue 8).

The bench is a real librdkafka client (the `rdkafka` crate); its counters are checked against
the agent's own /metrics, and the cost report against the bench's measured ratios.
"""

from __future__ import annotations

import json
import re
import subprocess

from conftest import FLOE_BIN, http_get
from kafka_util import metric_sum

GIB = 1 << 30


def scrape(pg) -> str:
    status, body = http_get(pg.admin_url + "/metrics")
    assert status == 200
    return body


def run(args: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    r = subprocess.run([FLOE_BIN, *args], capture_output=True, text=True, timeout=timeout,
                       env={"RUST_BACKTRACE": "0", "NO_COLOR": "1", "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, f"floe {' '.join(args)} failed:\n{r.stdout}\n{r.stderr}"
    return r


def test_bench_then_cost(playground, tmp_path):
    before = scrape(playground)
    out = tmp_path / "bench.json"
    r = run(["bench", "--bootstrap", playground.bootstrap,
             "--admin", f"127.0.0.1:{playground.admin_port}",
             "--floe-pid", str(playground.process.proc.pid),
             "--duration", "5s", "--rate", "5000", "--partitions", "4",
             "--message-bytes", "1000", "--zone", "zone-a", "--output", str(out)])
    after = scrape(playground)
    # A progress line per second on stderr, a summary on stdout.
    assert re.search(r"\[\s*\d+\.\ds\] produce .* MB/s", r.stderr), r.stderr
    assert "produce:" in r.stdout and "consume:" in r.stdout

    res = json.loads(out.read_text())
    assert res["schema"] == "floe-bench/1"
    p, c, f = res["produce"], res["consume"], res["floe"]
    # ~5 s at 5,000 records/s.
    assert 15_000 <= p["records"] <= 26_000, p
    assert p["errors"] == 0 and p["flush_errors"] == []
    assert p["bytes"] == p["records"] * 1000
    assert p["records_per_s"] > 2_000 and p["mb_per_s"] > 2.0
    lat = p["latency_ms"]
    assert lat["samples"] == p["records"]
    assert 0 < lat["p50"] <= lat["p99"] <= lat["p999"] <= lat["max"]
    # Every acknowledged record was read back, with its end-to-end latency.
    assert c["records"] == p["records"] and c["bytes"] == p["bytes"] and c["complete"] is True
    e2e = c["e2e_latency_ms"]
    assert e2e["samples"] == c["records"] and 0 < e2e["p50"] <= e2e["p99"]
    assert c["mb_per_s"] > 0

    # The bench's Floe counters are the agent's /metrics deltas (nothing else ran).
    put_delta = metric_sum(after, "floe_object_store_requests_total", op="put") - \
        metric_sum(before, "floe_object_store_requests_total", op="put")
    get_delta = metric_sum(after, "floe_object_store_requests_total", op="get") - \
        metric_sum(before, "floe_object_store_requests_total", op="get")
    wal_delta = metric_sum(after, "floe_wal_objects_total") - \
        metric_sum(before, "floe_wal_objects_total")
    assert put_delta > 0
    assert f["object_store"]["put_requests"] == put_delta
    assert f["object_store"]["get_requests"] == get_delta
    assert f["wal_objects"] == wal_delta
    assert f["metadata_commits"] == wal_delta  # one commit call per WAL object
    assert f["produce_bytes"] >= p["bytes"]  # record batches: values plus batch overhead
    assert f["cpu_seconds"] is not None and f["cpu_seconds"] > 0
    # The playground exports its own CPU time; the bench prefers it over /proc.
    assert "floe_process_cpu_seconds" in f["cpu_source"]
    # The bench names no zone and the playground has none: nothing crosses zones.
    assert f["cross_zone_bytes"] == 0
    assert f["puts_per_gib"] == put_delta / (p["bytes"] / GIB)

    # floe cost with the measured ratios.
    html, svg = tmp_path / "cost.html", tmp_path / "cost.svg"
    r = run(["cost", "--bench", str(out), "--ingest-mibps", "100",
             "--html", str(html), "--svg", str(svg)])
    text = r.stdout
    puts_per_gib = f["puts_per_gib"]
    m = re.search(r"= 0\.097656 GiB/s × ([\d,.]+) PUT/GiB \[measured by floe bench\] = ([\d,.]+) PUT/s"
                  r" × 2,628,000 s / 1000 × \$0\.005", text)
    assert m, text
    assert abs(float(m.group(1).replace(",", "")) - puts_per_gib) <= max(0.06, puts_per_gib * 1e-3)
    assert "GET/GiB [measured by floe bench]" in text
    assert "cores/(MiB/s) [measured by floe bench]" in text
    # Every line of the three bills prints its cost and, on the next line, its formula.
    lines = text.splitlines()
    for item in ["agents (", "S3 PUT", "S3 GET", "S3 requests (compaction)", "S3 storage",
                 "metadata DB", "cross-zone transfer", "brokers (", "EBS gp3 storage",
                 "EBS gp3 throughput", "cross-zone: replication", "cross-zone: producer → leader",
                 "cross-zone: consumers (fetch-from-follower)",
                 "cross-zone: consumers (leader reads)"]:
        idx = [i for i, ln in enumerate(lines) if ln.startswith("  " + item)]
        assert idx, item
        for i in idx:
            assert lines[i].endswith("/month"), lines[i]
            assert lines[i + 1].startswith("      = "), (lines[i], lines[i + 1])
    assert "with fetch-from-follower $0.0533" in text
    assert "dated 2025-01-15" in text
    assert svg.read_text().startswith("<svg")
    h = html.read_text()
    assert "<svg" in h and "measured by floe bench" in h and "<script" not in h


def test_cost_defaults_reproduce_published_anchors(tmp_path):
    text = run(["cost"]).stdout
    # 1 GiB/s of 8 MiB objects is 128 PUT/s.
    assert "1 GiB/s × 128 PUT/GiB [default] = 128 PUT/s" in text
    assert "with fetch-from-follower $0.0533, without $0.0667" in text
    assert "2,628,000 GiB × min(3−1, 3−1) replicas × $0.02" in text
    assert re.search(r"TOTAL Floe\s+\$21,603/month", text), text
    assert re.search(r"TOTAL Kafka RF=3, fetch-from-follower\s+\$359,661/month", text), text


def test_cost_refuses_a_bench_without_floe_counters(tmp_path):
    b = tmp_path / "b.json"
    b.write_text(json.dumps({"produce": {"bytes": 1000}}))
    r = subprocess.run([FLOE_BIN, "cost", "--bench", str(b)], capture_output=True, text=True,
                       timeout=30, env={"RUST_BACKTRACE": "0", "PATH": "/usr/bin:/bin"})
    assert r.returncode != 0
    assert "--admin" in r.stderr
