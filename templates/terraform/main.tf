{{ header("#") }}
#
# One module instance per region. The primary region holds the writer; a
# secondary region holds cross-region read replicas of it and its own Redis.

provider "aws" {
  region = {{ primary_region }}

  default_tags {
    tags = {
      project    = {{ project }}
      phase      = {{ phase }}
      managed-by = "scaleplan"
    }
  }
}
{% for r in regions %}

module {{ r.module|hcl_label }} {
  source = "./modules/region"

  # Tasks start only once every secret has its value (and its replicas).
  depends_on = [aws_secretsmanager_secret_version.this]

  # What AWS keys the region's resources on: never the phase, so the next
  # phase's files apply onto these resources instead of beside them.
  project    = {{ project }}
  name       = {{ r.resource_name }}
  aws_region = {{ r.aws_region }}
  primary    = {{ r.primary }}
  network    = var.networks[{{ r.name }}]
{% if secondary_regions %}
  # The regions' databases talk over the VPC peering (network.tf), by CIDR
  # block: no id of one region's resources is passed to another's module.
  peer_cidrs = {% if r.primary %}[{% for p in secondary_regions %}var.networks[{{ p.name }}].cidr_block{% if not loop.last %}, {% endif %}{% endfor %}]{% else %}[var.networks[{{ primary_name }}].cidr_block]{% endif %}

{% endif %}
{% if not r.primary %}

  replica_kms_key_arn = var.replica_kms_keys[{{ r.name }}]
{% endif %}

  # One definition of every secret (secrets.tf); this region reads its
  # own region's copy.
  secrets           = local.secret_arns[{{ r.aws_region }}]
  redis_auth_token  = random_password.redis_auth.result
  rds_ca_bundle_url = var.rds_ca_bundle_url
  bootstrap_image   = {{ bootstrap_image }}

  # The workers' BullMQ queues: the module prefixes them by its Redis's
  # mode (a hash tag each in cluster mode).
  queues      = {{ queues }}
  runs_queues = {{ runs_queues }}

  pg_proxy = {
    name       = {{ proxy.name }}
    write_port = {{ proxy.write.port }}
    read_port  = {{ proxy.read.port }}
  }

  edge = {
    certificate_arn = lookup(var.certificate_arns, {{ r.name }}, null)
    # Longer than the app's WebSocket ping interval ({{ ping_interval_s }} s), so a
    # quiet socket is never cut.
    idle_timeout = {{ idle_timeout }}
  }

  postgres = {
    engine_version        = {{ postgres.version|string }}
    family                = {{ "postgres" ~ postgres.version }}
    instance_class        = var.postgres_instance_class
    allocated_storage     = {{ postgres.storage_gb }}
    max_allocated_storage = {{ postgres.storage_gb * 2 }}
    multi_az              = {{ r.primary and multi_az }}
    database              = {{ postgres.database }}
    read_replicas         = {{ r.read_replicas }}
    source_db_arn         = {% if r.primary %}null{% else %}module.{{ primary_module|key }}.writer_arn{% endif %}

    writer_address        = {% if r.primary %}null{% else %}module.{{ primary_module|key }}.writer_address{% endif %}

    deletion_protection   = var.deletion_protection
    apply_immediately     = var.apply_immediately
    performance_insights  = {{ performance_insights }}
    # postgres.backup: RDS's automated backups and point-in-time recovery.
    backup_retention_days = {{ postgres.backup.retention_days }}
    backup_window         = {{ postgres.backup.window }}
    parameters = [
{% for p in parameters %}
      { name = {{ p.name }}, value = {{ p.value }}, apply_method = {{ p.apply_method }} },
{% endfor %}
    ]
  }

  redis = {
    node_type               = var.redis_node_types[{{ r.name }}]
    engine_version          = {{ r.redis.engine_version }}
    family                  = {{ r.redis.family }}
    cluster_mode            = {{ r.redis.cluster_mode }}
    num_cache_clusters      = {{ r.redis.num_cache_clusters|hcl_or_null }}
    num_node_groups         = {{ r.redis.num_node_groups|hcl_or_null }}
    replicas_per_node_group = {{ r.redis.replicas_per_node_group|hcl_or_null }}
    automatic_failover      = {{ r.redis.automatic_failover }}
    multi_az                = {{ r.redis.multi_az }}
    maxmemory_policy        = {{ r.redis.maxmemory_policy }}
    apply_immediately       = var.apply_immediately
{% if r.redis.global %}
    # One Redis for every region: an ElastiCache global datastore.
    global_datastore = true
    global_id        = {% if r.primary %}null{% else %}module.{{ primary_module|key }}.redis_global_id{% endif %}

    writer_endpoint  = {% if r.primary %}null{% else %}module.{{ primary_module|key }}.redis_endpoint{% endif %}

{% else %}
    global_datastore        = false
    global_id               = null
    writer_endpoint         = null
{% endif %}
  }

  pgbouncer = {
    image      = {{ pgbouncer.image }}
    instances  = {{ pgbouncer.instances|length }}
    cpu        = {{ pgbouncer_size[0] }}
    memory     = {{ pgbouncer_size[1] }}
    nofile     = {{ pgbouncer.nofile }}
    user       = {{ postgres.user }}
    admin_user = {{ admin_user }}
  }

  redis_cluster_mode_override     = var.redis_cluster_mode_override
  redis_maxmemory_policy_override = var.redis_maxmemory_policy_override

{% if r.queue_redis %}
  # BullMQ's own Redis: noeviction, two nodes with automatic failover.
  queue_redis = {
    node_type = {{ r.queue_redis.node_type }}
  }

{% endif %}
  alarms = {
    warning         = {{ alarms.warning }}
    critical        = {{ alarms.critical }}
    phase           = {{ phase }}
    next            = {{ alarms.next|hcl_or_null }}
    plan            = {{ alarms.plan|hcl_or_null }}
    max_connections = {{ alarms.max_connections }}
    app_service     = {{ alarms.app_service }}
    # The region's app replicas x app.websocket.max_connections_per_replica.
    websocket_connections = {{ r.websocket_connections }}
    topic_arn             = var.alarm_topic_arn
    redis = {
      cpu_warning  = {{ alarms.redis.cpu_warning }}
      cpu_critical = {{ alarms.redis.cpu_critical }}
      burstable    = {{ alarms.redis.burstable }}
      memory_bytes = {{ alarms.redis.memory_bytes }}
    }
  }

  services = [
{% for s in services %}
    {
      name          = {{ s.name }}
      image         = {{ s.image }}
      replicas      = {{ r.app_replicas if s.name == "app" else s.replicas }}
      cpu           = {{ s.cpu }}
      memory        = {{ s.memory }}
      port          = {{ s.port|hcl_or_null }}
      health_path   = {{ s.health_path }}
      uses_postgres = {{ s.uses_postgres }}
      uses_redis    = {{ s.uses_redis }}
    },
{% endfor %}
  ]
}
{% endfor %}
{% for r in regions %}
{% if r.module != r.module_before %}

