"""Xendit callbacks: `x-callback-token` verification and mapping to a WebhookNotification.

Xendit callbacks carry no signature: they are authenticated by the static "Callback Verification Token" of the
Xendit account (header `x-callback-token`), compared in constant time. One URL per gateway account takes both kinds:

- Invoice callbacks (flat body, no event id): the dedup event id is derived,
  `<invoice id>:<STATUS>:<paid_at or updated or created>`, so the same status change delivered twice dedups, while
  PAID then SETTLED (or a re-opened invoice) are distinct events.
- Refund callbacks (`{"event": "refund.succeeded" | "refund.failed", "business_id", "created", "data": {"id":
  "rfd-…", "invoice_id", "payment_id", "amount", "currency", "status", "reason", "created", "updated", …}}`, XPY
  docs/refund/RefundCallback.md + RefundCallbackData.md): they name the Xendit invoice (`invoice_id`, our
  gateway_reference) but not our external id, so `payment_id` is "" and the payment is found by reference. A
  SUCCEEDED refund is one refund (`RefundReport(reference=rfd id, amount_minor)`, status PARTIALLY_REFUNDED: Xendit
  does not say whether it completes the payment's refund; the payment's amounts decide). Other refund statuses
  (FAILED, PENDING…) change no money: UNKNOWN, never applied. Event id `refund:<rfd id>:<STATUS>`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from gateways.base import (
    GatewayOutcome,
    RefundReport,
    WebhookAuthError,
    WebhookNotification,
    WebhookPayloadError,
    derive_event_id,
    gateway_amount_to_minor,
    header,
    secure_equals,
)
from gateways.http import loads_json

TOKEN_HEADER = "x-callback-token"

STATUS_MAP = {
    "PENDING": GatewayOutcome.PENDING,
    "PAID": GatewayOutcome.SUCCEEDED,
    "SETTLED": GatewayOutcome.SUCCEEDED,
    "EXPIRED": GatewayOutcome.EXPIRED,
}


def map_status(value: object) -> GatewayOutcome:
    return STATUS_MAP.get(str(value or "").upper(), GatewayOutcome.UNKNOWN)


def parse_time(value: object, *, error: type[Exception], field: str) -> datetime | None:
    """Xendit timestamps: ISO 8601 UTC with millis ("2020-01-14T02:32:50.912Z")."""
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise error(f"{field} must be an ISO 8601 string.")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise error(f"{field} is not an ISO 8601 timestamp.")
    if parsed.tzinfo is None:
        raise error(f"{field} has no time zone.")
    return parsed


def verify_callback_token(headers: Mapping[str, str], *, expected_token: str) -> None:
    presented = header(headers, TOKEN_HEADER)
    if not presented:
        raise WebhookAuthError("Missing x-callback-token header.", code="webhook_signature_missing")
    if not secure_equals(expected_token, presented):
        raise WebhookAuthError("The x-callback-token does not match this gateway account.")


def _load(raw_body: bytes) -> dict:
    try:
        data = loads_json(raw_body)
    except (ValueError, UnicodeDecodeError):
        raise WebhookPayloadError("The Xendit callback body is not valid JSON.")
    if not isinstance(data, dict):
        raise WebhookPayloadError("The Xendit callback body must be a JSON object.")
    return data


def parse_callback(raw_body: bytes) -> WebhookNotification:
    """An invoice callback or a refund callback (told apart by the refund callback's `event`)."""
    data = _load(raw_body)
    event = data.get("event")
    if isinstance(event, str) and event.startswith("refund."):
        return _refund_callback(data)
    return _invoice_callback(data)


def _our_refund_id(value: object) -> str:
    """Xendit echoes the `reference_id` we sent (our ref_ id); anything else (a refund made in Xendit's dashboard)
    is not ours."""
    return value if isinstance(value, str) and value.startswith("ref_") and len(value) <= 64 else ""


def _refund_callback(envelope: dict) -> WebhookNotification:
    data = envelope.get("data")
    if not isinstance(data, dict):
        raise WebhookPayloadError("The Xendit refund callback lacks 'data'.")
    for key in ("id", "status", "currency"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise WebhookPayloadError(f"The Xendit refund callback lacks data.{key!r}.")
    # The refund of an invoice names it; a refund of some other Xendit payment is not one of ours (its reference
    # matches no payment: processing fails it as unknown).
    reference = data.get("invoice_id") or data.get("payment_id")
    if not isinstance(reference, str) or not reference:
        raise WebhookPayloadError("The Xendit refund callback names neither invoice_id nor payment_id.")
    if "amount" not in data:
        raise WebhookPayloadError("The Xendit refund callback lacks data.'amount'.")
    currency = data["currency"].upper()
    amount_minor = gateway_amount_to_minor(
        data["amount"], currency, param="amount", error=WebhookPayloadError
    )
    occurred_at = (
        parse_time(data.get("updated"), error=WebhookPayloadError, field="updated")
        or parse_time(data.get("created"), error=WebhookPayloadError, field="created")
        or parse_time(envelope.get("created"), error=WebhookPayloadError, field="created")
    )
    if occurred_at is None:
        raise WebhookPayloadError("The Xendit refund callback has no time (data.updated, data.created).")
    succeeded = data["status"].upper() == "SUCCEEDED"
    return WebhookNotification(
        event_id=derive_event_id("refund", data["id"], data["status"].upper()),
        gateway_reference=reference,
        payment_id="",
        status=GatewayOutcome.PARTIALLY_REFUNDED if succeeded else GatewayOutcome.UNKNOWN,
        amount_minor=amount_minor,
        currency=currency,
        occurred_at=occurred_at,
        refund=RefundReport(
            reference=data["id"],
            amount_minor=amount_minor,
            our_refund_id=_our_refund_id(data.get("reference_id")),
        )
        if succeeded
        else None,
        raw=envelope,
    )


def _invoice_callback(data: dict) -> WebhookNotification:
    for key in ("id", "external_id", "status", "currency"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise WebhookPayloadError(f"The Xendit callback lacks {key!r}.")
    status = map_status(data["status"])
    currency = data["currency"].upper()
    paid_at = parse_time(data.get("paid_at"), error=WebhookPayloadError, field="paid_at")
    updated = parse_time(data.get("updated"), error=WebhookPayloadError, field="updated")
    created = parse_time(data.get("created"), error=WebhookPayloadError, field="created")
    occurred_at = paid_at or updated or created
    if occurred_at is None:
        raise WebhookPayloadError("The Xendit callback has none of paid_at, updated, created.")
    amount_field = "paid_amount" if status == GatewayOutcome.SUCCEEDED and "paid_amount" in data else "amount"
    if amount_field not in data:
        raise WebhookPayloadError("The Xendit callback lacks 'amount'.")
    amount_minor = gateway_amount_to_minor(
        data[amount_field], currency, param=amount_field, error=WebhookPayloadError
    )
    stamp = data.get("paid_at") or data.get("updated") or data.get("created")
    return WebhookNotification(
        event_id=derive_event_id(data["id"], data["status"].upper(), stamp),
        gateway_reference=data["id"],
        payment_id=data["external_id"],
        status=status,
        amount_minor=amount_minor,
        currency=currency,
        occurred_at=occurred_at,
        raw=data,
    )
