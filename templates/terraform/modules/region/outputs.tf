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

output "redis_endpoint" {
  description = "The primary endpoint, or the configuration endpoint in cluster mode."
  value       = local.redis_endpoint
}

output "pgbouncer_endpoint" {
  description = "PgBouncer as the app reaches it."
  value       = "${local.pgbouncer_host}:6432"
}

output "secret_arns" {
  description = "Secrets Manager ARNs of this region's generated passwords."
  value = {
    app_db          = aws_secretsmanager_secret.app_db.arn
    pgbouncer_admin = aws_secretsmanager_secret.pgbouncer_admin.arn
    redis_auth      = aws_secretsmanager_secret.redis_auth.arn
  }
}
