"""Prometheus metrics. Works under gunicorn with several workers (prometheus_client multiprocess mode).

When PROMETHEUS_MULTIPROC_DIR is set (scripts/run.sh and the Docker image set it; the directory must be empty
at start), every process writes its samples to files there and `/metrics` aggregates all of them; gunicorn's
`child_exit` hook (paytrust/gunicorn_conf.py) marks dead workers. Without it, the process' own registry is used.

Helpers other apps call (cheap, never raise):
    observe_request(method=, route=, status=, seconds=)         (called by the request middleware)
    gateway_call_observed(gateway, seconds, outcome)             outcome: "ok", "error", "timeout", ...
    deliveries_total.labels(outcome="succeeded").inc() / delivery_observed(outcome)
    rate_limited(), idempotent_replay(), auth_failed(reason), rate_limit_store_error(backend=)
    db_pool_observed()                                           (called by the request middleware)
    risk_decision(decision), risk_engine_error()                  (risk.services.risk_evaluate)
At scrape time `/metrics` also reports `paytrust_jobs_waiting{queue=…}` (procrastinate jobs to do, per queue):
the outbound webhook queue's depth is `paytrust_jobs_waiting{queue="outbound_webhooks"}` (one job per delivery
waiting or due; it replaced a gauge that only the old delivery sweeper set), and the latest ledger verification
(`manage.py verify_ledger`'s daily job, recorded as rows of reporting_ledgercheck): `paytrust_ledger_breaks` (its
breaks; alert when > 0) and `paytrust_ledger_check_timestamp_seconds` (when it finished; alert when older than a
day and a bit). Both are read from the database at scrape time, so every process reports the same value whichever
process ran the check (this module imports no app: the table is read by name).
"""

from __future__ import annotations

import logging
import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily

logger = logging.getLogger("paytrust.metrics")

MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.8, 1.0, 2.0, 5.0, 10.0, 30.0)

http_request_duration = Histogram(
    "paytrust_http_request_duration_seconds",
    "HTTP request latency by route (URL pattern, not the raw path) and status.",
    ["method", "route", "status"],
    buckets=LATENCY_BUCKETS,
)
gateway_request_duration = Histogram(
    "paytrust_gateway_request_duration_seconds",
    "Latency of calls to payment gateways, by gateway and outcome.",
    ["gateway", "outcome"],
    buckets=LATENCY_BUCKETS,
)
gateway_errors_total = Counter(
    "paytrust_gateway_errors_total",
    "Failed gateway calls (any outcome other than ok), by gateway and outcome.",
    ["gateway", "outcome"],
)
deliveries_total = Counter(
    "paytrust_webhook_deliveries_total",
    "Outbound webhook delivery attempts, by outcome (succeeded, failed, ...).",
    ["outcome"],
)
rate_limited_total = Counter("paytrust_rate_limited_total", "Requests refused with 429 by the rate limiter.")
rate_limit_store_errors_total = Counter(
    "paytrust_rate_limit_store_errors_total",
    "Rate-limit store failures (the request was allowed: fail open).",
    ["backend"],
)
idempotent_replays_total = Counter(
    "paytrust_idempotent_replays_total", "POST requests answered from the idempotency store."
)
auth_failures_total = Counter(
    "paytrust_auth_failures_total", "Failed API-key authentications, by reason.", ["reason"]
)
risk_decisions_total = Counter(
    "paytrust_risk_decisions_total",
    "Risk checks before a payment, by decision (allow, review, block).",
    ["decision"],
)
risk_engine_errors_total = Counter(
    "paytrust_risk_engine_errors_total", "Risk checks that failed (the payment proceeded flagged, score 50)."
)

# Django's psycopg connection pool (settings.DB_POOL), sampled by `db_pool_observed()` at the end of each request
# (the request's own connection still counts as in use then). Summed over the live processes of an instance
# (multiprocess "livesum"): in use / max is the instance's pool utilisation.
db_pool_in_use = Gauge(
    "paytrust_db_pool_connections_in_use",
    "Database pool connections handed out (pool size minus idle), at the end of the latest request.",
    multiprocess_mode="livesum",
)
db_pool_max = Gauge(
    "paytrust_db_pool_connections_max",
    "Database pool capacity (DB_POOL_MAX) of each live process, summed.",
    multiprocess_mode="livesum",
)
db_pool_waiting = Gauge(
    "paytrust_db_pool_requests_waiting",
    "Threads waiting for a database pool connection, at the end of the latest request.",
    multiprocess_mode="livesum",
)


def _safe(fn):
    def wrapper(*args, **kwargs):
        try:
            fn(*args, **kwargs)
        except Exception:  # metrics must never break a request
            logger.exception("metrics: could not record %s", fn.__name__)

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


@_safe
def observe_request(*, method: str, route: str, status: int, seconds: float) -> None:
    http_request_duration.labels(method=method, route=route, status=str(status)).observe(seconds)


@_safe
def gateway_call_observed(gateway: str, seconds: float, outcome: str = "ok") -> None:
    """Record one gateway call: latency by gateway and outcome; an error counter for outcomes other than ok."""
    gateway_request_duration.labels(gateway=gateway, outcome=outcome).observe(seconds)
    if outcome != "ok":
        gateway_errors_total.labels(gateway=gateway, outcome=outcome).inc()


@_safe
def delivery_observed(outcome: str) -> None:
    deliveries_total.labels(outcome=outcome).inc()


