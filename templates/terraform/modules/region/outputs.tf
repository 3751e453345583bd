{{ header("#") }}

output "writer_address" {
  description = "The PostgreSQL writer's address (in the primary region)."
  value       = local.writer_address
}

output "writer_arn" {
  description = "The writer's ARN, which cross-region replicas replicate from."
  value       = var.primary ? aws_db_instance.writer[0].arn : null
}

output "reader_addresses" {
  description = "This region's read replicas."
  value       = aws_db_instance.replica[*].address
}

output "redis_global_id" {
  description = "The Redis global datastore's id (primary region, when the phase asks for one)."
  value       = try(aws_elasticache_global_replication_group.this[0].global_replication_group_id, null)
}

output "redis_endpoint" {
  description = "The primary endpoint, or the configuration endpoint in cluster mode."
  value       = local.redis_endpoint
}

output "pgbouncer_endpoints" {
  description = "PgBouncer as the app reaches it: the same name in every region, a port per role."
  value = {
    write = "${local.pg_proxy_host}:${var.pg_proxy.write_port}"
    read  = "${local.pg_proxy_host}:${var.pg_proxy.read_port}"
  }
}

output "edge_dns_name" {
  description = "The application load balancer's DNS name: point the region's domain at it."
  value       = aws_lb.edge.dns_name
}

output "bootstrap_command" {
  description = "The AWS CLI command that runs the role bootstrap task once (primary region)."
  value       = local.bootstrap_command
}
