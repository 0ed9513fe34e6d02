#!/bin/sh
# First start on an empty data directory: create the cluster with POSTGRES_USER as its superuser
# (password POSTGRES_PASSWORD, required from every TCP client) and the database POSTGRES_DB; then run
# the command (postgres). Later starts run the command directly.
set -eu
: "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}"
user="${POSTGRES_USER:-postgres}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    password_file="$(mktemp)"
    printf '%s' "$POSTGRES_PASSWORD" > "$password_file"
    # UTF-8 as in the official image (the container's default C locale would give SQL_ASCII)
    initdb --username="$user" --pwfile="$password_file" --encoding=UTF8 --locale=C.UTF-8 \
        --auth-local=trust --auth-host=scram-sha-256 >/dev/null
    rm -f "$password_file"
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    # a socket-only server for the set-up, so no client sees a half-made database
    pg_ctl --wait --silent --options="-c listen_addresses=''" start
    if [ "${POSTGRES_DB:-$user}" != postgres ]; then
        createdb --username="$user" "${POSTGRES_DB:-$user}"
    fi
    pg_ctl --wait --silent --mode=fast stop
fi
exec "$@"
