output "bootstrap_servers" {
  description = "Kafka bootstrap string per zone."
  value       = module.floe.bootstrap_servers
}

output "client_config" {
  description = "Client configuration per zone (librdkafka, Java, franz-go, kcat)."
  value       = module.floe.client_config
}

output "metadata_url" {
  description = "Metadata service URL."
  value       = module.floe.metadata_url
}

output "bucket_name" {
  description = "S3 bucket."
  value       = module.floe.bucket_name
}

output "agent_autoscaling_groups" {
  description = "Agent Auto Scaling group per zone."
  value       = module.floe.agent_autoscaling_groups
}

output "log_groups" {
  description = "CloudWatch log group per role."
  value       = module.floe.log_groups
}
