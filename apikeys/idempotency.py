"""Idempotency-Key handling for POST requests (used by `apikeys.viewsets.ApiView`).

Insert-first, never check-then-insert: a request claims its key by INSERTing an `in_progress` row; the UNIQUE
constraint on (merchant, mode, key) makes exactly one concurrent request win. A loser reads the winner's row:
- other method/path/body                     -> 422 idempotency_error (idempotency_key_reused)
- completed                                   -> the stored status and body, `Idempotent-Replayed: true`
- still in progress                           -> 409 idempotency_error (idempotency_request_in_progress)
- in progress but locked longer than settings.IDEMPOTENCY_STALE_SECONDS (its worker crashed or was killed)
                                              -> taken over by this request, which runs the work again

The winner runs the view; afterwards the row is completed with the response (2xx/3xx and 5xx) or deleted
(4xx: the request was refused before doing any work, so the same key may be used again with a corrected body).
A claim is the record's id and its `locked_at`: a takeover sets a new `locked_at`, so the request it took over
can no longer complete or release the record. Where the response is stored in the statement that makes the
effect (`completion_cte`), that statement fails as a whole when the claim was taken over: the slow request's
effect is not written, and it answers 409, while the retry that took over does the work once.
See docs/adr/0002-idempotency.md.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection
from django.http import HttpResponse
from django.utils import timezone

from apikeys.models import IdempotencyRecord
from apikeys.ratelimit import WINDOW_MS, RateLimitResult, relaxed_commit
from paytrust.errors import IdempotencyError, ValidationError
from paytrust.sql import Cte, prepared_cursor, stable_params

logger = logging.getLogger("paytrust.idempotency")

MAX_KEY_LENGTH = 255
REPLAY_HEADERS = ("Content-Type", "Location", "Content-Disposition")


@dataclass(frozen=True)
class Claim:
    """This request owns the key; it must `idempotency_complete` or `idempotency_release` it."""

    record_id: int
    locked_at: datetime  # the record's `locked_at` as this request set it: a takeover changes it


def validate_key(raw: str) -> str:
    if not raw or len(raw) > MAX_KEY_LENGTH or not raw.isprintable():
        raise ValidationError(
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable characters.",
            code="idempotency_key_invalid",
        )
    return raw


def fingerprint(*, method: str, path: str, body: bytes) -> str:
    """SHA-256 of the request: JSON bodies are canonicalised (key order and whitespace do not matter)."""
    try:
        parsed = json.loads(body, parse_float=Decimal) if body else None
        canonical = json.dumps(parsed, sort_keys=True, separators=(",", ":"), default=str).encode()
    except (ValueError, UnicodeDecodeError, RecursionError):
        canonical = body
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), canonical):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


_CLAIM_SQL = """
INSERT INTO apikeys_idempotencyrecord
    (merchant_id, mode, key, fingerprint, method, path, status, response_headers, created_at, locked_at)
