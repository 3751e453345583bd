#!/bin/sh
{{ header("#") }}
#
# Writes PgBouncer's auth file from the environment into memory, then
# starts PgBouncer. Plain-text entries let PgBouncer answer SCRAM for the
# client and perform SCRAM against PostgreSQL.
set -eu

: "{{ require_env(secrets.app_db) }}"
: "{{ require_env(secrets.pgbouncer_admin) }}"
for secret in "{{ env(secrets.app_db) }}" "{{ env(secrets.pgbouncer_admin) }}"; do
  case "$secret" in
    *[!A-Za-z0-9_.-]*) echo "passwords may use letters, digits, '_', '.' and '-' only" >&2; exit 1 ;;
  esac
done

umask 077
mkdir -p "$(dirname {{ auth_file }})"
printf {{ userlist }} \
  {{ postgres.user }} "{{ env(secrets.app_db) }}" \
  {{ admin_user }} "{{ env(secrets.pgbouncer_admin) }}" > {{ auth_file }}
exec pgbouncer /etc/pgbouncer/pgbouncer.ini
