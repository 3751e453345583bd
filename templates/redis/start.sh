#!/bin/sh
{{ header("#") }}
#
# Usage: start.sh server|replicated|sentinel
# Writes the auth include from the environment into a tmpfs, then starts
# Redis or Sentinel. Files Redis rewrites itself (replicated data nodes and
# sentinels) are copied into the data volume once and owned by Redis after.
set -eu

: "{{ require_env(secrets.redis) }}"
case "{{ env(secrets.redis) }}" in
  *[!A-Za-z0-9_.-]*) echo "{{ secrets.redis|key }} may use letters, digits, '_', '.' and '-' only" >&2; exit 1 ;;
esac

umask 077
auth={{ auth_include }}
case "${1:-server}" in
  server)
    printf {{ auth.redis }} "{{ env(secrets.redis) }}" "{{ env(secrets.redis) }}" > "$auth"
    exec redis-server /etc/scaleplan/redis.conf
    ;;
  replicated)
    printf {{ auth.redis }} "{{ env(secrets.redis) }}" "{{ env(secrets.redis) }}" > "$auth"
    [ -f /data/redis.conf ] || cp /etc/scaleplan/redis.conf /data/redis.conf
    exec redis-server /data/redis.conf
    ;;
  sentinel)
{% if sentinel_auth is not none %}
    printf {{ sentinel_auth }} "{{ env(secrets.redis) }}" "{{ env(secrets.redis) }}" "{{ env(secrets.redis) }}" > "$auth"
{% else %}
    echo "this phase runs no sentinel" >&2
    exit 1
{% endif %}
    [ -f /data/sentinel.conf ] || cp /etc/scaleplan/sentinel.conf /data/sentinel.conf
    exec redis-sentinel /data/sentinel.conf
    ;;
  *)
    echo "usage: $0 server|replicated|sentinel" >&2
    exit 1
    ;;
esac
