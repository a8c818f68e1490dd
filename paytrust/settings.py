"""PayTrust settings. Every value comes from the environment (django-environ); see .env.example."""

import ipaddress
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from paytrust.tracing import trace_job, trace_job_async

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if DEBUG or env.bool("PAYTRUST_ALLOW_DEV_SECRET", default=False):
        SECRET_KEY = "dev-only-insecure-secret-key-change-me"  # noqa: S105 - dev/test only, refused otherwise
    else:
        raise ImproperlyConfigured("SECRET_KEY must be set (or DEBUG=true for local development).")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])


def public_base_url_default(host: str, port: str) -> str:
    """The URL this server answers on when PUBLIC_BASE_URL is unset: http://HOST:PORT, with the wildcard addresses
    (0.0.0.0, ::, or no host) as localhost and an IPv6 address in brackets. gunicorn (paytrust/gunicorn_conf.py)
    and `make run` bind HOST:PORT from the same variables, so checkout and webhook URLs follow `PORT=8100 make run`."""
    host = host.strip()
    if host in ("", "0.0.0.0", "::", "[::]", "*"):  # noqa: S104 - wildcard binds are reached as localhost
        host = "localhost"
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port.strip() or '8000'}"


# Public URL of this service (checkout URLs, gateway webhook URLs). Set it in production (the address customers
# and gateways reach, usually https://…); unset or empty, it is derived from HOST and PORT.
PUBLIC_BASE_URL = (
    env.str("PUBLIC_BASE_URL", default="")
    or public_base_url_default(env.str("HOST", default="localhost"), env.str("PORT", default="8000"))
).rstrip("/")

INSTALLED_APPS = [
    "reporting.admin_apps.BackOfficeAdminConfig",  # django.contrib.admin with the back-office site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "procrastinate.contrib.django",
    "merchants",
    "apikeys",
    "gateways",
    "ledger",
    "webhooks.outbound",
    "invoices",
    "risk",
    "payments",
    "webhooks.inbound",
    "reconciliation",
    "reporting",
]

