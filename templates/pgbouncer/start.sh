#!/bin/sh
{{ header("#") }}
#
# Writes PgBouncer's auth file from the environment into memory, then
# starts PgBouncer. Plain-text entries let PgBouncer answer SCRAM for the
# client and perform SCRAM against PostgreSQL.
{% if pgbouncer.follow %}
#
# PgBouncer looks server names up with c-ares, which (since 1.31) keeps an
# answer for its whole TTL, and Docker's DNS answers with 600 s: a server
# recreated at a new address (the proxy, a promoted primary) would be
# dialled at its old one for up to ten minutes, whatever dns_max_ttl says.
# So PgBouncer runs from a copy of its file that names each server host
# by the address Docker's DNS gives now (getent: no cache). Every second
# the names are looked up again; where one moved, or the mounted file
# changed, the copy is rewritten and PgBouncer reloads: no client is
# dropped, and its connections to the old address close as they are
# released. A name that does not resolve keeps its last address.
{% endif %}
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
{% if pgbouncer.follow %}

conf=/etc/pgbouncer/pgbouncer.ini
running={{ pgbouncer.follow.running_config }}
if ! command -v getent >/dev/null; then
  echo "no getent in this image: PgBouncer resolves its servers' names itself and may keep an old address for as long as Docker's DNS TTL (600 s)" >&2
  exec pgbouncer "$conf"
fi

# The running copy from the mounted file; status 0 when it changed.
render() {
  tmp=$(mktemp "$running.XXXXXX")
  cp "$conf" "$tmp"
  # Every host a database entry names (host=a or host=a,b).
  names=$(sed -n 's/^[^;]*host=\([^ ]*\).*/\1/p' "$conf" | tr ',' ' ')
  for name in $names; do
    addr=$(getent hosts "$name" | sed -n '1s/[[:space:]].*//p')
    if [ -n "$addr" ] && [ "$addr" != "$(cat "$running.$name" 2>/dev/null)" ]; then
      echo "$name is at $addr" >&2
      echo "$addr" > "$running.$name"
    fi
    if [ -s "$running.$name" ]; then
      sed -i "/^[^;].*host=/s/\([=,]\)$name\([ ,]\)/\1$(cat "$running.$name")\2/g" "$tmp"
    fi
  done
  if cmp -s "$tmp" "$running"; then
    rm -f "$tmp"
    return 1
  fi
  mv "$tmp" "$running"
}

render || true
pgbouncer "$running" &
pgbouncer=$!
# PgBouncer's own signals, passed on: SIGINT is its safe shutdown (the
# service's stop signal), a HUP (`docker compose kill -s HUP`) reloads.
trap 'kill -INT "$pgbouncer" 2>/dev/null || true' INT
trap 'kill -TERM "$pgbouncer" 2>/dev/null || true' TERM
trap ': > "$running.reload"' HUP
(
  while sleep 1; do
    if render || [ -e "$running.reload" ]; then
      rm -f "$running.reload"
      kill -HUP "$pgbouncer" 2>/dev/null || exit 0
    fi
  done
) &
follower=$!
# wait returns early when a trapped signal arrives: again until PgBouncer
# has exited.
status=0
while :; do
  wait "$pgbouncer" && status=0 || status=$?
  kill -0 "$pgbouncer" 2>/dev/null || break
done
kill "$follower" 2>/dev/null || true
exit "$status"
{% else %}
exec pgbouncer /etc/pgbouncer/pgbouncer.ini
{% endif %}
