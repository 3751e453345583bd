#!/bin/sh
{{ header("#") }}
#
# Usage: start.sh server|replicated|sentinel NODE
#
# Starts a Redis data node or a sentinel. Redis and Sentinel rewrite the
# file they run from (a failover moves `replicaof` and the monitored
# master; Sentinel records its id, epochs and peers), so every start builds
# that file anew: the generated settings, plus only the state the server
# owns, carried over from the last run. A changed setting (maxmemory,
# quorum, down-after) reaches a node that already ran, and a password is
# never read back from the rewritten file: it comes from the environment
# into the auth include on every start, so a rotated one takes effect.
set -eu

mode=${1:?usage: start.sh server|replicated|sentinel NODE}
node=${2:?usage: start.sh server|replicated|sentinel NODE}
: "{{ require_env(secrets.redis) }}"
case "{{ env(secrets.redis) }}" in
  *[!A-Za-z0-9_.-]*) echo "{{ secrets.redis|key }} may use letters, digits, '_', '.' and '-' only" >&2; exit 1 ;;
esac
case "$mode" in
  sentinel) file=sentinel.conf ;;
  server|replicated) file=redis.conf ;;
  *) echo "usage: start.sh server|replicated|sentinel NODE" >&2; exit 1 ;;
esac
{% if target.kind == "local" %}
# Paths are relative to the state directory, which `scaleplan up` runs
# every process from.
generated=config/local/redis/$node/$file
data=$node
auth=$data/{{ auth_include }}
{% else %}
generated=/etc/scaleplan/$file
data=/data
auth={{ auth_include }}
{% endif %}
run=$data/$file

umask 077
mkdir -p "$(dirname "$auth")"
case "$mode" in
  sentinel)
{% if sentinel_auth is not none %}
    printf {{ sentinel_auth }} "{{ env(secrets.redis) }}" "{{ env(secrets.redis) }}" "{{ env(secrets.redis) }}" > "$auth"
{% else %}
    echo "this phase runs no sentinel" >&2
    exit 1
{% endif %}
    ;;
  *)
    printf {{ auth.redis }} "{{ env(secrets.redis) }}" "{{ env(secrets.redis) }}" > "$auth"
    ;;
esac

# The file to run from: the generated one, with what the last run's file
# says about state the server owns. A replicated node keeps the master it
# followed last (none if it was promoted); a sentinel keeps its id, its
# epochs, the replicas and sentinels it knows, and the master's address.
previous=
[ -f "$run" ] && previous=$run
awk -v mode="$mode" -v previous="$previous" '
BEGIN {
  if (previous != "") {
    while ((getline line < previous) > 0) {
      n = split(line, f, " ")
      if (mode == "replicated" && (f[1] == "replicaof" || f[1] == "slaveof")) {
        replicaof = "replicaof " f[2] " " f[3]
      }
      if (mode == "sentinel" && f[1] == "sentinel") {
        if (f[2] == "monitor") {
          master[f[3]] = f[4] " " f[5]
        } else if (f[2] == "myid" || f[2] == "current-epoch" || f[2] == "config-epoch" ||
                   f[2] == "leader-epoch" || f[2] == "known-replica" || f[2] == "known-sentinel") {
          kept[++k] = line
        }
      }
    }
  }
}
mode == "replicated" && previous != "" && ($1 == "replicaof" || $1 == "slaveof") { next }
mode == "sentinel" && $1 == "sentinel" && $2 == "monitor" && ($3 in master) {
  print "sentinel monitor " $3 " " master[$3] " " $6
  next
}
{ print }
END {
  if (replicaof != "") print replicaof
  for (i = 1; i <= k; i++) print kept[i]
}
' "$generated" > "$run.next"
mv "$run.next" "$run"

# A cluster node keeps its peers in nodes.conf by address; where addresses
# change between starts (a Compose network made anew), the announced host
# names find the peers again.
if [ -f "$data/nodes.conf" ]; then
  set -f
  : > "$data/nodes.conf.next"
  while IFS= read -r line; do
    set -- $line
    case "${2:-}" in
      *:*@*,?*)
        host=${2##*,}
        ip=$(getent ahostsv4 "$host" | awk '{ print $1; exit }')
        [ -n "$ip" ] && line=$(printf '%s\n' "$line" | sed "s|$2|$ip:${2#*:}|")
        ;;
    esac
    printf '%s\n' "$line" >> "$data/nodes.conf.next"
  done < "$data/nodes.conf"
  mv "$data/nodes.conf.next" "$data/nodes.conf"
  set +f
fi

case "$mode" in
  sentinel) exec redis-sentinel "$run" ;;
  *) exec redis-server "$run" ;;
esac
