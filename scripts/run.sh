#!/usr/bin/env bash
# `make run`: find/start PostgreSQL, migrate, seed the demo data when missing, serve the API with gunicorn on
# $PORT (default 8000) plus ONE procrastinate worker. Ctrl-C (SIGINT) or SIGTERM stops everything cleanly:
# gunicorn and the worker finish in-flight requests and jobs, and a private PostgreSQL started here is stopped.
#
# Environment: PORT (8000), HOST (127.0.0.1), WEB_CONCURRENCY (2 gunicorn workers), PAYTRUST_DB_NAME (paytrust),
# DATABASE_URL (skip the search), plus everything in .env.example. Secrets for local use (SECRET_KEY,
# FIELD_ENCRYPTION_KEYS) are generated once into .data/dev-secrets.env (unless both are set in the environment or
# .env) and each used unless set there (manage.py reads the same file for commands run outside this script; see its
# load_dev_secrets).
#
# Output: gunicorn and the worker write to .data/run-$PORT.log (or $PAYTRUST_RUN_LOG); this script alone writes to
# the terminal: that log up to readiness, then the banner, then the log as it grows. So the banner is never
# interleaved with log lines.
set -euo pipefail
# Started in the background by a non-interactive shell (`bash scripts/run.sh &`), bash inherits SIGINT as
# ignored and could never trap it: re-exec once with SIGINT restored, so `kill -INT` stops it like Ctrl-C.
if [ -z "${PAYTRUST_RUN_SIGINT_RESET:-}" ] && [ -n "$(trap -p INT)" ]; then
    export PAYTRUST_RUN_SIGINT_RESET=1
    exec python3 -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execvp("bash", ["bash", *sys.argv[1:]])' "$0" "$@"
fi
cd "$(dirname "$0")/.."
ROOT="$PWD"

if [ ! -x .venv/bin/python ]; then
    echo "[run] creating .venv and installing (make install)"
    make install
fi
export PATH="$ROOT/.venv/bin:$PATH"

PORT="${PORT:-8000}"
HOST="${HOST:-127.0.0.1}"
export PORT HOST WEB_CONCURRENCY="${WEB_CONCURRENCY:-2}"

# --- database ----------------------------------------------------------------------------------------------
eval "$(python scripts/devdb.py "${PAYTRUST_DB_NAME:-paytrust}")"

GUNICORN_PID=""
WORKER_PID=""
TAIL_PID=""
RUN_LOG="${PAYTRUST_RUN_LOG:-$ROOT/.data/run-$PORT.log}"
STOPPING=0

stop_group() {  # stop_group PID NAME: SIGTERM the process group, wait, SIGKILL if it does not go
    local pid="$1" name="$2"
    [ -n "$pid" ] || return 0
    kill -0 "$pid" 2>/dev/null || return 0
    echo "[run] stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 "${RUN_STOP_TIMEOUT:-40}"); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "[run] $name did not stop in time; killing it"
    fi
    kill -KILL -- "-$pid" 2>/dev/null || true  # whatever is left of its process group
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local code=$?
    [ "$STOPPING" = 1 ] && return
    STOPPING=1
    trap - INT TERM EXIT
    stop_group "$GUNICORN_PID" "gunicorn"
    stop_group "$WORKER_PID" "worker"
    if [ -n "$TAIL_PID" ]; then
        sleep 0.3  # let the follower show the last lines the children wrote
        kill "$TAIL_PID" 2>/dev/null || true
        wait "$TAIL_PID" 2>/dev/null || true
    elif [ -s "$RUN_LOG" ]; then
        cat "$RUN_LOG"  # stopped before the banner: show what the children said (why it failed)
    fi
    if [ "${PAYTRUST_PRIVATE_PG_STARTED:-0}" = 1 ]; then
        echo "[run] stopping the private PostgreSQL cluster"
        python scripts/devdb.py --stop-private || true
    fi
    echo "[run] stopped"
    exit "$code"
}
trap 'exit 130' INT
trap 'exit 143' TERM
trap cleanup EXIT

# --- local secrets (generated once, kept in .data/, never committed) ---------------------------------------
mkdir -p .data
SECRETS_FILE=.data/dev-secrets.env
env_file_sets() { [ -f .env ] && grep -qE "^$1=.+" .env; }  # a non-empty value in .env
missing=0
for name in SECRET_KEY FIELD_ENCRYPTION_KEYS; do
    if [ -z "${!name:-}" ] && ! env_file_sets "$name"; then missing=1; fi
done
if [ "$missing" = 1 ] && [ ! -f "$SECRETS_FILE" ]; then
    umask 077
    python - > "$SECRETS_FILE" <<'EOF'
