"""Outbound webhooks: writes. Events are recorded in the caller's transaction together with one delivery per
matching endpoint and the job that sends it, so an event is never lost and never sent for a rolled-back change.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from webhooks.models import ALL_EVENTS, Delivery, DeliveryStatus, Event, EventType, WebhookEndpoint

logger = logging.getLogger("paytrust.webhooks.outbound")

EVENT_TYPES = frozenset(EventType.values)


def event_record(*, merchant, mode: str, type: str, data: dict) -> Event:  # noqa: A002 - the spec's name
    """Record an outbound event inside the caller's open transaction and queue its deliveries.

    Must be called inside `transaction.atomic()` (the one that makes the state change): the event row, its
    deliveries and their jobs commit or roll back with that change. `data` is the object snapshot.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("event_record must run inside the transaction.atomic() of the state change.")
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type!r}")
    if mode not in ("test", "live"):
        raise ValueError(f"unknown mode {mode!r}")
    event = Event.objects.create(merchant=merchant, mode=mode, type=type, data=data)
    endpoints = WebhookEndpoint.objects.filter(
        merchant=merchant,
        mode=mode,
        enabled=True,
        deleted_at__isnull=True,
        enabled_events__overlap=[type, ALL_EVENTS],
    ).only("id")
    now = timezone.now()
    deliveries = Delivery.objects.bulk_create(
        [
            Delivery(event=event, endpoint=endpoint, status=DeliveryStatus.PENDING, next_attempt_at=now)
            for endpoint in endpoints
        ]
    )
    if deliveries:
        _defer_deliveries(deliveries)
    return event


def _defer_deliveries(deliveries: list[Delivery], *, schedule_at=None) -> None:
    """Defer one job per delivery on the current connection (same transaction) and remember its job id."""
    from webhooks.tasks import deliver_webhook

    deferrer = deliver_webhook.configure(schedule_at=schedule_at) if schedule_at else deliver_webhook
    job_ids = deferrer.batch_defer(*({"delivery_id": d.id} for d in deliveries))
    for delivery, job_id in zip(deliveries, job_ids, strict=True):
        delivery.job_id = job_id
    Delivery.objects.bulk_update(deliveries, ["job_id"])
