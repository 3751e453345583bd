{{ header("#") }}
#
# The edge: an application load balancer in the public subnets, a target
# group per service that has a port (the app takes every path, the others
# /<name>/...), health checks on each one's health path, sticky sessions
# and an idle timeout longer than the WebSocket ping interval, so a
# Socket.IO session stays on one task and an idle socket is not cut. HTTP
# on port 80; with a certificate, HTTPS on 443 and 80 redirects to it.

locals {
  # The app serves by default; every other service under its own path.
  routed_services = { for name, s in local.web_services : name => s if name != var.services[0].name }
  serving         = var.edge.certificate_arn == null ? aws_lb_listener.http.arn : aws_lb_listener.https[0].arn
}

resource "aws_lb" "edge" {
  region                     = var.aws_region
  name_prefix                = "edge-"
  load_balancer_type         = "application"
  internal                   = false
  subnets                    = var.network.public_subnet_ids
  security_groups            = [aws_security_group.edge.id]
  idle_timeout               = var.edge.idle_timeout
  drop_invalid_header_fields = true

  tags = {
    Name = "${var.name}-edge"
  }
}

resource "aws_lb_target_group" "service" {
  for_each = local.web_services

  region               = var.aws_region
  name_prefix          = "svc-"
  vpc_id               = var.network.vpc_id
  target_type          = "ip"
  protocol             = "HTTP"
  port                 = each.value.port
  deregistration_delay = 30

  health_check {
    path                = each.value.health_path
    matcher             = "200-399"
    interval            = 15
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }

  # Socket.IO's HTTP long-polling sends each request of a session
  # separately; they must reach the task that holds it. A stateless
  # service loses nothing by it.
  stickiness {
    type            = "lb_cookie"
    enabled         = true
    cookie_duration = 86400
  }

  tags = {
    Name = "${var.name}-${each.key}"
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_lb_listener" "http" {
  region            = var.aws_region
  load_balancer_arn = aws_lb.edge.arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type             = var.edge.certificate_arn == null ? "forward" : "redirect"
    target_group_arn = var.edge.certificate_arn == null ? aws_lb_target_group.service[var.services[0].name].arn : null

    dynamic "redirect" {
      for_each = var.edge.certificate_arn == null ? [] : [443]
      content {
        port        = tostring(redirect.value)
        protocol    = "HTTPS"
        status_code = "HTTP_301"
      }
    }
  }
}

resource "aws_lb_listener" "https" {
  count = var.edge.certificate_arn == null ? 0 : 1

  region            = var.aws_region
  load_balancer_arn = aws_lb.edge.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.edge.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.service[var.services[0].name].arn
  }
}

resource "aws_lb_listener_rule" "service" {
  for_each = local.routed_services

  region       = var.aws_region
  listener_arn = local.serving
  priority     = index(keys(local.web_services), each.key) + 1

  condition {
    path_pattern {
      values = ["/${each.key}", "/${each.key}/*"]
    }
  }

  action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.service[each.key].arn
  }
}

# PgBouncer behind an internal network load balancer: one name for the
# region (Cloud Map, below), a listener per role on the ports the app's
# URLs name, every PgBouncer task behind both. PgBouncer picks the pool
# by the database name in the URL.
resource "aws_lb" "pg_proxy" {
  region                           = var.aws_region
  name_prefix                      = "pgbx-"
  load_balancer_type               = "network"
  internal                         = true
  subnets                          = var.network.subnet_ids
  security_groups                  = [aws_security_group.pg_proxy.id]
  enable_cross_zone_load_balancing = true

  tags = {
    Name = "${var.name}-${var.pg_proxy.name}"
  }
}

resource "aws_lb_target_group" "pgbouncer" {
  region      = var.aws_region
  name_prefix = "pgb-"
  vpc_id      = var.network.vpc_id
  target_type = "ip"
  protocol    = "TCP"
  port        = 6432
  # Connections are long-lived: a task that leaves keeps its clients a
  # minute to finish their transactions.
  deregistration_delay = 60

  health_check {
    protocol            = "TCP"
    interval            = 10
    healthy_threshold   = 2
    unhealthy_threshold = 2
  }

  tags = {
    Name = "${var.name}-pgbouncer"
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_lb_listener" "pg_proxy" {
  for_each = {
    write = var.pg_proxy.write_port
    read  = var.pg_proxy.read_port
  }

  region            = var.aws_region
  load_balancer_arn = aws_lb.pg_proxy.arn
  port              = each.value
  protocol          = "TCP"

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.pgbouncer.arn
  }
}

# <pg_proxy.name>.<project>.internal in every region: Cloud Map's alias to
# the load balancer, in a namespace per VPC of the same name.
resource "aws_service_discovery_private_dns_namespace" "this" {
  region = var.aws_region
  name   = "${var.project}.internal"
  vpc    = var.network.vpc_id
}

resource "aws_service_discovery_service" "pg_proxy" {
  region = var.aws_region
  name   = var.pg_proxy.name

  dns_config {
    namespace_id   = aws_service_discovery_private_dns_namespace.this.id
    routing_policy = "WEIGHTED"

    dns_records {
      ttl  = 60
      type = "A"
    }
  }
}

resource "aws_service_discovery_instance" "pg_proxy" {
  region      = var.aws_region
  instance_id = "nlb"
  service_id  = aws_service_discovery_service.pg_proxy.id

  attributes = {
    AWS_ALIAS_DNS_NAME = aws_lb.pg_proxy.dns_name
  }
}
