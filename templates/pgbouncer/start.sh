#!/bin/sh
{{ header("#") }}
#
# Writes PgBouncer's auth file from the environment into a tmpfs, then
# starts PgBouncer. Plain-text entries let PgBouncer answer SCRAM for the
# client and perform SCRAM against PostgreSQL.
set -eu

: "${SCALEPLAN_APP_DB_PASSWORD:?set SCALEPLAN_APP_DB_PASSWORD}"
: "${SCALEPLAN_PGBOUNCER_ADMIN_PASSWORD:?set SCALEPLAN_PGBOUNCER_ADMIN_PASSWORD}"
for secret in "$SCALEPLAN_APP_DB_PASSWORD" "$SCALEPLAN_PGBOUNCER_ADMIN_PASSWORD"; do
  case "$secret" in
    *[!A-Za-z0-9_.-]*) echo "passwords may use letters, digits, '_', '.' and '-' only" >&2; exit 1 ;;
  esac
done

umask 077
printf '"%s" "%s"\n"%s" "%s"\n' \
  {{ postgres.user }} "$SCALEPLAN_APP_DB_PASSWORD" \
  {{ admin_user }} "$SCALEPLAN_PGBOUNCER_ADMIN_PASSWORD" > {{ auth_file }}
exec pgbouncer /etc/pgbouncer/pgbouncer.ini
