"""Outbound webhooks: writes. Events are recorded in the caller's transaction together with one delivery per
matching endpoint and the job that sends it (its procrastinate lock: the delivery id), so an event is never lost
and never sent for a rolled-back change.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from functools import cache

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from paytrust.errors import NotFound, Unprocessable, ValidationError
from paytrust.jobs import defer_in_transaction, jobs_withdraw
from paytrust.sql import insert_for, json_rows, mark_saved, new_instance, prepared_cursor
from webhooks.outbound import signing
from webhooks.outbound.delivery import DELIVER_TASK
from webhooks.outbound.destinations import endpoint_url_validate
from webhooks.outbound.models import ALL_EVENTS, Delivery, DeliveryStatus, Event, EventType, WebhookEndpoint

logger = logging.getLogger("paytrust.webhooks.outbound.delivery")

EVENT_TYPES = frozenset(EventType.values)


def event_record(*, merchant, mode: str, type: str, data: dict) -> Event:  # noqa: A002 - the spec's name
    """Record an outbound event inside the caller's open transaction and queue its deliveries.

    Must be called inside `transaction.atomic()` (the one that makes the state change): the event row, its
    deliveries and their jobs commit or roll back with that change. `data` is the object snapshot.
    """
    pending = event_prepare(merchant=merchant, mode=mode, type=type, data=data)
    insert, endpoints = event_sql()
    with prepared_cursor() as cursor:
        # One round trip: the event row and the ids of the endpoints that receive it.
        cursor.execute(f"WITH {insert} {endpoints}", pending.params)
        endpoint_ids = [row[0] for row in cursor.fetchall()]
    return event_recorded(pending, endpoint_ids)


@dataclass(frozen=True)
class PendingEvent:
    """An event about to be inserted by the caller's own statement (`event_sql`'s pieces inside its WITH):
    `params` are the CTE's parameters followed by the endpoint SELECT's."""

    event: Event
    params: list


def event_prepare(*, merchant, mode: str, type: str, data: dict) -> PendingEvent:  # noqa: A002
    """Check an event as `event_record` does and build its row, for a caller that inserts it in a statement of
    its own (invoice creation: invoice, lines, installments and event in one round trip); then
    `event_recorded` with the endpoint ids that statement returned. Same transaction rule as `event_record`."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("event_record must run inside the transaction.atomic() of the state change.")
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type!r}")
    if mode not in ("test", "live"):
        raise ValueError(f"unknown mode {mode!r}")
    if not isinstance(data, dict):
        raise ValueError("event data must be the object snapshot (a dict)")
    event = new_instance(Event, merchant=merchant, mode=mode, type=type, data=data)
    return PendingEvent(event, [json_rows(insert_for(Event), [event]), merchant.pk, mode, type])


def event_recorded(pending: PendingEvent, endpoint_ids: list[str]) -> Event:
    """After the event's INSERT ran (in the caller's transaction): one delivery and its job per endpoint."""
    event = pending.event
    mark_saved(event)
    now = timezone.now()
    deliveries = [
        Delivery(event=event, endpoint_id=endpoint_id, status=DeliveryStatus.PENDING, next_attempt_at=now)
        for endpoint_id in endpoint_ids
    ]
    if deliveries:
        Delivery.objects.bulk_create(deliveries)
        _defer_deliveries(deliveries)
    return event


@cache
def event_sql() -> tuple[str, str]:
    """The INSERT of an event as a data-modifying CTE (`new_event AS (…)`, run whatever the statement returns)
    and the SELECT of its enabled endpoints' ids (text): the same rows as `Event.objects.create()` followed by
    `WebhookEndpoint.objects.filter(merchant, mode, enabled, not deleted, enabled_events && [type, "*"])`,
    without compiling either per call. Parameters: the event row (`json_rows`), then merchant id, mode, type."""
    event = insert_for(Event)
    endpoint = WebhookEndpoint._meta
    quote = connection.ops.quote_name
    # Only identifiers from model metadata are interpolated; values are bound parameters.
    insert = f"new_event AS (INSERT INTO {event.table} {event.columns} {event.from_json})"  # noqa: S608
    select = (
        f"SELECT e.{quote('id')}::text FROM {quote(endpoint.db_table)} e "  # noqa: S608
        f"WHERE e.{quote('merchant_id')} = %s AND e.{quote('mode')} = %s AND e.{quote('enabled')} "
        f"AND e.{quote('deleted_at')} IS NULL "
        f"AND e.{quote('enabled_events')} && ARRAY[%s, '{ALL_EVENTS}']::varchar[] "
        f"ORDER BY e.{quote('created_at')} DESC"
    )
    return insert, select


