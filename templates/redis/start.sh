#!/bin/sh
{{ header("#") }}
#
# Usage: start.sh server|replicated|sentinel
# Writes the auth include from the environment into a tmpfs, then starts
# Redis or Sentinel. Files Redis rewrites itself (replicated data nodes and
# sentinels) are copied into the data volume once and owned by Redis after.
set -eu

: "${SCALEPLAN_REDIS_PASSWORD:?set SCALEPLAN_REDIS_PASSWORD}"
case "$SCALEPLAN_REDIS_PASSWORD" in
  *[!A-Za-z0-9_.-]*) echo "SCALEPLAN_REDIS_PASSWORD may use letters, digits, '_', '.' and '-' only" >&2; exit 1 ;;
esac

umask 077
auth={{ auth_include }}
case "${1:-server}" in
  server)
    printf 'requirepass "%s"\nmasterauth "%s"\n' "$SCALEPLAN_REDIS_PASSWORD" "$SCALEPLAN_REDIS_PASSWORD" > "$auth"
    exec redis-server /etc/scaleplan/redis.conf
    ;;
  replicated)
    printf 'requirepass "%s"\nmasterauth "%s"\n' "$SCALEPLAN_REDIS_PASSWORD" "$SCALEPLAN_REDIS_PASSWORD" > "$auth"
    [ -f /data/redis.conf ] || cp /etc/scaleplan/redis.conf /data/redis.conf
    exec redis-server /data/redis.conf
    ;;
  sentinel)
    : "${SCALEPLAN_REDIS_MASTER_NAME:?set SCALEPLAN_REDIS_MASTER_NAME}"
    printf 'requirepass "%s"\nsentinel auth-pass %s "%s"\nsentinel sentinel-pass "%s"\n' \
      "$SCALEPLAN_REDIS_PASSWORD" "$SCALEPLAN_REDIS_MASTER_NAME" "$SCALEPLAN_REDIS_PASSWORD" "$SCALEPLAN_REDIS_PASSWORD" > "$auth"
    [ -f /data/sentinel.conf ] || cp /etc/scaleplan/sentinel.conf /data/sentinel.conf
    exec redis-sentinel /data/sentinel.conf
    ;;
  *)
    echo "usage: $0 server|replicated|sentinel" >&2
    exit 1
    ;;
esac
