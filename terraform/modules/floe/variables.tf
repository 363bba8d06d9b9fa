# ---------------------------------------------------------------------------------------------
# Identity and placement
# ---------------------------------------------------------------------------------------------

variable "name" {
  description = "Name of the cluster; prefixes every resource name and is the floe:cluster tag."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,22}$", var.name))
    error_message = "name must be 2-23 characters of lowercase letters, digits and '-', starting with a letter."
  }
}

variable "tags" {
  description = "Tags added to every resource the module creates (on top of floe:cluster and floe:role)."
  type        = map(string)
  default     = {}
}

variable "vpc_id" {
  description = "VPC that holds every subnet below."
  type        = string

  validation {
    condition     = can(regex("^vpc-[0-9a-f]+$", var.vpc_id))
    error_message = "vpc_id must look like vpc-0123456789abcdef0."
  }
}

variable "zones" {
  description = <<-EOT
    The availability zones agents run in, keyed by AZ name (e.g. us-east-1a). Per zone: the
    private subnet of that zone's agents and its network load balancer, and that subnet's route
    table (the S3 gateway endpoint is attached to it, so WAL uploads and fetches never pay NAT
    or cross-zone charges). The AZ name is the zone agents report (--zone) and clients name in
    client.id (floe_az=<zone>) or client.rack.
  EOT
  type = map(object({
    subnet_id      = string
    route_table_id = string
  }))

  validation {
    condition     = length(var.zones) >= 1 && alltrue([for z in keys(var.zones) : can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9][a-z]$", z))])
    error_message = "zones needs at least one entry, keyed by availability-zone name such as us-east-1a."
  }

  validation {
    condition     = alltrue([for z in values(var.zones) : can(regex("^subnet-[0-9a-f]+$", z.subnet_id)) && can(regex("^rtb-[0-9a-f]+$", z.route_table_id))])
    error_message = "Each zone needs subnet_id = subnet-... and route_table_id = rtb-...."
  }
}

variable "metadata_subnet_ids" {
  description = "Private subnets (at least two zones) for the metadata service instances and their internal load balancer."
  type        = list(string)

  validation {
    condition     = length(var.metadata_subnet_ids) >= 2
    error_message = "Give at least two subnets in different zones, so the metadata service survives a zone outage."
  }
}

variable "compactor_subnet_ids" {
  description = "Private subnets for the compactor. Empty: the metadata subnets. Their route tables must carry the S3 gateway endpoint too (see extra_s3_route_table_ids)."
  type        = list(string)
  default     = []
}

variable "database_subnet_ids" {
  description = "Subnets (at least two zones) for the RDS subnet group."
  type        = list(string)

  validation {
    condition     = length(var.database_subnet_ids) >= 2
    error_message = "RDS needs subnets in at least two availability zones."
  }
}

variable "create_s3_gateway_endpoint" {
  description = "Create the S3 gateway VPC endpoint. Set false only if the VPC already has one attached to the agents' route tables (two S3 gateway endpoints cannot share a route table)."
  type        = bool
  default     = true
}

variable "extra_s3_route_table_ids" {
  description = "More route tables to attach the S3 gateway endpoint to (e.g. the compactor's subnets when they are not the agents' subnets)."
  type        = list(string)
  default     = []
}

# ---------------------------------------------------------------------------------------------
# Storage
# ---------------------------------------------------------------------------------------------

variable "bucket_name" {
  description = "Name of the S3 bucket to create. null: a unique name starting with \"<name>-\"."
  type        = string
  default     = null

  validation {
    condition     = var.bucket_name == null || can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "bucket_name must be a valid S3 bucket name."
  }
}

variable "object_prefix" {
  description = "Key prefix of this cluster's objects in the bucket; the IAM policies are limited to it."
  type        = string
  default     = "cluster"

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9._/-]*[A-Za-z0-9]$", var.object_prefix)) && !strcontains(var.object_prefix, "//")
    error_message = "object_prefix must not start or end with '/' nor contain '//'."
  }
}

variable "kms_key_arn" {
  description = "KMS key for bucket encryption (SSE-KMS with an S3 bucket key). null: SSE-S3 (AES-256), which costs nothing per request."
  type        = string
  default     = null
}

variable "bucket_force_destroy" {
  description = "Let terraform destroy delete a non-empty bucket. Keep false in production."
  type        = bool
  default     = false
}

# ---------------------------------------------------------------------------------------------
# Instances
# ---------------------------------------------------------------------------------------------

