# Who may talk to whom. Kafka: only client_cidrs (and the per-zone NLBs). Zone cache port:
# agents to agents only. Admin ports: monitoring_cidrs and the load balancers' health checks.
# PostgreSQL: only the metadata service.

resource "aws_security_group" "agent" {
  name        = "${var.name}-agent"
  description = "Floe agents"
  vpc_id      = var.vpc_id
  tags        = merge(local.tags, { Name = "${var.name}-agent", "floe:role" = "agent" })
}

resource "aws_security_group" "agent_lb" {
  name        = "${var.name}-agent-lb"
  description = "Floe per-zone Kafka bootstrap load balancers"
  vpc_id      = var.vpc_id
  tags        = merge(local.tags, { Name = "${var.name}-agent-lb", "floe:role" = "agent" })
}

resource "aws_security_group" "metadata" {
  name        = "${var.name}-metadata"
  description = "Floe metadata service"
  vpc_id      = var.vpc_id
  tags        = merge(local.tags, { Name = "${var.name}-metadata", "floe:role" = "metadata" })
}

resource "aws_security_group" "metadata_lb" {
  name        = "${var.name}-metadata-lb"
  description = "Floe metadata service internal load balancer"
  vpc_id      = var.vpc_id
  tags        = merge(local.tags, { Name = "${var.name}-metadata-lb", "floe:role" = "metadata" })
}

resource "aws_security_group" "compactor" {
  name        = "${var.name}-compactor"
  description = "Floe compactor"
  vpc_id      = var.vpc_id
  tags        = merge(local.tags, { Name = "${var.name}-compactor", "floe:role" = "compactor" })
}

resource "aws_security_group" "database" {
  name        = "${var.name}-database"
  description = "Floe metadata database (RDS PostgreSQL): reachable from the metadata service only"
  vpc_id      = var.vpc_id
  tags        = merge(local.tags, { Name = "${var.name}-database", "floe:role" = "database" })
}

# --- agents ------------------------------------------------------------------------------------

resource "aws_vpc_security_group_ingress_rule" "agent_kafka_clients" {
  for_each          = toset(var.client_cidrs)
  security_group_id = aws_security_group.agent.id
  description       = "Kafka from clients (after bootstrap, clients connect to each agent directly)"
  ip_protocol       = "tcp"
  from_port         = var.kafka_port
  to_port           = var.kafka_port
  cidr_ipv4         = each.value
  tags              = local.tags
}

resource "aws_vpc_security_group_ingress_rule" "agent_kafka_lb" {
  security_group_id            = aws_security_group.agent.id
  description                  = "Kafka from the per-zone bootstrap load balancers"
  ip_protocol                  = "tcp"
  from_port                    = var.kafka_port
  to_port                      = var.kafka_port
  referenced_security_group_id = aws_security_group.agent_lb.id
  tags                         = local.tags
}

resource "aws_vpc_security_group_ingress_rule" "agent_admin_lb" {
  security_group_id            = aws_security_group.agent.id
  description                  = "Health checks (/readyz) from the per-zone load balancers"
  ip_protocol                  = "tcp"
  from_port                    = local.admin_port.agent
  to_port                      = local.admin_port.agent
  referenced_security_group_id = aws_security_group.agent_lb.id
  tags                         = local.tags
}

resource "aws_vpc_security_group_ingress_rule" "agent_admin_monitoring" {
  for_each          = toset(var.monitoring_cidrs)
  security_group_id = aws_security_group.agent.id
  description       = "Admin port (/metrics) from monitoring"
  ip_protocol       = "tcp"
  from_port         = local.admin_port.agent
  to_port           = local.admin_port.agent
  cidr_ipv4         = each.value
  tags              = local.tags
}

resource "aws_vpc_security_group_ingress_rule" "agent_cache_peers" {
  security_group_id            = aws_security_group.agent.id
  description                  = "Zone cache between agents"
  ip_protocol                  = "tcp"
  from_port                    = var.cache_port
  to_port                      = var.cache_port
  referenced_security_group_id = aws_security_group.agent.id
  tags                         = local.tags
}

resource "aws_vpc_security_group_egress_rule" "agent_cache_peers" {
  security_group_id            = aws_security_group.agent.id
  description                  = "Zone cache between agents"
  ip_protocol                  = "tcp"
  from_port                    = var.cache_port
  to_port                      = var.cache_port
  referenced_security_group_id = aws_security_group.agent.id
  tags                         = local.tags
}

resource "aws_vpc_security_group_egress_rule" "agent_metadata" {
  security_group_id            = aws_security_group.agent.id
  description                  = "Metadata service API through its load balancer"
  ip_protocol                  = "tcp"
  from_port                    = local.metadata_port
  to_port                      = local.metadata_port
  referenced_security_group_id = aws_security_group.metadata_lb.id
  tags                         = local.tags
}

resource "aws_vpc_security_group_egress_rule" "agent_https" {
  security_group_id = aws_security_group.agent.id
  description       = "HTTPS: S3 (via the gateway endpoint), ECR, CloudWatch Logs, SSM, package repositories"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
  tags              = local.tags
}

# --- per-zone load balancers ---------------------------------------------------------------------

resource "aws_vpc_security_group_ingress_rule" "agent_lb_clients" {
  for_each          = toset(var.client_cidrs)
  security_group_id = aws_security_group.agent_lb.id
  description       = "Kafka bootstrap from clients"
  ip_protocol       = "tcp"
  from_port         = var.kafka_port
  to_port           = var.kafka_port
  cidr_ipv4         = each.value
  tags              = local.tags
}

