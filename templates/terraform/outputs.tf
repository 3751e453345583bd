{{ header("#") }}
#
# Endpoints only: the passwords stay in Secrets Manager (see secret_arns).

output "writer_endpoint" {
  description = "The PostgreSQL writer (primary region)."
  value       = module.{{ primary_module|key }}.writer_address
}

output "reader_endpoints" {
  description = "PostgreSQL read replicas, per region."
  value = {
{% for r in regions %}
    {{ r.name|key }} = module.{{ r.module|key }}.reader_addresses
{% endfor %}
  }
}

output "redis_endpoints" {
  description = "Redis per region: the primary endpoint, or the configuration endpoint in cluster mode."
  value = {
{% for r in regions %}
    {{ r.name|key }} = module.{{ r.module|key }}.redis_endpoint
{% endfor %}
  }
}

output "pgbouncer_endpoints" {
  description = "PgBouncer per region, as the app reaches it (Cloud Map DNS name and port)."
  value = {
{% for r in regions %}
    {{ r.name|key }} = module.{{ r.module|key }}.pgbouncer_endpoint
{% endfor %}
  }
}

output "secret_arns" {
  description = "Secrets Manager ARNs of the generated passwords, per region (values are never outputs)."
  value = {
{% for r in regions %}
    {{ r.name|key }} = module.{{ r.module|key }}.secret_arns
{% endfor %}
  }
}
