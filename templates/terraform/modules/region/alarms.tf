{{ header("#") }}
#
# CloudWatch alarms at the capacity model's thresholds, the same as the
# Prometheus rules of monitoring/: a warning at var.alarms.warning percent
# and a critical alarm at var.alarms.critical percent of what the model
# counts on. On AWS the measures are each service's own: the database's
# CPU (the model's bound once pools are large enough) and connections,
# Redis's engine CPU (its one command thread) and memory, the app's CPU,
# and the WebSocket connections the load balancer holds (the bottleneck the
# model names first in every phase). Each alarm is tagged with the bottleneck it watches and the phase,
# and says where to go next.

locals {
  alarm_levels     = { warning = var.alarms.warning, critical = var.alarms.critical }
  redis_cpu_levels = { warning = var.alarms.redis.cpu_warning, critical = var.alarms.redis.cpu_critical }
  alarm_actions    = var.alarms.topic_arn == null ? [] : [var.alarms.topic_arn]
  alarm_next       = var.alarms.next == null ? "this is the last phase: add a larger one" : "the next phase is ${var.alarms.next}: see ${var.alarms.plan}"

  # ElastiCache names a group's nodes <group>-<shard>-<node> in cluster
  # mode and <group>-<node> otherwise, so they are known before apply.
  redis_group = "${var.name}-redis"
  redis_nodes = local.cluster_mode == "enabled" ? [
    for pair in setproduct(range(1, coalesce(var.redis.num_node_groups, 1) + 1), range(1, coalesce(var.redis.replicas_per_node_group, 0) + 2)) :
    format("%s-%04d-%03d", local.redis_group, pair[0], pair[1])
    ] : [
    for n in range(1, coalesce(var.redis.num_cache_clusters, 1) + 1) : format("%s-%03d", local.redis_group, n)
  ]

  alarms = merge(
    var.primary ? {
      for level, percent in local.alarm_levels : "postgres-writer-cpu-${level}" => {
        namespace  = "AWS/RDS"
        metric     = "CPUUtilization"
        dimensions = { DBInstanceIdentifier = "${var.name}-writer" }
        threshold  = percent
        bottleneck = "database"
        level      = level
        what       = "the database primary's CPU"
      }
    } : {},
    var.primary ? {
      for level, percent in local.alarm_levels : "postgres-writer-connections-${level}" => {
        namespace  = "AWS/RDS"
        metric     = "DatabaseConnections"
        dimensions = { DBInstanceIdentifier = "${var.name}-writer" }
        threshold  = floor(var.alarms.max_connections * percent / 100)
        bottleneck = "database"
        level      = level
        what       = "the database primary's connections (of max_connections ${var.alarms.max_connections})"
      }
    } : {},
    {
      for pair in setproduct(range(1, var.postgres.read_replicas + 1), keys(local.alarm_levels)) :
      "postgres-replica-${pair[0]}-cpu-${pair[1]}" => {
        namespace  = "AWS/RDS"
        metric     = "CPUUtilization"
        dimensions = { DBInstanceIdentifier = "${var.name}-replica-${pair[0]}" }
        threshold  = local.alarm_levels[pair[1]]
        bottleneck = "database"
        level      = pair[1]
        what       = "read replica ${pair[0]}'s CPU"
      }
    },
    # The engine thread against what the node sustains: on a burstable
    # node that is its CPU credit baseline, not 100%.
    {
      for pair in setproduct(local.redis_nodes, keys(local.redis_cpu_levels)) :
      "${pair[0]}-engine-cpu-${pair[1]}" => {
        namespace  = "AWS/ElastiCache"
        metric     = "EngineCPUUtilization"
        dimensions = { CacheClusterId = pair[0] }
        threshold  = local.redis_cpu_levels[pair[1]]
        bottleneck = "redis"
        level      = pair[1]
        what       = "Redis node ${pair[0]}'s command thread (of the ${local.redis_cpu_levels[pair[1]]}% its node sustains at this level)"
      }
    },
    # The memory in use against the model's maxmemory (ElastiCache's own
    # follows the node type and its reserved memory).
    {
      for pair in setproduct(local.redis_nodes, keys(local.alarm_levels)) :
      "${pair[0]}-memory-${pair[1]}" => {
        namespace  = "AWS/ElastiCache"
        metric     = "BytesUsedForCache"
        dimensions = { CacheClusterId = pair[0] }
        threshold  = floor(var.alarms.redis.memory_bytes * local.alarm_levels[pair[1]] / 100)
        bottleneck = "redis"
        level      = pair[1]
        what       = "Redis node ${pair[0]}'s memory (bytes, of the model's maxmemory)"
      }
    },
    # The queue group (queue_redis) never evicts: past 90% of its memory
    # it is close to refusing new jobs.
    var.queue_redis == null ? {} : {
      for node in [for n in range(1, 3) : format("%s-queues-%03d", var.name, n)] : "${node}-memory-critical" => {
        namespace  = "AWS/ElastiCache"
        metric     = "DatabaseMemoryUsagePercentage"
        dimensions = { CacheClusterId = node }
        threshold  = 90
        bottleneck = "redis"
        level      = "critical"
        what       = "queue Redis node ${node}'s memory (percent of its maxmemory: at 100% it refuses new jobs)"
      }
    },
    {
      for level, percent in local.alarm_levels : "app-cpu-${level}" => {
        namespace  = "AWS/ECS"
        metric     = "CPUUtilization"
        dimensions = { ClusterName = aws_ecs_cluster.this.name, ServiceName = var.alarms.app_service }
        threshold  = percent
        bottleneck = "system"
        level      = level
        what       = "the app's CPU"
      }
    },
  )
}

