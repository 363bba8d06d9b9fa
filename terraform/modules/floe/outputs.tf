output "bucket_name" {
  description = "S3 bucket holding the cluster's objects."
  value       = aws_s3_bucket.objects.bucket
}

output "object_store_url" {
  description = "The --object-store value of agents and the compactor."
  value       = local.object_store_url
}

output "metadata_url" {
  description = "The --metadata-url value of agents and the compactor."
  value       = local.metadata_url
}

output "database_endpoint" {
  description = "RDS endpoint (host:port)."
  value       = aws_db_instance.this.endpoint
}

output "database_secret_arn" {
  description = "Secrets Manager secret holding the RDS master user and password (managed by RDS)."
  value       = aws_db_instance.this.master_user_secret[0].secret_arn
}

output "agent_autoscaling_groups" {
  description = "Agent Auto Scaling group name per zone."
  value       = { for zone, asg in aws_autoscaling_group.agent : zone => asg.name }
}

output "agent_load_balancers" {
  description = "Per-zone NLB DNS names (the Route 53 records alias them)."
  value       = { for zone, lb in aws_lb.agent : zone => lb.dns_name }
}

output "security_group_ids" {
  description = "Security groups by role, to add rules (e.g. more clients) outside the module."
  value = {
    agent     = aws_security_group.agent.id
    agent_lb  = aws_security_group.agent_lb.id
    metadata  = aws_security_group.metadata.id
    compactor = aws_security_group.compactor.id
    database  = aws_security_group.database.id
  }
}

output "log_groups" {
  description = "CloudWatch log group per role."
  value       = { for role, g in aws_cloudwatch_log_group.this : role => g.name }
}

output "bootstrap_servers" {
  description = "Kafka bootstrap string per zone. A client should use the one of its own zone."
  value       = { for zone, host in local.bootstrap_hosts : zone => "${host}:${var.kafka_port}" }
}

output "client_config" {
  description = "Client configuration per zone for librdkafka (and kcat), the Java client and franz-go. client.id carries floe_az=<zone> and client.rack names the zone, so the cluster answers with agents of that zone only."
  value = { for zone, host in local.bootstrap_hosts : zone => {
    librdkafka = join("\n", [
      "bootstrap.servers=${host}:${var.kafka_port}",
      "client.id=floe_az=${zone}",
      "client.rack=${zone}",
    ])
    java = join("\n", [
      "bootstrap.servers=${host}:${var.kafka_port}",
      "client.id=floe_az=${zone}",
      "client.rack=${zone}",
    ])
    franz_go = join("\n", [
      "kgo.SeedBrokers(\"${host}:${var.kafka_port}\"),",
      "kgo.ClientID(\"floe_az=${zone}\"),",
      "kgo.Rack(\"${zone}\"),",
    ])
    kcat = "kcat -b ${host}:${var.kafka_port} -X client.id=floe_az=${zone} -X client.rack=${zone} -L"
  } }
}
