# The object store: WAL objects (and, later, compacted segments) under var.object_prefix.

resource "aws_s3_bucket" "objects" {
  #checkov:skip=CKV_AWS_21:No versioning by design. Keys are never overwritten and deletes follow the metadata; versions would bill deleted objects forever (see the comment on aws_s3_bucket_versioning).
  #checkov:skip=CKV_AWS_144:Cross-region replication is not a Floe default. Objects are useless without the metadata database, so disaster recovery is a separate decision (replicate both or neither).
  #checkov:skip=CKV_AWS_18:Server access logs would record every WAL PUT and fetch GET (several per second per agent) into a second bucket; floe exports object-store request counts as metrics, and CloudTrail data events can be enabled per account.
  #checkov:skip=CKV2_AWS_62:No consumer of S3 event notifications; the metadata service, not S3 events, tracks objects.
  bucket        = var.bucket_name
  bucket_prefix = var.bucket_name == null ? "${var.name}-" : null
  force_destroy = var.bucket_force_destroy
  tags          = merge(local.tags, { "floe:role" = "objects" })
}

resource "aws_s3_bucket_public_access_block" "objects" {
  bucket                  = aws_s3_bucket.objects.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "objects" {
  bucket = aws_s3_bucket.objects.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "objects" {
  bucket = aws_s3_bucket.objects.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = var.kms_key_arn == null ? "AES256" : "aws:kms"
      kms_master_key_id = var.kms_key_arn
    }
    # One KMS call per bucket key instead of per object: with a WAL object every 250 ms per
    # agent, per-object KMS requests would cost more than the PUTs.
    bucket_key_enabled = var.kms_key_arn != null
  }
}

# No versioning, on purpose. Floe never overwrites a key (every WAL object and segment has a
# fresh random key) and deletes objects only when the metadata no longer references them
# (retention, compaction, orphan collection). Versioning would keep every deleted object as a
# non-current version and bill its storage, while protecting nothing that a metadata backup
# (RDS snapshots) does not already need to make the objects meaningful.
resource "aws_s3_bucket_versioning" "objects" {
  bucket = aws_s3_bucket.objects.id
  versioning_configuration {
    status = "Disabled"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "objects" {
  bucket = aws_s3_bucket.objects.id

  # A crashed upload leaves parts that are billed but invisible; drop them after a day.
  rule {
    id     = "abort-incomplete-multipart-uploads"
    status = "Enabled"
    filter {}
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

resource "aws_s3_bucket_policy" "objects" {
  bucket = aws_s3_bucket.objects.id
  policy = data.aws_iam_policy_document.bucket.json

  depends_on = [aws_s3_bucket_public_access_block.objects]
}

data "aws_iam_policy_document" "bucket" {
  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.objects.arn,
      "${aws_s3_bucket.objects.arn}/*",
    ]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

# S3 traffic from the agents' subnets goes through this gateway endpoint: no NAT gateway
# processing charge, no cross-zone transfer, and no charge for the endpoint itself.
resource "aws_vpc_endpoint" "s3" {
  count             = var.create_s3_gateway_endpoint ? 1 : 0
  vpc_id            = var.vpc_id
  service_name      = "com.amazonaws.${local.region}.s3"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = local.s3_route_table_ids
  tags              = merge(local.tags, { Name = "${var.name}-s3", "floe:role" = "objects" })
}
