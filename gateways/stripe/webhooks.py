"""Stripe webhooks: `Stripe-Signature` verification (the stripe library's) and event -> WebhookNotification.

Verification: `stripe.WebhookSignature.verify_header` — HMAC-SHA256 of `f"{t}.{raw body}"` keyed with the
`whsec_…` string, constant-time compare against EVERY `v1` in the header (several during a secret roll), events
older than 300 s refused. Any failure is a 401 and nothing is stored.

Mapping (event id = Stripe's `evt_…`; our payment id is `metadata.payment_id`, which we set on the Checkout Session,
its PaymentIntent (`payment_intent_data[metadata]`) and our refunds; docs/adr/0050-stripe.md):
| event                                             | object          | outcome                                   |
| checkout.session.completed (payment_status paid, not manual capture) | Session | SUCCEEDED, amount_total |
| checkout.session.completed (unpaid: manual capture or async method) | | PENDING (the intent's events follow) |
| checkout.session.async_payment_succeeded / _failed | Session        | SUCCEEDED / FAILED                        |
| checkout.session.expired                          | Session         | EXPIRED                                   |
| payment_intent.succeeded                          | PaymentIntent   | SUCCEEDED, amount_received                |
| payment_intent.amount_capturable_updated          | PaymentIntent   | AUTHORIZED, amount_capturable             |
| payment_intent.payment_failed                     | PaymentIntent   | FAILED (last_payment_error code/message)  |
| payment_intent.canceled                           | PaymentIntent   | CANCELED (manual capture: a voided hold), else FAILED |
| charge.refunded                                   | Charge          | UNKNOWN: acknowledged, never applied (below) |
| refund.created / refund.updated (status succeeded) | Refund         | PARTIALLY_REFUNDED, one refund (re_ id, our metadata.refund_id) |
| charge.dispute.created                            | Dispute         | PARTIALLY_REFUNDED, one chargeback (dp_ id) |
Other event types (and refunds not yet succeeded) are UNKNOWN: stored, never applied to a payment.
Refunds are applied from refund.* events only, one per Stripe refund by its re_ id: a cumulative charge.refunded
cannot say WHICH refund it counts, so applying both kinds (in either order) could record a dashboard refund twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import stripe

from gateways.base import (
    GatewayOutcome,
    RefundReport,
    WebhookAuthError,
    WebhookNotification,
    WebhookPayloadError,
    header,
)
from gateways.http import loads_json
from gateways.stripe.amounts import from_stripe

SIGNATURE_HEADER = "Stripe-Signature"
TOLERANCE_SECONDS = 300


def verify_signature(headers: Mapping[str, str], raw_body: bytes, *, secret: str) -> None:
    presented = header(headers, SIGNATURE_HEADER)
    if not presented:
        raise WebhookAuthError("Missing Stripe-Signature header.", code="webhook_signature_missing")
    if not secret:
        raise WebhookAuthError("This Stripe account has no webhook secret.")
    try:
        stripe.WebhookSignature.verify_header(raw_body, presented, secret, tolerance=TOLERANCE_SECONDS)
    except stripe.SignatureVerificationError as exc:
        reason = "too old" if "tolerance" in str(exc) else "invalid"
        raise WebhookAuthError(f"The Stripe-Signature is {reason}.")
    except (UnicodeDecodeError, ValueError):
        raise WebhookAuthError("The Stripe-Signature does not match the body.")


def epoch(value: object, *, field: str, error: type[Exception] = WebhookPayloadError) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise error(f"Stripe's {field} is not a Unix timestamp.")
    return datetime.fromtimestamp(value, tz=UTC)


def our_id(metadata: object, key: str, prefix: str) -> str:
    value = metadata.get(key) if isinstance(metadata, dict) else None
    return value if isinstance(value, str) and value.startswith(prefix) and len(value) <= 64 else ""


def _load(raw_body: bytes) -> dict:
    try:
        event = loads_json(raw_body)
    except (ValueError, UnicodeDecodeError):
        raise WebhookPayloadError("The Stripe event body is not valid JSON.")
    if not isinstance(event, dict) or event.get("object") != "event":
        raise WebhookPayloadError("The Stripe body is not an event object.")
    for key in ("id", "type"):
        if not isinstance(event.get(key), str) or not event[key]:
            raise WebhookPayloadError(f"The Stripe event lacks {key!r}.")
    data = event.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("object"), dict):
        raise WebhookPayloadError("The Stripe event lacks data.object.")
    return event


def _currency(obj: dict) -> str:
    currency = obj.get("currency")
    if not isinstance(currency, str) or not currency:
        raise WebhookPayloadError("The Stripe object lacks currency.")
    return currency.upper()


def _amount(obj: dict, field: str, currency: str) -> int:
    return from_stripe(obj.get(field), currency, field=field, error=WebhookPayloadError)


def parse_event(raw_body: bytes) -> WebhookNotification:
    event = _load(raw_body)
    obj = event["data"]["object"]
    occurred_at = epoch(event.get("created"), field="created")
    if occurred_at is None:
        raise WebhookPayloadError("The Stripe event lacks created.")
    kind = event["type"]
    base: dict[str, Any] = {"event_id": event["id"], "occurred_at": occurred_at}
    if kind.startswith("checkout.session."):
        return _session_event(kind, obj, base, event)
    if kind.startswith("payment_intent."):
        return _intent_event(kind, obj, base, event)
    if kind == "charge.refunded":
        return _charge_refunded(obj, base, event)
    if kind in ("refund.created", "refund.updated"):
        return _refund_event(obj, base, event)
    if kind == "charge.dispute.created":
        return _dispute_event(obj, base, event)
    return WebhookNotification(
        gateway_reference="",
        payment_id=our_id(obj.get("metadata"), "payment_id", "pay_"),
        status=GatewayOutcome.UNKNOWN,
        amount_minor=0,
        currency=str(obj.get("currency") or "").upper()[:3],
        raw={"id": event["id"], "type": kind},
        **base,
    )


def _session_event(kind: str, obj: dict, base: dict, event: dict) -> WebhookNotification:
    currency = _currency(obj)
    status = GatewayOutcome.UNKNOWN
    if kind == "checkout.session.completed":
        metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
        paid = obj.get("payment_status") == "paid" and metadata.get("capture_method") != "manual"
        # A manual-capture session completes with the money only held: its intent's events say AUTHORIZED.
        status = GatewayOutcome.SUCCEEDED if paid else GatewayOutcome.PENDING
    elif kind == "checkout.session.async_payment_succeeded":
        status = GatewayOutcome.SUCCEEDED
    elif kind == "checkout.session.async_payment_failed":
        status = GatewayOutcome.FAILED
    elif kind == "checkout.session.expired":
        status = GatewayOutcome.EXPIRED
    if not isinstance(obj.get("id"), str):
        raise WebhookPayloadError("The Checkout Session lacks id.")
    payment_id = our_id(obj.get("metadata"), "payment_id", "pay_") or our_id(
        {"c": obj.get("client_reference_id")}, "c", "pay_"
    )
    return WebhookNotification(
        gateway_reference=obj["id"],
        payment_id=payment_id,
        status=status,
        amount_minor=_amount(obj, "amount_total", currency),
        currency=currency,
        raw={"id": event["id"], "type": kind, "failure_code": "expired" if kind.endswith("expired") else ""},
        **base,
    )


def _intent_event(kind: str, obj: dict, base: dict, event: dict) -> WebhookNotification:
    currency = _currency(obj)
    raw: dict[str, Any] = {"id": event["id"], "type": kind}
    field = "amount"
    status = GatewayOutcome.UNKNOWN
    if kind == "payment_intent.succeeded":
        status, field = GatewayOutcome.SUCCEEDED, "amount_received"
    elif kind == "payment_intent.amount_capturable_updated":
        status, field = GatewayOutcome.AUTHORIZED, "amount_capturable"
    elif kind == "payment_intent.payment_failed":
        status = GatewayOutcome.FAILED
        error = obj.get("last_payment_error") if isinstance(obj.get("last_payment_error"), dict) else {}
        raw["failure_code"] = str(error.get("decline_code") or error.get("code") or "payment_failed")
        raw["failure_message"] = str(error.get("message") or "")
    elif kind == "payment_intent.canceled":
        manual = obj.get("capture_method") == "manual"
        status = GatewayOutcome.CANCELED if manual else GatewayOutcome.FAILED
        raw["failure_code"] = str(obj.get("cancellation_reason") or "canceled")
    return WebhookNotification(
        gateway_reference="",  # the intent does not name its Checkout Session: found by our payment id
        payment_id=our_id(obj.get("metadata"), "payment_id", "pay_"),
        status=status,
        amount_minor=_amount(obj, field, currency),
        currency=currency,
        raw=raw,
        **base,
    )


def _charge_refunded(obj: dict, base: dict, event: dict) -> WebhookNotification:
    """Acknowledged, not applied: the refund.* events Stripe sends with it name each refund by its re_ id (ours by
    metadata.refund_id, a dashboard refund through its PaymentIntent), so a refund is recorded exactly once."""
    return WebhookNotification(
        gateway_reference="",
        payment_id=our_id(obj.get("metadata"), "payment_id", "pay_"),
        status=GatewayOutcome.UNKNOWN,
        amount_minor=0,
        currency=_currency(obj),
        raw={"id": event["id"], "type": "charge.refunded", "payment_intent": _intent_id(obj)},
        **base,
    )


def _refund_event(obj: dict, base: dict, event: dict) -> WebhookNotification:
    currency = _currency(obj)
    if not isinstance(obj.get("id"), str) or not obj["id"]:
        raise WebhookPayloadError("The Stripe refund lacks id.")
    amount = _amount(obj, "amount", currency)
    succeeded = obj.get("status") == "succeeded"
    metadata = obj.get("metadata")
    return WebhookNotification(
        gateway_reference="",
        payment_id=our_id(metadata, "payment_id", "pay_"),
        status=GatewayOutcome.PARTIALLY_REFUNDED if succeeded else GatewayOutcome.UNKNOWN,
        amount_minor=amount,
        currency=currency,
        refund=RefundReport(
            reference=obj["id"], amount_minor=amount, our_refund_id=our_id(metadata, "refund_id", "ref_")
        )
        if succeeded
        else None,
        raw={
            "id": event["id"],
            "type": event["type"],
            "refund_status": str(obj.get("status") or ""),
            "payment_intent": _intent_id(obj),
        },
        **base,
    )


def _intent_id(obj: dict) -> str:
    """The PaymentIntent a charge, refund or dispute belongs to (an id, or an expanded intent's id), "" if none:
    StripeGateway.resolve_notification reads our payment id from it when the object itself does not name it."""
    intent = obj.get("payment_intent")
    intent = intent.get("id") if isinstance(intent, dict) else intent
    return intent if isinstance(intent, str) else ""


def _dispute_event(obj: dict, base: dict, event: dict) -> WebhookNotification:
    currency = _currency(obj)
    if not isinstance(obj.get("id"), str) or not obj["id"]:
        raise WebhookPayloadError("The Stripe dispute lacks id.")
    amount = _amount(obj, "amount", currency)
    intent = obj.get("payment_intent")
    intent_metadata = intent.get("metadata") if isinstance(intent, dict) else None
    return WebhookNotification(
        gateway_reference="",
        # A Dispute carries its own (empty) metadata and the intent's id, not our payment id: ours is in the
        # dispute's metadata or an expanded intent when present, else the gateway resolves the intent id before the
        # notification is applied (StripeGateway.resolve_notification; docs/adr/0050-stripe.md, "Disputes").
        payment_id=our_id(obj.get("metadata"), "payment_id", "pay_")
        or our_id(intent_metadata, "payment_id", "pay_"),
        status=GatewayOutcome.PARTIALLY_REFUNDED,
        amount_minor=amount,
        currency=currency,
        refund=RefundReport(reference=obj["id"], amount_minor=amount, chargeback=True),
        raw={
            "id": event["id"],
            "type": "charge.dispute.created",
            "reason": str(obj.get("reason") or ""),
            # Resolved to our payment id before the notification is applied (StripeGateway.resolve_notification).
            "payment_intent": _intent_id(obj),
        },
        **base,
    )
