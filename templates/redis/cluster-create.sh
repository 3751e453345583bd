#!/bin/sh
{{ header("#") }}
#
# Forms the Redis Cluster of {{ redis.shards|length }} shards with {{ redis.replicas_per_shard }} replica(s) each, or
# grows the one that runs to that size. Safe to run again: a cluster that
# already has every node is left alone (after a restart, when its nodes
# find each other again, it only waits for the slots to be covered).
#
# - No node belongs to a cluster yet: the shards' masters create it, then
#   each replica joins the master of its own shard.
# - The cluster runs: each node it lacks joins, a master into its own
#   shard (the slots are then rebalanced onto the new masters), a replica
#   under the master of its shard.
# - Some nodes belong to a cluster and the first master does not: stop,
#   since joining them would split the data.
set -eu

: "${REDISCLI_AUTH:?set {{ secrets.redis|key }}}"
export TERM=dumb
# "host:port" of each shard's planned master, and "replica=master" pairs.
masters="{% for s in redis.shards %}{{ s.master.endpoint.host }}:{{ s.master.endpoint.port }} {% endfor %}"
replicas="{% for s in redis.shards %}{% for r in s.replicas %}{{ r.endpoint.host }}:{{ r.endpoint.port }}={{ s.master.endpoint.host }}:{{ s.master.endpoint.port }} {% endfor %}{% endfor %}"

cli() {
  at=$1
  shift
  redis-cli -h "${at%:*}" -p "${at##*:}" "$@"
}

# redis-cli --cluster takes addresses, not host names.
address() {
  ip=$(getent ahostsv4 "${1%:*}" | awk '{ print $1; exit }')
  echo "${ip:-${1%:*}}:${1##*:}"
}

# Nodes a node knows, itself included: 1 for a node in no cluster.
known() {
  cli "$1" cluster info | tr -d '\r' | awk -F: '$1 == "cluster_known_nodes" { print $2 }'
}

# The node id of the current master of the shard planned around $1 (the
# planned master, or the replica that took over from it).
shard_master() {
  cli "$1" cluster nodes | tr -d '\r' | awk '
    $3 ~ /myself/ { if ($3 ~ /slave/) print $4; else print $1 }'
}

# Bounded waits: every node answers, and later the cluster agrees.
wait_for() {
  what=$1
  shift
  left=120
  until "$@" > /dev/null 2>&1; do
    left=$((left - 1))
    if [ "$left" -le 0 ]; then
      echo "gave up waiting: $what" >&2
      exit 1
    fi
    sleep 1
  done
}

# Every node that has joined knows all the others: gossip has spread the
# last join (a rebalance or a replica needs every node to know the new one).
acquainted() {
  want=$(known "$first")
  for n in $all; do
    k=$(known "$n")
    [ "$k" -le 1 ] || [ "$k" = "$want" ] || return 1
  done
}

# Every node serves: after a restart a cluster is "fail" until its nodes
# have seen each other again, whatever its slot map says.
serving() {
  for n in $all; do
    [ "$(known "$n")" -le 1 ] && continue
    cli "$n" cluster info | tr -d '\r' | grep -qx 'cluster_state:ok' || return 1
  done
}

settled() {
  acquainted || return 1
  out=$(redis-cli --cluster check "$(address "$first")" 2>&1) || return 1
  case "$out" in
    *"[OK] All nodes agree"*"[OK] All 16384 slots covered"*) return 0 ;;
  esac
  return 1
}

# add-node checks the whole cluster first and refuses while any node's
# view of the slots lags the others, which gossip can still show right
# after `settled` passed (seen right after a rebalance): wait for agreement
# and try again, a bounded number of times. A refused add-node has changed
# nothing; a node that joined and still failed is left for a person.
join() {
  node=$1
  shift
  joins=10
  until redis-cli --cluster add-node "$(address "$node")" "$(address "$first")" "$@"; do
    joins=$((joins - 1))
    if [ "$(known "$node")" -gt 1 ]; then
      echo "$node joined the cluster but add-node failed; see the output above" >&2
      exit 1
    fi
    if [ "$joins" -le 0 ]; then
      echo "gave up adding $node" >&2
      exit 1
    fi
    sleep 2
    wait_for "the cluster to agree before adding $node" settled
  done
  wait_for "$node to join" settled
}

all="$masters"
for pair in $replicas; do
  all="$all ${pair%%=*}"
done
for n in $all; do
  wait_for "$n to answer" cli "$n" ping
done
set -- $masters
first=$1

if [ "$(known "$first")" -le 1 ]; then
  for n in $all; do
    if [ "$(known "$n")" -gt 1 ]; then
      echo "$n already belongs to a cluster that $first is not in; not joining them" >&2
      exit 1
    fi
  done
  echo "creating the cluster from $masters"
  addresses=
  for m in $masters; do
    addresses="$addresses $(address "$m")"
  done
  # shellcheck disable=SC2086 # one word per master
  redis-cli --cluster create $addresses --cluster-replicas 0 --cluster-yes
  wait_for "the masters to agree" settled
else
  added=
  for m in $masters; do
    if [ "$(known "$m")" -le 1 ]; then
      echo "adding master $m"
      join "$m"
      added=yes
    fi
  done
  if [ -n "$added" ]; then
    # A node that just joined reports the cluster down until it has seen
    # the others; keys moved to it before then are refused.
    wait_for "every node to report the cluster ok" serving
    echo "moving slots onto the new masters"
    # rebalance refuses to start while any node's view of the slots lags
    # the others ("Nodes don't agree about configuration"), which gossip
    # can still show right after the check above: wait for agreement and
    # try again, a bounded number of times. A move cut short leaves a slot
    # open; fix closes it before the next try.
    moves=10
    until redis-cli --cluster rebalance "$(address "$first")" --cluster-use-empty-masters --cluster-yes; do
      moves=$((moves - 1))
      if [ "$moves" -le 0 ]; then
        echo "gave up moving slots onto the new masters" >&2
        exit 1
      fi
      sleep 2
      if redis-cli --cluster check "$(address "$first")" 2>&1 | grep -q 'slots are open'; then
        redis-cli --cluster fix "$(address "$first")" --cluster-yes
      fi
      wait_for "the cluster to agree before moving slots" settled
    done
    wait_for "the cluster to agree after moving slots" settled
  fi
fi
for pair in $replicas; do
  r=${pair%%=*}
  m=${pair##*=}
  if [ "$(known "$r")" -le 1 ]; then
    echo "adding replica $r of $m"
    join "$r" --cluster-slave --cluster-master-id "$(shard_master "$m")"
  fi
done
wait_for "all 16384 slots to be covered" settled
wait_for "every node to report the cluster ok" serving
echo "cluster ready"
