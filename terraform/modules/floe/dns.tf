# Private DNS: <zone>.kafka.<domain> is the bootstrap address of each zone; metadata.<domain>
# is the metadata service.

resource "aws_route53_zone" "private" {
  count   = var.route53_zone_id == null ? 1 : 0
  name    = var.domain
  comment = "Floe ${var.name}"

  vpc {
    vpc_id = var.vpc_id
  }

  tags = local.tags
}

locals {
  route53_zone_id = var.route53_zone_id != null ? var.route53_zone_id : aws_route53_zone.private[0].zone_id
  bootstrap_hosts = { for zone in keys(var.zones) : zone => "${zone}.kafka.${var.domain}" }
}

resource "aws_route53_record" "bootstrap" {
  for_each = var.zones

  zone_id = local.route53_zone_id
  name    = local.bootstrap_hosts[each.key]
  type    = "A"

  alias {
    name                   = aws_lb.agent[each.key].dns_name
    zone_id                = aws_lb.agent[each.key].zone_id
    evaluate_target_health = true
  }
}

resource "aws_route53_record" "metadata" {
  zone_id = local.route53_zone_id
  name    = local.metadata_host
  type    = "A"

  alias {
    name                   = aws_lb.metadata.dns_name
    zone_id                = aws_lb.metadata.zone_id
    evaluate_target_health = true
  }
}
