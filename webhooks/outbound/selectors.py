"""Outbound webhooks: reads, always scoped to one merchant and mode (another tenant's object is a 404)."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from paytrust.errors import NotFound, ValidationError
from webhooks.outbound.models import Delivery, DeliveryAttempt, Event, EventType, WebhookEndpoint

ATTEMPTS_SHOWN = 20


def endpoint_list(*, merchant, mode: str) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.filter(merchant=merchant, mode=mode, deleted_at__isnull=True)


def endpoint_get(*, merchant, mode: str, endpoint_id: str) -> WebhookEndpoint:
    endpoint = endpoint_list(merchant=merchant, mode=mode).filter(pk=endpoint_id).first()
    if endpoint is None:
        raise NotFound("No such webhook endpoint.", param="id")
    return endpoint


def event_list(*, merchant, mode: str, type: str | None = None) -> QuerySet[Event]:  # noqa: A002
    qs = Event.objects.filter(merchant=merchant, mode=mode)
    if type:
        if type not in EventType.values:
            raise ValidationError(f"Unknown event type {type!r}.", code="event_type_invalid", param="type")
        qs = qs.filter(type=type)
    return qs


def event_get(*, merchant, mode: str, event_id: str) -> Event:
    event = Event.objects.filter(merchant=merchant, mode=mode, pk=event_id).first()
    if event is None:
        raise NotFound("No such event.", param="id")
    return event


def event_deliveries(*, event: Event) -> list[Delivery]:
    """The event's deliveries with their most recent attempts (newest first)."""
    deliveries = list(
        Delivery.objects.filter(event=event)
        .order_by("created_at", "id")
        .prefetch_related(
            Prefetch("attempts", queryset=DeliveryAttempt.objects.order_by("-attempted_at", "-id"))
        )
    )
    for delivery in deliveries:
        delivery.recent_attempts = list(delivery.attempts.all())[:ATTEMPTS_SHOWN]
    return deliveries


def endpoint_deliveries(*, endpoint: WebhookEndpoint, status: str | None = None) -> QuerySet[Delivery]:
    qs = Delivery.objects.filter(endpoint=endpoint).select_related("event")
    if status:
        from webhooks.outbound.models import DeliveryStatus

        if status not in DeliveryStatus.values:
            raise ValidationError(f"Unknown delivery status {status!r}.", param="status")
        qs = qs.filter(status=status)
    return qs
