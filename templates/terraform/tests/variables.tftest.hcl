{{ header("#") }}
#
# Exercises the validation rules of variables.tf with `terraform test`. They
# need no provider, so scaleplan's own tests run them offline against
# variables.tf alone.

variables {
  networks = {
{% for r in regions %}
    {{ r.name|key }} = {
      vpc_id            = "vpc-0123456789abcdef0"
      cidr_block        = "10.{{ loop.index }}.0.0/16"
      subnet_ids        = ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"]
      public_subnet_ids = ["subnet-0aaaaaaaaaaaaaaa0", "subnet-0bbbbbbbbbbbbbbb0"]
      route_table_ids   = ["rtb-0123456789abcdef0"]
      allowed_cidrs     = ["0.0.0.0/0"]
    }
{% endfor %}
  }
{% if secondary_names %}
  replica_kms_keys = {
{% for name in secondary_names %}
    {{ name|key }} = "arn:aws:kms:us-east-1:123456789012:key/replica"
{% endfor %}
  }
{% endif %}
}

run "valid_networks_pass" {
  command = plan
}

run "a_region_without_network_fails" {
  command = plan

  variables {
    networks = {}
  }

  expect_failures = [var.networks]
}

run "a_malformed_vpc_id_fails" {
  command = plan

  variables {
    networks = {
{% for r in regions %}
      {{ r.name|key }} = {
        vpc_id            = "my-vpc"
        cidr_block        = "10.{{ loop.index }}.0.0/16"
        subnet_ids        = ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"]
        public_subnet_ids = ["subnet-0aaaaaaaaaaaaaaa0", "subnet-0bbbbbbbbbbbbbbb0"]
        route_table_ids   = ["rtb-0123456789abcdef0"]
        allowed_cidrs     = ["10.0.0.0/16"]
      }
{% endfor %}
    }
  }

  expect_failures = [var.networks]
}

run "one_subnet_fails" {
  command = plan

  variables {
    networks = {
{% for r in regions %}
      {{ r.name|key }} = {
        vpc_id            = "vpc-0123456789abcdef0"
        cidr_block        = "10.{{ loop.index }}.0.0/16"
        subnet_ids        = ["subnet-0123456789abcdef0"]
        public_subnet_ids = ["subnet-0aaaaaaaaaaaaaaa0", "subnet-0bbbbbbbbbbbbbbb0"]
        route_table_ids   = ["rtb-0123456789abcdef0"]
        allowed_cidrs     = ["10.0.0.0/16"]
      }
{% endfor %}
    }
  }

  expect_failures = [var.networks]
}

run "an_allowed_block_that_is_no_cidr_fails" {
  command = plan

  variables {
    networks = {
{% for r in regions %}
      {{ r.name|key }} = {
        vpc_id            = "vpc-0123456789abcdef0"
        cidr_block        = "10.{{ loop.index }}.0.0/16"
        subnet_ids        = ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"]
        public_subnet_ids = ["subnet-0aaaaaaaaaaaaaaa0", "subnet-0bbbbbbbbbbbbbbb0"]
        route_table_ids   = ["rtb-0123456789abcdef0"]
        allowed_cidrs     = ["everyone"]
      }
{% endfor %}
    }
  }

  expect_failures = [var.networks]
}

run "a_certificate_for_an_unknown_region_fails" {
  command = plan

  variables {
    certificate_arns = {
      nowhere = "arn:aws:acm:eu-west-1:123456789012:certificate/x"
    }
  }

  expect_failures = [var.certificate_arns]
}

{% if secondary_names %}
run "overlapping_region_blocks_fail" {
  command = plan

  variables {
    networks = {
{% for r in regions %}
      {{ r.name|key }} = {
        vpc_id            = "vpc-0123456789abcdef0"
        cidr_block        = "10.0.0.0/16"
        subnet_ids        = ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"]
        public_subnet_ids = ["subnet-0aaaaaaaaaaaaaaa0", "subnet-0bbbbbbbbbbbbbbb0"]
        route_table_ids   = ["rtb-0123456789abcdef0"]
        allowed_cidrs     = ["0.0.0.0/0"]
      }
{% endfor %}
    }
  }

  expect_failures = [var.networks]
}

{% endif %}
{% if secondary_names %}
run "a_secondary_region_without_kms_key_fails" {
  command = plan

  variables {
    replica_kms_keys = {}
  }

  expect_failures = [var.replica_kms_keys]
}

{% endif %}
run "a_wrong_instance_class_fails" {
  command = plan

  variables {
    postgres_instance_class = "m5.large"
  }

  expect_failures = [var.postgres_instance_class]
}

run "each_cluster_mode_apply_passes" {
  command = plan

  variables {
    redis_cluster_mode_override = "enabled"
  }
}

run "an_evicting_policy_override_fails" {
  command = plan

  variables {
    redis_maxmemory_policy_override = "allkeys-lru"
  }

  expect_failures = [var.redis_maxmemory_policy_override]
}

run "an_unknown_cluster_mode_override_fails" {
  command = plan

  variables {
    redis_cluster_mode_override = "disabled"
  }

  expect_failures = [var.redis_cluster_mode_override]
}
