"""Operational endpoints: liveness, readiness, Prometheus metrics, and static files for /docs and /admin."""

from __future__ import annotations

import functools

from django.conf import settings
from django.contrib.staticfiles.views import serve as staticfiles_serve
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache

from paytrust import metrics
from paytrust.db_routing import REPLICA, replica_health
from paytrust.errors import ApplicationError, error_response


def _method_not_allowed(method: str) -> JsonResponse:
    response = error_response(
        ApplicationError(f'Method "{method}" not allowed.', code="method_not_allowed", status_code=405)
    )
    response["Allow"] = "GET, HEAD"
    return response


def get_only(view):
    """Like require_GET, but a 405 carries the error envelope."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.method not in ("GET", "HEAD"):
            return _method_not_allowed(request.method)
        return view(request, *args, **kwargs)

    return wrapper


@never_cache
@get_only
def healthz(request):
    """The process is up and serving (no dependency is checked)."""
    return JsonResponse({"status": "ok"})


_migrations_applied: set[str] = set()  # aliases whose migrations were seen fully applied (cannot un-apply)


def _pending_migrations(connection) -> int:
    if connection.alias in _migrations_applied:
        return 0
    executor = MigrationExecutor(connection)
    pending = len(executor.migration_plan(executor.loader.graph.leaf_nodes()))
    if not pending:
        _migrations_applied.add(connection.alias)
    return pending


@never_cache
@get_only
def readyz(request):
    """Ready for traffic: the database answers and every migration is applied (503 otherwise)."""
    checks: dict[str, str] = {}
    connection = connections[DEFAULT_DB_ALIAS]
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - readiness reports, never raises
        checks["database"] = f"error: {exc.__class__.__name__}"
        checks["migrations"] = "unknown"
    else:
        try:
            pending = _pending_migrations(connection)
            checks["migrations"] = "ok" if not pending else f"{pending} pending"
        except Exception as exc:  # noqa: BLE001
            checks["migrations"] = f"error: {exc.__class__.__name__}"
    ready = all(value == "ok" for value in checks.values())
    if REPLICA in settings.DATABASES:  # informational: without it, reads go to the primary (still ready)
        # The last check's answer: readiness never waits on the replica.
        usable, reason = replica_health.peek()
        if reason == "not checked":
            checks["replica"] = "not checked yet (at the first report or list read)"
        else:
            checks["replica"] = "ok" if usable else f"{reason}; reading from the primary"
    return JsonResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks}, status=200 if ready else 503
    )


@never_cache
@get_only
def metrics_view(request):
    """Prometheus exposition of all worker processes (see paytrust/metrics.py)."""
    body, content_type = metrics.render()
    return HttpResponse(body, content_type=content_type)


@get_only
def static(request, path: str):
    """Static files (Swagger UI from drf-spectacular-sidecar, admin CSS) served by the app itself, so /docs and
    /admin work without a CDN or a separate web server. Behind nginx, let nginx serve STATIC_ROOT instead."""
    response = staticfiles_serve(request, path, insecure=True)
    response["Cache-Control"] = "public, max-age=3600"
    return response
