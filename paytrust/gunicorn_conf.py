"""gunicorn settings: `gunicorn paytrust.wsgi -c python:paytrust.gunicorn_conf`. All from the environment.

WEB_CONCURRENCY      worker processes (default 2)
GUNICORN_THREADS     threads per worker (default 4; gthread workers, so a slow gateway call holds one thread)
GUNICORN_TIMEOUT     seconds a worker may be silent before it is killed and replaced (default 30)
GUNICORN_GRACEFUL_TIMEOUT  seconds in-flight requests get to finish on SIGTERM/SIGINT (default 30)
GUNICORN_MAX_REQUESTS      requests before a worker is recycled (default 100000, plus up to 10 % jitter)
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
# Recycle workers now and then (with jitter) so a slow leak cannot grow forever - but rarely: a recycle is not free.
# The worker drains, a new one boots (~1 s of imports) and re-verifies each API key it sees (one Argon2id, ~300 ms)
# and re-prepares its statements, and the clients with keep-alive connections to the old worker reconnect to the
# surviving ones and stay there. In the invoice bench (quick runs, 100 keep-alive clients) a recycle every 1,500-2,500
# requests per worker put the median p99 at ~1.16 s against ~0.7 s without recycling (bench/README.md). 100,000 requests is ~15 minutes of a busy worker (100 req/s), hours of a quiet one.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "100000"))
max_requests_jitter = max_requests // 10
proc_name = "paytrust"


def post_worker_init(worker):
    """Python's cyclic GC, tuned for a request loop: the ~100k objects of the loaded app are moved out of the
    collector's sight (gc.freeze: no full collection walks them again; ~35 ms pauses every ~1,000 requests
    otherwise, which stall every thread of the worker), and the youngest generation is collected every 5,000
    allocations instead of 700 (most of a request's objects are gone by then). GC time per invoice creation:
    0.17 -> 0.08 ms."""
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(5000, *gc.get_threshold()[1:])


def child_exit(server, worker):
    """Drop a dead worker's live gauges from the Prometheus multiprocess files."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
