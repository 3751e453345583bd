{{ header("#") }}
#
# What a team supplies: the network of each region and, where the spec does
# not fix them, sizes. Nothing secret is an input: passwords are generated
# (random_password) and kept in AWS Secrets Manager.

variable "networks" {
  description = "Per region ({{ region_names|join(", ")|comment }}): the VPC, at least two private subnets in different availability zones, and the CIDR blocks allowed to reach the app."
  type = map(object({
    vpc_id        = string
    subnet_ids    = list(string)
    allowed_cidrs = list(string)
  }))

  validation {
    condition     = length(setsubtract({{ region_names }}, keys(var.networks))) == 0
    error_message = "networks needs an entry for every region of the phase: {{ region_names|join(", ")|comment }}."
  }

  validation {
    condition     = alltrue([for n in values(var.networks) : can(regex("^vpc-[0-9a-f]{8,17}$", n.vpc_id))])
    error_message = "Each vpc_id must look like vpc-0123456789abcdef0."
  }

  validation {
    condition     = alltrue([for n in values(var.networks) : length(n.subnet_ids) >= 2 && alltrue([for s in n.subnet_ids : can(regex("^subnet-[0-9a-f]{8,17}$", s))])])
    error_message = "Each region needs at least two subnet ids (subnet-0123...), in different availability zones."
  }

  validation {
    condition     = alltrue([for n in values(var.networks) : length(n.allowed_cidrs) > 0 && alltrue([for c in n.allowed_cidrs : can(cidrhost(c, 0)) && c != "0.0.0.0/0"])])
    error_message = "allowed_cidrs must be CIDR blocks such as 10.0.0.0/16, and not 0.0.0.0/0: put a load balancer in front instead."
  }
}

variable "postgres_instance_class" {
  description = "RDS instance class of the writer and its replicas; scaleplan chose it from postgres.primary cpu and memory."
  type        = string
  default     = {{ postgres_class }}

  validation {
    condition     = can(regex("^db\\.[a-z0-9]+\\.[a-z0-9]+$", var.postgres_instance_class))
    error_message = "postgres_instance_class must be an RDS instance class such as db.r6g.xlarge."
  }
}

variable "redis_node_types" {
  description = "ElastiCache node type per region; scaleplan chose them from redis.memory_mb."
  type        = map(string)
  default = {
{% for r in regions %}
    {{ r.name|key }} = {{ r.redis.node_type }}
{% endfor %}
  }

  validation {
    condition     = alltrue([for t in values(var.redis_node_types) : can(regex("^cache\\.[a-z0-9]+\\.[a-z0-9]+$", t))])
    error_message = "Each node type must be an ElastiCache node type such as cache.r7g.large."
  }
}

{% if secondary_names %}
variable "replica_kms_keys" {
  description = "Per secondary region ({{ secondary_names|join(", ")|comment }}): the ARN of a KMS key in that region, which RDS needs to encrypt cross-region read replicas."
  type        = map(string)

  validation {
    condition     = length(setsubtract({{ secondary_names }}, keys(var.replica_kms_keys))) == 0 && alltrue([for k in values(var.replica_kms_keys) : startswith(k, "arn:aws:kms:")])
    error_message = "replica_kms_keys needs a KMS key ARN (arn:aws:kms:...) for every secondary region: {{ secondary_names|join(", ")|comment }}."
  }
}

{% endif %}
variable "deletion_protection" {
  description = "Protect the databases from terraform destroy."
  type        = bool
  default     = true
}

variable "apply_immediately" {
  description = "Apply changes to RDS and ElastiCache now rather than in the next maintenance window. The transition plans assume now (each step checked before the next); set false to let a resize wait for the window."
  type        = bool
  default     = true
}

variable "redis_cluster_mode_override" {
  description = "Set to \"compatible\" for the first of the two applies that take Redis into cluster mode without replacing it: apply this phase's files with it, move the clients to the configuration endpoint, then apply the cluster phase's files. See the transition plan."
  type        = string
  default     = null

  validation {
    condition     = var.redis_cluster_mode_override == null || var.redis_cluster_mode_override == "compatible"
    error_message = "redis_cluster_mode_override is null or \"compatible\"."
  }
}

variable "alarm_topic_arn" {
  description = "SNS topic the capacity alarms notify (and clear to); none by default."
  type        = string
  default     = null
}
