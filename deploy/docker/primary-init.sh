#!/bin/sh
# docker-compose.yml, service `db`: run once by the postgres image's entrypoint on a new data directory. Takes in
# deploy/postgresql.conf (rendered by the `config` service) and lets the replica stream from here.
set -eu
echo "include '/config/postgresql.conf'" >> "$PGDATA/postgresql.conf"
echo "host replication ${POSTGRES_USER} all scram-sha-256" >> "$PGDATA/pg_hba.conf"
# The replica's slot: the primary keeps the WAL it has not received (up to max_slot_wal_keep_size).
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -c "SELECT pg_create_physical_replication_slot('replica1')"
