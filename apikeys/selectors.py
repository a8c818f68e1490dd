"""Reads for API keys and the audit log (admin API and admin site)."""

from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet

from apikeys.models import ApiKey, AuditLog
from paytrust.errors import NotFound
from paytrust.models import Mode


def _visible_modes(caller_mode: str) -> list[str]:
    """A live-mode admin key sees test and live keys; a test-mode admin key only test keys."""
    return [Mode.TEST, Mode.LIVE] if caller_mode == Mode.LIVE else [Mode.TEST]


def api_key_list(*, merchant_id: str, caller_mode: str) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(
        merchant_id=merchant_id, mode__in=_visible_modes(caller_mode)
    ).select_related("rotated_from")


def api_key_get(*, key_id: str, caller_mode: str) -> ApiKey:
    """Any merchant's key (admin scope), within the modes the caller may see; else 404."""
    key = (
        ApiKey.objects.filter(pk=key_id, mode__in=_visible_modes(caller_mode))
        .select_related("merchant", "rotated_from")
        .first()
    )
    if key is None:
        raise NotFound("No such API key.", param="id")
    return key


def audit_log_list(
    *,
    merchant_id: str,
    start: datetime | None = None,
    end: datetime | None = None,
    key_id: str | None = None,
    action: str | None = None,
) -> QuerySet[AuditLog]:
    """A merchant's audit rows, newest first, optionally between `start` (inclusive) and `end` (exclusive)."""
    qs = AuditLog.objects.filter(merchant_id=merchant_id)
    if start is not None:
        qs = qs.filter(created_at__gte=start)
    if end is not None:
        qs = qs.filter(created_at__lt=end)
    if key_id:
        qs = qs.filter(api_key_id=key_id)
    if action:
        qs = qs.filter(action=action)
    return qs
