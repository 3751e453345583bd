{{ header("#") }}
#
# PgBouncer, the app, services and workers on ECS Fargate. PgBouncer's
# pgbouncer.ini is written at start from PGBOUNCER_INI: the phase's
# pgbouncer.ini (pgbouncer.ini.tftpl) with this region's RDS endpoints;
# passwords come from Secrets Manager into the task's environment, never
# into a file here.

locals {
  writer_address = var.primary ? aws_db_instance.writer[0].address : var.postgres.writer_address
  reader_hosts   = var.postgres.read_replicas > 0 ? join(",", aws_db_instance.replica[*].address) : local.writer_address
  redis_endpoint = var.redis.cluster_mode == "enabled" ? aws_elasticache_replication_group.this.configuration_endpoint_address : aws_elasticache_replication_group.this.primary_endpoint_address
  pgbouncer_host = "pgbouncer.${aws_service_discovery_private_dns_namespace.this.name}"
  redis_mode     = local.cluster_mode == "disabled" ? "standalone" : "cluster"
  nofile         = var.pgbouncer.nofile
  # printf format of PgBouncer's auth file: (user, password) twice.
  userlist_format = {{ userlist_format }}

  # The pgbouncer.ini every other target runs, with this region's endpoints.
  pgbouncer_ini = templatefile("${path.module}/pgbouncer.ini.tftpl", {
    writer_address = local.writer_address
    reader_hosts   = local.reader_hosts
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
      Effect = "Allow"
      Action = ["secretsmanager:GetSecretValue"]
      Resource = [
        aws_secretsmanager_secret.app_db.arn,
        aws_secretsmanager_secret.database_url["write"].arn,
        aws_secretsmanager_secret.database_url["read"].arn,
        aws_secretsmanager_secret.pgbouncer_admin.arn,
        aws_secretsmanager_secret.redis_auth.arn,
      ]
    }]
  })
}

resource "aws_service_discovery_private_dns_namespace" "this" {
  region = var.aws_region
  name   = "${var.name}.internal"
  vpc    = var.network.vpc_id
}

resource "aws_service_discovery_service" "pgbouncer" {
  region = var.aws_region
  name   = "pgbouncer"

  dns_config {
    namespace_id   = aws_service_discovery_private_dns_namespace.this.id
    routing_policy = "MULTIVALUE"

    dns_records {
      ttl  = 10
      type = "A"
    }
  }

  health_check_custom_config {}
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
    command      = ["printf '%s' \"$PGBOUNCER_INI\" > /tmp/pgbouncer.ini && printf '${local.userlist_format}' \"$APP_USER\" \"$APP_DB_PASSWORD\" \"$ADMIN_USER\" \"$ADMIN_PASSWORD\" > /tmp/userlist.txt && exec pgbouncer /tmp/pgbouncer.ini"]
    environment = [
      { name = "PGBOUNCER_INI", value = local.pgbouncer_ini },
      { name = "APP_USER", value = var.pgbouncer.user },
      { name = "ADMIN_USER", value = var.pgbouncer.admin_user },
    ]
    secrets = [
      { name = "APP_DB_PASSWORD", valueFrom = aws_secretsmanager_secret.app_db.arn },
      { name = "ADMIN_PASSWORD", valueFrom = aws_secretsmanager_secret.pgbouncer_admin.arn },
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

  service_registries {
    registry_arn = aws_service_discovery_service.pgbouncer.arn
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }
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
    # The connection contract, under the same names as on Compose and the
    # local target. ElastiCache's managed failover stands in for Sentinel,
    # so a Sentinel phase is "standalone" behind the primary endpoint here.
    environment = [for e in [
      { name = "PORT", value = tostring(each.value.port), use = each.value.port != null },
      { name = "DATABASE_SSL", value = "false", use = each.value.uses_postgres },
      { name = "REDIS_MODE", value = local.redis_mode, use = each.value.uses_redis },
      { name = "REDIS_URL", value = "rediss://${local.redis_endpoint}:6379", use = each.value.uses_redis && local.redis_mode == "standalone" },
      { name = "REDIS_CLUSTER_NODES", value = "${local.redis_endpoint}:6379", use = each.value.uses_redis && local.redis_mode == "cluster" },
      { name = "REDIS_TLS", value = "true", use = each.value.uses_redis },
      { name = "REDIS_KEY_PREFIX", value = "${var.project}:", use = each.value.uses_redis },
      { name = "BULLMQ_PREFIX", value = local.redis_mode == "cluster" ? "{bull}" : "bull", use = each.value.uses_redis },
    ] : { name = e.name, value = e.value } if e.use]
    # The URLs carry the password, so they come from Secrets Manager whole.
    secrets = [for s in [
      { name = "DATABASE_URL", valueFrom = aws_secretsmanager_secret.database_url["write"].arn, use = each.value.uses_postgres },
      { name = "DATABASE_READ_URL", valueFrom = aws_secretsmanager_secret.database_url["read"].arn, use = each.value.uses_postgres },
      { name = "REDIS_PASSWORD", valueFrom = aws_secretsmanager_secret.redis_auth.arn, use = each.value.uses_redis },
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
    security_groups  = [aws_security_group.app.id]
    assign_public_ip = false
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }
}
