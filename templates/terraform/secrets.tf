{{ header("#") }}
#
# Every secret, once: generated here, kept in Secrets Manager in the
# primary region ({{ primary_region|comment }}){% if secondary_regions %} and replicated by Secrets Manager to
# {% for r in secondary_regions %}{{ r.aws_region|comment }}{% if not loop.last %}, {% endif %}{% endfor %}{% endif %}. Every region reads the same values under the same
# names, so a secondary region's PgBouncer logs in to the writer with the
# password the writer's role has. No secret is a literal or a variable
# default; the writer's master password is managed by RDS itself
# (manage_master_user_password).

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

locals {
  # Every region names PgBouncer's endpoint the same way (Cloud Map, a
  # namespace per VPC of the same name), so the database URLs are the same
  # everywhere and one secret holds each.
  pg_proxy_host = "{{ proxy.name|key }}.{{ project|key }}.internal"

  # Names and descriptions apart from the values: for_each takes no
  # sensitive value, and the names are what the regions read.
  secrets = {
    app_db             = { name = "{{ project|key }}/app-db-password", description = "Password of the application role {{ postgres.user|key }}" }
    database_url_write = { name = "{{ project|key }}/database-url-write", description = "The app's DATABASE_URL (writes)" }
    database_url_read  = { name = "{{ project|key }}/database-url-read", description = "The app's DATABASE_READ_URL (reads, in the app's own region)" }
    pgbouncer_admin    = { name = "{{ project|key }}/pgbouncer-admin-password", description = "Password of PgBouncer's admin console user {{ admin_user|key }}" }
    redis_auth         = { name = "{{ project|key }}/redis-auth-token", description = "ElastiCache auth token" }
  }

  secret_values = {
    app_db             = random_password.app_db.result
    database_url_write = "postgres://{{ postgres.user|key }}:${random_password.app_db.result}@${local.pg_proxy_host}:{{ proxy.write.port }}/{{ postgres.database|key }}"
    database_url_read  = "postgres://{{ postgres.user|key }}:${random_password.app_db.result}@${local.pg_proxy_host}:{{ proxy.read.port }}/{{ pgbouncer.read_alias|key }}"
    pgbouncer_admin    = random_password.pgbouncer_admin.result
    redis_auth         = random_password.redis_auth.result
  }

  # Each region's tasks read their own region's copy, by its full ARN (ECS
  # takes a bare name for SSM parameters only): a replica's ARN is the
  # primary's with the replica's region (Secrets Manager, "Replicate
  # secrets across Regions").
  secret_arns = {
    for region in [{{ primary_region }}{% for r in secondary_regions %}, {{ r.aws_region }}{% endfor %}] : region => {
      for k, s in aws_secretsmanager_secret.this : k => replace(s.arn, ":{{ primary_region|key }}:", ":${region}:")
    }
  }
}

resource "aws_secretsmanager_secret" "this" {
  for_each = local.secrets

  region      = {{ primary_region }}
  name        = each.value.name
  description = each.value.description
{% for r in secondary_regions %}

  replica {
    region = {{ r.aws_region }}
  }
{% endfor %}
}

resource "aws_secretsmanager_secret_version" "this" {
  for_each = local.secrets

  region        = {{ primary_region }}
  secret_id     = aws_secretsmanager_secret.this[each.key].id
  secret_string = local.secret_values[each.key]
}
