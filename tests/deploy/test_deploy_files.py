"""Issue 9: the container image, compose stack, Prometheus scrape configuration and Kubernetes
manifests agree with each other and with the zone model (no engine or cluster is available
here, so these are structural checks; schema validation runs in run_checks.sh).
"""

from __future__ import annotations

import re
import unittest
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"


def k8s_docs():
    for f in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(f.read_text()):
            if doc:
                yield f.name, doc


def env_of(container) -> dict:
    return {e["name"]: e.get("value") for e in container.get("env", [])}


class Dockerfile(unittest.TestCase):
    text = (DEPLOY / "Dockerfile").read_text()

    def test_multi_stage_non_root_entrypoint_healthcheck(self):
        self.assertGreaterEqual(len(re.findall(r"^FROM ", self.text, re.M)), 2)
        self.assertRegex(self.text, r"(?m)^FROM rust:.* AS builder$")
        self.assertRegex(self.text, r"(?m)^COPY --from=builder ")
        user = re.findall(r"(?m)^USER (\S+)", self.text)
        self.assertTrue(user and not user[-1].startswith(("root", "0")), user)
        self.assertRegex(self.text, r'(?m)^ENTRYPOINT \["/usr/local/bin/floe"\]')
        self.assertRegex(self.text, r"(?m)^HEALTHCHECK .*\n.*/readyz")
        self.assertIn("--locked", self.text)


class Compose(unittest.TestCase):
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    prom = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())

    def agents(self):
        return {n: s for n, s in self.compose["services"].items() if s.get("command") == ["agent"]}

    def test_services(self):
        for name in ("postgres", "minio", "metadata", "compactor", "prometheus", "grafana"):
            self.assertIn(name, self.compose["services"])

    def test_two_agents_in_each_of_two_zones(self):
        zones: dict[str, list[str]] = {}
        for name, svc in self.agents().items():
            zones.setdefault(svc["environment"]["FLOE_ZONE"], []).append(name)
        self.assertEqual(len(zones), 2, zones)
        for z, names in zones.items():
            self.assertEqual(len(names), 2, (z, names))
        node_ids = [s["environment"]["FLOE_NODE_ID"] for s in self.agents().values()]
        self.assertEqual(len(set(node_ids)), len(node_ids))
        adverts = [s["environment"]["FLOE_ADVERTISE"] for s in self.agents().values()]
        self.assertEqual(len(set(adverts)), len(adverts))
        for name, svc in self.agents().items():
            host_port = svc["environment"]["FLOE_ADVERTISE"].rsplit(":", 1)[1]
            self.assertIn(f"{host_port}:9092", svc["ports"], name)
            self.assertEqual(svc["environment"]["FLOE_S3_ENDPOINT"], "http://minio:9000")

    def test_prometheus_scrapes_every_agent_with_its_zone(self):
        job = next(j for j in self.prom["scrape_configs"] if j["job_name"] == "floe-agent")
        scraped = {}
        for group in job["static_configs"]:
            for t in group["targets"]:
                scraped[t.split(":")[0]] = group["labels"]["zone"]
        expected = {n: s["environment"]["FLOE_ZONE"] for n, s in self.agents().items()}
        self.assertEqual(scraped, expected)
        for job_name, svc in (("floe-metadata", "metadata"), ("floe-compactor", "compactor")):
            j = next(j for j in self.prom["scrape_configs"] if j["job_name"] == job_name)
            port = self.compose["services"][svc]["environment"]["FLOE_ADMIN_LISTEN"].rsplit(":", 1)[1]
            self.assertEqual(j["static_configs"][0]["targets"], [f"{svc}:{port}"])

    def test_grafana_provisions_the_dashboard(self):
        vols = self.compose["services"]["grafana"]["volumes"]
        self.assertTrue(any(v.startswith("./grafana/floe-dashboard.json:") for v in vols))
        prov = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/floe.yml").read_text())
        path = prov["providers"][0]["options"]["path"]
        self.assertTrue(any(v.split(":")[1].startswith(path) for v in vols if "dashboard.json" in v))


class Kubernetes(unittest.TestCase):
    def agent_deployments(self):
        return {d["metadata"]["name"]: d for _, d in k8s_docs()
                if d["kind"] == "Deployment" and d["metadata"]["labels"].get("app.kubernetes.io/name") == "floe-agent"}

    def test_one_agent_deployment_per_zone_pinned_to_it(self):
        deps = self.agent_deployments()
        self.assertGreaterEqual(len(deps), 2)
        zones = set()
        for name, d in deps.items():
            with self.subTest(deployment=name):
                spec = d["spec"]["template"]["spec"]
                terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
                self.assertEqual(len(terms), 1)
                (expr,) = terms[0]["matchExpressions"]
                self.assertEqual(expr["key"], "topology.kubernetes.io/zone")
                self.assertEqual(expr["operator"], "In")
                (zone,) = expr["values"]
                env = env_of(spec["containers"][0])
                self.assertEqual(env["FLOE_ZONE"], zone, "FLOE_ZONE must equal the zone the pod is pinned to")
                self.assertEqual(d["metadata"]["labels"]["floe.io/zone"], zone)
                self.assertEqual(d["spec"]["selector"]["matchLabels"]["floe.io/zone"], zone)
                self.assertGreaterEqual(spec["terminationGracePeriodSeconds"], 60)
                self.assertEqual(spec["containers"][0]["readinessProbe"]["httpGet"]["path"], "/readyz")
                self.assertNotIn("volumes", spec, "agents are stateless")
                zones.add(zone)
        self.assertEqual(len(zones), len(deps), "one Deployment per zone")
        services = {d["spec"]["selector"].get("floe.io/zone") for _, d in k8s_docs() if d["kind"] == "Service"}
        self.assertLessEqual(zones, services, "a bootstrap Service per zone")

    def test_no_statefulsets_and_non_root(self):
        for fname, d in k8s_docs():
            self.assertNotEqual(d["kind"], "StatefulSet", fname)
            if d["kind"] == "Deployment":
                sc = d["spec"]["template"]["spec"]["securityContext"]
                self.assertIs(sc["runAsNonRoot"], True, fname)

    def test_kustomization_lists_every_manifest(self):
        kust = yaml.safe_load((K8S / "kustomization.yaml").read_text())
        files = {f.name for f in K8S.glob("*.yaml")} - {"kustomization.yaml"}
        self.assertEqual(set(kust["resources"]), files)

    def test_database_url_from_secret(self):
        for fname, d in k8s_docs():
            if d["kind"] == "Deployment" and d["metadata"]["name"] == "floe-metadata":
                env = d["spec"]["template"]["spec"]["containers"][0]["env"]
                url = next(e for e in env if e["name"] == "FLOE_DATABASE_URL")
                self.assertIn("secretKeyRef", url["valueFrom"])
                return
        self.fail("no floe-metadata Deployment")


if __name__ == "__main__":
    unittest.main()
