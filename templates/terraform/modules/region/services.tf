{{ header("#") }}
#
# PgBouncer, the app, services and workers on ECS Fargate. PgBouncer's
# pgbouncer.ini is written at start from PGBOUNCER_INI: the phase's
# pgbouncer.ini (pgbouncer.ini.tftpl) with this region's RDS endpoints;
# passwords come from Secrets Manager into the task's environment, never
# into a file here. Each region reads its own region's copy of the one
# set of secrets.

locals {
  writer_address = var.primary ? aws_db_instance.writer[0].address : var.postgres.writer_address
  reader_hosts   = var.postgres.read_replicas > 0 ? join(",", aws_db_instance.replica[*].address) : local.writer_address
  # The configuration endpoint from the first apply of a move into cluster
  # mode (compatible) on: ElastiCache enables cluster mode only once every
  # client uses it.
  redis_endpoint = local.cluster_mode != "disabled" ? aws_elasticache_replication_group.this.configuration_endpoint_address : aws_elasticache_replication_group.this.primary_endpoint_address
  pg_proxy_host  = "${var.pg_proxy.name}.${aws_service_discovery_private_dns_namespace.this.name}"
  redis_mode     = local.cluster_mode == "disabled" ? "standalone" : "cluster"
  nofile         = var.pgbouncer.nofile
  # printf format of PgBouncer's auth file: (user, password) twice.
  userlist_format = {{ userlist_format }}

  # The pgbouncer.ini every other target runs, with this region's endpoints.
  pgbouncer_ini = templatefile("${path.module}/pgbouncer.ini.tftpl", {
    writer_address = local.writer_address
    # Every task lists every replica (PgBouncer 1.25 or later checks each
    # host's certificate on its own; rule PGB006).
    reader_hosts = local.reader_hosts
  })

  log_configuration = {
    logDriver = "awslogs"
    options = {
      awslogs-group         = aws_cloudwatch_log_group.this.name
      awslogs-region        = var.aws_region
      awslogs-stream-prefix = "ecs"
    }
  }
}

resource "aws_ecs_cluster" "this" {
  region = var.aws_region
  name   = var.name
}

resource "aws_cloudwatch_log_group" "this" {
  region            = var.aws_region
  name              = "/ecs/${var.name}"
  retention_in_days = 30
}

resource "aws_iam_role" "execution" {
  name = "${var.name}-ecs-execution"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "ecs-tasks.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
}

resource "aws_iam_role_policy_attachment" "execution" {
  role       = aws_iam_role.execution.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

resource "aws_iam_role_policy" "read_secrets" {
  name = "read-secrets"
  role = aws_iam_role.execution.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect   = "Allow"
      Action   = ["secretsmanager:GetSecretValue"]
      Resource = [for k in ["app_db", "database_url_write", "database_url_read", "pgbouncer_admin", "redis_auth"] : var.secrets[k]]
    }]
  })
}

resource "aws_ecs_task_definition" "pgbouncer" {
  region                   = var.aws_region
  family                   = "${var.name}-pgbouncer"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.pgbouncer.cpu
  memory                   = var.pgbouncer.memory
  execution_role_arn       = aws_iam_role.execution.arn
  container_definitions = jsonencode([{
    name         = "pgbouncer"
    image        = var.pgbouncer.image
    essential    = true
    portMappings = [{ containerPort = 6432, protocol = "tcp" }]
    entryPoint   = ["/bin/sh", "-c"]
    # The RDS certificate authorities first: PgBouncer verifies the
    # database's certificate and name (verify-full), and does not start
    # without them.
    command = ["wget -q -O /tmp/rds-ca.pem \"$RDS_CA_BUNDLE_URL\" && printf '%s' \"$PGBOUNCER_INI\" > /tmp/pgbouncer.ini && printf '${local.userlist_format}' \"$APP_USER\" \"$APP_DB_PASSWORD\" \"$ADMIN_USER\" \"$ADMIN_PASSWORD\" > /tmp/userlist.txt && exec pgbouncer /tmp/pgbouncer.ini"]
    environment = [
      { name = "PGBOUNCER_INI", value = local.pgbouncer_ini },
      { name = "APP_USER", value = var.pgbouncer.user },
      { name = "ADMIN_USER", value = var.pgbouncer.admin_user },
      { name = "RDS_CA_BUNDLE_URL", value = var.rds_ca_bundle_url },
    ]
    secrets = [
      { name = "APP_DB_PASSWORD", valueFrom = var.secrets.app_db },
      { name = "ADMIN_PASSWORD", valueFrom = var.secrets.pgbouncer_admin },
    ]
    ulimits          = [{ name = "nofile", softLimit = local.nofile, hardLimit = local.nofile }]
    logConfiguration = local.log_configuration
  }])
}

resource "aws_ecs_service" "pgbouncer" {
  region          = var.aws_region
  name            = "pgbouncer"
  cluster         = aws_ecs_cluster.this.id
  task_definition = aws_ecs_task_definition.pgbouncer.arn
  desired_count   = var.pgbouncer.instances
  launch_type     = "FARGATE"

  network_configuration {
    subnets          = var.network.subnet_ids
    security_groups  = [aws_security_group.pgbouncer.id]
    assign_public_ip = false
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.pgbouncer.arn
    container_name   = "pgbouncer"
    container_port   = 6432
  }

  health_check_grace_period_seconds = 30

  # ECS refuses a target group no listener uses yet, and a task whose
  # secrets its role may not read yet fails.
  depends_on = [aws_lb_listener.pg_proxy, aws_iam_role_policy.read_secrets, aws_iam_role_policy_attachment.execution]

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }
}