def _defer_deliveries(deliveries: list[Delivery]) -> None:
    """Defer one job per delivery on the current connection (same transaction), locked by the delivery id."""
    defer_in_transaction(
        DELIVER_TASK, *({"delivery_id": d.id} for d in deliveries), locks=[d.id for d in deliveries]
    )


# --- Endpoints --------------------------------------------------------------------------------------------

MAX_ENDPOINTS_PER_MODE = 16
MAX_GRACE_SECONDS = 7 * 24 * 3600
_UNSET = object()


def _validate_enabled_events(enabled_events) -> list[str]:
    if not isinstance(enabled_events, list | tuple) or not enabled_events:
        raise ValidationError(
            'enabled_events must be a non-empty list of event types, or ["*"].', param="enabled_events"
        )
    result: list[str] = []
    for index, value in enumerate(enabled_events):
        if value != ALL_EVENTS and value not in EVENT_TYPES:
            raise ValidationError(
                f"Unknown event type {value!r}.", code="event_type_invalid", param=f"enabled_events.{index}"
            )
        if value not in result:
            result.append(value)
    if ALL_EVENTS in result and len(result) > 1:
        raise ValidationError('"*" already selects every event type; send it alone.', param="enabled_events")
    return result


def endpoint_create(
    *,
    merchant,
    mode: str,
    url: str,
    enabled_events: list[str],
    description: str = "",
    metadata: dict | None = None,
    enabled: bool = True,
) -> tuple[WebhookEndpoint, str]:
    """Register an endpoint. Returns it with its plaintext `whsec_` secret, which is shown this once."""
    url = endpoint_url_validate(url, mode=mode)
    events = _validate_enabled_events(enabled_events)
    with transaction.atomic():
        count = WebhookEndpoint.objects.filter(merchant=merchant, mode=mode, deleted_at__isnull=True).count()
        if count >= MAX_ENDPOINTS_PER_MODE:
            raise Unprocessable(
                f"At most {MAX_ENDPOINTS_PER_MODE} webhook endpoints per mode.", code="endpoint_limit_reached"
            )
        secret = signing.secret_generate()
        endpoint = WebhookEndpoint.objects.create(
            merchant=merchant,
            mode=mode,
            url=url,
            enabled_events=events,
            description=description,
            metadata=metadata or {},
            enabled=enabled,
            secret_encrypted=signing.secret_encrypt(secret),
        )
    return endpoint, secret


def _locked_endpoint(endpoint: WebhookEndpoint) -> WebhookEndpoint:
    locked = (
        WebhookEndpoint.objects.select_for_update().filter(pk=endpoint.pk, deleted_at__isnull=True).first()
    )
    if locked is None:
        raise NotFound()
    return locked


def endpoint_update(
    *,
    endpoint: WebhookEndpoint,
    url=_UNSET,
    enabled_events=_UNSET,
    description=_UNSET,
    metadata=_UNSET,
    enabled=_UNSET,
) -> WebhookEndpoint:
    """Change the given fields. Re-enabling clears `disabled_reason`; it does not resend what was cancelled."""
    if url is not _UNSET:
        url = endpoint_url_validate(url, mode=endpoint.mode)
    if enabled_events is not _UNSET:
        enabled_events = _validate_enabled_events(enabled_events)
    with transaction.atomic():
        endpoint = _locked_endpoint(endpoint)
        changes = {
            "url": url,
            "enabled_events": enabled_events,
            "description": description,
            "metadata": metadata,
            "enabled": enabled,
        }
        fields = ["updated_at"]
        for name, value in changes.items():
            if value is not _UNSET:
                setattr(endpoint, name, value)
                fields.append(name)
        if enabled is True:
            endpoint.disabled_reason = ""
            fields.append("disabled_reason")
        elif enabled is False and not endpoint.disabled_reason:
            endpoint.disabled_reason = "manual"
            fields.append("disabled_reason")
        endpoint.save(update_fields=fields)
    return endpoint


