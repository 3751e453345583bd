#!/bin/sh
{{ header("#") }}
#
# Runs once, when the primary's data directory is first initialised
# (/docker-entrypoint-initdb.d). Passwords come from the environment and go
# to PostgreSQL as psql variables, never through the shell or a file.
set -eu

: "${SCALEPLAN_APP_DB_PASSWORD:?set SCALEPLAN_APP_DB_PASSWORD}"
: "${SCALEPLAN_REPLICATION_PASSWORD:?set SCALEPLAN_REPLICATION_PASSWORD}"

psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname {{ postgres.database }} \
  -v app_user={{ postgres.user }} \
  -v app_password="$SCALEPLAN_APP_DB_PASSWORD" \
  -v replication_user={{ replication_user }} \
  -v replication_password="$SCALEPLAN_REPLICATION_PASSWORD" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'app_user', :'app_password') \gexec
SELECT format('CREATE ROLE %I REPLICATION LOGIN PASSWORD %L', :'replication_user', :'replication_password') \gexec
SELECT format('ALTER DATABASE %I OWNER TO %I', current_database(), :'app_user') \gexec
SELECT format('GRANT ALL ON SCHEMA public TO %I', :'app_user') \gexec
SQL
