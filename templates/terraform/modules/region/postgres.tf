{{ header("#") }}
#
# RDS PostgreSQL. The parameter group carries the settings of the phase's
# postgresql.conf (the same list, converted to RDS units), less those RDS
# manages itself.

resource "aws_db_subnet_group" "this" {
  region     = var.aws_region
  name       = "${var.name}-postgres"
  subnet_ids = var.network.subnet_ids
}

resource "aws_db_parameter_group" "this" {
  region      = var.aws_region
  name_prefix = "${var.name}-postgres-"
  family      = var.postgres.family

  dynamic "parameter" {
    for_each = var.postgres.parameters
    content {
      name         = parameter.value.name
      value        = parameter.value.value
      apply_method = parameter.value.apply_method
    }
  }

  # A new major version needs a new family, which AWS can set only on a
  # new group: it is created before the old one goes (the provider's
  # aws_db_parameter_group docs recommend name_prefix with this).
  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_db_instance" "writer" {
  count = var.primary ? 1 : 0

  region                      = var.aws_region
  identifier                  = "${var.name}-writer"
  engine                      = "postgres"
  engine_version              = var.postgres.engine_version
  instance_class              = var.postgres.instance_class
  allocated_storage           = var.postgres.allocated_storage
  max_allocated_storage       = var.postgres.max_allocated_storage
  storage_type                = "gp3"
  storage_encrypted           = true
  multi_az                    = var.postgres.multi_az
  db_name                     = var.postgres.database
  username                    = "postgres"
  manage_master_user_password = true
  parameter_group_name        = aws_db_parameter_group.this.name
  db_subnet_group_name        = aws_db_subnet_group.this.name
  vpc_security_group_ids      = [aws_security_group.postgres.id]
  publicly_accessible         = false
  backup_retention_period     = var.postgres.backup_retention_days
  backup_window               = var.postgres.backup_window
  deletion_protection         = var.postgres.deletion_protection
  # Unique per writer: fixed when it is created (timestamp() at that
  # apply, then ignored), so destroying a second writer of the same name
  # does not collide with the first one's final snapshot.
  final_snapshot_identifier             = "${var.name}-writer-final-${formatdate("YYYYMMDDhhmmss", timestamp())}"
  copy_tags_to_snapshot                 = true
  apply_immediately                     = var.postgres.apply_immediately
  performance_insights_enabled          = var.postgres.performance_insights
  performance_insights_retention_period = var.postgres.performance_insights ? 7 : null

  lifecycle {
    ignore_changes = [final_snapshot_identifier]
  }
}

# Read replicas stream from the writer: in its region, or across regions
# from its ARN. A replica that fills up stops replaying, so each grows as
# the writer does.
resource "aws_db_instance" "replica" {
  count = var.postgres.read_replicas

  region                 = var.aws_region
  identifier             = "${var.name}-replica-${count.index + 1}"
  replicate_source_db    = var.primary ? aws_db_instance.writer[0].identifier : var.postgres.source_db_arn
  instance_class         = var.postgres.instance_class
  max_allocated_storage  = var.postgres.max_allocated_storage
  storage_encrypted      = true
  kms_key_id             = var.primary ? null : var.replica_kms_key_arn
  parameter_group_name   = aws_db_parameter_group.this.name
  db_subnet_group_name   = var.primary ? null : aws_db_subnet_group.this.name
  vpc_security_group_ids = [aws_security_group.postgres.id]
  publicly_accessible    = false
  skip_final_snapshot    = true
  apply_immediately      = var.postgres.apply_immediately

  performance_insights_enabled          = var.postgres.performance_insights
  performance_insights_retention_period = var.postgres.performance_insights ? 7 : null
}
