"""Per-API-key rate limiting over an exact rolling window, shared by every worker process and instance.

The algorithm is a sliding log: a request at time t is accepted when fewer than `limit` requests of the same key
were accepted in (t - window, t]; only accepted requests are logged, so the log never holds more than `limit`
entries. Time comes from the store (PostgreSQL's or Redis's clock), so instances with skewed clocks agree.

Backends, one round trip per request each:
- PostgreSQL (default): one call of the function `paytrust_rate_limit_hit` (migrations apikeys/0003, 0004). It
  takes a per-key advisory lock (so concurrent requests of one key, from any process or instance, are
  serialised) and inserts one row per accepted request into an UNLOGGED table, numbered by a per-key sequence;
  a periodic job deletes rows that left the window. Only inserts and oldest-first bulk deletes (no hot row
  rewritten on every request), so the hits in the window are numbered without gaps and their count is
  `newest number - oldest number in the window + 1`: two index probes, O(log n) however many hits the window
  holds, still exact.
- Redis (when settings.REDIS_URL is set): one Lua script on a sorted set (atomic in Redis).

If the store fails, the request is let through (fail open) and the failure is logged and counted: an outage of
the limiter must not become an outage of payments. See docs/adr/0001-api-keys-auth-and-rate-limiting.md.
"""

from __future__ import annotations

import logging
import math
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.db import connection

from paytrust.redis_scripts import redis_script
from paytrust.sql import prepared_cursor, stable_params

logger = logging.getLogger("paytrust.ratelimit")

WINDOW_MS = 60_000


@dataclass(frozen=True)
class RateLimitResult:
    allowed: bool
    limit: int
    used: int  # accepted requests in the window, this one included when allowed
    reset_ms: int  # epoch ms at which the oldest counted request leaves the window
    now_ms: int

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)

    @property
    def retry_after_seconds(self) -> int:
        return max(1, math.ceil((self.reset_ms - self.now_ms) / 1000))

    @property
    def reset_epoch_seconds(self) -> int:
        return math.ceil(self.reset_ms / 1000)

    def headers(self) -> dict[str, str]:
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_epoch_seconds),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after_seconds)
        return headers


# A FROM item for a statement that counts a hit and is its own transaction: the transaction then commits without
# waiting for its WAL to reach the disk (synchronous_commit off, for this transaction only). The key's advisory
# lock is held until the commit; waiting for the flush under it would queue every request of the key behind each
# other's flushes (the fsync then bounds one key's requests per second, and its hiccups become everyone's
# latency). What is given up is nothing durable: the hits are an UNLOGGED table (crash recovery empties it, as a
# Redis restart empties the Redis store), and an Idempotency-Key claim written in the same statement is in the WAL
# before the request's effect, whose commit flushes it (the WAL is flushed in order); a claim whose request
# wrote nothing else can be lost in a crash, as if the request had never arrived. Visibility is not delayed:
# the next holder of the lock sees this hit. Inside a caller's transaction block it is '' (the setting would
# apply to the caller's whole transaction). ADR 0024, "Fifth round".
RELAXED_COMMIT = "(SELECT set_config('synchronous_commit', 'off', true)) AS relaxed_commit, "


def relaxed_commit() -> str:
    """`RELAXED_COMMIT` outside a transaction block, else ''."""
    return "" if connection.in_atomic_block else RELAXED_COMMIT


def _pg_hit(bucket: str, limit: int) -> RateLimitResult:
    # paytrust_rate_limit_hit (migrations apikeys/0003, 0004): advisory lock per key, count the key's hits of
    # the window from their numbers (two probes of the (bucket, ts_ms, seq) index), insert this hit when under the
    # limit. One round trip.
    with prepared_cursor() as cursor:  # parsed once per connection
        cursor.execute(
            f"SELECT h.* FROM {relaxed_commit()}paytrust_rate_limit_hit(%s, %s::integer, %s::bigint) h",  # noqa: S608
            stable_params([bucket, limit, WINDOW_MS]),
        )
        allowed, used, oldest, now_ms = cursor.fetchone()
    return RateLimitResult(
        allowed=allowed, limit=limit, used=used, reset_ms=(oldest or now_ms) + WINDOW_MS, now_ms=now_ms
    )


