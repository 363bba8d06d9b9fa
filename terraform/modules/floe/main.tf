# Floe on AWS: S3 bucket, RDS PostgreSQL, the metadata service behind an internal NLB, one agent
# Auto Scaling group and one NLB per availability zone, the compactor, private DNS, logs.
# Files: storage.tf (bucket, endpoint), iam.tf, security_groups.tf, database.tf, metadata.tf,
# agents.tf, compactor.tf, dns.tf, logs.tf. See docs/deploy-aws.md for the picture.

data "aws_region" "current" {}
data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

data "aws_ssm_parameter" "al2023" {
  count = var.ami_id == null ? 1 : 0
  name  = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-${var.architecture}"
}

locals {
  region     = data.aws_region.current.name
  partition  = data.aws_partition.current.partition
  account_id = data.aws_caller_identity.current.account_id
  ami_id     = var.ami_id != null ? var.ami_id : data.aws_ssm_parameter.al2023[0].insecure_value

  tags = merge(var.tags, {
    "floe:cluster" = var.name
    "managed-by"   = "terraform"
  })

  # Fixed names, so user data can name its own Auto Scaling group (lifecycle hook completion)
  # without a dependency cycle.
  agent_asg_names = { for zone in keys(var.zones) : zone => "${var.name}-agent-${zone}" }

  admin_port = {
    agent     = 9644
    metadata  = 9645
    compactor = 9646
  }
  metadata_port = 9091
  db_port       = 5432

  object_store_url = "s3://${aws_s3_bucket.objects.bucket}/${var.object_prefix}"
  metadata_host    = "metadata.${var.domain}"
  metadata_url     = "http://${local.metadata_host}:${local.metadata_port}"

  compactor_subnet_ids = length(var.compactor_subnet_ids) > 0 ? var.compactor_subnet_ids : var.metadata_subnet_ids

  # Route tables that get the S3 gateway endpoint: every agent subnet's, plus any extra.
  s3_route_table_ids = distinct(concat([for z in values(var.zones) : z.route_table_id], var.extra_s3_route_table_ids))

  ecr_registry = can(regex("^[0-9]{12}\\.dkr\\.ecr\\.[a-z0-9-]+\\.amazonaws\\.com/", var.floe_image)) ? split("/", var.floe_image)[0] : ""
}
