# Agents: one launch template, Auto Scaling group, target group and network load balancer per
# availability zone. The zone of every agent is explicit (the group's only subnet) and is the
# --zone it reports. Clients of a zone bootstrap through their zone's NLB (cross-zone load
# balancing off), then talk to the agents of their zone directly.

locals {
  agent_env = { for zone in keys(var.zones) : zone => merge({
    FLOE_METADATA_URL = local.metadata_url
    FLOE_OBJECT_STORE = local.object_store_url
    FLOE_ZONE         = zone
    FLOE_LISTEN       = "0.0.0.0:${var.kafka_port}"
    FLOE_ADMIN_LISTEN = "0.0.0.0:${local.admin_port.agent}"
    # Zone cache peer endpoint on the port the security group opens agent-to-agent; the user
    # data advertises it at the instance's private IP (FLOE_CACHE_ADVERTISE).
    FLOE_CACHE_LISTEN = "0.0.0.0:${var.cache_port}"
    AWS_REGION        = local.region
    RUST_LOG          = "info"
  }, var.agent_env) }

  zone_short = { for zone in keys(var.zones) : zone => substr(replace(zone, "-", ""), max(0, length(replace(zone, "-", "")) - 8), 8) }

  # The agent drains connections for up to 30 s before it seals and commits.
  agent_stop_timeout = 60
}

resource "aws_launch_template" "agent" {
  for_each = var.zones

  name                   = "${var.name}-agent-${each.key}"
  description            = "Floe agent in ${each.key}"
  image_id               = local.ami_id
  instance_type          = var.agent_instance_type
  update_default_version = true
  vpc_security_group_ids = [aws_security_group.agent.id]
  ebs_optimized          = true

  iam_instance_profile {
    arn = aws_iam_instance_profile.this["agent"].arn
  }

  # IMDSv2 only. Hop limit 1: floe runs with host networking, nothing else needs IMDS.
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
    instance_metadata_tags      = "enabled"
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
    role          = "agent"
    image         = var.floe_image
    region        = local.region
    ecr_registry  = local.ecr_registry
    log_group     = aws_cloudwatch_log_group.this["agent"].name
    env           = local.agent_env[each.key]
    kafka_port    = var.kafka_port
    asg_name      = local.agent_asg_names[each.key]
    stop_timeout  = local.agent_stop_timeout
    db_secret_arn = ""
    db_host       = ""
    db_port       = 0
    db_name       = ""
  }))

  tag_specifications {
    resource_type = "instance"
    tags          = merge(local.tags, { Name = "${var.name}-agent-${each.key}", "floe:role" = "agent", "floe:zone" = each.key })
  }

  tag_specifications {
    resource_type = "volume"
    tags          = merge(local.tags, { "floe:role" = "agent", "floe:zone" = each.key })
  }

  tags = merge(local.tags, { "floe:role" = "agent", "floe:zone" = each.key })
}

resource "aws_lb" "agent" {
  #checkov:skip=CKV_AWS_152:Cross-zone load balancing is off on purpose: each zone has its own NLB so that a client bootstrap never crosses a zone (zone-aware routing, no cross-zone charges).
  #checkov:skip=CKV_AWS_150:Deletion protection follows var.deletion_protection (true by default in the module; the example turns it off to make teardown easy).
  #checkov:skip=CKV_AWS_91:NLB access logs exist only for TLS listeners; these are plain TCP Kafka listeners.
  for_each = var.zones

  # Load balancer names are at most 32 characters: "<name>-" + the last 8 characters of the
  # zone without dashes, e.g. "floe-prod-useast1a" for us-east-1a.
  name               = "${var.name}-${local.zone_short[each.key]}"
  internal           = true
  load_balancer_type = "network"
  subnets            = [each.value.subnet_id]
  security_groups    = [aws_security_group.agent_lb.id]

  # One subnet, one zone: a client's bootstrap connection never leaves its zone.
  enable_cross_zone_load_balancing = false
  enable_deletion_protection       = var.deletion_protection

  tags = merge(local.tags, { "floe:role" = "agent", "floe:zone" = each.key })
}

resource "aws_lb_target_group" "agent" {
  for_each = var.zones

  name        = "${var.name}-${local.zone_short[each.key]}"
  port        = var.kafka_port
  protocol    = "TCP"
  target_type = "instance"
  vpc_id      = var.vpc_id

  # Long enough for connections to move away before the agent shuts down (the lifecycle hook
  # waits for it).
  deregistration_delay   = 30
  connection_termination = false
  # Targets see the NLB's address, not the client's: the security-group rules that reference
  # the NLB's security group then cover both traffic and health checks without ambiguity.
  preserve_client_ip = false

  health_check {
    protocol            = "HTTP"
    port                = tostring(local.admin_port.agent)
    path                = "/readyz"
    interval            = 10
    healthy_threshold   = 2
    unhealthy_threshold = 2
  }

  tags = merge(local.tags, { "floe:role" = "agent", "floe:zone" = each.key })
}

resource "aws_lb_listener" "agent" {
  for_each = var.zones

  load_balancer_arn = aws_lb.agent[each.key].arn
  port              = var.kafka_port
  protocol          = "TCP"

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.agent[each.key].arn
  }

  tags = merge(local.tags, { "floe:role" = "agent", "floe:zone" = each.key })
}

resource "aws_autoscaling_group" "agent" {
  for_each = var.zones

  name                = local.agent_asg_names[each.key]
  vpc_zone_identifier = [each.value.subnet_id]
  min_size            = var.agents_per_zone
  desired_capacity    = var.agents_per_zone
  max_size            = max(var.agent_max_per_zone, var.agents_per_zone + 1)

  # Replace an agent when its NLB health check (/readyz) fails, not only when EC2 says so.
  target_group_arns         = [aws_lb_target_group.agent[each.key].arn]
  health_check_type         = "ELB"
  health_check_grace_period = 120
  default_instance_warmup   = 60

  launch_template {
    id      = aws_launch_template.agent[each.key].id
    version = aws_launch_template.agent[each.key].latest_version
  }

  # Hold a terminating instance until it has drained and committed (floe-drain-watch completes
  # the hook; if it cannot, the group continues after agent_drain_seconds).
  initial_lifecycle_hook {
    name                 = "drain"
    lifecycle_transition = "autoscaling:EC2_INSTANCE_TERMINATING"
    heartbeat_timeout    = var.agent_drain_seconds
    default_result       = "CONTINUE"
  }

  # A new launch template version rolls through the zone one agent at a time, adding the new
  # agent before the old one goes (max_healthy_percentage 200).
  instance_refresh {
    strategy = "Rolling"
    preferences {
      min_healthy_percentage = 100
      max_healthy_percentage = 200
      instance_warmup        = 60
    }
  }

  dynamic "tag" {
    for_each = merge(local.tags, { Name = "${var.name}-agent-${each.key}", "floe:role" = "agent", "floe:zone" = each.key })
    content {
      key                 = tag.key
      value               = tag.value
      propagate_at_launch = false
    }
  }
}
