# The compactor: its own small group (one instance): retention, folding WAL chunks into
# segments, deletion of unreferenced and orphan objects. A second instance would stand by
# (one holds the lease in the metadata store).

locals {
  compactor_env = {
    FLOE_METADATA_URL = local.metadata_url
    FLOE_OBJECT_STORE = local.object_store_url
    FLOE_ADMIN_LISTEN = "0.0.0.0:${local.admin_port.compactor}"
    AWS_REGION        = local.region
    RUST_LOG          = "info"
  }
}

resource "aws_launch_template" "compactor" {
  name                   = "${var.name}-compactor"
  description            = "Floe compactor"
  image_id               = local.ami_id
  instance_type          = var.compactor_instance_type
  update_default_version = true
  vpc_security_group_ids = [aws_security_group.compactor.id]
  ebs_optimized          = true

  iam_instance_profile {
    arn = aws_iam_instance_profile.this["compactor"].arn
  }

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  monitoring {
    enabled = true
  }

  block_device_mappings {
    device_name = "/dev/xvda"
    ebs {
      volume_size           = 20
      volume_type           = "gp3"
      encrypted             = true
      delete_on_termination = true
    }
  }

  user_data = base64encode(templatefile("${path.module}/templates/user_data.sh.tftpl", {
    role          = "compactor"
    image         = var.floe_image
    region        = local.region
    ecr_registry  = local.ecr_registry
    log_group     = aws_cloudwatch_log_group.this["compactor"].name
    env           = local.compactor_env
    kafka_port    = var.kafka_port
    asg_name      = ""
    stop_timeout  = 60
    db_secret_arn = ""
    db_host       = ""
    db_port       = 0
    db_name       = ""
  }))

  tag_specifications {
    resource_type = "instance"
    tags          = merge(local.tags, { Name = "${var.name}-compactor", "floe:role" = "compactor" })
  }

  tag_specifications {
    resource_type = "volume"
    tags          = merge(local.tags, { "floe:role" = "compactor" })
  }

  tags = merge(local.tags, { "floe:role" = "compactor" })
}

resource "aws_autoscaling_group" "compactor" {
  name                = "${var.name}-compactor"
  vpc_zone_identifier = local.compactor_subnet_ids
  min_size            = 1
  desired_capacity    = 1
  max_size            = 1
  health_check_type   = "EC2"

  launch_template {
    id      = aws_launch_template.compactor.id
    version = aws_launch_template.compactor.latest_version
  }

  # One compactor: replace it outright (min_healthy_percentage 0), never run two at once.
  instance_refresh {
    strategy = "Rolling"
    preferences {
      min_healthy_percentage = 0
    }
  }

  dynamic "tag" {
    for_each = merge(local.tags, { Name = "${var.name}-compactor", "floe:role" = "compactor" })
    content {
      key                 = tag.key
      value               = tag.value
      propagate_at_launch = false
    }
  }
}
