{{ header("#") }}
#
# The inputs of one region. The root module fills them from the phase spec;
# every AWS resource here takes `region = var.aws_region` (AWS provider 6),
# so one provider configuration serves every region.

variable "project" {
  description = "The project: the app's key prefix."
  type        = string
}

variable "name" {
  description = "Prefix of every resource name: project, phase and region."
  type        = string
}

variable "aws_region" {
  description = "The AWS region this instance of the module runs in."
  type        = string
}

variable "primary" {
  description = "True in the region that holds the PostgreSQL writer."
  type        = bool
}

variable "replica_kms_key_arn" {
  description = "KMS key in this region for encrypted cross-region read replicas (secondary regions)."
  type        = string
  default     = null
}

variable "network" {
  description = "This region's VPC: private subnets for the tasks and databases, public subnets for the load balancer, the CIDR blocks allowed to reach it."
  type = object({
    vpc_id            = string
    cidr_block        = optional(string)
    subnet_ids        = list(string)
    public_subnet_ids = list(string)
    route_table_ids   = optional(list(string), [])
    allowed_cidrs     = list(string)
  })
}

variable "queues" {
  description = "The workers' BullMQ queues. In cluster mode each gets its own hash tag as its prefix, so each queue's keys share a slot and the queues spread over the shards."
  type        = list(string)
  default     = []
}

variable "runs_queues" {
  description = "The phase runs BullMQ queues (app.queues, or a worker that uses redis): only then do the services get BullMQ's variables."
  type        = bool
  default     = false
}

variable "peer_cidrs" {
  description = "The other regions' VPC CIDR blocks this region's databases talk to over the peering: in the primary region, the secondaries' (their PgBouncers reach the writer); in a secondary, the primary's (the writer)."
  type        = list(string)
  default     = []
}

variable "secrets" {
  description = "ARNs of the phase's secrets in this region: created once in the primary region and replicated to this one by Secrets Manager."
  type = object({
    app_db             = string
    database_url_write = string
    database_url_read  = string
    pgbouncer_admin    = string
    redis_auth         = string
  })
}

variable "redis_auth_token" {
  description = "ElastiCache's auth token: the value of the redis_auth secret, which ElastiCache takes as an argument."
  type        = string
  sensitive   = true
}

variable "rds_ca_bundle_url" {
  description = "The RDS certificate authorities PgBouncer and the bootstrap task verify the database with."
  type        = string
}

variable "pg_proxy" {
  description = "PgBouncer's endpoint per role, the same as on Compose and the local target: one name, a port for writes and one for reads."
  type = object({
    name       = string
    write_port = number
    read_port  = number
  })
}

variable "edge" {
  description = "The application load balancer: its HTTPS certificate (none: HTTP only) and idle timeout, longer than the app's WebSocket ping interval."
  type = object({
    certificate_arn = string
    idle_timeout    = number
  })
}

variable "bootstrap_image" {
  description = "The image of the one-shot task that creates the application role on the writer (primary region): PostgreSQL's, for psql."
  type        = string
}

variable "postgres" {
  description = "RDS PostgreSQL: the writer (primary region) and its read replicas."
  type = object({
    engine_version        = string
    family                = string
    instance_class        = string
    allocated_storage     = number
    max_allocated_storage = number
    multi_az              = bool
    database              = string
    read_replicas         = number
    source_db_arn         = string
    writer_address        = string
    deletion_protection   = bool
    apply_immediately     = bool
    performance_insights  = bool
    backup_retention_days = number
    backup_window         = string
    parameters = list(object({
      name         = string
      value        = string
      apply_method = string
    }))
  })
}

variable "redis" {
  description = "ElastiCache for Redis: one node, a replicated group with automatic failover, or cluster mode."
  type = object({
    node_type               = string
    engine_version          = string
    family                  = string
    cluster_mode            = string
    num_cache_clusters      = number
    num_node_groups         = number
    replicas_per_node_group = number
    automatic_failover      = bool
    multi_az                = bool
    maxmemory_policy        = string
    apply_immediately       = bool
    # A global datastore: on in every region; a secondary region's copy
    # joins the datastore (global_id) and sends writes to the primary
    # region's Redis (writer_endpoint).
    global_datastore = bool
    global_id        = string
    writer_endpoint  = string
  })
}

variable "queue_redis" {
  description = "BullMQ's own ElastiCache group (queue_redis in the spec): noeviction, a primary and a replica in another zone; null where the queues live on the phase's Redis."
  type = object({
    node_type = string
  })
  default = null
}

variable "redis_maxmemory_policy_override" {
  description = "noeviction for the phase's Redis while the queues move onto their own (the root module's variable of the same name); null: the spec's policy."
  type        = string
  default     = null
}

variable "redis_cluster_mode_override" {
  description = "\"compatible\" (apply 1) or \"enabled\" (apply 2) of a move into cluster mode with the earlier phase's files; null otherwise."
  type        = string
  default     = null
}

variable "pgbouncer" {
  description = "PgBouncer on ECS Fargate: its tasks and the roles it logs in as (the pool settings are the rendered pgbouncer.ini's)."
  type = object({
    image      = string
    instances  = number
    cpu        = number
    memory     = number
    nofile     = number
    user       = string
    admin_user = string
  })
}

variable "services" {
  description = "The app and the phase's services and workers, on ECS Fargate."
  type = list(object({
    name          = string
    image         = string
    replicas      = number
    cpu           = number
    memory        = number
    port          = number
    health_path   = string
    uses_postgres = bool
    uses_redis    = bool
  }))
}

variable "alarms" {
  description = "The capacity model's alarm thresholds (percent), the phase and the next one, and where alarms notify."
  type = object({
    warning         = number
    critical        = number
    phase           = string
    next            = string
    plan            = string
    max_connections = number
    app_service     = string
    # The WebSocket connections the region's app replicas hold at most.
    websocket_connections = number
    topic_arn             = string
    redis = object({
      cpu_warning  = number
      cpu_critical = number
      burstable    = bool
      memory_bytes = number
    })
  })
}
