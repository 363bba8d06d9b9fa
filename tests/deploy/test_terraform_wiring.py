"""Issue 9: the Terraform module's wiring, asserted on the parsed HCL (the AWS provider cannot be
downloaded here, so `terraform validate` cannot run; docs/deploy-aws.md tells users to run it).

Asserted: one agent Auto Scaling group, target group and NLB per zone (cross-zone off, one
subnet each), IMDSv2 required, /readyz health checks, a termination lifecycle hook; the S3
gateway endpoint on every agent route table; the zone cache peer endpoint on cache_port,
advertised at the private IP and opened agent-to-agent only; PostgreSQL reachable only from
the metadata security group; the bucket's public access block, encryption, lifecycle and versioning;
IAM limited to the prefix; per-zone DNS records and client snippets; typed, described
variables; tags on every taggable resource.
"""

from __future__ import annotations

import re
import unittest
from pathlib import Path

from hcl import block, expr, load_dir

ROOT = Path(__file__).resolve().parents[2]
MODULE = load_dir(ROOT / "terraform" / "modules" / "floe")
EXAMPLE = load_dir(ROOT / "terraform" / "examples" / "three-az")

# Resource types without a `tags` argument (or tagged through another mechanism).
UNTAGGABLE = {
    "aws_s3_bucket_public_access_block",
    "aws_s3_bucket_ownership_controls",
    "aws_s3_bucket_server_side_encryption_configuration",
    "aws_s3_bucket_versioning",
    "aws_s3_bucket_lifecycle_configuration",
    "aws_s3_bucket_policy",
    "aws_iam_role_policy",
    "aws_iam_role_policy_attachment",
    "aws_route53_record",
    "aws_route_table_association",
    "aws_autoscaling_group",  # tagged with `tag` blocks, checked separately
}


class AgentsPerZone(unittest.TestCase):
    def test_each_agent_resource_is_one_per_zone(self):
        for rtype in ("aws_launch_template", "aws_autoscaling_group", "aws_lb", "aws_lb_target_group", "aws_lb_listener"):
            with self.subTest(rtype=rtype):
                self.assertEqual(expr(MODULE.resource(rtype, "agent")["for_each"]), "var.zones")

    def test_asg_pinned_to_its_zone_subnet_and_lb(self):
        asg = MODULE.resource("aws_autoscaling_group", "agent")
        self.assertEqual(asg["vpc_zone_identifier"], ["${each.value.subnet_id}"])
        self.assertEqual(asg["target_group_arns"], ["${aws_lb_target_group.agent[each.key].arn}"])
        self.assertEqual(asg["health_check_type"], "ELB", "unready agents must be replaced")
        lt = block(asg, "launch_template")
        self.assertEqual(expr(lt["id"]), "aws_launch_template.agent[each.key].id")

    def test_graceful_termination(self):
        asg = MODULE.resource("aws_autoscaling_group", "agent")
        hook = block(asg, "initial_lifecycle_hook")
        self.assertEqual(hook["lifecycle_transition"], "autoscaling:EC2_INSTANCE_TERMINATING")
        self.assertEqual(hook["default_result"], "CONTINUE")
        tmpl = (ROOT / "terraform/modules/floe/templates/user_data.sh.tftpl").read_text()
        self.assertIn("autoscaling/target-lifecycle-state", tmpl)
        self.assertIn("complete-lifecycle-action", tmpl)
        self.assertIn("--lifecycle-hook-name drain", tmpl)

    def test_nlb_per_zone_without_cross_zone(self):
        lb = MODULE.resource("aws_lb", "agent")
        self.assertEqual(lb["load_balancer_type"], "network")
        self.assertIs(lb["internal"], True)
        self.assertIs(lb["enable_cross_zone_load_balancing"], False)
        self.assertEqual(lb["subnets"], ["${each.value.subnet_id}"])
        listener = MODULE.resource("aws_lb_listener", "agent")
        self.assertEqual(expr(listener["load_balancer_arn"]), "aws_lb.agent[each.key].arn")

    def test_health_checks_on_readyz(self):
        for name in ("agent", "metadata"):
            with self.subTest(tg=name):
                tg = MODULE.resource("aws_lb_target_group", name)
                self.assertIs(tg["preserve_client_ip"], False)
                hc = block(tg, "health_check")
                self.assertEqual(hc["path"], "/readyz")
                self.assertEqual(hc["protocol"], "HTTP")

    def test_imdsv2_required_everywhere(self):
        lts = MODULE.of_type("aws_launch_template")
        self.assertEqual(set(lts), {"agent", "metadata", "compactor"})
        for name, lt in lts.items():
            with self.subTest(lt=name):
                md = block(lt, "metadata_options")
                self.assertEqual(md["http_tokens"], "required")
                self.assertEqual(md["http_put_response_hop_limit"], 1)

    def test_agent_gets_its_zone(self):
        env = expr(MODULE.locals["agent_env"])
        self.assertIn("FLOE_ZONE = zone", env)
        self.assertTrue(env.startswith("{for zone in keys(var.zones)"), env)
        lt = MODULE.resource("aws_launch_template", "agent")
        self.assertIn("env           = local.agent_env[each.key]", MODULE.files["agents.tf"])
        self.assertIn("templates/user_data.sh.tftpl", expr(lt["user_data"]))

    def test_agents_share_the_zone_cache_on_cache_port(self):
        env = expr(MODULE.locals["agent_env"])
        self.assertIn('FLOE_CACHE_LISTEN = "0.0.0.0:${var.cache_port}"', env)
        # Advertised at the instance's private IP, on the port FLOE_CACHE_LISTEN binds (unless
        # agent_env turned the endpoint off).
        tmpl = (ROOT / "terraform/modules/floe/templates/user_data.sh.tftpl").read_text()
        self.assertIn('%{ if lookup(env, "FLOE_CACHE_LISTEN", "off") != "off" ~}', tmpl)
        self.assertIn('FLOE_CACHE_ADVERTISE=$PRIVATE_IP:${split(":", env["FLOE_CACHE_LISTEN"])[1]}', tmpl)
        # The security group opens that same port, between agents only.
        for kind in ("aws_vpc_security_group_ingress_rule", "aws_vpc_security_group_egress_rule"):
            rule = MODULE.resource(kind, "agent_cache_peers")
            self.assertEqual(expr(rule["from_port"]), "var.cache_port", kind)
            self.assertEqual(expr(rule["to_port"]), "var.cache_port", kind)
            self.assertEqual(expr(rule["referenced_security_group_id"]), "aws_security_group.agent.id", kind)
        # agent_env may turn the endpoint off but not move it off the opened port.
        validations = str(MODULE.variables["agent_env"]["validation"])
        self.assertIn('"FLOE_CACHE_ADVERTISE"', validations)
        self.assertIn('lookup(var.agent_env, "FLOE_CACHE_LISTEN", "off") == "off"', validations)

    def test_dns_per_zone_and_outputs(self):
        rec = MODULE.resource("aws_route53_record", "bootstrap")
        self.assertEqual(expr(rec["for_each"]), "var.zones")
        self.assertIn('"${zone}.kafka.${var.domain}"', expr(MODULE.locals["bootstrap_hosts"]))
        alias = block(rec, "alias")
        self.assertEqual(expr(alias["name"]), "aws_lb.agent[each.key].dns_name")
        snippet = expr(MODULE.outputs["client_config"]["value"])
        for needle in ("client.id=floe_az=${zone}", "client.rack=${zone}", "librdkafka", "java", "franz_go", "kgo.Rack"):
            self.assertIn(needle, snippet)
        self.assertIn("bootstrap_servers", MODULE.outputs)


