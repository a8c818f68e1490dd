"""DRF authentication by API key (`Authorization: Bearer …` or `X-API-Key: …`).

Each request reads the key row by its non-secret prefix (one indexed query, joined to the merchant), so a revoked,
expired or rotated-away key is refused on the very next request. The Argon2id verification is paid once per key
and process: afterwards a constant-time compare of an HMAC-SHA256 digest, kept in memory for a short time, bound
to the stored hash (a rotated or re-hashed key never matches a stale entry).

Argon2id is expensive on purpose (~300 ms of CPU and 64 MiB here), and key prefixes are not secret: without a
bound, anyone who knows one could make every request cost a full verification with a wrong secret. So FAILED
verifications are counted per client address and key over a rolling minute
(`API_KEY_FAILED_VERIFICATIONS_PER_IP_PER_MINUTE`, default 30; ten times that per address over all keys, on the
rate limiter's store); at a bound, a request that would need a verification gets 429 `too_many_verifications`
without running Argon2. Valid keys never count, so a platform
serving many merchants from one address is not refused; a key already verified in the worker is never held up
(the cached check comes first). Concurrent wrong secrets can overshoot the bound by the requests in flight. The
client address is `paytrust.client_ip.client_ip` (X-Forwarded-For only from settings.TRUSTED_PROXIES).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from django.conf import settings
from django.utils import timezone
from rest_framework.authentication import BaseAuthentication

from apikeys.idempotency import idempotency_release
from apikeys.models import ApiKey, AuditLog
from apikeys.ratelimit import rate_limit_hit, rate_limit_peek
from apikeys.request_start import ClaimRequest, OneStatementFailed, key_hit_and_claim
from apikeys.selectors import api_key_for_auth
from apikeys.services import HASHER, Actor, audit_record, split_key
from merchants.models import Merchant
from paytrust import metrics
from paytrust.client_ip import client_ip
from paytrust.errors import ApplicationError, AuthenticationError, RateLimited
from paytrust.logs import merchant_var

logger = logging.getLogger("paytrust.apikeys")

LAST_USED_RESOLUTION = timedelta(seconds=60)


@dataclass(frozen=True)
class Principal:
    """request.user for API requests: the calling key and its merchant."""

    key: ApiKey
    merchant: Merchant

    is_authenticated = True
    is_anonymous = False

    @property
    def mode(self) -> str:
        return self.key.mode

    @property
    def is_admin(self) -> bool:
        return self.key.is_admin

    @property
    def actor_label(self) -> str:
        return self.key.id


class _VerifiedCache:
    """key prefix -> (stored hash, digest of the presented key, verified at). Per process, thread-safe."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[str, bytes, float]] = {}
        self._lock = threading.Lock()
        self._pepper = hashlib.sha256(("apikey-cache:" + settings.SECRET_KEY).encode()).digest()

    def digest(self, plaintext: str) -> bytes:
        return hmac.new(self._pepper, plaintext.encode(), hashlib.sha256).digest()

    def hit(self, key: ApiKey, digest: bytes) -> bool:
        return self.verified_hash(key.prefix, digest) == key.secret_hash

    def verified_hash(self, prefix: str, digest: bytes) -> str | None:
        """The stored hash this process verified the presented secret (`digest`) against, if still fresh."""
        entry = self._entries.get(prefix)
        if entry is None:
            return None
        stored_hash, cached_digest, at = entry
        if time.monotonic() - at > settings.API_KEY_CACHE_SECONDS:
            return None
        return stored_hash if hmac.compare_digest(cached_digest, digest) else None

    def remember(self, key: ApiKey, digest: bytes) -> None:
        with self._lock:
            if len(self._entries) > 10_000:
                self._entries.clear()
            self._entries[key.prefix] = (key.secret_hash, digest, time.monotonic())

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


verified_cache = _VerifiedCache()


def presented_key(request) -> str | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return ""
    value = request.META.get("HTTP_X_API_KEY")
    if value is not None:
        return value.strip()
    return None


def _fail(
    request,
    reason: str,
    key: ApiKey | None = None,
    message: str = "Invalid API key provided.",
    error: ApplicationError | None = None,
):
    metrics.auth_failed(reason)
    audit_record(
        action=AuditLog.Action.AUTH_FAILED,
        actor=Actor(
            label="anonymous",
            ip=client_ip(request),
            user_agent=request.META.get("HTTP_USER_AGENT", ""),
            request_id=getattr(request, "request_id", ""),
        ),
        merchant=key.merchant if key else None,
        api_key=key,
        reason=reason,
        path=request.path[:200],
    )
    raise error or AuthenticationError(message)


