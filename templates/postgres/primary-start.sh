#!/bin/bash
{{ header("#") }}
#
# Starts the primary {{ postgres.primary.name|comment }} in Compose, on the official image or on
# one built from Debian's packages alike: it leans on no image's own
# entrypoint. An empty data directory is initialised (the superuser's
# password from the environment, through a file in memory); then, on every
# start, the roles and database are applied with init-roles.sql over the
# Unix socket before any client can connect (idempotent, so a rotated
# password takes effect on the next start); then PostgreSQL runs.
set -euo pipefail

: "{{ require_env(secrets.postgres) }}"
: "{{ require_env(secrets.app_db) }}"
: "{{ require_env(secrets.replication) }}"
for secret in "{{ env(secrets.postgres) }}" "{{ env(secrets.app_db) }}" "{{ env(secrets.replication) }}"; do
  case "$secret" in
    *[!A-Za-z0-9_.-]*) echo "passwords may use letters, digits, '_', '.' and '-' only" >&2; exit 1 ;;
  esac
done

data=${PGDATA:?set PGDATA}
config=/etc/postgresql/postgresql.conf

{% if postgres.backup.archive is not none %}
# The backup repository remembers the cluster this deployment's primary
# held: an empty data directory beside it is a lost one, never a new one.
repo=/var/lib/pgbackrest
if [ ! -s "$data/PG_VERSION" ] && [ -s "$repo/backup/{{ postgres.backup.stanza }}/backup.info" ]; then
  if [ -z "${SCALEPLAN_REINIT_PRIMARY:-}" ]; then
    echo "{{ postgres.primary.name|comment }}: $data is empty, and the backup repository holds this deployment's cluster: not initialising a new, empty one in its place. Nothing was changed." >&2
    echo "  Restore it from the backups (docs/compose.md), or set SCALEPLAN_REINIT_PRIMARY=1 to start an empty primary (the old cluster's backups are kept aside)." >&2
    exit 1
  fi
  aside="{{ postgres.backup.stanza }}.before-$(date -u +%Y%m%dT%H%M%SZ)"
  for part in backup archive; do
    [ -e "$repo/$part/{{ postgres.backup.stanza }}" ] && mv "$repo/$part/{{ postgres.backup.stanza }}" "$repo/$part/$aside"
  done
  echo "the old cluster's backups are kept in $repo/{backup,archive}/$aside"
fi
{% endif %}
{% if postgres.backup.archive is not none %}
# A standby promoted while this node was down put a newer timeline's
# history in the archive: this data directory is behind it, and started as
# the primary it would be a second one, taking writes the other never
# sees. (A directory being restored, with recovery.signal, replays to the
# archive's newest timeline itself.)
if [ -s "$data/PG_VERSION" ] && [ ! -f "$data/recovery.signal" ] && [ -d "$repo/archive/{{ postgres.backup.stanza }}" ]; then
  mine=$(pg_controldata "$data" | sed -n "s/^Latest checkpoint's TimeLineID: *//p")
  newest=$(find "$repo/archive/{{ postgres.backup.stanza }}" -name '*.history*' -printf '%f\n' \
    | sed -n 's/^\([0-9A-F]\{8\}\)\.history.*/\1/p' | sort | tail -n 1)
  if [ -n "$mine" ] && [ -n "$newest" ] && [ "$((16#$newest))" -gt "$mine" ]; then
    echo "{{ postgres.primary.name|comment }}: not starting as the primary: this data directory is on timeline $mine, and the archive holds timeline $((16#$newest)): another node was promoted after this one stopped, and two primaries would split the writes. Nothing was changed." >&2
    echo "  The deployment's primary is the promoted node: scaleplan up PHASE --state DIR plans it there. To bring this node back, reseed it as a standby (docs/recovery.md)." >&2
    exit 1
  fi
fi
{% endif %}
if [ ! -s "$data/PG_VERSION" ]; then
  echo "initialising $data"
  umask 077
  mkdir -p "{{ compose_secrets_dir }}"
  pwfile=$(mktemp "{{ compose_secrets_dir }}/superuser.XXXXXX")
  printf '%s\n' "{{ env(secrets.postgres) }}" > "$pwfile"
  initdb -D "$data" --username={{ superuser }} --pwfile="$pwfile" \
    --auth-local=peer --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8
  rm -f "$pwfile"
fi

# Roles and database, with nothing listening on TCP yet.
pg_ctl -D "$data" -w -t 120 start -o "-c config_file=$config -c listen_addresses=''"
{% if postgres.backup.archive is not none %}
# A data directory restored from a backup (pgbackrest restore) replays the
# archive to its target and promotes itself: only then does it take the
# roles' writes. Its recovery settings are dropped after, so no replica
# cloned from it inherits them.
for _ in $(seq 1 3600); do
  [ "$(psql -X -A -t --username {{ superuser }} --dbname postgres -c 'SELECT pg_is_in_recovery()')" = f ] && break
  sleep 1
done
[ "$(psql -X -A -t --username {{ superuser }} --dbname postgres -c 'SELECT pg_is_in_recovery()')" = f ] || { echo "still recovering after an hour" >&2; exit 1; }
for key in restore_command recovery_target_time recovery_target_action; do
  psql -X -q --username {{ superuser }} --dbname postgres -c "ALTER SYSTEM RESET $key"
done
{% endif %}
psql -X -q --username {{ superuser }} --dbname postgres \
  -v database={{ postgres.database }} \
  -v app_user={{ postgres.user }} \
  -v app_password="{{ env(secrets.app_db) }}" \
  -v replication_user={{ replication_user }} \
  -v replication_password="{{ env(secrets.replication) }}" \
  -v superuser={{ superuser }} \
  -v superuser_password="{{ env(secrets.postgres) }}" \
  -f /etc/scaleplan/init-roles.sql
{% if postgres.backup.archive is not none %}
# The WAL archive's stanza (created once; a later start finds it), and a
# segment seen to reach the archive.
pgbackrest --stanza={{ postgres.backup.stanza }} stanza-create
pgbackrest --stanza={{ postgres.backup.stanza }} check
{% endif %}
pg_ctl -D "$data" -w -t 120 -m fast stop

exec postgres -D "$data" -c "config_file=$config"
