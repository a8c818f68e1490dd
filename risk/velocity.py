"""Velocity counters that hold under concurrency and across instances (docs/adr/0053-risk-scoring.md).

What is counted: payment attempts that PASSED the risk check (allowed or flagged), per key (`email:…`, `ip:…`,
`device:…`) of a merchant and mode, in the last hour and the last day. An attempt is allowed only if, counting
itself, no limit is exceeded; it is then recorded. Check and record are one atomic step per key:

- PostgreSQL (default): one call of `paytrust_risk_check` (migration risk/0002, one round trip): a transaction
  advisory lock per key (in sorted order, so two attempts sharing two keys never deadlock), then the counts (a
  fresh READ COMMITTED snapshot per statement, taken after the locks were granted, so every attempt committed
  before is seen), then the attempt's rows. The locks are held until the CALLER's transaction commits (payments'
  phase 1 records the payment in the same transaction), so the next attempt of a key counts this one. Rows are
  purged after a day (`risk.purge_velocity` job).
- Redis (when settings.REDIS_URL is set, the same client configuration as the API rate limiter): one Lua script
  over one sorted set per key (atomic in Redis); entries expire with the day window. The keys of one tenant share
  a hash tag, so the script also runs on a Redis Cluster.

Times come from the store's clock (PostgreSQL `clock_timestamp()`, Redis `TIME`), so instances with skewed
clocks agree.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import connection

from paytrust.redis_scripts import redis_script
from risk.rules import RiskContext, Rules

HOUR_MS = 3_600_000
DAY_MS = 86_400_000


def use_redis() -> bool:
    return bool(settings.REDIS_URL)


def _lock_id(ctx: RiskContext, key: str) -> int:
    digest = hashlib.blake2b(f"risk:{ctx.merchant_id}:{ctx.mode}:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@dataclass(frozen=True)
class Checked:
    version: datetime | None  # the settings row's updated_at (None: no row, the defaults)
    paid_before: bool  # the customer e-mail has a paid invoice at this merchant+mode
    counts: dict[str, tuple[int, int]]  # kind -> (last hour, last day), before this attempt
    recorded: bool  # the attempt was added to the velocity log


def pg_check(
    ctx: RiskContext, *, raw_email: str, keys: dict[str, str], rules: Rules, record: bool
) -> Checked:
    """One call of `paytrust_risk_check` (migration risk/0002): lock the keys, read the settings version, the
    customer's history and the counts, and record the attempt when `record` and within `rules`' limits (and the
    settings are still `rules.version`). `keys` empty: only the version and history (the Redis backend counts).
    Call inside a transaction: the locks are held until it ends. Raises on a database error."""
    kinds = list(keys)
    lock_ids = sorted(_lock_id(ctx, keys[kind]) for kind in kinds)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT * FROM paytrust_risk_check(%s, %s, %s, %s::text[], %s::bigint[], %s::integer[], "
            "%s::integer[], %s, %s)",
            [
                ctx.merchant_id,
                ctx.mode,
                raw_email,
                [keys[kind] for kind in kinds],
                lock_ids,
                [rules.limits[kind][0] for kind in kinds],
                [rules.limits[kind][1] for kind in kinds],
                record,
                rules.version,
            ],
        )
        version, paid_before, hours, days, recorded, error = cursor.fetchone()
    if error:
        raise RuntimeError(f"paytrust_risk_check failed: {error}")
    counts = {kind: (int(hours[i]), int(days[i])) for i, kind in enumerate(kinds)}
    return Checked(version=version, paid_before=bool(paid_before), counts=counts, recorded=bool(recorded))


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
    out = redis_script(_REDIS_RESERVE)(keys=[f"{tag}:{keys[kind]}" for kind in kinds], args=args)
    counts = {kind: (int(out[2 * i]), int(out[2 * i + 1])) for i, kind in enumerate(kinds)}
    return counts, bool(int(out[-1]))
