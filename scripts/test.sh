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
echo "== ruff check"
ruff check .
echo "== makemigrations --check"
python manage.py makemigrations --check --dry-run >/dev/null || { python manage.py makemigrations --check --dry-run; exit 1; }
echo "== pytest"
python -m pytest -p no:cacheprovider "$@"
