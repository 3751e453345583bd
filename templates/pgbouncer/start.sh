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
# by the IPv4 address Docker's DNS gives now (getent: no cache). Every
# second the names are looked up again; where one moved, the copy is
# rewritten and PgBouncer reloads: no client is dropped, and connections
# to the old address close as they are released. A name that does not
# resolve keeps its last address. The mounted file is read again only on
# a HUP (`docker compose kill -s HUP`), as PgBouncer itself would: a
# transition copies the next phase's files first and reloads at its step.
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
# The mounted file as of the start or the last HUP.
src="$running.src"
# A signal to PID 1 without a handler is dropped: PgBouncer's, passed on
# from here on (SIGINT is its safe shutdown, the service's stop signal).
pgbouncer=
trap '[ -n "$pgbouncer" ] && kill -INT "$pgbouncer" 2>/dev/null || exit 130' INT
trap '[ -n "$pgbouncer" ] && kill -TERM "$pgbouncer" 2>/dev/null || exit 143' TERM
trap 'true > "$running.reload" 2>/dev/null || true' HUP
if ! command -v getent >/dev/null; then
  echo "no getent in this image: PgBouncer resolves its servers' names itself and may keep an old address for as long as Docker's DNS TTL (600 s)" >&2
  exec pgbouncer "$conf"
fi

# The running copy from $src with each host's current address; status 0
# when it changed. Any failure leaves the running copy as it was.
render() {
  tmp=$(mktemp "$running.XXXXXX") || return 1
  cp "$src" "$tmp" || { rm -f "$tmp"; return 1; }
  # Every host a database entry names (host=a or host=a,b).
  names=$(sed -n 's/^[^;#]*host=\([^[:space:]]*\).*/\1/p' "$src" | tr ',' ' ')
  for name in $names; do
    # Its IPv4 addresses (the listeners bind IPv4); the one in use is kept
    # while it is still among them.
    set -- $(getent hosts "$name" | sed -n 's/^\([0-9][0-9.]*\)[[:space:]].*/\1/p')
    current=$(cat "$running.$name" 2>/dev/null || true)
    if [ "$#" -gt 0 ] && ! printf '%s\n' "$@" | grep -qxF "$current"; then
      echo "$name is at $1" >&2
      printf '%s\n' "$1" > "$running.$name" || { rm -f "$tmp"; return 1; }
      current=$1
    fi
    # An address already, or never resolved: PgBouncer dials it as written.
    if [ -n "$current" ] && [ "$current" != "$name" ]; then
      pattern=$(printf '%s' "$name" | sed 's/[.]/\\./g')
      sed -i -E -e '/^[[:space:]]*[;#]/b' -e ':a' \
        -e "s/(host=([^[:space:],]*,)*)$pattern([[:space:],]|\$)/\1$current\3/" -e 'ta' \
        "$tmp" || { rm -f "$tmp"; return 1; }
    fi
  done
  grep -q '^\[databases\]' "$tmp" || { rm -f "$tmp"; return 1; }
  if cmp -s "$tmp" "$running"; then
    rm -f "$tmp"
    return 1
  fi
  mv "$tmp" "$running"
}

cp "$conf" "$src"
render || true
pgbouncer "$running" &
pgbouncer=$!
(
  while sleep 1; do
    fresh=
    if [ -e "$running.reload" ]; then
      rm -f "$running.reload"
      cp "$conf" "$src.new" && mv "$src.new" "$src" && fresh=1
    fi
    if render || [ -n "$fresh" ]; then
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
