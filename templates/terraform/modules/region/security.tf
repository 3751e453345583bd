{{ header("#") }}
#
# Only the app reaches PgBouncer and Redis, and only PgBouncer reaches
# PostgreSQL; the app is reached from the allowed CIDR blocks only.

resource "aws_security_group" "app" {
  region      = var.aws_region
  name_prefix = "${var.name}-app-"
  description = "App and services"
  vpc_id      = var.network.vpc_id

  # A change AWS can make only by replacement creates the new group first.
  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_security_group" "pgbouncer" {
  region      = var.aws_region
  name_prefix = "${var.name}-pgbouncer-"
  description = "PgBouncer: reached by the app only"
  vpc_id      = var.network.vpc_id

  # A change AWS can make only by replacement creates the new group first.
  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_security_group" "postgres" {
  region      = var.aws_region
  name_prefix = "${var.name}-postgres-"
  description = "PostgreSQL: reached by PgBouncer only"
  vpc_id      = var.network.vpc_id

  # A change AWS can make only by replacement creates the new group first.
  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_security_group" "redis" {
  region      = var.aws_region
  name_prefix = "${var.name}-redis-"
  description = "Redis: reached by the app only"
  vpc_id      = var.network.vpc_id

  # A change AWS can make only by replacement creates the new group first.
  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "app_from_allowed" {
  for_each = {
    for pair in setproduct([for s in var.services : s if s.port != null], var.network.allowed_cidrs) :
    "${pair[0].name} ${pair[1]}" => { port = pair[0].port, cidr = pair[1] }
  }

  region            = var.aws_region
  security_group_id = aws_security_group.app.id
  description       = "${each.key} to the app"
  cidr_ipv4         = each.value.cidr
  ip_protocol       = "tcp"
  from_port         = each.value.port
  to_port           = each.value.port
}

resource "aws_vpc_security_group_ingress_rule" "pgbouncer_from_app" {
  region                       = var.aws_region
  security_group_id            = aws_security_group.pgbouncer.id
  description                  = "PgBouncer from the app"
  referenced_security_group_id = aws_security_group.app.id
  ip_protocol                  = "tcp"
  from_port                    = 6432
  to_port                      = 6432
}

resource "aws_vpc_security_group_ingress_rule" "postgres_from_pgbouncer" {
  region                       = var.aws_region
  security_group_id            = aws_security_group.postgres.id
  description                  = "PostgreSQL from PgBouncer"
  referenced_security_group_id = aws_security_group.pgbouncer.id
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
}

resource "aws_vpc_security_group_ingress_rule" "redis_from_app" {
  region                       = var.aws_region
  security_group_id            = aws_security_group.redis.id
  description                  = "Redis from the app"
  referenced_security_group_id = aws_security_group.app.id
  ip_protocol                  = "tcp"
  from_port                    = 6379
  to_port                      = 6379
}

# Tasks pull images and reach AWS APIs; databases initiate nothing.
resource "aws_vpc_security_group_egress_rule" "app_out" {
  region            = var.aws_region
  security_group_id = aws_security_group.app.id
  description       = "App to PgBouncer, Redis and HTTPS"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "-1"
}

resource "aws_vpc_security_group_egress_rule" "pgbouncer_out" {
  region            = var.aws_region
  security_group_id = aws_security_group.pgbouncer.id
  description       = "PgBouncer to PostgreSQL and HTTPS"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "-1"
}
