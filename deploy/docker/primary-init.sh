#!/bin/sh
# docker-compose.yml, service `db`: run once by the postgres image's entrypoint on a new data directory. Takes in
# deploy/postgresql.conf (rendered by the `config` service) and lets the replica stream from here.
set -eu
echo "include '/config/postgresql.conf'" >> "$PGDATA/postgresql.conf"
echo "host replication ${POSTGRES_USER} all scram-sha-256" >> "$PGDATA/pg_hba.conf"
