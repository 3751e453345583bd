#!/bin/sh
{{ header("#") }}
#
# Runs once, when the primary's data directory is first initialised
# (/docker-entrypoint-initdb.d, which sources it: no `set -e` here).
# Passwords come from the environment and reach PostgreSQL as psql
# variables, never through a file.

: "{{ require_env(secrets.app_db) }}"
: "{{ require_env(secrets.replication) }}"

psql --username "${POSTGRES_USER:-postgres}" --dbname postgres \
  -v database={{ postgres.database }} \
  -v app_user={{ postgres.user }} \
  -v app_password="{{ env(secrets.app_db) }}" \
  -v replication_user={{ replication_user }} \
  -v replication_password="{{ env(secrets.replication) }}" \
  -f /etc/scaleplan/init-roles.sql
