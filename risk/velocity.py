"""Velocity counters that hold under concurrency and across instances (docs/adr/0053-risk-scoring.md).

What is counted: payment attempts that PASSED the risk check (allowed or flagged), per key (`email:…`, `ip:…`,
`device:…`) of a merchant and mode, in the last hour and the last day. An attempt is allowed only if, counting
itself, no limit is exceeded; it is then recorded. Check and record are one atomic step per key:

- PostgreSQL (default): a transaction advisory lock per key (taken in sorted order, so two attempts sharing two
  keys never deadlock), then one statement reads the counts (a fresh READ COMMITTED snapshot, taken after the
  lock was granted, so every attempt committed before sees it), then the attempt's rows are inserted. The lock is
  held until the CALLER's transaction commits (payments' phase 1 records the payment in the same transaction), so
  the next attempt of that key counts this one. Rows are purged after a day (`risk.purge_velocity` job).
- Redis (when settings.REDIS_URL is set, the same client configuration as the API rate limiter): one Lua script
  over one sorted set per key (atomic in Redis); entries expire with the day window. The keys of one tenant share
  a hash tag, so the script also runs on a Redis Cluster.

Times come from the store's clock (PostgreSQL `clock_timestamp()`, Redis `TIME`), so instances with skewed
clocks agree.
"""

from __future__ import annotations

import hashlib
import threading
import uuid

from django.conf import settings
from django.db import connection

from risk.rules import RiskContext, Rules

HOUR_MS = 3_600_000
DAY_MS = 86_400_000


def use_redis() -> bool:
    return bool(settings.REDIS_URL)


def _lock_id(ctx: RiskContext, key: str) -> int:
    digest = hashlib.blake2b(f"risk:{ctx.merchant_id}:{ctx.mode}:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def pg_lock(ctx: RiskContext, keys: list[str]) -> None:
    """Transaction advisory locks on the attempt's keys, in sorted order (call inside a transaction)."""
    if not keys:
        return
    ids = sorted(_lock_id(ctx, key) for key in keys)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(pg_advisory_xact_lock(k)) FROM unnest(%s::bigint[]) AS k", [ids])


# Tables: risk_risksettings, invoices_invoice (its customer_email index), risk_velocityhit (risk_velocity_key).
_READ_SQL = """
SELECT
  (SELECT updated_at FROM risk_risksettings WHERE merchant_id = %(merchant)s AND mode = %(mode)s),
  EXISTS (
    SELECT 1 FROM invoices_invoice
    WHERE customer_email = %(email)s AND merchant_id = %(merchant)s AND mode = %(mode)s AND amount_paid_minor > 0
  ),
  (SELECT coalesce(json_object_agg(key, json_build_array(hour, day)), '{}'::json) FROM (
     SELECT key, count(*) FILTER (WHERE created_at > clock_timestamp() - interval '1 hour') AS hour,
            count(*) AS day
     FROM risk_velocityhit
     WHERE merchant_id = %(merchant)s AND mode = %(mode)s AND key = ANY(%(keys)s)
       AND created_at > clock_timestamp() - interval '1 day'
     GROUP BY key) AS c)
"""


def pg_read(ctx: RiskContext, *, raw_email: str, keys: list[str]) -> tuple:
    """(settings version or None, whether the e-mail has a paid invoice here, {key: (hour, day)}) in one query.
    `keys` empty: no counts (the Redis backend counts)."""
    with connection.cursor() as cursor:
        cursor.execute(
            _READ_SQL,
            {"merchant": ctx.merchant_id, "mode": ctx.mode, "email": raw_email, "keys": keys},
        )
        version, paid_before, counts = cursor.fetchone()
    if isinstance(counts, str):  # psycopg returns json as parsed objects; be lenient
        import json

        counts = json.loads(counts)
    return version, bool(paid_before), {key: (int(h), int(d)) for key, (h, d) in (counts or {}).items()}


def pg_record(ctx: RiskContext, keys: list[str]) -> None:
    if not keys:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO risk_velocityhit (merchant_id, mode, key, created_at) "
            "SELECT %s, %s, k, clock_timestamp() FROM unnest(%s::text[]) AS k",
            [ctx.merchant_id, ctx.mode, keys],
        )


def pg_purge() -> int:
    """Delete velocity rows older than the longest window (a day)."""
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM risk_velocityhit WHERE created_at < clock_timestamp() - interval '1 day'")
        return cursor.rowcount


# ---- Redis ---------------------------------------------------------------------------------------------------

# KEYS = one sorted set per key; ARGV[1] = a unique member; ARGV[2i], ARGV[2i+1] = key i's hour / day limit (-1: none).
# Returns hour1, day1, hour2, day2, …, recorded (1 when within every limit: the attempt was added to every set).
_REDIS_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
local over = 0
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - 86400000)
  local hour = redis.call('ZCOUNT', key, '(' .. (now - 3600000), '+inf')
  local day = redis.call('ZCARD', key)
  local lh = tonumber(ARGV[2 * i])
  local ld = tonumber(ARGV[2 * i + 1])
  if (lh >= 0 and hour + 1 > lh) or (ld >= 0 and day + 1 > ld) then over = 1 end
  table.insert(out, hour)
  table.insert(out, day)
end
if over == 0 then
  for _, key in ipairs(KEYS) do
    redis.call('ZADD', key, now, now .. ':' .. ARGV[1])
    redis.call('PEXPIRE', key, 86400000)
  end
end
table.insert(out, 1 - over)
return out
"""

_redis_lock = threading.Lock()
_redis_scripts: dict = {}


def _redis_script():
    """The registered script bound to a client for settings.REDIS_URL (one per process and URL), configured like
    the API rate limiter's (apikeys/ratelimit.py): 1 s timeouts."""
    url = settings.REDIS_URL
    script = _redis_scripts.get(url)
    if script is None:
        with _redis_lock:
            script = _redis_scripts.get(url)
            if script is None:
                import redis

                client = redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
                script = _redis_scripts[url] = client.register_script(_REDIS_RESERVE)
    return script


def redis_reserve(
    ctx: RiskContext, keys: dict[str, str], rules: Rules
) -> tuple[dict[str, tuple[int, int]], bool]:
    """Count and (when within every limit) record the attempt atomically: ({kind: (hour, day) before this
    attempt}, recorded)."""
    kinds = list(keys)
    tag = f"paytrust:risk:{{{ctx.merchant_id}:{ctx.mode}}}"
    args: list = [uuid.uuid4().hex]
    for kind in kinds:
        hour, day = rules.limits[kind]
        args += [-1 if hour is None else hour, -1 if day is None else day]
    out = _redis_script()(keys=[f"{tag}:{keys[kind]}" for kind in kinds], args=args)
    counts = {kind: (int(out[2 * i]), int(out[2 * i + 1])) for i, kind in enumerate(kinds)}
    return counts, bool(int(out[-1]))