# scaleplan's earlier releases addressed this region as {{ r.module_before|comment }}.
moved {
  from = module.{{ r.module_before|key }}
  to   = module.{{ r.module|key }}
}
{% endif %}
{% endfor %}

# scaleplan's earlier releases created the secrets in the region module;
# they are the one definition now.
moved {
  from = module.{{ primary_module|key }}.random_password.app_db
  to   = random_password.app_db
}

moved {
  from = module.{{ primary_module|key }}.random_password.pgbouncer_admin
  to   = random_password.pgbouncer_admin
}

moved {
  from = module.{{ primary_module|key }}.random_password.redis_auth
  to   = random_password.redis_auth
}

moved {
  from = module.{{ primary_module|key }}.aws_secretsmanager_secret.app_db
  to   = aws_secretsmanager_secret.this["app_db"]
}

moved {
  from = module.{{ primary_module|key }}.aws_secretsmanager_secret_version.app_db
  to   = aws_secretsmanager_secret_version.this["app_db"]
}

moved {
  from = module.{{ primary_module|key }}.aws_secretsmanager_secret.database_url["write"]
  to   = aws_secretsmanager_secret.this["database_url_write"]
}

moved {
  from = module.{{ primary_module|key }}.aws_secretsmanager_secret_version.database_url["write"]
  to   = aws_secretsmanager_secret_version.this["database_url_write"]
}

moved {
  from = module.{{ primary_module|key }}.aws_secretsmanager_secret.database_url["read"]
  to   = aws_secretsmanager_secret.this["database_url_read"]
}

moved {
  from = module.{{ primary_module|key }}.aws_secretsmanager_secret_version.database_url["read"]
  to   = aws_secretsmanager_secret_version.this["database_url_read"]
}

moved {
  from = module.{{ primary_module|key }}.aws_secretsmanager_secret.pgbouncer_admin
  to   = aws_secretsmanager_secret.this["pgbouncer_admin"]
}

moved {
  from = module.{{ primary_module|key }}.aws_secretsmanager_secret_version.pgbouncer_admin
  to   = aws_secretsmanager_secret_version.this["pgbouncer_admin"]
}

moved {
  from = module.{{ primary_module|key }}.aws_secretsmanager_secret.redis_auth
  to   = aws_secretsmanager_secret.this["redis_auth"]
}

moved {
  from = module.{{ primary_module|key }}.aws_secretsmanager_secret_version.redis_auth
  to   = aws_secretsmanager_secret_version.this["redis_auth"]
}
