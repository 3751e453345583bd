#!/bin/sh
{{ header("#") }}
#
# Runs once, when the primary's data directory is first initialised
# (/docker-entrypoint-initdb.d, which sources it: no `set -e` here).
# Passwords come from the environment and reach PostgreSQL as psql
# variables, never through a file.

: "${SCALEPLAN_APP_DB_PASSWORD:?set SCALEPLAN_APP_DB_PASSWORD}"
: "${SCALEPLAN_REPLICATION_PASSWORD:?set SCALEPLAN_REPLICATION_PASSWORD}"

psql --username "${POSTGRES_USER:-postgres}" --dbname postgres \
  -v database={{ postgres.database }} \
  -v app_user={{ postgres.user }} \
  -v app_password="$SCALEPLAN_APP_DB_PASSWORD" \
  -v replication_user={{ replication_user }} \
  -v replication_password="$SCALEPLAN_REPLICATION_PASSWORD" \
  -f /etc/scaleplan/init-roles.sql