VALUES (%s, %s, %s, %s, %s, %s, 'in_progress', '{}'::jsonb, %s, %s)
ON CONFLICT (merchant_id, mode, key) DO NOTHING
RETURNING id
"""


def idempotency_begin(
    *, merchant_id: str, mode: str, key: str, method: str, path: str, body: bytes
) -> Claim | IdempotencyRecord:
    """Claim `key` for this request (-> Claim) or return the completed record to replay; raises
    IdempotencyError (409 in progress, 422 reused with another request)."""
    key = validate_key(key)
    fp = fingerprint(method=method, path=path, body=body)
    for _ in range(5):
        now = timezone.now()
        with prepared_cursor() as cursor:  # parsed and planned once per connection
            cursor.execute(_CLAIM_SQL, [merchant_id, mode, key, fp, method, path[:500], now, now])
            row = cursor.fetchone()
        if row is not None:
            return Claim(record_id=row[0], locked_at=now)
        existing = IdempotencyRecord.objects.filter(merchant_id=merchant_id, mode=mode, key=key).first()
        if existing is None:
            continue  # released (4xx) or purged between our INSERT and SELECT: try to claim again
        if existing.fingerprint != fp:
            raise IdempotencyError(
                "This Idempotency-Key was already used with a different request (method, path or body). "
                "Use a new key for a new request.",
                code="idempotency_key_reused",
                status_code=422,
            )
        if existing.status == IdempotencyRecord.Status.COMPLETED:
            return existing
        stale_before = now - timedelta(seconds=settings.IDEMPOTENCY_STALE_SECONDS)
        if existing.locked_at < stale_before:
            taken = IdempotencyRecord.objects.filter(
                pk=existing.pk,
                status=IdempotencyRecord.Status.IN_PROGRESS,
                locked_at=existing.locked_at,
            ).update(locked_at=now)
            if taken:
                logger.warning(
                    "idempotency: took over a stale in-flight request",
                    extra={"idempotency_record": existing.pk, "locked_at": existing.locked_at.isoformat()},
                )
                return Claim(record_id=existing.pk, locked_at=now)
            continue
        raise IdempotencyError(
            "A request with this Idempotency-Key is still being processed. Retry later.",
            code="idempotency_request_in_progress",
            status_code=409,
        )
    raise IdempotencyError(
        "A request with this Idempotency-Key is being processed concurrently. Retry later.",
        code="idempotency_request_in_progress",
        status_code=409,
    )


# The PostgreSQL rate limiter's hit and the claim in ONE round trip (ADR 0024): the claim row is inserted only when
# the hit was allowed (a 429 claims nothing), in the same autocommit statement as the hit. MATERIALIZED: the
# function runs exactly once.
# The claim's INSERT, made only when the hit (a CTE `hit`) was allowed; {source}: the merchant id and mode (two
# parameters here, the key row's own in apikeys/request_start.py), {tables}: what the SELECT reads.
CLAIM_INSERT = """INSERT INTO apikeys_idempotencyrecord
        (merchant_id, mode, key, fingerprint, method, path, status, response_headers, created_at, locked_at)
    SELECT {source}, %s, %s, %s, %s, 'in_progress', '{{}}'::jsonb, %s, %s FROM {tables} WHERE hit.allowed
    ON CONFLICT (merchant_id, mode, key) DO NOTHING
    RETURNING id"""


def _hit_and_claim_sql(relaxed: str) -> str:  # constant text only (`relaxed`: ratelimit.relaxed_commit())
    return (
        f"WITH hit AS MATERIALIZED (SELECT h.* FROM {relaxed}"  # noqa: S608
        "paytrust_rate_limit_hit(%s, %s::integer, %s::bigint) h), "
        f"claim AS ({CLAIM_INSERT.format(source='%s, %s', tables='hit')}) "
        "SELECT hit.allowed, hit.used, hit.oldest_ms, hit.now_ms, (SELECT id FROM claim) FROM hit"
    )


def hit_and_claim(
    *,
    bucket: str,
    limit: int,
    merchant_id: str,
    mode: str,
    key: str,
    method: str,
    path: str,
    request_fingerprint: str,
) -> tuple[RateLimitResult, Claim | None]:
    """Count one request of `bucket` against `limit` (as `ratelimit.rate_limit_hit` with the PostgreSQL store)
    and, when it is allowed, try to claim `key` (as the first INSERT of `idempotency_begin`), in one statement.
    The claim is None when the hit was refused or the key is already taken: the caller then answers 429, or
    runs `idempotency_begin`, which reads the existing record (replay, 409, 422 or a stale takeover). Only for
    the PostgreSQL store and a valid key (`validate_key`), after the permission check passed; `request_fingerprint`
    is `fingerprint(method, path, body)`. Raises the database's errors (the caller fails open as `rate_limit_hit`
    does)."""
    now = timezone.now()
    with prepared_cursor() as cursor:
        cursor.execute(
            _hit_and_claim_sql(relaxed_commit()),
            [
                *stable_params([bucket, limit, WINDOW_MS]),
                merchant_id,
                mode,
                key,
                request_fingerprint,
                method,
                path[:500],
                now,
                now,
            ],
        )
        allowed, used, oldest, now_ms, record_id = cursor.fetchone()
    result = RateLimitResult(
        allowed=allowed, limit=limit, used=used, reset_ms=(oldest or now_ms) + WINDOW_MS, now_ms=now_ms
    )
    return result, (Claim(record_id=record_id, locked_at=now) if record_id is not None else None)


def should_store(status: int) -> bool:
    """4xx responses are not stored: the request was refused before any work, the key stays usable. Nor is a 503
    (the database could not be reached or the work was rolled back: a retry with the same key must run it)."""
    return not 400 <= status < 500 and status != 503


# Matched by the claim's id and `locked_at`, not by status: inside a caller's transaction the response is stored
# twice (in the effect's statement, then again once the view returned), the second time over a completed record.
_COMPLETE_SQL = """
UPDATE apikeys_idempotencyrecord
SET status = 'completed', response_status = %s::integer, response_headers = %s, response_body = %s,
    completed_at = %s
