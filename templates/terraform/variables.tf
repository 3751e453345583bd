{{ header("#") }}
#
# What a team supplies: the network of each region and, where the spec does
# not fix them, sizes. Nothing secret is an input: passwords are generated
# (random_password) and kept in AWS Secrets Manager.

variable "networks" {
  description = "Per region ({{ region_names|join(", ")|comment }}): the VPC{% if secondary_names %} and its CIDR block (the regions' blocks must not overlap: they are peered){% endif %}, at least two private subnets and two public subnets in different availability zones{% if secondary_names %}, the route tables of the private subnets (they get a route to the other regions){% endif %}, and the CIDR blocks allowed to reach the load balancer. The private subnets need a way out to HTTPS (a NAT gateway, or VPC endpoints that admit 443 from the tasks) for image pulls, Secrets Manager, logs and the push providers; the VPC needs enableDnsSupport and enableDnsHostnames for the private Cloud Map namespace."
  type = map(object({
    vpc_id            = string
    cidr_block        = optional(string)
    subnet_ids        = list(string)
    public_subnet_ids = list(string)
    route_table_ids   = optional(list(string), [])
    allowed_cidrs     = list(string)
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
    condition     = alltrue([for n in values(var.networks) : length(n.subnet_ids) >= 2 && length(n.public_subnet_ids) >= 2 && alltrue([for s in concat(n.subnet_ids, n.public_subnet_ids) : can(regex("^subnet-[0-9a-f]{8,17}$", s))])])
    error_message = "Each region needs at least two private and two public subnet ids (subnet-0123...), in different availability zones."
  }

  validation {
    condition     = alltrue([for n in values(var.networks) : length(n.allowed_cidrs) > 0 && alltrue([for c in n.allowed_cidrs : can(cidrhost(c, 0))])])
    error_message = "allowed_cidrs must be CIDR blocks such as 203.0.113.0/24 (0.0.0.0/0 for a public app): they reach the load balancer only, never a task."
  }
{% if secondary_names %}

  validation {
    condition     = alltrue([for n in values(var.networks) : can(cidrhost(n.cidr_block, 0)) && length(n.route_table_ids) > 0 && alltrue([for t in n.route_table_ids : can(regex("^rtb-[0-9a-f]{8,17}$", t))])])
    error_message = "With more than one region, each network needs its cidr_block (10.1.0.0/16) and the route table ids (rtb-0123...) of its private subnets: the regions are peered."
  }

  validation {
    condition     = length(distinct([for n in values(var.networks) : n.cidr_block])) == length(var.networks)
    error_message = "The regions' cidr_block values must differ: peered VPCs cannot share an address range."
  }
{% endif %}
}

variable "certificate_arns" {
  description = "Per region, the ARN of an ACM certificate in that region for the load balancer's HTTPS listener. A region without one serves HTTP on port 80 only; with one, port 80 redirects to HTTPS."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k, v in var.certificate_arns : contains({{ region_names }}, k) && startswith(v, "arn:aws:acm:")])
    error_message = "certificate_arns maps a region of the phase ({{ region_names|join(", ")|comment }}) to an ACM certificate ARN (arn:aws:acm:...)."
  }
}

variable "rds_ca_bundle_url" {
  description = "Where PgBouncer and the bootstrap task fetch the RDS certificate authorities at start, to verify the database's certificate (sslmode verify-full). The global bundle covers every region, which a secondary region's PgBouncer needs for the writer."
  type        = string
  default     = "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem"

  validation {
    condition     = startswith(var.rds_ca_bundle_url, "https://")
    error_message = "rds_ca_bundle_url must be an https:// URL."
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
  description = "Takes Redis into cluster mode in place, one change per apply: this phase's files with \"compatible\" (apply 1), then, once the clients use the configuration endpoint, with \"enabled\" (apply 2), then the cluster phase's files without it (apply 3, the shards). See the transition plan."
  type        = string
  default     = null

  validation {
    condition     = var.redis_cluster_mode_override == null || contains(["compatible", "enabled"], coalesce(var.redis_cluster_mode_override, "none"))
    error_message = "redis_cluster_mode_override is null, \"compatible\" or \"enabled\"."
  }
}

variable "redis_maxmemory_policy_override" {
  description = "Keeps the phase's Redis at noeviction for one apply while BullMQ's queues move onto their own Redis (queue_redis): this phase's files with \"noeviction\" (apply 1), then, once no job is left on the phase's Redis, without it (apply 2, the cache's own policy). See the transition plan."
  type        = string
  default     = null

  validation {
    condition     = var.redis_maxmemory_policy_override == null || var.redis_maxmemory_policy_override == "noeviction"
    error_message = "redis_maxmemory_policy_override is null or \"noeviction\"."
  }
}

variable "alarm_topic_arn" {
  description = "SNS topic the capacity alarms notify (and clear to); none by default."
  type        = string
  default     = null
}
