{{ header("#") }}
#
# ElastiCache for Redis. Where the spec asks for Sentinel, ElastiCache's
# managed failover (automatic_failover_enabled with Multi-AZ) stands in for
# it: AWS runs the failure detection and promotion that sentinels do on
# Compose, and clients follow the primary endpoint instead of asking
# sentinels. Cluster mode maps shards to node groups.

resource "aws_elasticache_subnet_group" "this" {
  region     = var.aws_region
  name       = "${var.name}-redis"
  subnet_ids = var.network.subnet_ids
}

# Two parameter groups, both always declared: ElastiCache keys a group on
# its name, and a group's cluster-enabled value cannot change while a
# replication group uses it. The replication group moves from one to the
# other when Redis goes into cluster mode; neither is ever replaced.
resource "aws_elasticache_parameter_group" "this" {
  region = var.aws_region
  name   = "${var.name}-redis"
  family = var.redis.family

  parameter {
    name  = "maxmemory-policy"
    value = coalesce(var.redis_maxmemory_policy_override, var.redis.maxmemory_policy)
  }
}

resource "aws_elasticache_parameter_group" "cluster" {
  region = var.aws_region
  name   = "${var.name}-redis-cluster"
  family = var.redis.family

  parameter {
    name  = "maxmemory-policy"
    value = coalesce(var.redis_maxmemory_policy_override, var.redis.maxmemory_policy)
  }

  parameter {
    name  = "cluster-enabled"
    value = "yes"
  }
}

locals {
  # The move into cluster mode keeps the replication group (its data and
  # its identity): cluster_mode goes from "disabled" to "compatible" (apply
  # 1, with the cluster parameter group) and to "enabled" (apply 2), both
  # with the earlier phase's files so that nothing else changes in the
  # same modification, as ElastiCache requires; the cluster phase's files
  # then reshard (apply 3). The AWS provider changes cluster_mode in place
  # (aws_elasticache_replication_group, provider 5.59.0 and later;
  # ElastiCache's "Modifying cluster mode" guide: Redis OSS 7.0 or later,
  # a replica and automatic failover).
  cluster_mode = coalesce(var.redis_cluster_mode_override, var.redis.cluster_mode)

  # A secondary region's copy in a global datastore takes its engine, node
  # type, parameters and shards from the datastore (the provider ignores
  # or refuses them on a member: num_node_groups cannot be set).
  global_member = var.redis.global_id != null
}

resource "aws_elasticache_replication_group" "this" {
  region                     = var.aws_region
  replication_group_id       = "${var.name}-redis"
  description                = "Redis of ${var.name}"
  engine                     = "redis"
  engine_version             = local.global_member ? null : var.redis.engine_version
  node_type                  = local.global_member ? null : var.redis.node_type
  port                       = 6379
  parameter_group_name       = local.global_member ? null : (local.cluster_mode == "disabled" ? aws_elasticache_parameter_group.this.name : aws_elasticache_parameter_group.cluster.name)
  subnet_group_name          = aws_elasticache_subnet_group.this.name
  security_group_ids         = [aws_security_group.redis.id]
  cluster_mode               = local.global_member ? null : local.cluster_mode
  num_cache_clusters         = var.redis.num_cache_clusters
  num_node_groups            = local.global_member ? null : var.redis.num_node_groups
  replicas_per_node_group    = var.redis.replicas_per_node_group
  automatic_failover_enabled = var.redis.automatic_failover
  multi_az_enabled           = var.redis.multi_az
  at_rest_encryption_enabled = true
  transit_encryption_enabled = true
  auth_token                 = var.redis_auth_token
  snapshot_retention_limit   = 3
  apply_immediately          = var.redis.apply_immediately

  # A secondary region's copy in the phase's global datastore.
  global_replication_group_id = var.redis.global_id
}

# The global datastore, in the primary region: this region's Redis takes
# the writes and replicates them to each secondary region's copy.
resource "aws_elasticache_global_replication_group" "this" {
  count = var.primary && var.redis.global_datastore ? 1 : 0

  region                               = var.aws_region
  global_replication_group_id_suffix   = var.name
  primary_replication_group_id         = aws_elasticache_replication_group.this.id
  global_replication_group_description = "Redis of ${var.project}, every region"
}

# BullMQ's own Redis, where the spec names queue_redis: a job must never be
# evicted, so its policy is noeviction whatever the cache's is, and a
# replica in another zone with automatic failover keeps the queued jobs
# through a node replacement (ElastiCache keeps no file a lone node could
# restart from). Its clients are the phase's Redis clients: the same
# security group, subnets and auth token.
resource "aws_elasticache_parameter_group" "queues" {
  count = var.queue_redis == null ? 0 : 1

  region = var.aws_region
  name   = "${var.name}-queues"
  family = var.redis.family

  parameter {
    name  = "maxmemory-policy"
    value = "noeviction"
  }
}

resource "aws_elasticache_replication_group" "queues" {
  count = var.queue_redis == null ? 0 : 1

  region                     = var.aws_region
  replication_group_id       = "${var.name}-queues"
  description                = "BullMQ's queues of ${var.name}"
  engine                     = "redis"
  engine_version             = var.redis.engine_version
  node_type                  = var.queue_redis.node_type
  port                       = 6379
  parameter_group_name       = aws_elasticache_parameter_group.queues[0].name
  subnet_group_name          = aws_elasticache_subnet_group.this.name
  security_group_ids         = [aws_security_group.redis.id]
  num_cache_clusters         = 2
  automatic_failover_enabled = true
  multi_az_enabled           = true
  at_rest_encryption_enabled = true
  transit_encryption_enabled = true
  auth_token                 = var.redis_auth_token
  snapshot_retention_limit   = 3
  apply_immediately          = var.redis.apply_immediately
}