class Storage(unittest.TestCase):
    def test_gateway_endpoint_on_agent_route_tables(self):
        ep = MODULE.resource("aws_vpc_endpoint", "s3")
        self.assertEqual(ep["vpc_endpoint_type"], "Gateway")
        self.assertEqual(expr(ep["route_table_ids"]), "local.s3_route_table_ids")
        self.assertIn("[for z in values(var.zones) : z.route_table_id]", expr(MODULE.locals["s3_route_table_ids"]))
        self.assertRegex(ep["service_name"], r"com\.amazonaws\.\$\{local\.region\}\.s3")

    def test_example_gives_each_zone_its_own_route_table(self):
        zones = expr(EXAMPLE.modules["floe"]["zones"])
        self.assertIn("route_table_id = aws_route_table.private[zone].id", zones)
        self.assertEqual(expr(EXAMPLE.resource("aws_route_table", "private")["for_each"]), "aws_subnet.private")
        self.assertIn("slice(sort(data.aws_availability_zones.available.names), 0, 3)", expr(EXAMPLE.locals["zones"]))

    def test_bucket_hardening(self):
        pab = MODULE.resource("aws_s3_bucket_public_access_block", "objects")
        for k in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"):
            self.assertIs(pab[k], True, k)
        sse = block(block(MODULE.resource("aws_s3_bucket_server_side_encryption_configuration", "objects"), "rule"), "apply_server_side_encryption_by_default")
        self.assertIn("aws:kms", expr(sse["sse_algorithm"]))
        self.assertIn("AES256", expr(sse["sse_algorithm"]))
        rule = block(MODULE.resource("aws_s3_bucket_lifecycle_configuration", "objects"), "rule")
        self.assertEqual(block(rule, "abort_incomplete_multipart_upload")["days_after_initiation"], 1)
        ver = block(MODULE.resource("aws_s3_bucket_versioning", "objects"), "versioning_configuration")
        self.assertEqual(ver["status"], "Disabled")
        self.assertIn("No versioning, on purpose", MODULE.files["storage.tf"])

    def test_iam_limited_to_prefix(self):
        text = MODULE.files["iam.tf"]
        self.assertIn('resources = ["${aws_s3_bucket.objects.arn}/${var.object_prefix}/*"]', text)
        self.assertIn('values   = ["${var.object_prefix}/*"]', text)
        self.assertNotRegex(text, r'"s3:\*"')
        self.assertNotIn('"${aws_s3_bucket.objects.arn}/*"', text)
        self.assertIn("aws_iam_instance_profile", {t for t, _ in MODULE.resources})


