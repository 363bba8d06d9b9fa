# A complete three-zone Floe cluster: a VPC with a private and a public subnet per zone (one
# route table per private subnet, so the S3 gateway endpoint serves each zone's agents), one
# NAT gateway for image pulls and package installs, and the floe module.

data "aws_availability_zones" "available" {
  #checkov:skip=CKV_AWS_394:The example deliberately takes the first three zone names in sorted order; a zone added later sorts after them and does not change the set.
  state = "available"

  filter {
    name   = "opt-in-status"
    values = ["opt-in-not-required"]
  }
}

locals {
  zones        = slice(sort(data.aws_availability_zones.available.names), 0, 3)
  client_cidrs = length(var.client_cidrs) > 0 ? var.client_cidrs : [var.vpc_cidr]
  monitoring   = length(var.monitoring_cidrs) > 0 ? var.monitoring_cidrs : [var.vpc_cidr]
  tags         = merge(var.tags, { "floe:example" = "three-az" })
}

resource "aws_vpc" "this" {
  cidr_block           = var.vpc_cidr
  enable_dns_support   = true
  enable_dns_hostnames = true
  tags                 = merge(local.tags, { Name = var.name })
}

# Deny everything on the default security group (it is not used).
resource "aws_default_security_group" "this" {
  vpc_id = aws_vpc.this.id
  tags   = merge(local.tags, { Name = "${var.name}-default-unused" })
}

resource "aws_flow_log" "this" {
  vpc_id               = aws_vpc.this.id
  traffic_type         = "REJECT"
  log_destination_type = "cloud-watch-logs"
  log_destination      = aws_cloudwatch_log_group.flow.arn
  iam_role_arn         = aws_iam_role.flow.arn
  tags                 = local.tags
}

resource "aws_cloudwatch_log_group" "flow" {
  #checkov:skip=CKV_AWS_158:Flow-log rejects of a demo VPC; CloudWatch default encryption suffices and a KMS key would add a cost the example avoids.
  name              = "/floe/${var.name}/vpc-flow-rejects"
  retention_in_days = 365
  tags              = local.tags
}

data "aws_iam_policy_document" "flow_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["vpc-flow-logs.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "flow" {
  statement {
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogGroups", "logs:DescribeLogStreams"]
    resources = ["${aws_cloudwatch_log_group.flow.arn}:*"]
  }
}

resource "aws_iam_role" "flow" {
  name               = "${var.name}-vpc-flow-logs"
  assume_role_policy = data.aws_iam_policy_document.flow_assume.json
  tags               = local.tags
}

resource "aws_iam_role_policy" "flow" {
  name   = "write-flow-logs"
  role   = aws_iam_role.flow.id
  policy = data.aws_iam_policy_document.flow.json
}

resource "aws_subnet" "private" {
  for_each          = { for i, zone in local.zones : zone => i }
  vpc_id            = aws_vpc.this.id
  availability_zone = each.key
  cidr_block        = cidrsubnet(var.vpc_cidr, 4, each.value)
  tags              = merge(local.tags, { Name = "${var.name}-private-${each.key}" })
}

resource "aws_subnet" "public" {
  for_each          = { for i, zone in local.zones : zone => i }
  vpc_id            = aws_vpc.this.id
  availability_zone = each.key
  cidr_block        = cidrsubnet(var.vpc_cidr, 8, 240 + each.value)
  tags              = merge(local.tags, { Name = "${var.name}-public-${each.key}" })
}

resource "aws_internet_gateway" "this" {
  vpc_id = aws_vpc.this.id
  tags   = merge(local.tags, { Name = var.name })
}

resource "aws_eip" "nat" {
  domain = "vpc"
  tags   = merge(local.tags, { Name = "${var.name}-nat" })
}

# One NAT gateway keeps the example cheap. It only carries image pulls, package installs and
# AWS API calls: S3 traffic takes the gateway endpoint. Put one per zone for production.
resource "aws_nat_gateway" "this" {
  allocation_id = aws_eip.nat.id
  subnet_id     = aws_subnet.public[local.zones[0]].id
  tags          = merge(local.tags, { Name = var.name })

  depends_on = [aws_internet_gateway.this]
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.this.id
  tags   = merge(local.tags, { Name = "${var.name}-public" })

  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.this.id
  }
}

resource "aws_route_table_association" "public" {
  for_each       = aws_subnet.public
  subnet_id      = each.value.id
  route_table_id = aws_route_table.public.id
}

resource "aws_route_table" "private" {
  for_each = aws_subnet.private
  vpc_id   = aws_vpc.this.id
  tags     = merge(local.tags, { Name = "${var.name}-private-${each.key}" })

  route {
    cidr_block     = "0.0.0.0/0"
    nat_gateway_id = aws_nat_gateway.this.id
  }
}

resource "aws_route_table_association" "private" {
  for_each       = aws_subnet.private
  subnet_id      = each.value.id
  route_table_id = aws_route_table.private[each.key].id
}

module "floe" {
  source = "../../modules/floe"

  name       = var.name
  tags       = local.tags
  vpc_id     = aws_vpc.this.id
  floe_image = var.floe_image

  zones = { for zone in local.zones : zone => {
    subnet_id      = aws_subnet.private[zone].id
    route_table_id = aws_route_table.private[zone].id
  } }
  metadata_subnet_ids = [for zone in local.zones : aws_subnet.private[zone].id]
  database_subnet_ids = [for zone in local.zones : aws_subnet.private[zone].id]

  agents_per_zone      = var.agents_per_zone
  agent_instance_type  = var.agent_instance_type
  db_instance_class    = var.db_instance_class
  deletion_protection  = var.deletion_protection
  bucket_force_destroy = !var.deletion_protection

  client_cidrs     = local.client_cidrs
  monitoring_cidrs = local.monitoring
  domain           = "${var.name}.internal"
}
