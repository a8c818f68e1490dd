"""A POST's first statement, for a key whose secret this process has already verified: the key and its merchant
(as `selectors.api_key_for_auth`), the rate limit's hit and the Idempotency-Key's claim (as
`idempotency.hit_and_claim`) in ONE round trip instead of two (ADR 0024).

The hit and the claim are made only if the row still satisfies, in SQL, every condition under which
`authentication.authenticate_key` accepts a cached verification: the stored hash is the one the cache verified
the presented secret against (a rotated or re-hashed key does not match), the key is not revoked, not expired at
`now` and its merchant is active. `authenticate_key` then checks the returned row in Python exactly as it checks
any row, with the same `now`, so the two agree: a key refused there was neither counted nor claimed (and if they
ever disagreed, it releases the claim). The hit's bucket, merchant and mode are the key row's own, never the
request's. The caller (`ApiView`) asks for it only where the permission check cannot refuse an authenticated
key (views whose only permission is `IsMerchant`), so the claim still comes after authentication, permissions
and the rate limit, as ADR 0002 says.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache

from django.conf import settings
from django.db import DatabaseError

from apikeys.idempotency import CLAIM_INSERT, Claim, fingerprint
from apikeys.models import ApiKey
from apikeys.ratelimit import WINDOW_MS, RateLimitResult, relaxed_commit
from apikeys.selectors import auth_query, key_from_row
from merchants.selectors import merchant_rate_limit
from paytrust.sql import prepared_cursor, stable_params, statement_transaction


@dataclass(frozen=True)
class ClaimRequest:
    """What the claim of an Idempotency-Key needs from the request (`idempotency.validate_key`ed key). The body is
    read and fingerprinted only when the one statement is made, i.e. after the presented secret matched a cached
    verification: never for a request that is not authenticated yet."""

    key: str
    method: str
    path: str
    request: object  # the request whose body the claim's fingerprint is taken of

    def fingerprint(self) -> str:
        return fingerprint(method=self.method, path=self.path, body=self.request.body)


class OneStatementFailed(Exception):  # noqa: N818 - the caller's cue to take the two statements' path
    """The one statement was refused by the database (it wrote nothing): `__cause__` is the database's error."""


@dataclass(frozen=True)
class Started:
    """The hit (and claim, None if refused or the key is taken) made by `key_hit_and_claim`."""

    result: RateLimitResult
    claim: Claim | None


@cache
def _sql(relaxed: str) -> str:
    query = auth_query()
    # Only identifiers from model metadata (auth_query) are interpolated; values are bound parameters.
    return f"""
WITH valid AS MATERIALIZED (
    SELECT k.id, k.merchant_id, k.mode, COALESCE(NULLIF(m.rate_limit_per_minute, 0), %s::integer) AS per_minute
    FROM {query.tables}
    WHERE k.prefix = %s AND k.secret_hash = %s AND k.revoked_at IS NULL
      AND (k.expires_at IS NULL OR k.expires_at > %s) AND m.is_active
),
hit AS MATERIALIZED (
    SELECT h.* FROM valid, {relaxed}LATERAL paytrust_rate_limit_hit(valid.id, valid.per_minute, %s::bigint) h
),
claim AS ({CLAIM_INSERT.format(source="valid.merchant_id, valid.mode", tables="valid, hit")})
SELECT {query.columns}, hit.allowed, hit.used, hit.oldest_ms, hit.now_ms, (SELECT id FROM claim)
FROM {query.tables} LEFT JOIN hit ON true
WHERE k.prefix = %s
"""  # noqa: S608


def key_hit_and_claim(
    *, prefix: str, secret_hash: str, now: datetime, claim: ClaimRequest
) -> tuple[ApiKey | None, Started | None]:
    """The key with `prefix` (None if unknown) and, if the row passed the conditions above, the hit and claim.
    `OneStatementFailed` when the database refused the statement (nothing was written: the caller then takes the
    two statements' path; inside a caller's transaction the statement runs in a savepoint so that path still
    works). An error after it ran (reading the row) is raised as it is: the hit and the claim may be written."""
    params = [
        *stable_params([settings.DEFAULT_RATE_LIMIT_PER_MINUTE]),
        prefix,
        secret_hash,
        now,
        *stable_params([WINDOW_MS]),
        claim.key,
        claim.fingerprint(),
        claim.method,
        claim.path[:500],
        now,
        now,
        prefix,
    ]
    with statement_transaction(), prepared_cursor() as cursor:
        try:
            cursor.execute(_sql(relaxed_commit()), params)
        except DatabaseError as exc:
            raise OneStatementFailed from exc
        row = cursor.fetchone()
    if row is None:
        return None, None
    key = key_from_row(row)
    allowed, used, oldest, now_ms, record_id = row[-5:]
    if allowed is None:  # the row failed a condition: nothing was counted or claimed
        return key, None
    result = RateLimitResult(
        allowed=allowed,
        limit=merchant_rate_limit(key.merchant),
        used=used,
        reset_ms=(oldest or now_ms) + WINDOW_MS,
        now_ms=now_ms,
    )
    return key, Started(result, Claim(record_id=record_id, locked_at=now) if record_id is not None else None)
