# The metadata service: a small Auto Scaling group spread over zones, behind an internal NLB
# (metadata.<domain>:9091). Instances are stateless; several share the database.

locals {
  metadata_env = {
    FLOE_LISTEN       = "0.0.0.0:${local.metadata_port}"
    FLOE_ADMIN_LISTEN = "0.0.0.0:${local.admin_port.metadata}"
    AWS_REGION        = local.region
    RUST_LOG          = "info"
  }
}

resource "aws_launch_template" "metadata" {
  name                   = "${var.name}-metadata"
  description            = "Floe metadata service"
  image_id               = local.ami_id
  instance_type          = var.metadata_instance_type
  update_default_version = true
  vpc_security_group_ids = [aws_security_group.metadata.id]
  ebs_optimized          = true

  iam_instance_profile {
    arn = aws_iam_instance_profile.this["metadata"].arn
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
    role          = "metadata"
    image         = var.floe_image
    region        = local.region
    ecr_registry  = local.ecr_registry
    log_group     = aws_cloudwatch_log_group.this["metadata"].name
    env           = local.metadata_env
    kafka_port    = var.kafka_port
    asg_name      = ""
    stop_timeout  = 30
    db_secret_arn = aws_db_instance.this.master_user_secret[0].secret_arn
    db_host       = aws_db_instance.this.address
    db_port       = local.db_port
    db_name       = aws_db_instance.this.db_name
  }))

  tag_specifications {
    resource_type = "instance"
    tags          = merge(local.tags, { Name = "${var.name}-metadata", "floe:role" = "metadata" })
  }

  tag_specifications {
    resource_type = "volume"
    tags          = merge(local.tags, { "floe:role" = "metadata" })
  }

  tags = merge(local.tags, { "floe:role" = "metadata" })
}

resource "aws_lb" "metadata" {
  #checkov:skip=CKV_AWS_150:Deletion protection follows var.deletion_protection (true by default in the module; the example turns it off to make teardown easy).
  #checkov:skip=CKV_AWS_91:NLB access logs exist only for TLS listeners; this is a plain TCP listener inside the VPC.
  name               = "${var.name}-metadata"
  internal           = true
  load_balancer_type = "network"
  subnets            = var.metadata_subnet_ids
  security_groups    = [aws_security_group.metadata_lb.id]

  # On: agents in a zone without a healthy metadata instance must still reach one. Commit and
  # index traffic is small (kilobytes per WAL object), so its cross-zone cost is negligible.
  enable_cross_zone_load_balancing = true
  enable_deletion_protection       = var.deletion_protection

  tags = merge(local.tags, { "floe:role" = "metadata" })
}

resource "aws_lb_target_group" "metadata" {
  name                 = "${var.name}-metadata"
  port                 = local.metadata_port
  protocol             = "TCP"
  target_type          = "instance"
  vpc_id               = var.vpc_id
  deregistration_delay = 30
  # Targets see the NLB's address, not the client's: the security-group rules that reference
  # the NLB's security group then cover both traffic and health checks without ambiguity.
  preserve_client_ip = false

  health_check {
    protocol            = "HTTP"
    port                = tostring(local.admin_port.metadata)
    path                = "/readyz"
    interval            = 10
    healthy_threshold   = 2
    unhealthy_threshold = 2
  }

  tags = merge(local.tags, { "floe:role" = "metadata" })
}

resource "aws_lb_listener" "metadata" {
  load_balancer_arn = aws_lb.metadata.arn
  port              = local.metadata_port
  protocol          = "TCP"

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.metadata.arn
  }

  tags = merge(local.tags, { "floe:role" = "metadata" })
}

resource "aws_autoscaling_group" "metadata" {
  name                      = "${var.name}-metadata"
  vpc_zone_identifier       = var.metadata_subnet_ids
  min_size                  = var.metadata_count
  desired_capacity          = var.metadata_count
  max_size                  = var.metadata_count + 1
  target_group_arns         = [aws_lb_target_group.metadata.arn]
  health_check_type         = "ELB"
  health_check_grace_period = 120

  launch_template {
    id      = aws_launch_template.metadata.id
    version = aws_launch_template.metadata.latest_version
  }

  instance_refresh {
    strategy = "Rolling"
    preferences {
      min_healthy_percentage = 100
      max_healthy_percentage = 200
      instance_warmup        = 60
    }
  }

  dynamic "tag" {
    for_each = merge(local.tags, { Name = "${var.name}-metadata", "floe:role" = "metadata" })
    content {
      key                 = tag.key
      value               = tag.value
      propagate_at_launch = false
    }
  }
}
