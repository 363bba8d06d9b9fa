variable "region" {
  description = "AWS region to deploy into."
  type        = string
  default     = "us-east-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.region))
    error_message = "region must be an AWS region name such as us-east-1."
  }
}

variable "name" {
  description = "Cluster name (prefix of every resource)."
  type        = string
  default     = "floe-demo"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,22}$", var.name))
    error_message = "name must be 2-23 characters of lowercase letters, digits and '-'."
  }
}

variable "floe_image" {
  description = "floe container image built from deploy/Dockerfile and pushed to ECR, pinned by tag or digest."
  type        = string
}

variable "vpc_cidr" {
  description = "CIDR of the VPC this example creates (a /16 or smaller; agents derive their Kafka node id from their address)."
  type        = string
  default     = "10.42.0.0/16"

  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0)) && tonumber(split("/", var.vpc_cidr)[1]) >= 16
    error_message = "vpc_cidr must be a valid CIDR of /16 or smaller."
  }
}

variable "client_cidrs" {
  description = "Who may produce and consume. Default: the VPC itself."
  type        = list(string)
  default     = []
}

variable "monitoring_cidrs" {
  description = "Who may scrape /metrics. Default: the VPC itself."
  type        = list(string)
  default     = []
}

variable "agents_per_zone" {
  description = "Agents in each of the three zones."
  type        = number
  default     = 2

  validation {
    condition     = var.agents_per_zone >= 1
    error_message = "agents_per_zone must be at least 1."
  }
}

variable "agent_instance_type" {
  description = "Agent instance type."
  type        = string
  default     = "m7g.xlarge"
}

variable "db_instance_class" {
  description = "RDS instance class."
  type        = string
  default     = "db.m7g.large"
}

variable "deletion_protection" {
  description = "Protect the database and load balancers from deletion. false makes the example easy to tear down."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags on every resource (provider default_tags and the module's tags)."
  type        = map(string)
  default = {
    project = "floe"
  }
}
