{{ header("#") }}
#
# One security group per ECS service, each allowed only what its `uses`
# lists: the load balancer reaches the services that have a port, a
# service that uses postgres reaches PgBouncer's load balancer, one that
# uses redis reaches Redis, and PgBouncer alone reaches PostgreSQL. Egress
# is as narrow: to those groups, and HTTPS out (image pulls, Secrets
# Manager, CloudWatch Logs, push providers). The databases start nothing.

locals {
  web_services      = { for s in var.services : s.name => s if s.port != null }
  postgres_services = { for s in var.services : s.name => s if s.uses_postgres }
  redis_services    = { for s in var.services : s.name => s if s.uses_redis }
  edge_ports        = var.edge.certificate_arn == null ? [80] : [80, 443]
}

resource "aws_security_group" "service" {
  for_each = { for s in var.services : s.name => s }

  region      = var.aws_region
  name_prefix = "${var.name}-${each.key}-"
  description = each.value.port == null ? "${each.key}: reached by nothing" : "${each.key}: reached by the load balancer only"
  vpc_id      = var.network.vpc_id

  # A change AWS can make only by replacement creates the new group first.
  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_security_group" "edge" {
  region      = var.aws_region
  name_prefix = "${var.name}-edge-"
  description = "The application load balancer: reached from the allowed CIDR blocks"
  vpc_id      = var.network.vpc_id

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_security_group" "pg_proxy" {
  region      = var.aws_region
  name_prefix = "${var.name}-pg-proxy-"
  description = "The internal load balancer of PgBouncer: reached by the services that use postgres"
  vpc_id      = var.network.vpc_id

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_security_group" "pgbouncer" {
  region      = var.aws_region
  name_prefix = "${var.name}-pgbouncer-"
  description = "PgBouncer: reached through its load balancer only"
  vpc_id      = var.network.vpc_id

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_security_group" "postgres" {
  region      = var.aws_region
  name_prefix = "${var.name}-postgres-"
  description = "PostgreSQL: reached by PgBouncer (and the bootstrap task) only"
  vpc_id      = var.network.vpc_id

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_security_group" "redis" {
  region      = var.aws_region
  name_prefix = "${var.name}-redis-"
  description = "Redis: reached by the services that use redis"
  vpc_id      = var.network.vpc_id

  lifecycle {
    create_before_destroy = true
  }
}

# The edge: the allowed CIDR blocks in, each service with a port out.
resource "aws_vpc_security_group_ingress_rule" "edge_from_allowed" {
  for_each = {
    for pair in setproduct(local.edge_ports, var.network.allowed_cidrs) :
    "${pair[0]} ${pair[1]}" => { port = pair[0], cidr = pair[1] }
  }

  region            = var.aws_region
  security_group_id = aws_security_group.edge.id
  description       = "${each.value.cidr} to the load balancer"
  cidr_ipv4         = each.value.cidr
  ip_protocol       = "tcp"
  from_port         = each.value.port
  to_port           = each.value.port
}

resource "aws_vpc_security_group_egress_rule" "edge_to_service" {
  for_each = local.web_services

  region                       = var.aws_region
  security_group_id            = aws_security_group.edge.id
  description                  = "The load balancer to ${each.key}"
  referenced_security_group_id = aws_security_group.service[each.key].id
  ip_protocol                  = "tcp"
  from_port                    = each.value.port
  to_port                      = each.value.port
}

resource "aws_vpc_security_group_ingress_rule" "service_from_edge" {
  for_each = local.web_services

  region                       = var.aws_region
  security_group_id            = aws_security_group.service[each.key].id
  description                  = "${each.key} from the load balancer"
  referenced_security_group_id = aws_security_group.edge.id
  ip_protocol                  = "tcp"
  from_port                    = each.value.port
  to_port                      = each.value.port
}

# Services to PgBouncer's load balancer (both roles' ports), and on to
# PgBouncer.
resource "aws_vpc_security_group_egress_rule" "service_to_pg_proxy" {
  for_each = local.postgres_services

  region                       = var.aws_region
  security_group_id            = aws_security_group.service[each.key].id
  description                  = "${each.key} to PgBouncer (writes and reads)"
  referenced_security_group_id = aws_security_group.pg_proxy.id
  ip_protocol                  = "tcp"
  from_port                    = var.pg_proxy.write_port
  to_port                      = var.pg_proxy.read_port
}

resource "aws_vpc_security_group_ingress_rule" "pg_proxy_from_service" {
  for_each = local.postgres_services

  region                       = var.aws_region
  security_group_id            = aws_security_group.pg_proxy.id
  description                  = "The PgBouncer load balancer from ${each.key}"
  referenced_security_group_id = aws_security_group.service[each.key].id
  ip_protocol                  = "tcp"
  from_port                    = var.pg_proxy.write_port
  to_port                      = var.pg_proxy.read_port
}

