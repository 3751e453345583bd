#!/bin/bash
{{ header("#") }}
#
# Starts the streaming read replica {{ node.name|comment }} of {{ primary.name|comment }}.
#
# Clones the primary when there is no clone of it here (first start, a
# wiped data directory, an interrupted clone), or when the replication slot
# was invalidated (the WAL the replica needs is gone: the primary still has
# every byte). It never deletes data the primary may not have: when the
# primary is another cluster than the one cloned here (a primary that lost
# its data comes back empty), or when this data directory is no standby
# (it was promoted), it stops with both identifiers and the way to reseed:
# SCALEPLAN_RESEED set to the primary's system identifier, which `scaleplan
# up --reseed NODE` does. A clone goes into a directory beside the data and
# is renamed into place only once complete, so an interrupted one is simply
# started over.
# {% if node.slot %}The slot is created when it does not exist; `pg_basebackup -C` would fail
# on one that does.{% else %}This replica streams without a replication slot.{% endif %}

#
# The replication password comes from the environment (PGPASSWORD, set
# from {{ secrets.replication|key }}) into a passfile on every start: it is
# never written into the data directory, and a rotated one takes effect.
# Set SCALEPLAN_CLONE_MAX_RATE (e.g. 50M) to throttle a clone.
set -euo pipefail

: "${PGPASSWORD:?set {{ secrets.replication|key }}}"
case "$PGPASSWORD" in
  *[!A-Za-z0-9_.-]*) echo "{{ secrets.replication|key }} may use letters, digits, '_', '.' and '-' only" >&2; exit 1 ;;
esac
{% if target.kind == "local" %}
# Paths are relative to the state directory, which `scaleplan up` runs
# every process from; PostgreSQL gets them absolute.
data=$PWD/{{ node.name }}/data
passfile=$PWD/{{ node.name }}/replication.pgpass
config=(-c "config_file=$PWD/config/local/postgres/{{ node.name }}/postgresql.conf" -c "hba_file=$PWD/config/local/postgres/{{ node.name }}/pg_hba.conf")
{% if archive %}
# pgBackRest's socket: the node's own directory, which scaleplan names
# (with the PGBACKREST_* variables the archiver inherits).
config+=(-c "unix_socket_directories=${SCALEPLAN_SOCKET_DIR:?set SCALEPLAN_SOCKET_DIR}")
{% endif %}
{% else %}
data=${PGDATA:?set PGDATA}
passfile={{ compose_secrets_dir }}/replication.pgpass
config=(-c config_file=/etc/postgresql/postgresql.conf)
{% endif %}
primary_host={{ primary.endpoint.host }}
primary_port={{ primary.endpoint.port }}
user={{ roles.replication }}

umask 077
mkdir -p "$(dirname "$passfile")"
printf '%s:%s:*:%s:%s\n' "$primary_host" "$primary_port" "$user" "$PGPASSWORD" > "$passfile"
export PGPASSFILE=$passfile
unset PGPASSWORD

# A query on the primary, as the replication role.
primary() {
  psql -X -A -t -q -h "$primary_host" -p "$primary_port" -U "$user" -d postgres -c "$1"
}

theirs=$(psql -X -A -t -q "host=$primary_host port=$primary_port user=$user replication=true dbname=replication" \
  -c IDENTIFY_SYSTEM | cut -d'|' -f1)
reclone=
refuse=
if [ ! -s "$data/global/pg_control" ]; then
  reclone="no complete clone"
else
  mine=$(pg_controldata "$data" | sed -n 's/^Database system identifier: *//p')
  if [ "$mine" != "$theirs" ]; then
    refuse="the primary $primary_host:$primary_port is cluster $theirs, and this data directory holds cluster $mine"
  elif [ ! -f "$data/standby.signal" ]; then
    refuse="this data directory (cluster $mine) is no standby: it was promoted, or is a primary's"
  fi
fi
if [ -n "$refuse" ]; then
  if [ "${SCALEPLAN_RESEED:-}" != "$theirs" ]; then
    echo "{{ node.name|comment }}: not starting: $refuse. Nothing was deleted." >&2
    echo "  If the primary holds the data to keep, reseed this replica from it (its data here is deleted):" >&2
{% if target.kind == "local" %}
    echo "    scaleplan up PHASE --native --reseed {{ node.name|comment }}" >&2
{% else %}
    echo "    SCALEPLAN_RESEED=$theirs docker compose up -d --force-recreate {{ node.name|comment }}" >&2
{% endif %}
    echo "  If this replica holds the data to keep, copy $data away before anything else." >&2
    exit 1
  fi
  reclone="reseed asked for ($refuse)"
fi
{% if node.slot %}
slot={{ node.slot }}
status=$(primary "SELECT coalesce(wal_status, 'unknown') FROM pg_replication_slots WHERE slot_name = '$slot'")
if [ "$status" = lost ]; then
  primary "SELECT pg_drop_replication_slot('$slot')" > /dev/null
  status=
  reclone=${reclone:-"its replication slot was invalidated"}
elif [ -z "$status" ]; then
  reclone=${reclone:-"its replication slot is gone"}
fi
if [ -z "$status" ]; then
  primary "SELECT pg_create_physical_replication_slot('$slot', true)" > /dev/null
fi
{% endif %}

{% if target.kind == "compose" and node.data_is_volume_root %}
# This node's data is its volume's root (it was the primary): the clone
# goes inside the volume, and replaces the old files once complete. A start
# cut short in between finds no complete clone and clones again.
clone="$data/.clone"
{% else %}
clone="$data.clone"
{% endif %}
# What an interrupted clone left goes first, whether or not this start
# clones: inside the data directory it would end up in every backup.
rm -rf "$clone"
if [ -n "$reclone" ]; then
  echo "cloning $primary_host:$primary_port into $data ($reclone)"
  pg_basebackup -h "$primary_host" -p "$primary_port" -U "$user" -D "$clone" \
    -X stream -c fast{% if node.slot %} -S "$slot"{% endif %} ${SCALEPLAN_CLONE_MAX_RATE:+--max-rate="$SCALEPLAN_CLONE_MAX_RATE"}
  touch "$clone/standby.signal"
{% if target.kind == "compose" and node.data_is_volume_root %}
  # pg_control goes first and comes last: a start cut short in between
  # sees no complete cluster, and clones again.
  rm -rf "$data/global"
  find "$data" -mindepth 1 -maxdepth 1 ! -name .clone -exec rm -rf {} +
  find "$clone" -mindepth 1 -maxdepth 1 ! -name global -exec mv -t "$data" {} +
  mv "$clone/global" "$data/global"
  rmdir "$clone"
{% else %}
  rm -rf "$data"
  mv "$clone" "$data"
{% endif %}
fi
chmod 0700 "$data"
# A clone made with pg_basebackup -R kept the password here; this start
# passes the connection on the command line instead. A clone of a primary
# restored from a backup may carry its recovery target, which would make
# this standby stop or promote itself: dropped too.
[ -f "$data/postgresql.auto.conf" ] && sed -i -E '/^(primary_conninfo|restore_command|recovery_target[a-z_]*)[[:space:]]*=/d' "$data/postgresql.auto.conf"
exec postgres -D "$data" "${config[@]}" \
  -c "primary_conninfo=host=$primary_host port=$primary_port user=$user passfile=$passfile application_name={{ node.name }}"