# KEYS[1] = the key's sorted set; ARGV = limit, window ms, a unique member suffix.
_REDIS_HIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local used = redis.call('ZCARD', KEYS[1])
local allowed = 0
if used < limit then
    redis.call('ZADD', KEYS[1], now, now .. ':' .. ARGV[3])
    used = used + 1
    allowed = 1
end
redis.call('PEXPIRE', KEYS[1], window)
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local oldest_ms = now
if oldest[2] then oldest_ms = tonumber(oldest[2]) end
return {allowed, used, oldest_ms, now}
"""


def _redis_hit(bucket: str, limit: int) -> RateLimitResult:
    allowed, used, oldest, now_ms = redis_script(_REDIS_HIT)(
        keys=[f"paytrust:rl:{bucket}"], args=[limit, WINDOW_MS, uuid.uuid4().hex]
    )
    return RateLimitResult(
        allowed=bool(allowed),
        limit=limit,
        used=int(used),
        reset_ms=int(oldest) + WINDOW_MS,
        now_ms=int(now_ms),
    )


# How many hits `bucket` has in the window, without adding one (KEYS[1] = the sorted set; ARGV = window ms).
_REDIS_PEEK = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[1]))
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local oldest_ms = now
if oldest[2] then oldest_ms = tonumber(oldest[2]) end
return {redis.call('ZCARD', KEYS[1]), oldest_ms, now}
"""


def _pg_peek(bucket: str) -> tuple[int, int | None, int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), min(ts_ms), (extract(epoch FROM clock_timestamp()) * 1000)::bigint "
            "FROM apikeys_ratelimithit "
            "WHERE bucket = %s AND ts_ms > (extract(epoch FROM clock_timestamp()) * 1000)::bigint - %s",
            [bucket, WINDOW_MS],
        )
        return cursor.fetchone()


def rate_limit_peek(*, bucket: str, limit: int) -> RateLimitResult | None:
    """Whether `bucket` is already at `limit` in the rolling window, without counting a hit (`allowed` False when
    it is). None when rate limiting is disabled or the store failed."""
    if not settings.RATE_LIMIT_ENABLED:
        return None
    try:
        if settings.REDIS_URL:
            import redis

            client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1.0, socket_connect_timeout=1.0)
            used, oldest, now_ms = client.eval(_REDIS_PEEK, 1, f"paytrust:rl:{bucket}", WINDOW_MS)
        else:
            used, oldest, now_ms = _pg_peek(bucket)
    except Exception as exc:  # noqa: BLE001 - fail open, like rate_limit_hit
        logger.error("rate limit store failed on peek", extra={"backend": backend_name(), "error": repr(exc)})
        return None
    used = int(used)
    return RateLimitResult(
        allowed=used < limit,
        limit=limit,
        used=used,
        reset_ms=int(oldest or now_ms) + WINDOW_MS,
        now_ms=int(now_ms),
    )


def backend_name() -> str:
    return "redis" if settings.REDIS_URL else "postgresql"


def rate_limit_hit(*, bucket: str, limit: int) -> RateLimitResult | None:
    """Count one request of `bucket` (an API key id) against `limit` per rolling minute.

    Returns None when rate limiting is disabled or the store failed (the request then goes through).
    """
    if not settings.RATE_LIMIT_ENABLED:
        return None
    try:
        if settings.REDIS_URL:
            return _redis_hit(bucket, limit)
        return _pg_hit(bucket, limit)
    except Exception as exc:  # noqa: BLE001 - fail open, see the module docstring
        from paytrust import metrics

        logger.error(
            "rate limit store failed; request allowed", extra={"backend": backend_name(), "error": repr(exc)}
        )
        metrics.rate_limit_store_error(backend=backend_name())
        return None


def rate_limit_purge() -> int:
    """Delete PostgreSQL hits that left the window (Redis entries expire by themselves)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM apikeys_ratelimithit "
            "WHERE ts_ms < (extract(epoch FROM clock_timestamp()) * 1000)::bigint - %s",
            [WINDOW_MS],
        )
        return cursor.rowcount