resource "aws_vpc_security_group_egress_rule" "agent_lb_targets" {
  for_each = {
    kafka = var.kafka_port
    admin = local.admin_port.agent
  }
  security_group_id            = aws_security_group.agent_lb.id
  description                  = "To agents (${each.key})"
  ip_protocol                  = "tcp"
  from_port                    = each.value
  to_port                      = each.value
  referenced_security_group_id = aws_security_group.agent.id
  tags                         = local.tags
}

# --- metadata service --------------------------------------------------------------------------

resource "aws_vpc_security_group_ingress_rule" "metadata_lb_clients" {
  for_each = {
    agent     = aws_security_group.agent.id
    compactor = aws_security_group.compactor.id
  }
  security_group_id            = aws_security_group.metadata_lb.id
  description                  = "Metadata API from ${each.key}s"
  ip_protocol                  = "tcp"
  from_port                    = local.metadata_port
  to_port                      = local.metadata_port
  referenced_security_group_id = each.value
  tags                         = local.tags
}

resource "aws_vpc_security_group_egress_rule" "metadata_lb_targets" {
  for_each = {
    api   = local.metadata_port
    admin = local.admin_port.metadata
  }
  security_group_id            = aws_security_group.metadata_lb.id
  description                  = "To metadata instances (${each.key})"
  ip_protocol                  = "tcp"
  from_port                    = each.value
  to_port                      = each.value
  referenced_security_group_id = aws_security_group.metadata.id
  tags                         = local.tags
}

resource "aws_vpc_security_group_ingress_rule" "metadata_from_lb" {
  for_each = {
    api   = local.metadata_port
    admin = local.admin_port.metadata
  }
  security_group_id            = aws_security_group.metadata.id
  description                  = "From the metadata load balancer (${each.key})"
  ip_protocol                  = "tcp"
  from_port                    = each.value
  to_port                      = each.value
  referenced_security_group_id = aws_security_group.metadata_lb.id
  tags                         = local.tags
}

# The instance coordinating consumer groups receives group calls forwarded by the others.
resource "aws_vpc_security_group_ingress_rule" "metadata_peers" {
  security_group_id            = aws_security_group.metadata.id
  description                  = "Group calls forwarded between metadata instances"
  ip_protocol                  = "tcp"
  from_port                    = local.metadata_port
  to_port                      = local.metadata_port
  referenced_security_group_id = aws_security_group.metadata.id
  tags                         = local.tags
}

resource "aws_vpc_security_group_egress_rule" "metadata_peers" {
  security_group_id            = aws_security_group.metadata.id
  description                  = "Group calls forwarded to the coordinating metadata instance"
  ip_protocol                  = "tcp"
  from_port                    = local.metadata_port
  to_port                      = local.metadata_port
  referenced_security_group_id = aws_security_group.metadata.id
  tags                         = local.tags
}

resource "aws_vpc_security_group_ingress_rule" "metadata_admin_monitoring" {
  for_each          = toset(var.monitoring_cidrs)
  security_group_id = aws_security_group.metadata.id
  description       = "Admin port (/metrics) from monitoring"
  ip_protocol       = "tcp"
  from_port         = local.admin_port.metadata
  to_port           = local.admin_port.metadata
  cidr_ipv4         = each.value
  tags              = local.tags
}

resource "aws_vpc_security_group_egress_rule" "metadata_database" {
  security_group_id            = aws_security_group.metadata.id
  description                  = "PostgreSQL"
  ip_protocol                  = "tcp"
  from_port                    = local.db_port
  to_port                      = local.db_port
  referenced_security_group_id = aws_security_group.database.id
  tags                         = local.tags
}

resource "aws_vpc_security_group_egress_rule" "metadata_https" {
  security_group_id = aws_security_group.metadata.id
  description       = "HTTPS: Secrets Manager, ECR, CloudWatch Logs, SSM, package repositories"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
  tags              = local.tags
}

# --- database: the metadata service only ---------------------------------------------------------

resource "aws_vpc_security_group_ingress_rule" "database_from_metadata" {
  security_group_id            = aws_security_group.database.id
  description                  = "PostgreSQL from the metadata service only"
  ip_protocol                  = "tcp"
  from_port                    = local.db_port
  to_port                      = local.db_port
  referenced_security_group_id = aws_security_group.metadata.id
  tags                         = local.tags
}

# --- compactor ---------------------------------------------------------------------------------

resource "aws_vpc_security_group_ingress_rule" "compactor_admin_monitoring" {
  for_each          = toset(var.monitoring_cidrs)
  security_group_id = aws_security_group.compactor.id
  description       = "Admin port (/metrics) from monitoring"
  ip_protocol       = "tcp"
  from_port         = local.admin_port.compactor
  to_port           = local.admin_port.compactor
  cidr_ipv4         = each.value
  tags              = local.tags
}

resource "aws_vpc_security_group_egress_rule" "compactor_metadata" {
  security_group_id            = aws_security_group.compactor.id
  description                  = "Metadata service API through its load balancer"
  ip_protocol                  = "tcp"
  from_port                    = local.metadata_port
  to_port                      = local.metadata_port
  referenced_security_group_id = aws_security_group.metadata_lb.id
  tags                         = local.tags
}

resource "aws_vpc_security_group_egress_rule" "compactor_https" {
  security_group_id = aws_security_group.compactor.id
  description       = "HTTPS: S3 (via the gateway endpoint), ECR, CloudWatch Logs, SSM, package repositories"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
  tags              = local.tags
}
