#!/usr/bin/env bash
# `make test`: find/start PostgreSQL, lint, check migrations, run pytest against a throwaway test database.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
eval "$(python scripts/devdb.py "${PAYTRUST_DB_NAME:-paytrust}")"
cleanup() { if [ "${PAYTRUST_PRIVATE_PG_STARTED:-0}" = 1 ]; then python scripts/devdb.py --stop-private; fi; }
trap cleanup EXIT
export PAYTRUST_ALLOW_DEV_SECRET=true
export FIELD_ENCRYPTION_KEYS="${FIELD_ENCRYPTION_KEYS:-rLNTU-eyDlvYDc4o1gMLqW9B6Wv4ST1ZnWrcs5oudIY=}"
# Local receivers (http://localhost) for test-mode webhook endpoints: on for development and tests only.
export OUTBOUND_WEBHOOK_ALLOW_LOOPBACK_IN_TEST_MODE="${OUTBOUND_WEBHOOK_ALLOW_LOOPBACK_IN_TEST_MODE:-true}"
if [ "${1:-}" = cluster ]; then
    # `make test-cluster`: the scale-out suite alone (tests/cluster). It starts a whole cluster of its own (private
    # PostgreSQL primary and replica, PgBouncer, Redis, nginx, 3 app instances, workers), so it runs in one process.
    shift
    echo "== pytest tests/cluster"
    exec python -m pytest -p no:cacheprovider -n 0 tests/cluster "$@"
fi
# The Redis rate-limit tests use a Redis on 127.0.0.1:6379 or start `redis-server` on a free port: install it
# when neither is there (root + apt-get, like devdb.py does for PostgreSQL); otherwise those tests are skipped.
if ! command -v redis-server >/dev/null 2>&1 && ! (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "== installing redis-server for the Redis rate-limit tests"
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -q redis-server >/dev/null 2>&1 \
            || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q redis-server >/dev/null 2>&1; } \
            || echo "   could not install redis-server: the Redis tests will be skipped"
    fi
fi
# The real-browser tests (tests/browser, `pytest -m browser`) drive Debian's Chromium through Playwright; no
# browser is ever downloaded (docs/adr/0043). Install the `chromium` package when it is missing, like redis-server
# above; without it those tests are skipped with the reason.
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "== installing chromium for the browser tests"
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -q chromium >/dev/null 2>&1 \
            || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1; } \
            || echo "   could not install chromium: the browser tests will be skipped"
    else
        echo "== no chromium (install Debian's chromium package as root): the browser tests will be skipped"
    fi
fi
echo "== ruff check"
ruff check .
echo "== makemigrations --check"
python manage.py makemigrations --check --dry-run >/dev/null || { python manage.py makemigrations --check --dry-run; exit 1; }
echo "== pytest"
# Every core (pytest-xdist, docs/adr/0056): each worker has its own test database; a file stays on one worker.
# The 15 slowest tests are listed at the end (where the minutes go when the suite nears its 10-minute budget).
python -m pytest -p no:cacheprovider -n "${PYTEST_WORKERS:-auto}" --dist loadfile --durations=15 --ignore=tests/cluster "$@"
