# One role per role of Floe. Agents and the compactor may touch only objects under
# <bucket>/<object_prefix>/; the metadata service has no S3 access but may read its database
# secret. Every role may write its own log group.

data "aws_iam_policy_document" "ec2_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

locals {
  roles = toset(["agent", "metadata", "compactor"])
}

resource "aws_iam_role" "this" {
  for_each           = local.roles
  name               = "${var.name}-${each.key}"
  assume_role_policy = data.aws_iam_policy_document.ec2_assume.json
  tags               = merge(local.tags, { "floe:role" = each.key })
}

resource "aws_iam_instance_profile" "this" {
  for_each = local.roles
  name     = "${var.name}-${each.key}"
  role     = aws_iam_role.this[each.key].name
  tags     = merge(local.tags, { "floe:role" = each.key })
}

resource "aws_iam_role_policy_attachment" "ssm" {
  for_each   = var.enable_ssm ? local.roles : toset([])
  role       = aws_iam_role.this[each.key].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"
}

resource "aws_iam_role_policy_attachment" "ecr" {
  for_each   = local.ecr_registry != "" ? local.roles : toset([])
  role       = aws_iam_role.this[each.key].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly"
}

data "aws_iam_policy_document" "objects" {
  for_each = toset(["agent", "compactor"])

  # Agents write WAL objects and read ranges of them; the compactor also deletes (retention,
  # compaction, orphans) and lists (orphan collection).
  statement {
    sid       = "Objects"
    actions   = each.key == "agent" ? ["s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload"] : ["s3:PutObject", "s3:GetObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
    resources = ["${aws_s3_bucket.objects.arn}/${var.object_prefix}/*"]
  }

  statement {
    sid       = "ListPrefix"
    actions   = ["s3:ListBucket", "s3:ListBucketMultipartUploads"]
    resources = [aws_s3_bucket.objects.arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${var.object_prefix}/*"]
    }
  }

  dynamic "statement" {
    for_each = var.kms_key_arn == null ? [] : [var.kms_key_arn]
    content {
      sid       = "BucketKey"
      actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
      resources = [statement.value]
    }
  }

  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = ["${aws_cloudwatch_log_group.this[each.key].arn}:*"]
  }
}

resource "aws_iam_role_policy" "objects" {
  for_each = toset(["agent", "compactor"])
  name     = "objects-under-prefix"
  role     = aws_iam_role.this[each.key].id
  policy   = data.aws_iam_policy_document.objects[each.key].json
}

# Agents complete their own termination lifecycle hook once they have drained.
data "aws_iam_policy_document" "agent_lifecycle" {
  statement {
    sid       = "CompleteOwnLifecycleHook"
    actions   = ["autoscaling:CompleteLifecycleAction", "autoscaling:RecordLifecycleActionHeartbeat"]
    resources = [for name in values(local.agent_asg_names) : "arn:${local.partition}:autoscaling:${local.region}:${local.account_id}:autoScalingGroup:*:autoScalingGroupName/${name}"]
  }
}

resource "aws_iam_role_policy" "agent_lifecycle" {
  name   = "complete-lifecycle-hook"
  role   = aws_iam_role.this["agent"].id
  policy = data.aws_iam_policy_document.agent_lifecycle.json
}

data "aws_iam_policy_document" "metadata" {
  statement {
    sid       = "DatabaseSecret"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_db_instance.this.master_user_secret[0].secret_arn]
  }

  dynamic "statement" {
    for_each = var.db_kms_key_arn == null ? [] : [var.db_kms_key_arn]
    content {
      sid       = "DatabaseSecretKey"
      actions   = ["kms:Decrypt"]
      resources = [statement.value]
    }
  }

  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = ["${aws_cloudwatch_log_group.this["metadata"].arn}:*"]
  }
}

resource "aws_iam_role_policy" "metadata" {
  name   = "database-secret"
  role   = aws_iam_role.this["metadata"].id
  policy = data.aws_iam_policy_document.metadata.json
}
