#!/bin/bash
{{ header("#") }}
#
# Starts a streaming read replica. On first start the data directory is
# empty: clone the primary with pg_basebackup -R, which also records the
# connection (with the password from PGPASSWORD) in postgresql.auto.conf
# inside the data volume, never in a generated file.
set -euo pipefail

: "${PGPASSWORD:?set {{ secrets.replication|key }}}"
data="${PGDATA:-/var/lib/postgresql/data}"

if [ ! -s "$data/PG_VERSION" ]; then
  echo "cloning {{ primary.endpoint.host }}:{{ primary.endpoint.port }} into $data"
  pg_basebackup -h {{ primary.endpoint.host }} -p {{ primary.endpoint.port }} -U {{ replication_user }} \
    -D "$data" -R -X stream -c fast{% if node.slot %} -C -S {{ node.slot }}{% endif %}

fi
chmod 0700 "$data"
exec postgres -D "$data" -c config_file=/etc/postgresql/postgresql.conf
