"""API key lifecycle and the audit log. The API, the admin and the management commands all call these."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.low_level import Type
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apikeys.models import ApiKey, AuditLog, Scope
from merchants.models import Merchant
from paytrust.client_ip import client_ip
from paytrust.errors import Conflict, PermissionError_, ValidationError
from paytrust.ids import _ALPHABET
from paytrust.models import Mode

# Argon2id, argon2-cffi's RFC 9106 "low memory" profile: strong, and verified only once per key per process.
HASHER = PasswordHasher(time_cost=3, memory_cost=65536, parallelism=4, hash_len=32, salt_len=16, type=Type.ID)

LOOKUP_LEN = 12
SECRET_LEN = 32
MAX_GRACE_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True)
class Actor:
    """Who did something, for the audit log."""

    label: str  # "key_…", "user:alice", "system"
    ip: str | None = None
    user_agent: str = ""
    request_id: str = ""
    api_key_id: str | None = None
    mode: str = ""  # an API key's mode when the actor is a key

    @classmethod
    def system(cls) -> Actor:
        return cls(label="system")

    @classmethod
    def for_request(cls, request, *, label: str, api_key_id: str | None = None) -> Actor:
        """The actor of an HTTP request (API or admin): IP, user agent and request id come from the request."""
        meta = request.META
        return cls(
            label=label,
            ip=client_ip(request),
            user_agent=meta.get("HTTP_USER_AGENT", ""),
            request_id=getattr(request, "request_id", "") or "",
            api_key_id=api_key_id,
        )

    @classmethod
    def for_key(cls, request) -> Actor:
        """The API key behind an authenticated API request (label = the key id)."""
        key = request.user.key
        actor = cls.for_request(request, label=key.id, api_key_id=key.id)
        return replace(actor, mode=key.mode)

    @classmethod
    def for_user(cls, request) -> Actor:
        """A staff user in the Django admin: `user:<username>`."""
        return cls.for_request(request, label=f"user:{request.user.get_username()}")

    @classmethod
    def for_cli(cls, command: str) -> Actor:
        """A management command run by an operator."""
        return cls(label=f"cli:{command}")


def _random(n: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(n))


def generate_key(mode: str) -> tuple[str, str]:
    """A new plaintext key and its non-secret lookup prefix."""
    prefix = f"pt_{mode}_{_random(LOOKUP_LEN)}"
    return f"{prefix}_{_random(SECRET_LEN)}", prefix


def split_key(plaintext: str) -> str | None:
    """The lookup prefix of a presented key, or None if it is not shaped like one of ours."""
    parts = plaintext.split("_")
    if len(parts) != 4 or parts[0] != "pt" or parts[1] not in (Mode.TEST, Mode.LIVE):
        return None
    if len(parts[2]) != LOOKUP_LEN or len(parts[3]) != SECRET_LEN:
        return None
    return "_".join(parts[:3])


def audit_record(
    *,
    action: str,
    actor: Actor,
    merchant: Merchant | None = None,
    api_key: ApiKey | None = None,
    mode: str | None = None,
    **details,
) -> AuditLog:
    """One audit row. `mode`: the mode of what it is about; default the subject key's, else the acting key's
    (empty for back-office and operator actions that belong to no mode)."""
    return AuditLog.objects.create(
        action=action,
        actor=actor.label,
        merchant=merchant,
        api_key=api_key,
        mode=mode or (api_key.mode if api_key is not None else actor.mode),
        ip=actor.ip,
        user_agent=(actor.user_agent or "")[:300],
        request_id=actor.request_id or "",
        details=details,
    )


def _validate_scopes(scopes: list[str] | None) -> list[str]:
    scopes = list(scopes or [])
    for scope in scopes:
        if scope not in Scope.values:
            raise ValidationError(f"Unknown scope {scope!r}.", param="scopes")
    return sorted(set(scopes))


def api_key_mode_check(*, caller_mode: str, mode: str) -> None:
    """A test-mode admin key manages test keys only; a live-mode admin key manages both."""
    if caller_mode != Mode.LIVE and mode == Mode.LIVE:
        raise PermissionError_(
            "A test-mode admin key cannot create or manage live-mode API keys.", code="live_mode_required"
        )


def api_key_create(
    *,
    merchant: Merchant,
    mode: str,
    actor: Actor,
    name: str = "",
    scopes: list[str] | None = None,
    rotated_from: ApiKey | None = None,
) -> tuple[ApiKey, str]:
    """Create a key; returns (key, plaintext). The plaintext is never stored and cannot be shown again."""
    if mode not in Mode.values:
        raise ValidationError("mode must be 'test' or 'live'.", param="mode")
    scopes = _validate_scopes(scopes)
    plaintext, prefix = generate_key(mode)
    with transaction.atomic():
        key = ApiKey.objects.create(
            merchant=merchant,
            mode=mode,
            name=name,
            scopes=scopes,
            prefix=prefix,
            secret_hash=HASHER.hash(plaintext),
            rotated_from=rotated_from,
        )
        audit_record(
            action=AuditLog.Action.KEY_CREATED,
            actor=actor,
            merchant=merchant,
            api_key=key,
            key_id=key.id,
            mode=mode,
            scopes=scopes,
        )
    return key, plaintext


def api_key_revoke(*, key: ApiKey, actor: Actor) -> ApiKey:
    with transaction.atomic():
        key = ApiKey.objects.select_for_update().get(pk=key.pk)
        if key.revoked_at is None:
            key.revoked_at = timezone.now()
            key.save(update_fields=["revoked_at", "updated_at"])
            audit_record(
                action=AuditLog.Action.KEY_REVOKED,
                actor=actor,
                merchant=key.merchant,
                api_key=key,
                key_id=key.id,
            )
    return key


def api_key_rotate(*, key: ApiKey, actor: Actor, grace_seconds: int = 0) -> tuple[ApiKey, str]:
    """Issue a replacement key (same merchant, mode, name, scopes). The old key stops working now, or after
    `grace_seconds`. Returns (new key, plaintext)."""
    if (
        not isinstance(grace_seconds, int)
        or isinstance(grace_seconds, bool)
        or not (0 <= grace_seconds <= MAX_GRACE_SECONDS)
    ):
        raise ValidationError(
            f"grace_seconds must be an integer from 0 to {MAX_GRACE_SECONDS}.", param="grace_seconds"
        )
    with transaction.atomic():
        old = ApiKey.objects.select_for_update().select_related("merchant").get(pk=key.pk)
        if old.revoked_at is not None or (old.expires_at and old.expires_at <= timezone.now()):
            raise Conflict(
                "This API key is revoked or expired and cannot be rotated.", code="api_key_inactive"
            )
        if hasattr(old, "rotated_to"):
            raise Conflict("This API key has already been rotated.", code="api_key_already_rotated")
        now = timezone.now()
        if grace_seconds:
            old.expires_at = now + timedelta(seconds=grace_seconds)
        else:
            old.revoked_at = now
        old.save(update_fields=["expires_at", "revoked_at", "updated_at"])
        new, plaintext = api_key_create(
            merchant=old.merchant,
            mode=old.mode,
            actor=actor,
            name=old.name,
            scopes=old.scopes,
            rotated_from=old,
        )
        audit_record(
            action=AuditLog.Action.KEY_ROTATED,
            actor=actor,
            merchant=old.merchant,
            api_key=old,
            key_id=old.id,
            new_key_id=new.id,
            grace_seconds=grace_seconds,
        )
    return new, plaintext


def audit_log_purge(*, older_than_days: int | None = None, batch: int = 5000) -> int:
    """Delete audit rows older than `older_than_days` (default settings.AUDIT_RETENTION_DAYS), in batches."""
    days = settings.AUDIT_RETENTION_DAYS if older_than_days is None else older_than_days
    if days < 0:
        raise ValidationError("older_than_days must be zero or more.", param="older_than_days")
    cutoff = timezone.now() - timedelta(days=days)
    total = 0
    while True:
        ids = list(AuditLog.objects.filter(created_at__lt=cutoff).values_list("pk", flat=True)[:batch])
        if not ids:
            return total
        total += AuditLog.objects.filter(pk__in=ids).delete()[0]