variable "floe_image" {
  description = "Container image of floe (deploy/Dockerfile), e.g. 123456789012.dkr.ecr.us-east-1.amazonaws.com/floe:0.1.0. ECR images are pulled with the instance role."
  type        = string

  validation {
    condition     = length(var.floe_image) > 0 && !endswith(var.floe_image, ":latest")
    error_message = "floe_image must name a pinned tag or digest, not :latest, so rollbacks are exact."
  }
}

variable "architecture" {
  description = "CPU architecture of every instance: arm64 (Graviton) or x86_64. Must match floe_image and the instance types."
  type        = string
  default     = "arm64"

  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "architecture must be arm64 or x86_64."
  }
}

variable "ami_id" {
  description = "AMI for every instance. null: the latest Amazon Linux 2023 for var.architecture (from SSM). Pin it to control when instances change."
  type        = string
  default     = null
}

variable "agent_instance_type" {
  description = "Instance type of agents. Agents are network- and memory-bound (cache); see docs/deploy-aws.md for sizing."
  type        = string
  default     = "m7g.xlarge"
}

variable "agents_per_zone" {
  description = "Minimum and desired number of agents in each zone."
  type        = number
  default     = 2

  validation {
    condition     = var.agents_per_zone >= 1 && var.agents_per_zone == floor(var.agents_per_zone)
    error_message = "agents_per_zone must be a whole number >= 1."
  }
}

variable "agent_max_per_zone" {
  description = "Maximum number of agents in each zone (room for scaling and rolling replacement)."
  type        = number
  default     = 6

  validation {
    condition     = var.agent_max_per_zone >= 2 && var.agent_max_per_zone == floor(var.agent_max_per_zone)
    error_message = "agent_max_per_zone must be a whole number >= 2 (instance refresh adds one before removing one)."
  }
}

variable "agent_env" {
  description = "Extra FLOE_* settings of agents (docs/configuration.md), e.g. { FLOE_FLUSH_INTERVAL_MS = \"100\" }."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.agent_env) : can(regex("^(FLOE|RUST)_[A-Z0-9_]+$", k))])
    error_message = "agent_env keys must be FLOE_* or RUST_* variables."
  }

  validation {
    condition     = length(setintersection(keys(var.agent_env), ["FLOE_ZONE", "FLOE_NODE_ID", "FLOE_ADVERTISE", "FLOE_LISTEN", "FLOE_ADMIN_LISTEN", "FLOE_METADATA_URL", "FLOE_OBJECT_STORE", "FLOE_CACHE_ADVERTISE"])) == 0
    error_message = "agent_env must not set FLOE_ZONE, FLOE_NODE_ID, FLOE_ADVERTISE, FLOE_LISTEN, FLOE_ADMIN_LISTEN, FLOE_METADATA_URL, FLOE_OBJECT_STORE or FLOE_CACHE_ADVERTISE: the module sets them per zone and instance."
  }

  validation {
    condition     = lookup(var.agent_env, "FLOE_CACHE_LISTEN", "off") == "off"
    error_message = "agent_env may set FLOE_CACHE_LISTEN only to \"off\" (each agent then caches alone); the module listens on cache_port, the port its security group opens."
  }
}

variable "agent_drain_seconds" {
  description = "How long a terminating agent may take to drain (lifecycle hook heartbeat). The agent drains connections for up to 30 s, then seals, uploads and commits; keep this well above the NLB deregistration delay + 30 s."
  type        = number
  default     = 180

  validation {
    condition     = var.agent_drain_seconds >= 90 && var.agent_drain_seconds <= 7200
    error_message = "agent_drain_seconds must be between 90 and 7200."
  }
}

variable "metadata_instance_type" {
  description = "Instance type of the metadata service."
  type        = string
  default     = "c7g.large"
}

variable "metadata_count" {
  description = "Number of metadata service instances (spread over metadata_subnet_ids)."
  type        = number
  default     = 2

  validation {
    condition     = var.metadata_count >= 1 && var.metadata_count <= 16
    error_message = "metadata_count must be between 1 and 16."
  }
}

variable "compactor_instance_type" {
  description = "Instance type of the compactor."
  type        = string
  default     = "m7g.large"
}

variable "enable_ssm" {
  description = "Attach AmazonSSMManagedInstanceCore so operators can open shells with Session Manager (no SSH, no key pairs)."
  type        = bool
  default     = true
}

# ---------------------------------------------------------------------------------------------
# Database
# ---------------------------------------------------------------------------------------------

variable "db_engine_version" {
  description = "RDS PostgreSQL engine version (major, or major.minor)."
  type        = string
  default     = "16"

  validation {
    condition     = can(regex("^1[4-9](\\.[0-9]+)?$", var.db_engine_version))
    error_message = "db_engine_version must be PostgreSQL 14 or newer, e.g. \"16\" or \"16.4\"."
  }
}

