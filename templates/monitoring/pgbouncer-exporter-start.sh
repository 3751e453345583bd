#!/bin/sh
{{ header("#") }}
#
# Runs the PgBouncer exporter. An image built from Debian's packages has it
# installed (pinned, from pgbouncer-exporter.txt); on the official Python
# image it is installed here first, from the same pinned file, into a
# virtual environment.
set -eu

if ! command -v pgbouncer-exporter > /dev/null 2>&1; then
  python3 -m venv /tmp/exporter
  /tmp/exporter/bin/pip install --quiet --no-cache-dir --disable-pip-version-check --no-deps \
    -r /etc/scaleplan/pgbouncer-exporter.txt
  PATH=/tmp/exporter/bin:$PATH
fi
exec pgbouncer-exporter --config /etc/scaleplan/pgbouncer-exporter.yml
