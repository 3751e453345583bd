{{ header("#") }}
#
# The application role on the writer, created once by a one-shot ECS task
# inside the VPC (the writer is reachable from nowhere else): psql runs
# bootstrap.sql as RDS's master user, whose password RDS keeps in Secrets
# Manager. The master user is no superuser and may not create a
# REPLICATION role (RDS replicas need none), so this script is not
# Compose's init-roles.sql. `terraform output bootstrap_command` prints
# the command that starts it; it is safe to run again (it also sets a
# rotated password).

resource "aws_security_group" "bootstrap" {
  count = var.primary ? 1 : 0

  region      = var.aws_region
  name_prefix = "${var.name}-bootstrap-"
  description = "The role bootstrap task: reaches the writer only"
  vpc_id      = var.network.vpc_id

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_egress_rule" "bootstrap_to_postgres" {
  count = var.primary ? 1 : 0

  region                       = var.aws_region
  security_group_id            = aws_security_group.bootstrap[0].id
  description                  = "The bootstrap task to the writer"
  referenced_security_group_id = aws_security_group.postgres.id
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
}

resource "aws_vpc_security_group_ingress_rule" "postgres_from_bootstrap" {
  count = var.primary ? 1 : 0

  region                       = var.aws_region
  security_group_id            = aws_security_group.postgres.id
  description                  = "The writer from the bootstrap task"
  referenced_security_group_id = aws_security_group.bootstrap[0].id
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
}

# Its own execution role: only this task may read the master password.
resource "aws_iam_role" "bootstrap" {
  count = var.primary ? 1 : 0

  name = "${var.name}-bootstrap"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "ecs-tasks.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
}

resource "aws_iam_role_policy_attachment" "bootstrap" {
  count = var.primary ? 1 : 0

  role       = aws_iam_role.bootstrap[0].name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

resource "aws_iam_role_policy" "bootstrap_secrets" {
  count = var.primary ? 1 : 0

  name = "read-secrets"
  role = aws_iam_role.bootstrap[0].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect   = "Allow"
      Action   = ["secretsmanager:GetSecretValue"]
      Resource = [aws_db_instance.writer[0].master_user_secret[0].secret_arn, var.secrets.app_db]
    }]
  })
}

resource "aws_ecs_task_definition" "bootstrap" {
  count = var.primary ? 1 : 0

  region                   = var.aws_region
  family                   = "${var.name}-bootstrap"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = 256
  memory                   = 512
  execution_role_arn       = aws_iam_role.bootstrap[0].arn
  container_definitions = jsonencode([{
    name       = "bootstrap"
    image      = var.bootstrap_image
    essential  = true
    entryPoint = ["/bin/sh", "-c"]
    command    = ["wget -q -O /tmp/rds-ca.pem \"$RDS_CA_BUNDLE_URL\" && printf '%s' \"$BOOTSTRAP_SQL\" > /tmp/bootstrap.sql && exec psql \"host=$WRITER port=5432 dbname=$DATABASE sslmode=verify-full sslrootcert=/tmp/rds-ca.pem\" -X -v database=\"$DATABASE\" -v app_user=\"$APP_USER\" -v app_password=\"$APP_DB_PASSWORD\" -f /tmp/bootstrap.sql"]
    environment = [
      { name = "WRITER", value = local.writer_address },
      { name = "DATABASE", value = var.postgres.database },
      { name = "APP_USER", value = var.pgbouncer.user },
      { name = "BOOTSTRAP_SQL", value = file("${path.module}/bootstrap.sql") },
      { name = "RDS_CA_BUNDLE_URL", value = var.rds_ca_bundle_url },
    ]
    # RDS keeps the master user's name and password as JSON; ECS takes a
    # key of it.
    secrets = [
      { name = "PGUSER", valueFrom = "${aws_db_instance.writer[0].master_user_secret[0].secret_arn}:username::" },
      { name = "PGPASSWORD", valueFrom = "${aws_db_instance.writer[0].master_user_secret[0].secret_arn}:password::" },
      { name = "APP_DB_PASSWORD", valueFrom = var.secrets.app_db },
    ]
    logConfiguration = local.log_configuration
  }])
}

locals {
  bootstrap_command = var.primary ? join(" ", [
    "aws ecs run-task --region ${var.aws_region}",
    "--cluster ${aws_ecs_cluster.this.name}",
    "--launch-type FARGATE",
    "--task-definition ${aws_ecs_task_definition.bootstrap[0].family}",
    "--network-configuration 'awsvpcConfiguration={subnets=[${join(",", var.network.subnet_ids)}],securityGroups=[${aws_security_group.bootstrap[0].id}],assignPublicIp=DISABLED}'",
  ]) : null
}