resource "aws_vpc_security_group_egress_rule" "pg_proxy_to_pgbouncer" {
  region                       = var.aws_region
  security_group_id            = aws_security_group.pg_proxy.id
  description                  = "The PgBouncer load balancer to PgBouncer (traffic and health checks)"
  referenced_security_group_id = aws_security_group.pgbouncer.id
  ip_protocol                  = "tcp"
  from_port                    = 6432
  to_port                      = 6432
}

resource "aws_vpc_security_group_ingress_rule" "pgbouncer_from_pg_proxy" {
  region                       = var.aws_region
  security_group_id            = aws_security_group.pgbouncer.id
  description                  = "PgBouncer from its load balancer"
  referenced_security_group_id = aws_security_group.pg_proxy.id
  ip_protocol                  = "tcp"
  from_port                    = 6432
  to_port                      = 6432
}

# PgBouncer to PostgreSQL: this region's databases, and the writer in the
# primary region over the peering (by CIDR block: a security group cannot
# be referenced across regions).
resource "aws_vpc_security_group_egress_rule" "pgbouncer_to_postgres" {
  region                       = var.aws_region
  security_group_id            = aws_security_group.pgbouncer.id
  description                  = "PgBouncer to PostgreSQL in this region"
  referenced_security_group_id = aws_security_group.postgres.id
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
}

resource "aws_vpc_security_group_egress_rule" "pgbouncer_to_writer" {
  for_each = var.primary ? toset([]) : toset(var.peer_cidrs)

  region            = var.aws_region
  security_group_id = aws_security_group.pgbouncer.id
  description       = "PgBouncer to the writer in the primary region, over the peering"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = 5432
  to_port           = 5432
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

resource "aws_vpc_security_group_ingress_rule" "postgres_from_peers" {
  for_each = var.primary ? toset(var.peer_cidrs) : toset([])

  region            = var.aws_region
  security_group_id = aws_security_group.postgres.id
  description       = "The writer from PgBouncer in a secondary region, over the peering"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = 5432
  to_port           = 5432
}

# Services to Redis.
resource "aws_vpc_security_group_egress_rule" "service_to_redis" {
  for_each = local.redis_services

  region                       = var.aws_region
  security_group_id            = aws_security_group.service[each.key].id
  description                  = "${each.key} to Redis"
  referenced_security_group_id = aws_security_group.redis.id
  ip_protocol                  = "tcp"
  from_port                    = 6379
  to_port                      = 6379
}

resource "aws_vpc_security_group_ingress_rule" "redis_from_service" {
  for_each = local.redis_services

  region                       = var.aws_region
  security_group_id            = aws_security_group.redis.id
  description                  = "Redis from ${each.key}"
  referenced_security_group_id = aws_security_group.service[each.key].id
  ip_protocol                  = "tcp"
  from_port                    = 6379
  to_port                      = 6379
}

# A global datastore: the secondary regions' services write to the
# primary region's Redis over the peering.
resource "aws_vpc_security_group_ingress_rule" "redis_from_peers" {
  for_each = var.primary && var.redis.global_datastore ? toset(var.peer_cidrs) : toset([])

  region            = var.aws_region
  security_group_id = aws_security_group.redis.id
  description       = "Redis from the services of a secondary region, over the peering"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = 6379
  to_port           = 6379
}

resource "aws_vpc_security_group_egress_rule" "service_to_primary_redis" {
  for_each = {
    for pair in setproduct(keys(local.redis_services), var.primary || !var.redis.global_datastore ? [] : var.peer_cidrs) :
    "${pair[0]} ${pair[1]}" => { service = pair[0], cidr = pair[1] }
  }

  region            = var.aws_region
  security_group_id = aws_security_group.service[each.value.service].id
  description       = "${each.value.service} to Redis in the primary region, over the peering"
  cidr_ipv4         = each.value.cidr
  ip_protocol       = "tcp"
  from_port         = 6379
  to_port           = 6379
}

# HTTPS out: ECR and Docker Hub, Secrets Manager, CloudWatch Logs, the RDS
# certificate bundle, and the push providers the workers call. DNS goes to
# the VPC resolver, which security groups do not filter.
resource "aws_vpc_security_group_egress_rule" "https_out" {
  for_each = merge(
    { for k, g in aws_security_group.service : "service ${k}" => g.id },
    { pgbouncer = aws_security_group.pgbouncer.id },
    var.primary ? { bootstrap = aws_security_group.bootstrap[0].id } : {},
  )

  region            = var.aws_region
  security_group_id = each.value
  description       = "${each.key} to HTTPS"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}
