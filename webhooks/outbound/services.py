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
from paytrust.ids import now_ms
from paytrust.jobs import defer_each_params, defer_each_sql, defer_in_transaction, jobs_withdraw
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
    One statement (`event_sql`): the event, one delivery per endpoint that receives it, and their jobs.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("event_record must run inside the transaction.atomic() of the state change.")
    pending = event_prepare(merchant=merchant, mode=mode, type=type, data=data)
    with prepared_cursor() as cursor:
        cursor.execute(f"WITH {event_sql()} SELECT {EVENT_SQL_RESULT}", pending.params)
        cursor.fetchall()
    return event_recorded(pending)


@dataclass(frozen=True)
class PendingEvent:
    """An event about to be inserted by a statement (`event_sql`'s CTEs inside its WITH): `params` are their
    parameters, in order."""

    event: Event
    params: list


def event_prepare(*, merchant, mode: str, type: str, data: dict) -> PendingEvent:  # noqa: A002
    """Check an event as `event_record` does and build its row and the parameters of `event_sql`, for a caller
    that inserts it as part of a statement of its own (invoice creation: the invoice, its lines and installments,
    the event, its deliveries and their jobs in one statement); then `event_recorded`. That statement must be the
    state change's: in its transaction, or a transaction on its own (one statement in autocommit)."""
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type!r}")
    if mode not in ("test", "live"):
        raise ValueError(f"unknown mode {mode!r}")
    if not isinstance(data, dict):
        raise ValueError("event data must be the object snapshot (a dict)")
    now = timezone.now()
    event = new_instance(Event, merchant=merchant, mode=mode, type=type, data=data)
    params = [
        json_rows(insert_for(Event), [event]),
        merchant.pk,
        mode,
        type,
        *_delivery_params(event.pk, now),
        *defer_each_params(DELIVER_TASK, "delivery_id"),
    ]
    return PendingEvent(event, params)


def event_recorded(pending: PendingEvent) -> Event:
    """After the statement with `event_sql`'s CTEs ran."""
    mark_saved(pending.event)
    return pending.event


# What a statement made of `event_sql`'s CTEs selects (at least): reading `event_jobs` makes its deferral run.
EVENT_SQL_RESULT = "(SELECT ids FROM event_jobs) AS event_job_ids"


@cache
def event_sql() -> str:
    """The CTEs that record an event in a statement: `new_event` (the event row: the same row as
    `Event.objects.create()`), `event_endpoints` (its enabled endpoints' ids, as
    `WebhookEndpoint.objects.filter(merchant, mode, enabled, not deleted, enabled_events && [type, "*"])`),
    `event_deliveries` (one pending delivery per endpoint, due now, its id made by `paytrust_new_id`) and
    `event_jobs` (their delivery jobs, `paytrust.jobs.defer_each_sql`), none compiled per call. The statement
    must read `event_jobs` (`EVENT_SQL_RESULT`). Parameters: `PendingEvent.params`. Only identifiers from model
    metadata are interpolated; values are bound parameters."""
    event = insert_for(Event)
    endpoint = WebhookEndpoint._meta
    delivery = insert_for(Delivery)
    quote = connection.ops.quote_name
    # The delivery row: its id (made in SQL, its time part from Python's clock) and endpoint from the statement,
    # every other column from a template row read by the column types' input functions, as any json_rows INSERT.
    values = []
    for field in delivery.fields:
        if field.attname == "id":
            values.append("paytrust_new_id('whd', %s::bigint)")
        elif field.attname == "endpoint_id":
            values.append("ep.endpoint_id")
        else:
            values.append(f"d.{quote(field.column)}")
    return ", ".join(
        [
            f"new_event AS (INSERT INTO {event.table} {event.columns} {event.from_json})",  # noqa: S608
            f"event_endpoints AS (SELECT e.{quote('id')} AS endpoint_id FROM {quote(endpoint.db_table)} e "  # noqa: S608
            f"WHERE e.{quote('merchant_id')} = %s AND e.{quote('mode')} = %s AND e.{quote('enabled')} "
            f"AND e.{quote('deleted_at')} IS NULL "
            f"AND e.{quote('enabled_events')} && ARRAY[%s, '{ALL_EVENTS}']::varchar[])",
            f"event_deliveries AS (INSERT INTO {delivery.table} {delivery.columns} "  # noqa: S608
            f"SELECT {', '.join(values)} FROM event_endpoints ep, "
            f"jsonb_populate_record(NULL::{delivery.table}, %s::jsonb -> 0) d RETURNING {quote('id')} AS id)",
            f"event_jobs AS ({defer_each_sql('event_deliveries')})",
        ]
    )


def _delivery_params(event_id: str, now) -> list:
    """The parameters of `event_deliveries`: the ids' creation time (ms, this host's clock, as `paytrust.ids`),
    then the template row of a new delivery, as `Delivery(event=..., endpoint=..., status=PENDING,
    next_attempt_at=now)` would insert it (its id and endpoint are the statement's)."""
    template = new_instance(
        Delivery, id="", endpoint_id="", event_id=event_id, status=DeliveryStatus.PENDING, next_attempt_at=now
    )
    return [now_ms(), json_rows(insert_for(Delivery), [template])]


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
