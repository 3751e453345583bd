#!/bin/bash
{{ header("#") }}
#
# Starts the streaming read replica {{ node.name|comment }} of {{ primary.name|comment }}.
#
# Clones the primary when there is no complete clone of it here: on first
# start, after the data directory was wiped, when a clone was interrupted,
# when the primary is another cluster than the one cloned, or when the
# replication slot was invalidated (the WAL the replica needs is gone). A
# clone goes into a directory beside the data and is renamed into place
# only once complete, so an interrupted one is simply started over.
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
{% else %}
data=${PGDATA:?set PGDATA}
passfile=/run/scaleplan/replication.pgpass
config=(-c config_file=/etc/postgresql/postgresql.conf)
{% endif %}
primary_host={{ primary.endpoint.host }}
primary_port={{ primary.endpoint.port }}
user={{ roles.replication }}

umask 077
printf '%s:%s:*:%s:%s\n' "$primary_host" "$primary_port" "$user" "$PGPASSWORD" > "$passfile"
export PGPASSFILE=$passfile
unset PGPASSWORD

# A query on the primary, as the replication role.
primary() {
  psql -X -A -t -q -h "$primary_host" -p "$primary_port" -U "$user" -d postgres -c "$1"
}

reclone=
if [ ! -s "$data/global/pg_control" ] || [ ! -f "$data/standby.signal" ]; then
  reclone="no complete clone"
else
  mine=$(pg_controldata "$data" | sed -n 's/^Database system identifier: *//p')
  theirs=$(psql -X -A -t -q "host=$primary_host port=$primary_port user=$user replication=true dbname=replication" \
    -c IDENTIFY_SYSTEM | cut -d'|' -f1)
  [ "$mine" = "$theirs" ] || reclone="the primary is not the cluster cloned here"
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

if [ -n "$reclone" ]; then
  echo "cloning $primary_host:$primary_port into $data ($reclone)"
  rm -rf "$data.clone"
  pg_basebackup -h "$primary_host" -p "$primary_port" -U "$user" -D "$data.clone" \
    -X stream -c fast{% if node.slot %} -S "$slot"{% endif %} ${SCALEPLAN_CLONE_MAX_RATE:+--max-rate="$SCALEPLAN_CLONE_MAX_RATE"}
  touch "$data.clone/standby.signal"
  rm -rf "$data"
  mv "$data.clone" "$data"
fi
chmod 0700 "$data"
# A clone made with pg_basebackup -R kept the password here; this start
# passes the connection on the command line instead.
[ -f "$data/postgresql.auto.conf" ] && sed -i '/^primary_conninfo/d' "$data/postgresql.auto.conf"
exec postgres -D "$data" "${config[@]}" \
  -c "primary_conninfo=host=$primary_host port=$primary_port user=$user passfile=$passfile application_name={{ node.name }}"
