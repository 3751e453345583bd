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
  description = "PgBouncer per region, as the app reaches it: a Cloud Map name for PgBouncer's internal load balancer, the same in every region, a port per role."
  value = {
{% for r in regions %}
    {{ r.name|key }} = module.{{ r.module|key }}.pgbouncer_endpoints
{% endfor %}
  }
}

output "edge_dns_names" {
  description = "Each region's application load balancer."
  value = {
{% for r in regions %}
    {{ r.name|key }} = module.{{ r.module|key }}.edge_dns_name
{% endfor %}
  }
}

output "bootstrap_command" {
  description = "Run once after the first apply (and again after rotating the app's password): starts the one-shot ECS task that creates the application role on the writer. `aws ecs wait tasks-stopped` and the task's exit code tell the outcome; its log is in CloudWatch under /ecs/{{ project|key }}."
  value       = module.{{ primary_module|key }}.bootstrap_command
}

output "secret_arns" {
  description = "Secrets Manager ARNs of the generated passwords, in the primary region; each secondary region holds a replica under the same name (values are never outputs)."
  value       = { for k, s in aws_secretsmanager_secret.this : k => s.arn }
}