# An address may fail this many times more in total, over every key it tries, than on one key.
ADDRESS_FAILURE_FACTOR = 10


def _failure_buckets(request, key: ApiKey) -> list[tuple[str, int]]:
    """The failure counters a wrong secret counts against: this address on this key (the bound), and this address
    over every key (ten times the bound, so trying many known prefixes stays bounded too)."""
    limit = settings.API_KEY_FAILED_VERIFICATIONS_PER_IP_PER_MINUTE
    ip = client_ip(request)
    if not limit or ip is None:
        return []
    return [
        (f"verify-failed:{ip}:{key.prefix}", limit),
        (f"verify-failed:{ip}", limit * ADDRESS_FAILURE_FACTOR),
    ]


def _verification_allowed(request, key: ApiKey) -> None:
    """Before paying for Argon2id: refuse (429, audited) when this address is at its bound of failures on this
    key, or over all keys. Another merchant's valid key from the same address (a NAT) is not held up by failures
    on this one."""
    for bucket, limit in _failure_buckets(request, key):
        result = rate_limit_peek(bucket=bucket, limit=limit)
        if result is not None and not result.allowed:
            _fail(
                request,
                "too_many_verifications",
                key,
                error=RateLimited(
                    f"Too many failed API key verifications from this address: at most {limit} per rolling "
                    f"minute. Retry after {result.retry_after_seconds} seconds.",
                    code="too_many_verifications",
                    headers={"Retry-After": str(result.retry_after_seconds)},
                ),
            )


def authenticate_key(request, plaintext: str, *, claim: ClaimRequest | None = None) -> Principal:
    """The principal of a presented key, or a 401/429 (audited). With `claim` (a POST whose view cannot refuse an
    authenticated key, see ApiView) and a secret this process has verified, the key's row, the rate limit's hit
    and the Idempotency-Key's claim come from one statement (apikeys/request_start.py): they are then on
    `request.started` (the claim released if the key is refused here after all)."""
    prefix = split_key(plaintext)
    if prefix is None:
        _fail(request, "malformed")
    now = timezone.now()
    digest = verified_cache.digest(plaintext)
    started = None
    verified_hash = verified_cache.verified_hash(prefix, digest) if claim is not None else None
    if verified_hash is not None:
        try:
            key, started = key_hit_and_claim(prefix=prefix, secret_hash=verified_hash, now=now, claim=claim)
        except OneStatementFailed as exc:  # the two statements' path: its own errors (503, the limiter open)
            logger.error("one-statement authentication failed", extra={"error": repr(exc.__cause__)})
            metrics.rate_limit_store_error(backend="postgresql")
            key = api_key_for_auth(prefix=prefix)
    else:
        key = api_key_for_auth(prefix=prefix)
    try:
        principal = _principal(request, plaintext, key, digest, now)
    except Exception:
        # Only in a race (the cache entry expired between the two checks and the address is then over its
        # verification budget, or the last-used update failed): the claim is released, the hit stays counted.
        if started is not None and started.claim is not None:
            idempotency_release(claim=started.claim)
        raise
    request.started = started
    return principal


def _principal(request, plaintext: str, key: ApiKey | None, digest: bytes, now) -> Principal:
    if key is None:
        _fail(request, "unknown_key")
    if key.revoked_at is not None:
        _fail(request, "revoked", key, "This API key has been revoked.")
    if key.expires_at is not None and key.expires_at <= now:
        _fail(request, "expired", key, "This API key has expired (it was rotated).")
    if not key.merchant.is_active:
        _fail(request, "merchant_inactive", key, "This merchant account is disabled.")
    if not verified_cache.hit(key, digest):
        _verification_allowed(request, key)
        try:
            HASHER.verify(key.secret_hash, plaintext)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            for bucket, limit in _failure_buckets(request, key):
                rate_limit_hit(bucket=bucket, limit=limit)  # one more failure from this address (on this key)
            _fail(request, "wrong_secret", key)
        verified_cache.remember(key, digest)
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        # At most about one write per key and minute, not one per request.
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
    return Principal(key=key, merchant=key.merchant)


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request):
        plaintext = presented_key(request)
        if plaintext is None:
            return None  # -> NotAuthenticated (401) from the permission check
        if not plaintext:
            _fail(request, "malformed")
        principal = authenticate_key(request, plaintext, claim=getattr(request, "claim_request", None))
        merchant_var.set(principal.merchant.id)
        return principal, principal.key

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'
