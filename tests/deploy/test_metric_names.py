"""Issue 9: the Grafana dashboard and the Prometheus alert rules query only metrics (and labels)
that the code exports. The exported names are read from common/src/metrics.rs, the one place
where metric families are registered, so a renamed or removed metric fails this test.
PromQL syntax of the dashboard queries is checked with promtool (as recording rules).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import unittest
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
METRICS_RS = ROOT / "common" / "src" / "metrics.rs"
DASHBOARD = ROOT / "deploy" / "grafana" / "floe-dashboard.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"

# Labels Prometheus attaches to every scraped series (job, instance) and the `zone` label the
# scrape configurations add by relabeling; `le` belongs to histogram buckets.
TARGET_LABELS = {"job", "instance", "zone"}
# Metrics that are not Floe's but may be queried.
FOREIGN_METRICS = {"up"}


def exported_metrics() -> dict[str, set[str]]:
    """Exposed series name -> label names, from the registrations in metrics.rs."""
    src = METRICS_RS.read_text()
    structs = {
        name: set(re.findall(r"pub (\w+):", body))
        for name, body in re.findall(r"pub struct (\w+) \{(.*?)\n\}", src, re.S)
    }
    fields = dict(re.findall(r"^\s+pub (\w+): (.+),$", src, re.M))
    registrations = re.findall(r'r\.register\(\s*"(\w+)",\s*"[^"]*",\s*m\.(\w+)\.clone\(\),?\s*\)', src, re.S)
    prefix = re.search(r'Registry::with_prefix\("(\w+)"\)', src).group(1)
    out: dict[str, set[str]] = {}
    for name, field in registrations:
        ftype = fields[field]
        labels: set[str] = set()
        fam = re.match(r"Family<(\w+),", ftype)
        if fam:
            labels = structs[fam.group(1)]
        full = f"{prefix}_{name}"
        if "Histogram" in ftype:
            out[f"{full}_bucket"] = labels | {"le"}
            out[f"{full}_sum"] = labels
            out[f"{full}_count"] = labels
        elif "Counter" in ftype:
            # prometheus-client appends _total to counters.
            out[f"{full}_total"] = labels
        elif "Gauge" in ftype:
            out[full] = labels
        else:
            raise AssertionError(f"unknown metric type {ftype} of {field}")
    return out


def dashboard_queries() -> list[str]:
    dash = json.loads(DASHBOARD.read_text())
    queries: list[str] = []

    def walk(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "expr" and isinstance(v, str):
                    queries.append(v)
                else:
                    walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(dash["panels"])
    for var in dash["templating"]["list"]:
        q = var.get("query")
        if isinstance(q, dict):
            queries.append(q["query"])
    return queries


def alert_queries() -> list[str]:
    doc = yaml.safe_load(ALERTS.read_text())
    return [r["expr"] for g in doc["groups"] for r in g["rules"]]


def concrete(q: str) -> str:
    """A dashboard query with Grafana variables replaced, so promtool can parse it."""
    q = re.sub(r"label_values\((.*), \w+\)$", r"\1", q)
    return q.replace("$__rate_interval", "5m").replace("$job", ".*").replace("$zone", ".*")


SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{([^}]*)\}|\[)")
GROUPING = re.compile(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)")


class MetricNames(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.exported = exported_metrics()
        cls.all_labels = set().union(*cls.exported.values()) | TARGET_LABELS | {"le"}

    def test_parser_sees_the_known_families(self):
        # Guards the regex parsing of metrics.rs: the families the lead listed must be found.
        for name in [
            "floe_kafka_requests_total", "floe_kafka_request_seconds_bucket", "floe_kafka_connections",
            "floe_kafka_bad_frames_total", "floe_produce_flush_wait_seconds_bucket",
            "floe_produce_upload_seconds_bucket", "floe_produce_commit_seconds_bucket",
            "floe_produce_agent_overhead_seconds_bucket", "floe_produce_bytes_total",
            "floe_wal_objects_total", "floe_fetch_bytes_total", "floe_object_store_requests_total",
            "floe_object_store_bytes_total", "floe_sequencer_commit_seconds_bucket",
            "floe_sequencer_group_objects_bucket", "floe_sequencer_failures_total",
            "floe_cache_hits_total", "floe_cache_misses_total",
        ]:
            self.assertIn(name, self.exported)
        self.assertLessEqual({"op", "purpose", "outcome"}, self.exported["floe_object_store_requests_total"])
        self.assertLessEqual({"api", "error"}, self.exported["floe_kafka_requests_total"])

    def check(self, queries: list[str], where: str):
        self.assertGreater(len(queries), 5, where)
        used = set()
        for q in queries:
            with self.subTest(where=where, query=q):
                for m in re.finditer(r"\bfloe_[a-z0-9_]+", q):
                    self.assertTrue(m.group(0) in self.exported, f"{m.group(0)} is not exported by common/src/metrics.rs")
                    used.add(m.group(0))
                for m in SELECTOR.finditer(q):
                    metric, matchers = m.group(1), m.group(3) or ""
                    if metric in ("by", "without", "on", "ignoring", "offset"):
                        continue
                    self.assertTrue(metric in self.exported or metric in FOREIGN_METRICS, f"unknown metric {metric}")
                    allowed = self.exported.get(metric, set()) | TARGET_LABELS
                    for label in re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", matchers):
                        self.assertTrue(label in allowed, f"{metric} has no label {label}")
                for m in GROUPING.finditer(q):
                    for label in filter(None, (s.strip() for s in m.group(1).split(","))):
                        self.assertTrue(label in self.all_labels, f"grouping by unknown label {label}")
        return used

    def test_dashboard_uses_exported_metrics(self):
        used = self.check(dashboard_queries(), "dashboard")
        # The panels the issue asks for that can be built today.
        for needle in ("floe_produce_flush_wait_seconds_bucket", "floe_produce_upload_seconds_bucket",
                       "floe_produce_commit_seconds_bucket", "floe_object_store_requests_total",
                       "floe_object_store_bytes_total", "floe_sequencer_commit_seconds_bucket",
                       "floe_sequencer_group_objects_bucket", "floe_cache_hits_total", "floe_fetch_bytes_total"):
            self.assertIn(needle, used)

    def test_alerts_use_exported_metrics(self):
        self.check(alert_queries(), "alerts")

    def test_dashboard_queries_parse(self):
        promtool = shutil.which("promtool")
        self.assertIsNotNone(promtool, "promtool is required (Debian package prometheus)")
        rules = {"groups": [{"name": "dashboard", "rules": [
            {"record": f"dashboard:query{i}", "expr": concrete(q)} for i, q in enumerate(dashboard_queries())
        ]}]}
        with tempfile.NamedTemporaryFile("w", suffix=".yml") as f:
            yaml.safe_dump(rules, f)
            f.flush()
            r = subprocess.run([promtool, "check", "rules", f.name], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)


if __name__ == "__main__":
    unittest.main()