class Database(unittest.TestCase):
    def test_rds_settings(self):
        db = MODULE.resource("aws_db_instance", "this")
        self.assertIs(db["manage_master_user_password"], True)
        self.assertNotIn("password", db)
        self.assertIs(db["storage_encrypted"], True)
        self.assertIs(db["publicly_accessible"], False)
        self.assertEqual(db["vpc_security_group_ids"], ["${aws_security_group.database.id}"])
        for k in ("engine_version", "instance_class", "multi_az", "allocated_storage"):
            self.assertTrue(expr(db[k]).startswith("var.") or "var." in expr(db[k]), k)

    def test_database_reachable_only_from_metadata(self):
        sg = MODULE.resource("aws_security_group", "database")
        self.assertNotIn("ingress", sg, "no inline ingress on the database security group")
        rules = [r for r in MODULE.of_type("aws_vpc_security_group_ingress_rule").values() if expr(r["security_group_id"]) == "aws_security_group.database.id"]
        self.assertEqual(len(rules), 1, rules)
        for r in rules:
            self.assertEqual(expr(r["referenced_security_group_id"]), "aws_security_group.metadata.id")
            for k in ("cidr_ipv4", "cidr_ipv6", "prefix_list_id"):
                self.assertNotIn(k, r)
        # Nothing else refers to the database security group as a source.
        for kind in ("aws_vpc_security_group_ingress_rule", "aws_vpc_security_group_egress_rule"):
            for name, r in MODULE.of_type(kind).items():
                if expr(r.get("referenced_security_group_id", "")) == "aws_security_group.database.id":
                    self.assertEqual(expr(r["security_group_id"]), "aws_security_group.metadata.id", name)


class SecurityGroups(unittest.TestCase):
    def rules(self, sg: str):
        return {n: r for n, r in MODULE.of_type("aws_vpc_security_group_ingress_rule").items() if expr(r["security_group_id"]) == f"aws_security_group.{sg}.id"}

    def test_kafka_port_only_from_clients_and_lb(self):
        for name, r in self.rules("agent").items():
            port = expr(r["from_port"])
            if port == "var.kafka_port":
                self.assertTrue(expr(r.get("cidr_ipv4", "")) == "each.value" and expr(r["for_each"]) == "toset(var.client_cidrs)" or expr(r.get("referenced_security_group_id", "")) == "aws_security_group.agent_lb.id", name)
            elif port == "var.cache_port":
                self.assertEqual(expr(r["referenced_security_group_id"]), "aws_security_group.agent.id", name)
            elif port == "local.admin_port.agent":
                self.assertTrue(expr(r.get("for_each", "")) == "toset(var.monitoring_cidrs)" or expr(r.get("referenced_security_group_id", "")) == "aws_security_group.agent_lb.id", name)
            else:
                self.fail(f"unexpected agent ingress {name}: {r}")

    def test_no_world_open_ingress(self):
        for name, r in MODULE.of_type("aws_vpc_security_group_ingress_rule").items():
            self.assertNotIn("0.0.0.0/0", str(r), name)
        for v in ("client_cidrs", "monitoring_cidrs"):
            self.assertIn('c != "0.0.0.0/0"', str(MODULE.variables[v]["validation"]))


class Hygiene(unittest.TestCase):
    def test_variables_typed_and_described(self):
        for mod in (MODULE, EXAMPLE):
            for name, v in mod.variables.items():
                with self.subTest(module=str(mod.path.name), variable=name):
                    self.assertIn("type", v)
                    self.assertTrue(v.get("description"), "description")
        required = {n for n, v in MODULE.variables.items() if "default" not in v}
        self.assertEqual(required, {"name", "vpc_id", "zones", "metadata_subnet_ids", "database_subnet_ids", "floe_image", "client_cidrs"})
        for name in required:
            self.assertIn("validation", MODULE.variables[name], name)

    def test_every_resource_tagged(self):
        for mod in (MODULE, EXAMPLE):
            for (rtype, name), body in mod.resources.items():
                if rtype in UNTAGGABLE:
                    continue
                with self.subTest(resource=f"{rtype}.{name}"):
                    self.assertIn("tags", body)
        for name, asg in MODULE.of_type("aws_autoscaling_group").items():
            self.assertIn("dynamic", asg, name)
            self.assertIn("local.tags", str(asg["dynamic"]), name)

    def test_log_groups_per_role(self):
        lg = MODULE.resource("aws_cloudwatch_log_group", "this")
        self.assertIn('"agent", "metadata", "compactor"', expr(lg["for_each"]))
        self.assertEqual(expr(lg["retention_in_days"]), "var.log_retention_days")

    def test_checkov_skips_are_justified(self):
        for mod in (MODULE, EXAMPLE):
            for fname, text in mod.files.items():
                for m in re.finditer(r"#checkov:skip=([A-Z0-9_]+)(:?)(.*)", text):
                    with self.subTest(file=fname, check=m.group(1)):
                        self.assertEqual(m.group(2), ":")
                        self.assertGreater(len(m.group(3).strip()), 30, "a skip needs a reason")


if __name__ == "__main__":
    unittest.main()