MIDDLEWARE = [
    "paytrust.middleware.RequestContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Django's sessions, CSRF, auth and messages middleware, passing /v1/ (the API key-authenticated JSON API)
    # straight through (paytrust/middleware.py). X-Frame-Options stays on every response (the gateway return
    # pages under /v1/ are HTML).
    "paytrust.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "paytrust.middleware.CsrfViewMiddleware",
    "paytrust.middleware.AuthenticationMiddleware",
    "paytrust.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "paytrust.urls"
WSGI_APPLICATION = "paytrust.wsgi.application"
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------------------
# DATABASE_URL, e.g. postgres://user:pass@127.0.0.1:5432/paytrust. `make run`/`make test` find one for you.
DATABASES = {"default": env.db("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/paytrust")}
DATABASES["default"]["ENGINE"] = "paytrust.postgresql"  # Django's, with a cheaper pool check (ADR 0024)
DB_POOL = env.bool("DB_POOL", default=True)
if DB_POOL:
    # Django's built-in psycopg 3 pool. Persistent connections (CONN_MAX_AGE) must stay 0 with a pool.
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": env.int("DB_POOL_MIN", default=2),
        "max_size": env.int("DB_POOL_MAX", default=10),
        "timeout": env.int("DB_POOL_TIMEOUT", default=10),
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
# With the pool, Django's health checks become the pool's `check`: every connection is tested when it is
# borrowed, so connections killed by a database restart or failover are replaced instead of failing the request
# that draws them. paytrust.postgresql's check polls the socket first and sends psycopg's empty query only when
# the server has said something (a closed connection always has), instead of one round trip per request.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASES["default"]["TEST"] = {"NAME": env.str("TEST_DATABASE_NAME", default=None)}
# A streaming replica for the reads that tolerate a bounded staleness (the financial report, list endpoints and
# exports; paytrust/db_routing.py, docs/adr/0057-scale-out.md). Unset: everything reads from DATABASE_URL.
# Persistent connections per thread instead of a pool, so a stopped replica fails fast (connect_timeout) instead
# of waiting on a pool; the primary serves those reads whenever the replica is unreachable or too far behind.
DATABASE_REPLICA_URL = env.str("DATABASE_REPLICA_URL", default="")
DATABASE_REPLICA_MAX_LAG_SECONDS = env.float("DATABASE_REPLICA_MAX_LAG_SECONDS", default=5.0)
DATABASE_REPLICA_CHECK_SECONDS = env.float("DATABASE_REPLICA_CHECK_SECONDS", default=2.0)
if DATABASE_REPLICA_URL:
    DATABASES["replica"] = env.db_url_config(DATABASE_REPLICA_URL) | {
        "ENGINE": "django.db.backends.postgresql",
        "CONN_MAX_AGE": env.int("DATABASE_REPLICA_CONN_MAX_AGE", default=300),
        "CONN_HEALTH_CHECKS": True,
        # The URL's own options (sslmode, sslrootcert, ...) are kept; a report the replica takes longer than
        # DATABASE_REPLICA_STATEMENT_TIMEOUT_MS for is cancelled there and run on the primary.
        "OPTIONS": env.db_url_config(DATABASE_REPLICA_URL).get("OPTIONS", {})
        | {
            "connect_timeout": env.int("DATABASE_REPLICA_CONNECT_TIMEOUT", default=2),
            "options": f"-c statement_timeout={env.int('DATABASE_REPLICA_STATEMENT_TIMEOUT_MS', default=15000)}",
        },
        "TEST": {"MIRROR": "default"},
    }
    DATABASE_ROUTERS = ["paytrust.db_routing.ReplicaRouter"]
# The hottest statements (auth, rate limit, idempotency, invoice creation, events) run as server-side prepared
# statements (paytrust/sql.py). Turn off behind a pooler that cannot keep them (PgBouncer in transaction mode
# before 1.21 / without max_prepared_statements): they then bind client-side like the ORM.
DB_PREPARED_STATEMENTS = env.bool("DB_PREPARED_STATEMENTS", default=True)
# A request that cannot reach the database answers 503 `service_unavailable` with this Retry-After (seconds).
DB_UNAVAILABLE_RETRY_AFTER_SECONDS = env.int("DB_UNAVAILABLE_RETRY_AFTER_SECONDS", default=2)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- i18n / time ------------------------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / ".data" / "static"

# --- Security ---------------------------------------------------------------------------------------------
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=False)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=False)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Request bodies above this size are refused with 413 (request_too_large) before parsing.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("MAX_REQUEST_BYTES", default=1024 * 1024)
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]

# Fernet key(s) for secrets at rest (gateway credentials). Comma-separated; the first encrypts, all decrypt,
# so a key can be rotated by prepending a new one (see docs/adr/0003-secrets-at-rest.md).
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=[])

# --- API --------------------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["apikeys.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["apikeys.permissions.IsMerchant"],
    "DEFAULT_PARSER_CLASSES": ["paytrust.parsers.DecimalJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["paytrust.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "paytrust.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_PAGINATION_CLASS": None,
    "DATETIME_FORMAT": "iso-8601",
    "COERCE_DECIMAL_TO_STRING": True,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "PayTrust API",
    "DESCRIPTION": "Payment orchestration and invoicing. Amounts are decimal strings in major units.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "paytrust.schema.resource_tags_hook",  # one tag per resource
    ],
    "ENUM_NAME_OVERRIDES": {
        "ApiKeyStatusEnum": ["active", "revoked", "expired"],
        "DeliveryStatusEnum": "webhooks.outbound.models.DeliveryStatus",
    },
}

API_KEY_CACHE_SECONDS = env.int("API_KEY_CACHE_SECONDS", default=300)
# Failed Argon2id verifications (wrong secrets) per client address and rolling minute; past it, keys not yet
# verified in the worker get 429 too_many_verifications without Argon2 (0: no bound). Valid keys never count.
API_KEY_FAILED_VERIFICATIONS_PER_IP_PER_MINUTE = env.int(
    "API_KEY_FAILED_VERIFICATIONS_PER_IP_PER_MINUTE", default=30
)
# Our own reverse proxies (CIDRs, comma-separated): from these, X-Forwarded-For names the client (paytrust/client_ip.py).
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=[])
try:  # a typo must stop the start-up, not turn every request into a 500
    [ipaddress.ip_network(network.strip(), strict=False) for network in TRUSTED_PROXIES if network.strip()]
