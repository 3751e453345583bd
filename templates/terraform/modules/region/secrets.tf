{{ header("#") }}
#
# Passwords are generated here and kept in Secrets Manager; no secret is a
# literal or a variable default. The writer's master password is managed by
# RDS itself (manage_master_user_password).

resource "random_password" "app_db" {
  length  = 32
  special = false
}

resource "random_password" "pgbouncer_admin" {
  length  = 32
  special = false
}

resource "random_password" "redis_auth" {
  length  = 48
  special = false
}

resource "aws_secretsmanager_secret" "app_db" {
  region      = var.aws_region
  name        = "${var.name}/app-db-password"
  description = "Password of the application role ${var.pgbouncer.user}"
}

resource "aws_secretsmanager_secret_version" "app_db" {
  region        = var.aws_region
  secret_id     = aws_secretsmanager_secret.app_db.id
  secret_string = random_password.app_db.result
}

# The app's DATABASE_URL and DATABASE_READ_URL, whole: ECS puts a secret
# into a variable as it is, and the URLs carry the password.
resource "aws_secretsmanager_secret" "database_url" {
  for_each = toset(["write", "read"])

  region      = var.aws_region
  name        = "${var.name}/database-url-${each.key}"
  description = "The app's database URL for ${each.key}s"
}

resource "aws_secretsmanager_secret_version" "database_url" {
  for_each = aws_secretsmanager_secret.database_url

  region        = var.aws_region
  secret_id     = each.value.id
  secret_string = "postgres://${var.pgbouncer.user}:${random_password.app_db.result}@${local.pgbouncer_host}:6432/${each.key == "write" ? var.postgres.database : var.pgbouncer.read_alias}"
}

resource "aws_secretsmanager_secret" "pgbouncer_admin" {
  region      = var.aws_region
  name        = "${var.name}/pgbouncer-admin-password"
  description = "Password of PgBouncer's admin console user ${var.pgbouncer.admin_user}"
}

resource "aws_secretsmanager_secret_version" "pgbouncer_admin" {
  region        = var.aws_region
  secret_id     = aws_secretsmanager_secret.pgbouncer_admin.id
  secret_string = random_password.pgbouncer_admin.result
}

resource "aws_secretsmanager_secret" "redis_auth" {
  region      = var.aws_region
  name        = "${var.name}/redis-auth-token"
  description = "ElastiCache auth token"
}

resource "aws_secretsmanager_secret_version" "redis_auth" {
  region        = var.aws_region
  secret_id     = aws_secretsmanager_secret.redis_auth.id
  secret_string = random_password.redis_auth.result
}