import secrets
from cryptography.fernet import Fernet
print(f"SECRET_KEY={secrets.token_urlsafe(50)}")
print(f"FIELD_ENCRYPTION_KEYS={Fernet.generate_key().decode()}")
EOF
    umask 022
    echo "[run] generated local secrets in $SECRETS_FILE"
fi
if [ -f "$SECRETS_FILE" ]; then
    while IFS= read -r line; do
        name="${line%%=*}"
        if [ -n "$name" ] && [ -z "${!name:-}" ] && ! env_file_sets "$name"; then
            export "$line"
        fi
    done < "$SECRETS_FILE"
fi

# Local development: test-mode webhook endpoints may point at http://localhost receivers.
export OUTBOUND_WEBHOOK_ALLOW_LOOPBACK_IN_TEST_MODE="${OUTBOUND_WEBHOOK_ALLOW_LOOPBACK_IN_TEST_MODE:-true}"

# --- metrics across gunicorn workers: one fresh directory per run ------------------------------------------
export PROMETHEUS_MULTIPROC_DIR="${PROMETHEUS_MULTIPROC_DIR:-$ROOT/.data/prometheus-$PORT}"
rm -rf "$PROMETHEUS_MULTIPROC_DIR"
mkdir -p "$PROMETHEUS_MULTIPROC_DIR"

# --- schema and demo data ----------------------------------------------------------------------------------
echo "[run] applying migrations"
python manage.py migrate --noinput | grep -vE "^(  Apply|Operations to perform|Running migrations)" || true
echo "[run] demo data"
python manage.py seed_demo | sed 's/^/      /'

# --- processes ---------------------------------------------------------------------------------------------
# Each child gets its own session/process group (setsid) so it can be stopped as a whole, and Ctrl-C in the
# terminal reaches only this script, which then stops the children gracefully in order. Their output goes to
# $RUN_LOG (unbuffered), shown below by this script.
: > "$RUN_LOG"
export PYTHONUNBUFFERED=1
setsid python -m gunicorn paytrust.wsgi:application -c python:paytrust.gunicorn_conf >> "$RUN_LOG" 2>&1 &
GUNICORN_PID=$!
setsid python manage.py procrastinate worker >> "$RUN_LOG" 2>&1 &
WORKER_PID=$!

BASE="http://$HOST:$PORT"
[ "$HOST" = "0.0.0.0" ] && BASE="http://127.0.0.1:$PORT"
ready=0
for _ in $(seq 1 120); do
    if ! kill -0 "$GUNICORN_PID" 2>/dev/null; then
        echo "[run] gunicorn exited during start-up (is port $PORT free? set PORT=...)" >&2
        exit 1
    fi
    # A long timeout: a probe given up while gunicorn's workers boot would still be answered (and logged) later.
    if python - "$BASE/readyz" <<'EOF' 2>/dev/null
import sys, urllib.request
sys.exit(0 if urllib.request.urlopen(sys.argv[1], timeout=30).status == 200 else 1)
EOF
    then
        ready=1
        break
    fi
    sleep 0.5
done
if [ "$ready" != 1 ]; then
    echo "[run] the app did not become ready" >&2
    exit 1
fi

# What the children wrote until now, the banner, then the log from there on: one writer to the terminal.
shown=$(wc -c < "$RUN_LOG")
head -c "$shown" "$RUN_LOG"
DB_HINT=""
if [ "${PAYTRUST_PRIVATE_PG:-0}" = 1 ]; then
    DB_HINT="
    Database         export DATABASE_URL=$DATABASE_URL   (the private cluster; for manage.py commands)"
fi
cat <<EOF

  PayTrust is running (gunicorn: $WEB_CONCURRENCY workers, 1 job worker). Ctrl-C stops everything.

    Home             $BASE/
    API              $BASE/v1/   (try: curl -H "Authorization: Bearer <API_KEY above>" $BASE/v1/merchant)
    API docs         $BASE/docs
    OpenAPI schema   $BASE/v1/schema
    Admin            $BASE/admin/
    Health           $BASE/healthz   $BASE/readyz   $BASE/metrics
    Commands         .venv/bin/python manage.py …   (from another terminal too: see README, Set-up)$DB_HINT
    Logs             below, and in ${RUN_LOG#"$ROOT"/}

EOF
# Its own session, so Ctrl-C does not end it before the children's last lines are shown; --pid: it ends with us.
setsid tail -c "+$((shown + 1))" --pid=$$ -f "$RUN_LOG" &
TAIL_PID=$!

# Wait until a child dies (then stop the rest and fail) or a signal arrives (the traps exit -> cleanup).
set +e
wait -n "$GUNICORN_PID" "$WORKER_PID"
status=$?
set -e
echo "[run] a process exited unexpectedly (status $status); stopping" >&2
exit 1