WHERE id = %s::bigint AND locked_at = %s
RETURNING id
"""

# SQLSTATE of a statement refused because its claim was taken over (`completion_cte`'s check; class "PT" is
# PayTrust's own, outside PostgreSQL's classes).
CLAIM_LOST_SQLSTATE = "PT409"
_CLAIM_LOST_MESSAGE = "idempotency claim taken over"
_COMPLETE_CTE = f"idempotency_completion AS ({_COMPLETE_SQL.strip()})"
_COMPLETE_CHECK = (
    "paytrust_assert(EXISTS (SELECT FROM idempotency_completion), "
    f"'{CLAIM_LOST_SQLSTATE}', '{_CLAIM_LOST_MESSAGE}') AS idempotency_claim_held"
)


def idempotency_complete(*, claim: Claim, status: int, headers: dict[str, str], body: bytes) -> None:
    """Store the response (one pre-built, prepared UPDATE: this runs after every POST). If the claim was taken
    over meanwhile, the record is the other request's and is left alone (logged: that request runs the work
    again; for a view whose effect is not written with `completion_cte`, it is then done twice)."""
    with prepared_cursor() as cursor:
        cursor.execute(
            _COMPLETE_SQL, completion_cte(claim=claim, status=status, headers=headers, body=body).params
        )
        stored = cursor.fetchone() is not None
    if not stored:
        logger.warning(
            "idempotency: the claim was taken over before the response was stored",
            extra={"idempotency_record": claim.record_id},
        )


def completion_cte(*, claim: Claim, status: int, headers: dict[str, str], body: bytes) -> Cte:
    """`idempotency_complete`'s UPDATE as a data-modifying CTE (`idempotency_completion`), for a caller that
    stores the response in the statement that makes the effect: the two are then one atomic write. Its check
    fails that statement (SQLSTATE `CLAIM_LOST_SQLSTATE`, see `claim_lost`) when the claim is no longer this
    request's (taken over as stale): nothing of the effect is written."""
    headers_field = IdempotencyRecord._meta.get_field("response_headers")
    params = [status, headers_field.get_db_prep_save(headers, connection), bytes(body), timezone.now()]
    return Cte(_COMPLETE_CTE, stable_params([*params, claim.record_id]) + [claim.locked_at], _COMPLETE_CHECK)


def claim_lost(exc: BaseException) -> bool:
    """`exc` is a statement refused by `completion_cte`'s check: this request's claim was taken over."""
    return getattr(exc.__cause__, "sqlstate", None) == CLAIM_LOST_SQLSTATE


def claim_lost_error() -> IdempotencyError:
    return IdempotencyError(
        "This request outlived its Idempotency-Key's claim, which a retry with the same key took over; nothing "
        "of this request was written. Repeat the request with the same key for the retry's outcome.",
        code="idempotency_request_in_progress",
        status_code=409,
    )


def idempotency_release(*, claim: Claim) -> None:
    IdempotencyRecord.objects.filter(
        pk=claim.record_id, status=IdempotencyRecord.Status.IN_PROGRESS, locked_at=claim.locked_at
    ).delete()


def replay_response(record: IdempotencyRecord) -> HttpResponse:
    response = HttpResponse(bytes(record.response_body or b""), status=record.response_status)
    for name, value in (record.response_headers or {}).items():
        response[name] = value
    response["Idempotent-Replayed"] = "true"
    return response


def redact_json(body: bytes, fields: tuple[str, ...]) -> bytes:
    """Null the top-level `fields` of a JSON object body (secrets are never kept in the idempotency store)."""
    if not fields:
        return body
    try:
        data = json.loads(body)
    except ValueError:
        return b""
    if isinstance(data, dict):
        for field in fields:
            if field in data:
                data[field] = None
    return json.dumps(data).encode()


def idempotency_purge(*, older_than_hours: int | None = None, batch: int = 5000) -> int:
    """Delete records older than the retention (settings.IDEMPOTENCY_RETENTION_HOURS), in batches."""
    hours = settings.IDEMPOTENCY_RETENTION_HOURS if older_than_hours is None else older_than_hours
    cutoff = timezone.now() - timedelta(hours=hours)
    total = 0
    while True:
        ids = list(
            IdempotencyRecord.objects.filter(created_at__lt=cutoff).values_list("pk", flat=True)[:batch]
        )
        if not ids:
            return total
        total += IdempotencyRecord.objects.filter(pk__in=ids).delete()[0]
