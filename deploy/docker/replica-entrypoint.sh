#!/bin/sh
# docker-compose.yml, service `db-replica`: the streaming replica. On an empty data directory, copy the primary
# with pg_basebackup (-R: standby.signal and primary_conninfo; -S: the replication slot the primary made at its init; as deploy/cluster.py
# does), then run PostgreSQL.
set -eu
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    until pg_basebackup -h "$PRIMARY_HOST" -p "${PRIMARY_PORT:-5432}" -U "$POSTGRES_USER" -D "$PGDATA" -R -X stream -c fast -S replica1; do
        echo "waiting for the primary"; rm -rf "${PGDATA:?}"/*; sleep 2
    done
    chmod 700 "$PGDATA"
fi
exec postgres
