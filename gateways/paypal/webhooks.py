"""PayPal webhooks: verification through PayPal's verify-webhook-signature API, and parsing of the events we handle.

Verification (`verify`): the transmission headers PAYPAL-TRANSMISSION-ID, -TRANSMISSION-TIME, -TRANSMISSION-SIG,
PAYPAL-CERT-URL and PAYPAL-AUTH-ALGO (shared/reference/gateways-global.md §2, PayPal-Java-SDK Constants.java) and
the account's `webhook_id` are sent with the parsed body as `webhook_event` to
POST /v1/notifications/verify-webhook-signature; only `{"verification_status": "SUCCESS"}` passes. FAILURE (PayPal
answers it with HTTP 200), a missing header or a body that is not a JSON object -> WebhookAuthError (401, nothing
stored). PayPal unreachable / 5xx / unreadable -> the GatewayError propagates: the inbound pipeline answers 503 with
Retry-After (`Gateway.webhook_verification_does_io`), so PayPal delivers again (it retries for 3 days).
A verified body is authenticated as a whole (PayPal signs the CRC32 of the raw body), so the events are
authoritative.

Events (the event id is PayPal's `id`, WH-…; tests/fixtures/paypal/ has each payload with its source):
- CHECKOUT.ORDER.APPROVED (resource: the order): PENDING with `approved` — PayTrust must now capture (intent
  CAPTURE) or authorize (intent AUTHORIZE) the order (`PayPalGateway.complete_approved_payment`).
- PAYMENT.CAPTURE.COMPLETED (resource: the capture): SUCCEEDED with the capture's amount; our pay_ id is the
  capture's `custom_id` (copied from the purchase unit), the order id `supplementary_data.related_ids.order_id`.
- PAYMENT.CAPTURE.DENIED / DECLINED (the capture): FAILED. PAYMENT.CAPTURE.PENDING: PENDING.
- PAYMENT.CAPTURE.REFUNDED (resource: the refund): one refund, `RefundReport(reference=<refund id>, amount)`, our
  ref_ id when the refund's `invoice_id` is one (we send it). PAYMENT.CAPTURE.REVERSED (resource: the reversal,
  refund-shaped): the same with `chargeback=True`. A refund names its capture only (link rel "up"), not the order:
  `resolve` asks PayPal for the capture (GET /v2/payments/captures/{id}) to learn the order and our pay_ id.
- Anything else: UNKNOWN (stored; it never moves a payment).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime

from gateways.base import (
    GatewayOutcome,
    RefundReport,
    WebhookAuthError,
    WebhookNotification,
    WebhookPayloadError,
    gateway_amount_to_minor,
    header,
)
from gateways.http import loads_json
from gateways.paypal.client import PayPalClient

TRANSMISSION_HEADERS = {
    "transmission_id": "PAYPAL-TRANSMISSION-ID",
    "transmission_time": "PAYPAL-TRANSMISSION-TIME",
    "transmission_sig": "PAYPAL-TRANSMISSION-SIG",
    "cert_url": "PAYPAL-CERT-URL",
    "auth_algo": "PAYPAL-AUTH-ALGO",
}
APPROVED = "CHECKOUT.ORDER.APPROVED"
CAPTURE_STATUS = {
    "COMPLETED": GatewayOutcome.SUCCEEDED,
    "PENDING": GatewayOutcome.PENDING,
    "DECLINED": GatewayOutcome.FAILED,
    "FAILED": GatewayOutcome.FAILED,
}
_CAPTURE_EVENTS = {
    "PAYMENT.CAPTURE.COMPLETED",
    "PAYMENT.CAPTURE.DENIED",
    "PAYMENT.CAPTURE.DECLINED",
    "PAYMENT.CAPTURE.PENDING",
}
_REFUND_EVENTS = {"PAYMENT.CAPTURE.REFUNDED": False, "PAYMENT.CAPTURE.REVERSED": True}
_CAPTURE_LINK = re.compile(r"/v2/payments/captures/([A-Za-z0-9]+)/?$")


def ours(value: object, prefix: str) -> str:
    """Our id (pay_… / ref_…) when PayPal echoes one, else ""."""
    return value if isinstance(value, str) and value.startswith(prefix) and len(value) <= 64 else ""


def parse_time(value: object, *, error: type[Exception], field: str) -> datetime | None:
    """PayPal times: RFC 3339 ("2022-02-02T00:22:38Z", "2025-04-09T11:06:38-07:00")."""
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise error(f"{field} must be an RFC 3339 string.")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise error(f"{field} is not an RFC 3339 timestamp.")
    if parsed.tzinfo is None:
        raise error(f"{field} has no time zone.")
    return parsed


def money_minor(money: object, *, error: type[Exception], field: str) -> tuple[int, str]:
    """A PayPal Money object {"currency_code", "value"} -> (minor units, currency); negative values (reversals) are
    taken by their size."""
    if not isinstance(money, Mapping):
        raise error(f"{field} is missing.")
    currency, value = money.get("currency_code"), money.get("value")
    if not isinstance(currency, str) or not isinstance(value, str):
        raise error(f"{field} lacks currency_code or value.")
    currency = currency.upper()
    return gateway_amount_to_minor(value.lstrip("-"), currency, param=field, error=error), currency


def _load(raw_body: bytes, error: type[Exception]) -> dict:
    try:
        data = loads_json(raw_body)
    except (ValueError, UnicodeDecodeError):
        raise error("The PayPal webhook body is not valid JSON.")
    if not isinstance(data, dict):
        raise error("The PayPal webhook body must be a JSON object.")
    return data


def verify(client: PayPalClient, headers: Mapping[str, str], raw_body: bytes, *, webhook_id: str) -> None:
    body: dict = {}
    for field, name in TRANSMISSION_HEADERS.items():
        value = header(headers, name)
        if not value:
            raise WebhookAuthError(f"Missing {name} header.", code="webhook_signature_missing")
        body[field] = value
    body["webhook_id"] = webhook_id
    body["webhook_event"] = _load(raw_body, WebhookAuthError)
    answer = client.verify_webhook_signature(body)
    if answer.get("verification_status") != "SUCCESS":
        raise WebhookAuthError("PayPal did not verify the webhook's signature.")


def parse(raw_body: bytes) -> WebhookNotification:
    event = _load(raw_body, WebhookPayloadError)
    event_id, event_type, resource = event.get("id"), event.get("event_type"), event.get("resource")
    if not isinstance(event_id, str) or not event_id or len(event_id) > 128:
        raise WebhookPayloadError("The PayPal event lacks its id.")
    if not isinstance(event_type, str) or not isinstance(resource, dict):
        raise WebhookPayloadError("The PayPal event lacks event_type or resource.")
    created = parse_time(event.get("create_time"), error=WebhookPayloadError, field="create_time")
    if event_type == APPROVED:
        return _order_event(event_id, resource, created, event)
    if event_type in _CAPTURE_EVENTS:
        return _capture_event(event_id, event_type, resource, created, event)
    if event_type in _REFUND_EVENTS:
        return _refund_event(event_id, resource, created, event, chargeback=_REFUND_EVENTS[event_type])
    return WebhookNotification(
        event_id=event_id,
        gateway_reference="",
        payment_id=ours(resource.get("custom_id"), "pay_"),
        status=GatewayOutcome.UNKNOWN,
        amount_minor=0,
        currency="",
        occurred_at=_required_time(created),
        raw=event,
    )


def _required_time(value: datetime | None) -> datetime:
    if value is None:
        raise WebhookPayloadError("The PayPal event has no time (create_time).")
    return value


def _order_event(event_id: str, order: dict, created, event: dict) -> WebhookNotification:
    order_id, units = order.get("id"), order.get("purchase_units")
    if not isinstance(order_id, str) or not order_id or not isinstance(units, list) or not units:
        raise WebhookPayloadError("The PayPal order lacks id or purchase_units.")
    unit = units[0] if isinstance(units[0], dict) else {}
    amount, currency = money_minor(
        unit.get("amount"), error=WebhookPayloadError, field="purchase_units.0.amount"
    )
    occurred = parse_time(order.get("update_time"), error=WebhookPayloadError, field="update_time") or created
    return WebhookNotification(
        event_id=event_id,
        gateway_reference=order_id,
        payment_id=ours(unit.get("custom_id"), "pay_") or ours(unit.get("reference_id"), "pay_"),
        status=GatewayOutcome.PENDING,
        amount_minor=amount,
        currency=currency,
        occurred_at=_required_time(occurred),
        approved=str(order.get("status") or "").upper() == "APPROVED",
        raw=event,
    )


def _capture_event(
    event_id: str, event_type: str, capture: dict, created, event: dict
) -> WebhookNotification:
    if not isinstance(capture.get("id"), str) or not capture["id"]:
        raise WebhookPayloadError("The PayPal capture lacks its id.")
    amount, currency = money_minor(capture.get("amount"), error=WebhookPayloadError, field="resource.amount")
    status = CAPTURE_STATUS.get(str(capture.get("status") or "").upper(), GatewayOutcome.UNKNOWN)
    if event_type == "PAYMENT.CAPTURE.COMPLETED" and status != GatewayOutcome.SUCCEEDED:
        status = GatewayOutcome.UNKNOWN  # a "completed" event whose capture says otherwise: never a success
    related = (capture.get("supplementary_data") or {}).get("related_ids") or {}
    occurred = (
        parse_time(capture.get("update_time"), error=WebhookPayloadError, field="update_time")
        or parse_time(capture.get("create_time"), error=WebhookPayloadError, field="create_time")
        or created
    )
    return WebhookNotification(
        event_id=event_id,
        gateway_reference=str(related.get("order_id") or "") if isinstance(related, dict) else "",
        payment_id=ours(capture.get("custom_id"), "pay_"),
        status=status,
        amount_minor=amount,
        currency=currency,
        occurred_at=_required_time(occurred),
        raw=event,
    )


def capture_id_of(resource: Mapping) -> str:
    """The capture a refund / reversal belongs to: its link rel "up" (…/v2/payments/captures/{id})."""
    for link in resource.get("links") or []:
        if isinstance(link, Mapping) and link.get("rel") == "up":
            match = _CAPTURE_LINK.search(str(link.get("href") or ""))
            if match:
                return match.group(1)
    related = (resource.get("supplementary_data") or {}).get("related_ids") or {}
    return str(related.get("capture_id") or "") if isinstance(related, Mapping) else ""


def _refund_event(
    event_id: str, refund: dict, created, event: dict, *, chargeback: bool
) -> WebhookNotification:
    refund_id = refund.get("id")
    if not isinstance(refund_id, str) or not refund_id:
        raise WebhookPayloadError("The PayPal refund lacks its id.")
    amount, currency = money_minor(refund.get("amount"), error=WebhookPayloadError, field="resource.amount")
    if not capture_id_of(refund):
        raise WebhookPayloadError("The PayPal refund names no capture (links rel 'up').")
    completed = str(refund.get("status") or "COMPLETED").upper() == "COMPLETED"
    occurred = (
        parse_time(refund.get("update_time"), error=WebhookPayloadError, field="update_time")
        or parse_time(refund.get("create_time"), error=WebhookPayloadError, field="create_time")
        or created
    )
    report = None
    if completed and amount > 0:
        report = RefundReport(
            reference=refund_id,
            amount_minor=amount,
            chargeback=chargeback,
            our_refund_id=ours(refund.get("invoice_id"), "ref_"),
        )
    return WebhookNotification(
        event_id=event_id,
        gateway_reference="",  # the order: `resolve` learns it from the capture
        payment_id=ours(refund.get("custom_id"), "pay_"),
        status=GatewayOutcome.PARTIALLY_REFUNDED if report else GatewayOutcome.UNKNOWN,
        amount_minor=amount,
        currency=currency,
        occurred_at=_required_time(occurred),
        refund=report,
        raw=event,
    )


def resolve(client: PayPalClient, notification: WebhookNotification) -> WebhookNotification:
    """A refund / reversal event names its capture only: ask PayPal for the capture (its order and custom_id)."""
    if notification.gateway_reference or notification.refund is None:
        return notification
    resource = (notification.raw or {}).get("resource") or {}
    capture = client.get_capture(capture_id_of(resource))
    related = (capture.get("supplementary_data") or {}).get("related_ids") or {}
    order_id = related.get("order_id") if isinstance(related, Mapping) else None
    return replace(
        notification,
        gateway_reference=order_id if isinstance(order_id, str) else "",
        payment_id=notification.payment_id or ours(capture.get("custom_id"), "pay_"),
    )
