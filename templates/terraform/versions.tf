{{ header("#") }}

terraform {
  # 1.10: the S3 backend's lock file (use_lockfile).
  required_version = ">= 1.10.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.0"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.7"
    }
  }
{% if state is not none %}

  # Terraform's state holds every generated password: it lives in S3,
  # encrypted at rest, locked by a lock file beside it while a plan or an
  # apply runs (targets.terraform.state). Every phase of {{ project|comment }} is the
  # same deployment at another size, so they share it. Create the bucket
  # once, before the first `terraform init` (README.md).
  backend "s3" {
    bucket       = {{ state.bucket }}
    key          = {{ state.key }}
    region       = {{ state.region }}
    encrypt      = true
    use_lockfile = true
  }
{% else %}

  # No backend: the state (with every generated password) stays in a
  # local terraform.tfstate, unencrypted and unlocked. Set
  # targets.terraform.state to keep it in S3.
{% endif %}
}
