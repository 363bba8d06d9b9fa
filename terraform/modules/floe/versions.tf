terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # 5.40+: security groups on network load balancers (aws_lb.security_groups).
      version = ">= 5.40.0, < 7.0.0"
    }
  }
}
