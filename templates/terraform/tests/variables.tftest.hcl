{{ header("#") }}
#
# Exercises the validation rules of variables.tf with `terraform test`. They
# need no provider, so scaleplan's own tests run them offline against
# variables.tf alone.

variables {
  networks = {
{% for r in regions %}
    {{ r.name|key }} = {
      vpc_id        = "vpc-0123456789abcdef0"
      subnet_ids    = ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"]
      allowed_cidrs = ["10.0.0.0/16"]
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
        vpc_id        = "my-vpc"
        subnet_ids    = ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"]
        allowed_cidrs = ["10.0.0.0/16"]
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
        vpc_id        = "vpc-0123456789abcdef0"
        subnet_ids    = ["subnet-0123456789abcdef0"]
        allowed_cidrs = ["10.0.0.0/16"]
      }
{% endfor %}
    }
  }

  expect_failures = [var.networks]
}

run "an_app_open_to_the_internet_fails" {
  command = plan

  variables {
    networks = {
{% for r in regions %}
      {{ r.name|key }} = {
        vpc_id        = "vpc-0123456789abcdef0"
        subnet_ids    = ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"]
        allowed_cidrs = ["0.0.0.0/0"]
      }
{% endfor %}
    }
  }

  expect_failures = [var.networks]
}

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