variable "db_instance_class" {
  description = "RDS instance class. The sequencer's group commit is the cluster's scaling limit; see docs/deploy-aws.md for sizing."
  type        = string
  default     = "db.m7g.large"

  validation {
    condition     = startswith(var.db_instance_class, "db.")
    error_message = "db_instance_class must be an RDS class such as db.m7g.large."
  }
}

variable "db_multi_az" {
  description = "Run RDS Multi-AZ (a synchronous standby in another zone). Offsets and the index live here: keep true in production."
  type        = bool
  default     = true
}

variable "db_allocated_storage_gib" {
  description = "Initial RDS storage (gp3), GiB."
  type        = number
  default     = 100

  validation {
    condition     = var.db_allocated_storage_gib >= 20 && var.db_allocated_storage_gib <= 65536
    error_message = "db_allocated_storage_gib must be between 20 and 65536."
  }
}

variable "db_max_allocated_storage_gib" {
  description = "Storage autoscaling ceiling, GiB (>= db_allocated_storage_gib)."
  type        = number
  default     = 500

  validation {
    condition     = var.db_max_allocated_storage_gib >= 20
    error_message = "db_max_allocated_storage_gib must be at least 20."
  }
}

variable "db_backup_retention_days" {
  description = "Days of automated RDS backups (point-in-time recovery window)."
  type        = number
  default     = 7

  validation {
    condition     = var.db_backup_retention_days >= 1 && var.db_backup_retention_days <= 35
    error_message = "db_backup_retention_days must be between 1 and 35."
  }
}

variable "deletion_protection" {
  description = "Protect the database and the load balancers from deletion (terraform destroy then fails until it is set false and applied)."
  type        = bool
  default     = true
}

variable "db_kms_key_arn" {
  description = "KMS key for RDS storage and the master-password secret. null: the AWS-managed keys."
  type        = string
  default     = null
}

# ---------------------------------------------------------------------------------------------
# Network access, DNS, logs
# ---------------------------------------------------------------------------------------------

variable "client_cidrs" {
  description = "CIDR blocks of Kafka clients; the only sources allowed on the Kafka port."
  type        = list(string)

  validation {
    condition     = length(var.client_cidrs) > 0 && alltrue([for c in var.client_cidrs : can(cidrhost(c, 0)) && c != "0.0.0.0/0"])
    error_message = "client_cidrs must be valid CIDR blocks, and not 0.0.0.0/0."
  }
}

variable "monitoring_cidrs" {
  description = "CIDR blocks allowed on the admin ports (/metrics, /healthz, /readyz), e.g. the Prometheus hosts."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.monitoring_cidrs : can(cidrhost(c, 0)) && c != "0.0.0.0/0"])
    error_message = "monitoring_cidrs must be valid CIDR blocks, and not 0.0.0.0/0."
  }
}

variable "kafka_port" {
  description = "Kafka port of agents and of the per-zone load balancers."
  type        = number
  default     = 9092

  validation {
    condition     = var.kafka_port > 1023 && var.kafka_port < 65536
    error_message = "kafka_port must be between 1024 and 65535 (floe runs as a non-root user)."
  }
}

variable "cache_port" {
  description = "Port of the zone cache peer endpoint (agent-to-agent HTTP: an agent reads a block from the agent of its zone that owns it, and pushes freshly written blocks to their owner). Agents listen on 0.0.0.0:<cache_port> (FLOE_CACHE_LISTEN) and advertise <private IP>:<cache_port> (FLOE_CACHE_ADVERTISE); the security groups open it between agents only, and agents only contact agents of their own zone."
  type        = number
  default     = 9093

  validation {
    condition     = var.cache_port > 1023 && var.cache_port < 65536
    error_message = "cache_port must be between 1024 and 65535."
  }
}

variable "domain" {
  description = "Private DNS domain. Records: <zone>.kafka.<domain> per zone and metadata.<domain>."
  type        = string
  default     = "floe.internal"

  validation {
    condition     = can(regex("^([a-z0-9-]+\\.)+[a-z0-9-]+$", var.domain))
    error_message = "domain must be a DNS name such as floe.internal."
  }
}

variable "route53_zone_id" {
  description = "Existing private hosted zone for var.domain. null: create one associated with vpc_id."
  type        = string
  default     = null
}

variable "log_retention_days" {
  description = "CloudWatch Logs retention of every role's log group."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a retention CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, ...)."
  }
}

variable "log_kms_key_arn" {
  description = "KMS key for the CloudWatch log groups. null: CloudWatch's default encryption."
  type        = string
  default     = null
}