except ValueError as exc:
    raise ImproperlyConfigured(f"TRUSTED_PROXIES: {exc}") from None
DEFAULT_RATE_LIMIT_PER_MINUTE = env.int("DEFAULT_RATE_LIMIT_PER_MINUTE", default=1000)
RATE_LIMIT_ENABLED = env.bool("RATE_LIMIT_ENABLED", default=True)
REDIS_URL = env.str("REDIS_URL", default="")
IDEMPOTENCY_RETENTION_HOURS = env.int("IDEMPOTENCY_RETENTION_HOURS", default=24)
# An in-flight Idempotency-Key claim older than this is considered crashed and may be taken over by a retry.
# Keep it well above the longest a request can run (gunicorn timeout, gateway timeout).
IDEMPOTENCY_STALE_SECONDS = env.int("IDEMPOTENCY_STALE_SECONDS", default=120)
AUDIT_RETENTION_DAYS = env.int("AUDIT_RETENTION_DAYS", default=365)

# --- Gateways ---------------------------------------------------------------------------------------------
XENDIT_API_BASE = env.str("XENDIT_API_BASE", default="")
MIDTRANS_API_BASE = env.str("MIDTRANS_API_BASE", default="")
# PayPal: unset = the sandbox (https://api-m.sandbox.paypal.com) for test accounts, https://api-m.paypal.com for live.
PAYPAL_API_BASE = env.str("PAYPAL_API_BASE", default="")
MIDTRANS_SNAP_BASE = env.str("MIDTRANS_SNAP_BASE", default="")
STRIPE_API_BASE = env.str("STRIPE_API_BASE", default="")
GATEWAY_TIMEOUT_SECONDS = env.float("GATEWAY_TIMEOUT_SECONDS", default=10.0)
# Circuit breaker per gateway account (per process): open after N consecutive transient failures, retry after.
GATEWAY_CIRCUIT_FAILURE_THRESHOLD = env.int("GATEWAY_CIRCUIT_FAILURE_THRESHOLD", default=5)
GATEWAY_CIRCUIT_RESET_SECONDS = env.float("GATEWAY_CIRCUIT_RESET_SECONDS", default=30.0)
# Inbound webhook processing retry delays in seconds (1, 5 and 30 minutes after the first failure).
INBOUND_WEBHOOK_RETRY_DELAYS = env.list("INBOUND_WEBHOOK_RETRY_DELAYS", cast=int, default=[60, 300, 1800])
# Retry-After (seconds) of the 503 answered when a gateway's webhook cannot be verified now (PayPal's
# verify-webhook-signature API unreachable): the gateway delivers again.
INBOUND_WEBHOOK_VERIFY_RETRY_AFTER_SECONDS = env.int("INBOUND_WEBHOOK_VERIFY_RETRY_AFTER_SECONDS", default=60)
# Outbound webhook delivery retry delays in seconds.
OUTBOUND_WEBHOOK_RETRY_DELAYS = env.list(
    "OUTBOUND_WEBHOOK_RETRY_DELAYS", cast=int, default=[5, 300, 1800, 7200, 18000, 36000, 36000]
)
OUTBOUND_WEBHOOK_TIMEOUT_SECONDS = env.float("OUTBOUND_WEBHOOK_TIMEOUT_SECONDS", default=15.0)
# At most this many requests in flight to one endpoint, so a slow endpoint cannot take every worker slot.
OUTBOUND_WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT = env.int(
    "OUTBOUND_WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT", default=4
)
# Bodies larger than this are sent as a thin payload (event id, type and the object's id) instead.
OUTBOUND_WEBHOOK_MAX_PAYLOAD_BYTES = env.int("OUTBOUND_WEBHOOK_MAX_PAYLOAD_BYTES", default=256 * 1024)
OUTBOUND_WEBHOOK_RESPONSE_EXCERPT_BYTES = env.int("OUTBOUND_WEBHOOK_RESPONSE_EXCERPT_BYTES", default=1024)
# After a secret rotation the previous secret keeps signing (a second v1 signature) for this long.
OUTBOUND_WEBHOOK_SECRET_ROTATION_HOURS = env.float("OUTBOUND_WEBHOOK_SECRET_ROTATION_HOURS", default=24.0)
# Test-mode endpoints may use http://localhost / 127.0.0.1 / ::1 (exactly those host names) when this is on.
# Off by default: on a shared server it would let any merchant's test key POST to the server's own local services.
# `make run` and `make test` turn it on for local development.
OUTBOUND_WEBHOOK_ALLOW_LOOPBACK_IN_TEST_MODE = env.bool(
    "OUTBOUND_WEBHOOK_ALLOW_LOOPBACK_IN_TEST_MODE", default=False
)

