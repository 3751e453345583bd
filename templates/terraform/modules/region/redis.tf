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

resource "aws_elasticache_parameter_group" "this" {
  region = var.aws_region
  name   = "${var.name}-redis"
  family = var.redis.family

  parameter {
    name  = "maxmemory-policy"
    value = var.redis.maxmemory_policy
  }

  dynamic "parameter" {
    for_each = var.redis.cluster_mode == "enabled" ? ["yes"] : []
    content {
      name  = "cluster-enabled"
      value = parameter.value
    }
  }
}

resource "aws_elasticache_replication_group" "this" {
  region                     = var.aws_region
  replication_group_id       = "${var.name}-redis"
  description                = "Redis of ${var.name}"
  engine                     = "redis"
  engine_version             = var.redis.engine_version
  node_type                  = var.redis.node_type
  port                       = 6379
  parameter_group_name       = aws_elasticache_parameter_group.this.name
  subnet_group_name          = aws_elasticache_subnet_group.this.name
  security_group_ids         = [aws_security_group.redis.id]
  cluster_mode               = var.redis.cluster_mode
  num_cache_clusters         = var.redis.num_cache_clusters
  num_node_groups            = var.redis.num_node_groups
  replicas_per_node_group    = var.redis.replicas_per_node_group
  automatic_failover_enabled = var.redis.automatic_failover
  multi_az_enabled           = var.redis.multi_az
  at_rest_encryption_enabled = true
  transit_encryption_enabled = true
  auth_token                 = random_password.redis_auth.result
  snapshot_retention_limit   = 3
}