def endpoint_delete(*, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """Soft-delete: the endpoint stops receiving at once (pending deliveries cancelled); its history stays."""
    now = timezone.now()
    with transaction.atomic():
        endpoint = _locked_endpoint(endpoint)
        endpoint.deleted_at = now
        endpoint.enabled = False
        endpoint.save(update_fields=["deleted_at", "enabled", "updated_at"])
        Delivery.objects.filter(endpoint=endpoint, status=DeliveryStatus.PENDING).update(
            status=DeliveryStatus.CANCELLED,
            next_attempt_at=None,
            last_error="endpoint deleted",
            updated_at=now,
        )
    return endpoint


def endpoint_rotate_secret(
    *, endpoint: WebhookEndpoint, grace_seconds: int | None = None
) -> tuple[WebhookEndpoint, str]:
    """New `whsec_` secret (returned once). The old one keeps signing beside it for `grace_seconds`
    (default settings.OUTBOUND_WEBHOOK_SECRET_ROTATION_HOURS); a rotation within the window drops the oldest."""
    if grace_seconds is None:
        grace_seconds = int(settings.OUTBOUND_WEBHOOK_SECRET_ROTATION_HOURS * 3600)
    if not 0 <= grace_seconds <= MAX_GRACE_SECONDS:
        raise ValidationError(
            f"grace_seconds must be between 0 and {MAX_GRACE_SECONDS}.", param="grace_seconds"
        )
    now = timezone.now()
    secret = signing.secret_generate()
    with transaction.atomic():
        endpoint = _locked_endpoint(endpoint)
        if grace_seconds:
            endpoint.previous_secret_encrypted = endpoint.secret_encrypted
            endpoint.previous_secret_expires_at = now + timedelta(seconds=grace_seconds)
        else:
            endpoint.previous_secret_encrypted = ""
            endpoint.previous_secret_expires_at = None
        endpoint.secret_encrypted = signing.secret_encrypt(secret)
        endpoint.save(
            update_fields=[
                "secret_encrypted",
                "previous_secret_encrypted",
                "previous_secret_expires_at",
                "updated_at",
            ]
        )
    return endpoint, secret


# --- Redelivery (API, admin action and `manage.py redeliver_events` all come here) -------------------------


def deliveries_requeue(*, delivery_ids: list[str]) -> int:
    """Put deliveries back to `pending` now with a fresh retry schedule and defer their jobs (a waiting job, e.g. a
    retry scheduled for later, is replaced).

    Skips deliveries in flight (`sending`, or whose job is running) and those whose endpoint is disabled or
    deleted. A succeeded delivery is sent again (an explicit redelivery; receivers deduplicate on `webhook-id`).
    Returns how many were queued.
    """
    now = timezone.now()
    queued = 0
    for start in range(0, len(delivery_ids), 500):
        chunk = delivery_ids[start : start + 500]
        with transaction.atomic():
            deliveries = list(
                Delivery.objects.select_for_update(of=("self",))
                .filter(pk__in=chunk, endpoint__enabled=True, endpoint__deleted_at__isnull=True)
                .exclude(status=DeliveryStatus.SENDING)
                .order_by("pk")
            )
            running = jobs_withdraw(d.id for d in deliveries)
            deliveries = [d for d in deliveries if d.id not in running]
            for delivery in deliveries:
                delivery.status = DeliveryStatus.PENDING
                delivery.next_attempt_at = now
                delivery.cycle_attempts = 0
                delivery.updated_at = now
            Delivery.objects.bulk_update(
                deliveries, ["status", "next_attempt_at", "cycle_attempts", "updated_at"]
            )
            if deliveries:
                _defer_deliveries(deliveries)
            queued += len(deliveries)
    return queued


def event_redeliver(*, event: Event) -> int:
    """Redeliver `event` to every enabled endpoint that matches it now, creating the missing deliveries.

    Returns the number of deliveries queued.
    """
    endpoints = list(
        WebhookEndpoint.objects.filter(
            merchant_id=event.merchant_id,
            mode=event.mode,
            enabled=True,
            deleted_at__isnull=True,
            enabled_events__overlap=[event.type, ALL_EVENTS],
        ).values_list("id", flat=True)
    )
    with transaction.atomic():
        # The unique (event, endpoint) constraint makes this insert-or-keep, also under concurrent calls.
        Delivery.objects.bulk_create(
            [
                Delivery(event=event, endpoint_id=endpoint_id, status=DeliveryStatus.CANCELLED, last_error="")
                for endpoint_id in endpoints
            ],
            ignore_conflicts=True,
        )
    ids = list(Delivery.objects.filter(event=event, endpoint_id__in=endpoints).values_list("id", flat=True))
    return deliveries_requeue(delivery_ids=ids)