locals {
  # Where writes go: this region's Redis, or with a global datastore the
  # primary region's (a secondary region's copy is read-only).
  redis_writes = local.global_member ? var.redis.writer_endpoint : local.redis_endpoint

  # The connection contract, under the same names as on Compose and the
  # local target. ElastiCache's managed failover stands in for Sentinel,
  # so a Sentinel phase is "standalone" behind the primary endpoint here.
  contract_env = { for s in var.services : s.name => [for e in [
    { name = "PORT", value = tostring(s.port), use = s.port != null },
    { name = "DATABASE_SSL", value = "false", use = s.uses_postgres },
    { name = "REDIS_MODE", value = local.redis_mode, use = s.uses_redis },
    { name = "REDIS_URL", value = "rediss://${local.redis_writes}:6379", use = s.uses_redis && local.redis_mode == "standalone" },
    { name = "REDIS_CLUSTER_NODES", value = "${local.redis_writes}:6379", use = s.uses_redis && local.redis_mode == "cluster" },
    { name = "REDIS_READ_URL", value = "rediss://${local.redis_endpoint}:6379", use = s.uses_redis && var.redis.global_datastore && local.redis_mode == "standalone" },
    { name = "REDIS_READ_CLUSTER_NODES", value = "${local.redis_endpoint}:6379", use = s.uses_redis && var.redis.global_datastore && local.redis_mode == "cluster" },
    { name = "REDIS_TLS", value = "true", use = s.uses_redis },
    { name = "REDIS_KEY_PREFIX", value = "${var.project}:", use = s.uses_redis },
    { name = "BULLMQ_REDIS_URL", value = "rediss://${local.queue_endpoint}:6379", use = s.uses_redis && var.runs_queues && var.queue_redis != null },
    { name = "BULLMQ_PREFIX", value = local.queues_on_cluster ? "{bull}" : "bull", use = s.uses_redis && var.runs_queues },
    { name = "BULLMQ_QUEUES", value = local.bullmq_queues, use = s.uses_redis && var.runs_queues && length(var.queues) > 0 },
    { name = "SOCKETIO_ADAPTER", value = local.redis_mode == "cluster" ? "sharded" : "redis", use = s.uses_redis },
  ] : { name = e.name, value = e.value } if e.use] }

  # queue=prefix pairs, as on Compose and the local target.
  bullmq_queues = join(",", [for q in var.queues : "${q}=${local.queues_on_cluster ? "{${q}}" : "bull"}"])

  # With a queue Redis of their own, BullMQ connects to a standalone
  # group: no hash tags, whatever the phase's Redis is.
  queues_on_cluster = local.redis_mode == "cluster" && var.queue_redis == null
  queue_endpoint    = var.queue_redis == null ? "" : aws_elasticache_replication_group.queues[0].primary_endpoint_address
}

resource "aws_ecs_task_definition" "service" {
  for_each = { for s in var.services : s.name => s }

  region                   = var.aws_region
  family                   = "${var.name}-${each.key}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = each.value.cpu
  memory                   = each.value.memory
  execution_role_arn       = aws_iam_role.execution.arn
  container_definitions = jsonencode([{
    name         = each.key
    image        = each.value.image
    essential    = true
    portMappings = [for p in [each.value.port] : { containerPort = p, protocol = "tcp" } if p != null]
    # The connection contract (locals above).
    environment = local.contract_env[each.key]
    # The URLs carry the password, so they come from Secrets Manager whole.
    secrets = [for s in [
      { name = "DATABASE_URL", valueFrom = var.secrets.database_url_write, use = each.value.uses_postgres },
      { name = "DATABASE_READ_URL", valueFrom = var.secrets.database_url_read, use = each.value.uses_postgres },
      { name = "REDIS_PASSWORD", valueFrom = var.secrets.redis_auth, use = each.value.uses_redis },
    ] : { name = s.name, valueFrom = s.valueFrom } if s.use]
    logConfiguration = local.log_configuration
  }])
}

resource "aws_ecs_service" "service" {
  for_each = { for s in var.services : s.name => s }

  region          = var.aws_region
  name            = each.key
  cluster         = aws_ecs_cluster.this.id
  task_definition = aws_ecs_task_definition.service[each.key].arn
  desired_count   = each.value.replicas
  launch_type     = "FARGATE"

  network_configuration {
    subnets          = var.network.subnet_ids
    security_groups  = [aws_security_group.service[each.key].id]
    assign_public_ip = false
  }

  dynamic "load_balancer" {
    for_each = each.value.port == null ? [] : [each.value.port]
    content {
      target_group_arn = aws_lb_target_group.service[each.key].arn
      container_name   = each.key
      container_port   = load_balancer.value
    }
  }

  health_check_grace_period_seconds = each.value.port == null ? null : 60

  depends_on = [aws_lb_listener.http, aws_lb_listener.https, aws_lb_listener_rule.service, aws_iam_role_policy.read_secrets, aws_iam_role_policy_attachment.execution]

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }
}
