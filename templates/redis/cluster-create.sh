#!/bin/sh
{{ header("#") }}
#
# One-shot: joins the {{ redis.nodes|length }} nodes into a cluster of {{ redis.shards }} shards with
# {{ redis.replicas_per_shard }} replica(s) each, unless it already exists. Nodes are passed by
# address (redis-cli needs addresses to create); they announce host names.
set -eu

: "${REDISCLI_AUTH:?set {{ secrets.redis|key }}}"
if redis-cli -h {{ redis.nodes[0].endpoint.host }} -p {{ redis.nodes[0].endpoint.port }} cluster info | grep -q '^cluster_state:ok'; then
  echo "cluster already created"
  exit 0
fi
nodes=""
{% for n in redis.nodes %}
nodes="$nodes $(getent hosts {{ n.endpoint.host }} | awk '{ print $1; exit }'):{{ n.endpoint.port }}"
{% endfor %}
# shellcheck disable=SC2086 # one word per node
redis-cli --cluster create $nodes --cluster-replicas {{ redis.replicas_per_shard }} --cluster-yes
