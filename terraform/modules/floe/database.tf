# RDS PostgreSQL: topics, offsets, the offset index, producer and group state. Reachable only
# from the metadata service's security group. The master password is generated and kept by
# AWS Secrets Manager (manage_master_user_password): it never appears in Terraform state.

locals {
  db_family = "postgres${split(".", var.db_engine_version)[0]}"
}

resource "aws_db_subnet_group" "this" {
  name       = "${var.name}-metadata"
  subnet_ids = var.database_subnet_ids
  tags       = merge(local.tags, { "floe:role" = "database" })
}

resource "aws_db_parameter_group" "this" {
  name_prefix = "${var.name}-"
  family      = local.db_family
  description = "Floe metadata database"
  tags        = merge(local.tags, { "floe:role" = "database" })

  # The metadata service connects with sslmode=require (rustls); refuse anything else.
  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }

  # Log statements slower than 250 ms: a slow group commit shows up here first.
  parameter {
    name  = "log_min_duration_statement"
    value = "250"
  }

  lifecycle {
    create_before_destroy = true
  }
}

data "aws_iam_policy_document" "rds_monitoring_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["monitoring.rds.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "rds_monitoring" {
  name               = "${var.name}-rds-monitoring"
  assume_role_policy = data.aws_iam_policy_document.rds_monitoring_assume.json
  tags               = merge(local.tags, { "floe:role" = "database" })
}

resource "aws_iam_role_policy_attachment" "rds_monitoring" {
  role       = aws_iam_role.rds_monitoring.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}

resource "aws_db_instance" "this" {
  #checkov:skip=CKV_AWS_293:Deletion protection follows var.deletion_protection (true by default in the module; the example turns it off to make teardown easy).
  #checkov:skip=CKV_AWS_161:the metadata service authenticates with the Secrets Manager managed password; IAM token authentication is not implemented in it yet.
  identifier     = "${var.name}-metadata"
  engine         = "postgres"
  engine_version = var.db_engine_version
  instance_class = var.db_instance_class
  port           = local.db_port

  db_name                       = "floe"
  username                      = "floe"
  manage_master_user_password   = true
  master_user_secret_kms_key_id = var.db_kms_key_arn

  allocated_storage     = var.db_allocated_storage_gib
  max_allocated_storage = max(var.db_max_allocated_storage_gib, var.db_allocated_storage_gib)
  storage_type          = "gp3"
  storage_encrypted     = true
  kms_key_id            = var.db_kms_key_arn

  multi_az               = var.db_multi_az
  db_subnet_group_name   = aws_db_subnet_group.this.name
  vpc_security_group_ids = [aws_security_group.database.id]
  parameter_group_name   = aws_db_parameter_group.this.name
  publicly_accessible    = false

  backup_retention_period   = var.db_backup_retention_days
  copy_tags_to_snapshot     = true
  deletion_protection       = var.deletion_protection
  skip_final_snapshot       = false
  final_snapshot_identifier = "${var.name}-metadata-final"

  auto_minor_version_upgrade      = true
  allow_major_version_upgrade     = false
  apply_immediately               = false
  enabled_cloudwatch_logs_exports = ["postgresql", "upgrade"]
  performance_insights_enabled    = true
  performance_insights_kms_key_id = var.db_kms_key_arn
  monitoring_interval             = 60
  monitoring_role_arn             = aws_iam_role.rds_monitoring.arn

  tags = merge(local.tags, { "floe:role" = "database" })
}