@_safe
def db_pool_observed() -> None:
    """Sample the default database's connection pool (nothing when DB_POOL is off, or before any request opened
    it). Only a pool that EXISTS is read: Django's `DatabaseWrapper.pool` property creates one on first access, with
    the connection settings of that moment — a request that never touched the database would then open a pool
    (in the test suite: on the development database, before the test database is set up; Django's test set-up does
    not close pools, so the whole run then migrated and ran against the development database)."""
    from django.db import connections

    connection = connections["default"]
    pool = getattr(type(connection), "_connection_pools", {}).get(connection.alias)
    if pool is None:
        return
    stats = pool.get_stats()
    db_pool_in_use.set(max(0, stats.get("pool_size", 0) - stats.get("pool_available", 0)))
    db_pool_max.set(pool.max_size)
    db_pool_waiting.set(stats.get("requests_waiting", 0))


@_safe
def rate_limited() -> None:
    rate_limited_total.inc()


@_safe
def rate_limit_store_error(*, backend: str) -> None:
    rate_limit_store_errors_total.labels(backend=backend).inc()


@_safe
def idempotent_replay() -> None:
    idempotent_replays_total.inc()


@_safe
def auth_failed(reason: str) -> None:
    auth_failures_total.labels(reason=reason).inc()


@_safe
def risk_decision(decision: str) -> None:
    risk_decisions_total.labels(decision=decision).inc()


@_safe
def risk_engine_error() -> None:
    risk_engine_errors_total.inc()


class JobQueueCollector:
    """Procrastinate jobs waiting to run, per queue, read from the database at scrape time."""

    def collect(self):
        family = GaugeMetricFamily(
            "paytrust_jobs_waiting",
            "Background jobs waiting to run (status todo), per queue.",
            labels=["queue"],
        )
        try:
            from django.db import connection

            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT queue_name, count(*) FROM procrastinate_jobs WHERE status = 'todo' GROUP BY queue_name"
                )
                for queue, count in cursor.fetchall():
                    family.add_metric([queue], count)
        except Exception:  # noqa: BLE001 - a scrape must not fail because the database is down
            logger.warning("metrics: could not count waiting jobs", exc_info=True)
        yield family


class LedgerCheckCollector:
    """The latest ledger check (reporting.LedgerCheck), read at scrape time. No check yet: no sample."""

    def collect(self):
        breaks = GaugeMetricFamily(
            "paytrust_ledger_breaks", "Breaks found by the latest ledger verification (verify_ledger)."
        )
        finished = GaugeMetricFamily(
            "paytrust_ledger_check_timestamp_seconds",
            "When the latest ledger verification finished (Unix time).",
        )
        try:
            from django.db import connection

            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT breaks_count, EXTRACT(EPOCH FROM finished_at) FROM reporting_ledgercheck "
                    "ORDER BY started_at DESC, id DESC LIMIT 1"
                )
                row = cursor.fetchone()
            if row is not None:
                breaks.add_metric([], row[0])
                finished.add_metric([], float(row[1]))
        except Exception:  # noqa: BLE001 - a scrape must not fail because the database is down
            logger.warning("metrics: could not read the latest ledger check", exc_info=True)
        yield breaks
        yield finished


class ReconciliationCollector:
    """Reconciliation (docs/adr/0054), read at scrape time from the runs' tables by name: the open discrepancies
    per gateway and class (`paytrust_reconciliation_discrepancies`; alert when > 0 for long), the runs that
    failed to read their gateway (`paytrust_reconciliation_failed_runs`) and when a gateway's latest run finished
    (`paytrust_reconciliation_last_run_timestamp_seconds`; alert when older than a day and a bit)."""

    def collect(self):
        open_ = GaugeMetricFamily(
            "paytrust_reconciliation_discrepancies",
            "Open reconciliation discrepancies, per gateway and class.",
            labels=["gateway", "class"],
        )
        failed = GaugeMetricFamily(
            "paytrust_reconciliation_failed_runs",
            "Reconciliation runs whose gateway settlement could not be read, per gateway.",
            labels=["gateway"],
        )
        finished = GaugeMetricFamily(
            "paytrust_reconciliation_last_run_timestamp_seconds",
            "When the latest reconciliation run of a gateway finished (Unix time).",
            labels=["gateway"],
        )
        try:
            from django.db import connection

            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT a.gateway, l.line_class, count(*) FROM reconciliation_reconciliationline l "
                    "JOIN reconciliation_reconciliationrun r ON r.id = l.run_id "
                    "JOIN gateways_gatewayaccount a ON a.id = r.account_id "
                    "WHERE l.resolution = 'open' GROUP BY a.gateway, l.line_class"
                )
                for gateway, line_class, count in cursor.fetchall():
                    open_.add_metric([gateway, line_class], count)
                cursor.execute(
                    "SELECT a.gateway, count(*) FILTER (WHERE r.status = 'failed'), "
                    "EXTRACT(EPOCH FROM max(r.finished_at)) FROM reconciliation_reconciliationrun r "
                    "JOIN gateways_gatewayaccount a ON a.id = r.account_id GROUP BY a.gateway"
                )
                for gateway, failed_count, last in cursor.fetchall():
                    failed.add_metric([gateway], failed_count)
                    if last is not None:
                        finished.add_metric([gateway], float(last))
        except Exception:  # noqa: BLE001 - a scrape must not fail because the database is down
            logger.warning("metrics: could not read the reconciliation runs", exc_info=True)
        yield open_
        yield failed
        yield finished


def render() -> tuple[bytes, str]:
    """The exposition text of all processes' metrics, and its content type."""
    if MULTIPROCESS:
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    jobs = CollectorRegistry()
    jobs.register(JobQueueCollector())
    jobs.register(LedgerCheckCollector())
    jobs.register(ReconciliationCollector())
    return generate_latest(registry) + generate_latest(jobs), CONTENT_TYPE_LATEST