# Cron schedule of payment reconciliation (a procrastinate periodic job).
PAYMENT_RECONCILE_CRON = env.str("PAYMENT_RECONCILE_CRON", default="* * * * *")
# A refund still `pending` this long after it was requested is asked about with the gateway's get_refund (and sent
# again, same refund id, when the gateway never got it); then after a backoff of 1, 2, 4 ... minutes, at most hourly.
REFUND_RECONCILE_AFTER_SECONDS = env.int("REFUND_RECONCILE_AFTER_SECONDS", default=300)
# How long an authorization (capture_method "manual") may be captured when the gateway does not say: past it the
# reconciliation job voids the hold at the gateway and the payment expires (docs/adr/0047).
AUTHORIZATION_HOLD_DAYS = env.int("AUTHORIZATION_HOLD_DAYS", default=7)

# --- Reports ----------------------------------------------------------------------------------------------
REPORT_MAX_DAYS = env.int("REPORT_MAX_DAYS", default=366)

# --- Reconciliation (docs/adr/0054) -----------------------------------------------------------------------
# An uploaded settlement CSV larger than this, or with more rows, is refused (checked while it is read).
RECONCILIATION_MAX_UPLOAD_BYTES = env.int("RECONCILIATION_MAX_UPLOAD_BYTES", default=5 * 1024 * 1024)
RECONCILIATION_MAX_ROWS = env.int("RECONCILIATION_MAX_ROWS", default=200_000)

# --- Background jobs (procrastinate, in PostgreSQL) -------------------------------------------------------
PROCRASTINATE_AUTODISCOVER_MODULE_NAME = "tasks"
PROCRASTINATE_IMPORT_PATHS = ["paytrust.jobs"]  # its periodic task retry_stalled_jobs
# Dead workers (paytrust/jobs.py): every worker writes a heartbeat every JOBS_HEARTBEAT_SECONDS; the jobs still
# `doing` on a worker silent for JOBS_STALLED_WORKER_SECONDS are retried by the periodic task `retry_stalled_jobs`
# (cron JOBS_STALLED_RETRY_CRON; a 6th field is seconds). Keep the stall time a few heartbeats long.
JOBS_HEARTBEAT_SECONDS = env.float("JOBS_HEARTBEAT_SECONDS", default=10.0)
JOBS_STALLED_WORKER_SECONDS = env.float("JOBS_STALLED_WORKER_SECONDS", default=30.0)
JOBS_STALLED_RETRY_CRON = env.str("JOBS_STALLED_RETRY_CRON", default="* * * * *")
PROCRASTINATE_WORKER_DEFAULTS = {
    "update_heartbeat_interval": JOBS_HEARTBEAT_SECONDS,
    "stalled_worker_timeout": JOBS_STALLED_WORKER_SECONDS,
    # One span per job, under the trace of the request that deferred it; also takes the `_trace` kwarg out of the
    # job before the task sees it, so it must run whether tracing is on or off (paytrust/tracing.py).
    "task_middleware": [trace_job, trace_job_async],
}

# --- Logging: one JSON object per line ----------------------------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_context": {"()": "paytrust.logs.RequestContextFilter"}},
    "formatters": {"json": {"()": "paytrust.logs.JsonFormatter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "filters": ["request_context"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.server": {"level": "WARNING"},
        "django.request": {"level": "ERROR"},
        "procrastinate": {"level": env.str("PROCRASTINATE_LOG_LEVEL", default="WARNING")},
    },
}
