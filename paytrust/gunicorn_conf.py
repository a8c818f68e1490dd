"""gunicorn settings: `gunicorn paytrust.wsgi -c python:paytrust.gunicorn_conf`. All from the environment.

WEB_CONCURRENCY      worker processes (default 2)
GUNICORN_THREADS     threads per worker (default 4; gthread workers, so a slow gateway call holds one thread)
GUNICORN_TIMEOUT     seconds a worker may be silent before it is killed and replaced (default 30)
GUNICORN_GRACEFUL_TIMEOUT  seconds in-flight requests get to finish on SIGTERM/SIGINT (default 30)
HOST, PORT           bind address (default 127.0.0.1:8000)
PROMETHEUS_MULTIPROC_DIR  set it (to an empty directory) so /metrics aggregates every worker.
The access log is off: paytrust.middleware writes one JSON line per request with the request id.
"""

import os

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
worker_class = "gthread"
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
keepalive = 5
accesslog = None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "warning")
# Recycle workers now and then (with jitter) so a slow leak cannot grow forever.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "20000"))
max_requests_jitter = max_requests // 10
proc_name = "paytrust"


def child_exit(server, worker):
    """Drop a dead worker's live gauges from the Prometheus multiprocess files."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