# A burstable node that has spent its CPU credits runs at its baseline:
# the warning before the throttle.
resource "aws_cloudwatch_metric_alarm" "redis_credits" {
  for_each = var.alarms.redis.burstable ? toset(local.redis_nodes) : toset([])

  region              = var.aws_region
  alarm_name          = "${var.name}-${each.key}-cpu-credits"
  alarm_description   = "Redis node ${each.key} is running out of CPU credits: it will be held to its baseline; ${local.alarm_next}"
  namespace           = "AWS/ElastiCache"
  metric_name         = "CPUCreditBalance"
  dimensions          = { CacheClusterId = each.key }
  statistic           = "Minimum"
  period              = 300
  evaluation_periods  = 3
  threshold           = 20
  comparison_operator = "LessThanThreshold"
  treat_missing_data  = "missing"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags = {
    bottleneck = "redis"
    phase      = var.alarms.phase
    severity   = "warning"
  }
}

# The WebSocket connections against what the app replicas hold. The load
# balancer counts each connection twice (client to load balancer, load
# balancer to target) in ActiveConnectionCount, whose one meaningful
# statistic is Sum.
resource "aws_cloudwatch_metric_alarm" "websocket" {
  for_each = local.alarm_levels

  region              = var.aws_region
  alarm_name          = "${var.name}-websocket-connections-${each.key}"
  alarm_description   = "WebSocket connections above ${floor(var.alarms.websocket_connections * each.value / 100)} (${each.key}: ${each.value}% of the ${var.alarms.websocket_connections} the app replicas hold) in phase ${var.alarms.phase}; ${local.alarm_next}"
  namespace           = "AWS/ApplicationELB"
  metric_name         = "ActiveConnectionCount"
  dimensions          = { LoadBalancer = aws_lb.edge.arn_suffix }
  statistic           = "Sum"
  period              = 60
  evaluation_periods  = 5
  threshold           = 2 * floor(var.alarms.websocket_connections * each.value / 100)
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags = {
    bottleneck = "websocket"
    phase      = var.alarms.phase
    severity   = each.key
  }
}

resource "aws_cloudwatch_metric_alarm" "capacity" {
  for_each = local.alarms

  region              = var.aws_region
  alarm_name          = "${var.name}-${each.key}"
  alarm_description   = "${each.value.what} above ${each.value.threshold}${contains(["DatabaseConnections", "BytesUsedForCache"], each.value.metric) ? "" : "%"} (${each.value.level}) in phase ${var.alarms.phase}; ${local.alarm_next}"
  namespace           = each.value.namespace
  metric_name         = each.value.metric
  dimensions          = each.value.dimensions
  statistic           = "Average"
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 5
  threshold           = each.value.threshold
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "missing"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags = {
    bottleneck = each.value.bottleneck
    phase      = var.alarms.phase
    severity   = each.value.level
  }
}
