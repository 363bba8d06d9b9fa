# One log group per role; each instance writes its container's stderr to a stream named after
# its instance id (Docker's awslogs driver).
resource "aws_cloudwatch_log_group" "this" {
  #checkov:skip=CKV_AWS_338:Retention is var.log_retention_days (30 by default); a year of agent logs is the operator's choice, not a default.
  for_each          = toset(["agent", "metadata", "compactor"])
  name              = "/floe/${var.name}/${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.log_kms_key_arn
  tags              = merge(local.tags, { "floe:role" = each.key })
}
