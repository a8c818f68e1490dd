"""Midtrans HTTP notifications: signature verification and mapping to a WebhookNotification.

Verification: signature_key == SHA512(order_id + status_code + gross_amount + server_key) in hex, with the values
exactly as received (gross_amount "10000.00", not a re-formatted number), compared in constant time. Midtrans
sends no other authentication (no custom headers).

Status mapping (transaction_status, case-insensitive; fraud_status may be absent, e.g. Indomaret):
  capture / settlement + fraud accept or absent -> succeeded;  + challenge -> pending;  + deny -> failed
  pending -> pending;  authorize -> authorized (a card hold, capture_method "manual");  deny, cancel, failure ->
  failed;  expire -> expired
  refund, chargeback -> refunded;  partial_refund, partial_chargeback -> partially_refunded;  else unknown
Refund statuses carry a RefundReport (`refund_report`): Midtrans' cumulative refunded amount (`refund_amount`, else
the sum of the `refunds` list, else - for a full `refund`/`chargeback` - the gross amount) and whether it is a
chargeback. The payment applies that total as the truth (a replay never refunds twice).
A card payment notifies `capture` and later `settlement`: both map to succeeded and are distinct events, so the
consumer must treat an already-succeeded payment as a no-op.

Signed status_code vs transaction_status: the signature covers order_id, status_code and gross_amount ONLY, so
`transaction_status`, `fraud_status`, `transaction_id` and the times could be rewritten on a genuine notification.
`parse_notification` therefore requires `transaction_status` (+ fraud_status) to agree with the signed
`status_code` (a mismatch is a 400 `webhook_status_mismatch`, nothing stored):
  settlement / capture (fraud accept or absent), refund, partial_refund, chargeback, partial_chargeback -> "200"
  pending -> "201";  capture/settlement + fraud challenge -> "201";  authorize -> "200" or "201"
  deny, failure, capture/settlement + fraud deny -> "202";  cancel -> "202" (notification) or "200" (API answer)
  expire -> "407";  any other transaction_status -> unknown, never applied, not checked
Sources: MDOCS reference/code-2xx (200 = success incl. authorize/capture/settlement/cancel; 201 = pending /
challenge; 202 = denied), reference/code-4xx (407 = expired transaction), reference/cancel-transaction-card (cancel
notification "202", cancel response "200"), reference/refund-transactions-card + recorded samples (refund /
partial_refund "200"). "200" is still shared by several statuses (a signed cancel/refund could be relabelled as
settlement), so the notification is NOT authoritative: `MidtransGateway.notifications_are_authoritative` is False
and the inbound pipeline applies `get_status` (the official clients' `notification()` does the same).

Event id (Midtrans sends none): transaction_id:transaction_status:(settlement_time or transaction_time), plus the
cumulative refund_amount for refund statuses (two partial refunds share every other field). These fields are
unsigned: they only deduplicate deliveries, each of which merely triggers a status query.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from gateways.base import (
    GatewayOutcome,
    RefundReport,
    WebhookAuthError,
    WebhookNotification,
    WebhookPayloadError,
    derive_event_id,
    gateway_amount_to_minor,
    secure_equals,
)
from gateways.http import loads_json

# Midtrans timestamps are "YYYY-MM-DD HH:MM:SS" in Western Indonesia Time (GMT+7, no daylight saving).
WIB = timezone(timedelta(hours=7), "WIB")

_SUCCESS_STATES = {"capture", "settlement"}
_SIMPLE = {
    "pending": GatewayOutcome.PENDING,
    "authorize": GatewayOutcome.AUTHORIZED,
    "deny": GatewayOutcome.FAILED,
    "cancel": GatewayOutcome.FAILED,
    "failure": GatewayOutcome.FAILED,
    "expire": GatewayOutcome.EXPIRED,
    "refund": GatewayOutcome.REFUNDED,
    "chargeback": GatewayOutcome.REFUNDED,
    "partial_refund": GatewayOutcome.PARTIALLY_REFUNDED,
    "partial_chargeback": GatewayOutcome.PARTIALLY_REFUNDED,
}
_REFUND_STATES = {"refund", "chargeback", "partial_refund", "partial_chargeback"}
_FULL_REFUND_STATES = {"refund", "chargeback"}
_CHARGEBACK_STATES = {"chargeback", "partial_chargeback"}


def map_status(transaction_status: object, fraud_status: object = None) -> GatewayOutcome:
    status = str(transaction_status or "").strip().lower()
    fraud = str(fraud_status or "").strip().lower()
    if status in _SUCCESS_STATES:
        if fraud in ("", "accept"):
            return GatewayOutcome.SUCCEEDED
        if fraud == "challenge":
            return GatewayOutcome.PENDING
        if fraud == "deny":
            return GatewayOutcome.FAILED
        return GatewayOutcome.UNKNOWN
    return _SIMPLE.get(status, GatewayOutcome.UNKNOWN)


# The signed status_code each transaction_status comes with (see the module docstring for the sources).
_SIGNED_CODES: dict[str, frozenset[str]] = {
    "settlement": frozenset({"200"}),
    "capture": frozenset({"200"}),
    "refund": frozenset({"200"}),
    "partial_refund": frozenset({"200"}),
    "chargeback": frozenset({"200"}),
    "partial_chargeback": frozenset({"200"}),
    "pending": frozenset({"201"}),
    "authorize": frozenset({"200", "201"}),
    "deny": frozenset({"202"}),
    "failure": frozenset({"202"}),
    "cancel": frozenset({"200", "202"}),
    "expire": frozenset({"407"}),
}
_FRAUD_CODES = {"challenge": frozenset({"201"}), "deny": frozenset({"202"})}


def signed_codes_for(transaction_status: object, fraud_status: object = None) -> frozenset[str] | None:
    """The status_code values Midtrans signs with this transaction_status (+ fraud_status); None = unknown status
    (mapped to UNKNOWN, which is never applied)."""
    status = str(transaction_status or "").strip().lower()
    if status in _SUCCESS_STATES:
        fraud = str(fraud_status or "").strip().lower()
        if fraud in _FRAUD_CODES:
            return _FRAUD_CODES[fraud]
    return _SIGNED_CODES.get(status)


def check_status_code(data: Mapping[str, object]) -> None:
    """Refuse a notification whose (unsigned) transaction_status/fraud_status contradicts its signed status_code."""
    allowed = signed_codes_for(data.get("transaction_status"), data.get("fraud_status"))
    if allowed is None:
        return
    code = (field_text(data.get("status_code")) or "").strip()
    if code not in allowed:
        raise WebhookPayloadError(
            f"The Midtrans notification's transaction_status {str(data.get('transaction_status'))[:40]!r} "
            f"does not match its signed status_code {code[:10]!r}.",
            code="webhook_status_mismatch",
            param="status_code",
        )


def signature_for(*, order_id: str, status_code: str, gross_amount: str, server_key: str) -> str:
    return hashlib.sha512(f"{order_id}{status_code}{gross_amount}{server_key}".encode()).hexdigest()


def parse_time(value: object, *, error: type[Exception], field: str) -> datetime | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise error(f"{field} must be a string.")
    try:
        parsed = datetime.strptime(value.strip(), "%Y-%m-%d %H:%M:%S")
    except ValueError:
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise error(f"{field} is not a Midtrans timestamp.")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=WIB)
    try:
        return parsed.astimezone(UTC)
    except (OverflowError, ValueError):  # "0001-01-01 00:00:00" WIB is before year 1 in UTC
        raise error(f"{field} is out of range.")


def _load(raw_body: bytes) -> dict:
    try:
        data = loads_json(raw_body)
    except (ValueError, UnicodeDecodeError):
        raise WebhookPayloadError("The Midtrans notification body is not valid JSON.")
    if not isinstance(data, dict):
        raise WebhookPayloadError("The Midtrans notification body must be a JSON object.")
    return data


def field_text(value: object) -> str | None:
    """A field as Midtrans sent it: strings as-is; a number (parsed to int/Decimal) back to its exact text."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, Decimal):
        return str(value)
    return None


def verify_notification(headers: Mapping[str, str], raw_body: bytes, *, server_key: str) -> None:
    data = _load(raw_body)
    presented = data.get("signature_key")
    parts = [field_text(data.get(key)) for key in ("order_id", "status_code", "gross_amount")]
    if not isinstance(presented, str) or not presented or any(part is None for part in parts):
        raise WebhookAuthError(
            "The Midtrans notification lacks signature_key/order_id/status_code/gross_amount.",
            code="webhook_signature_missing",
        )
    order_id, status_code, gross_amount = parts
    expected = signature_for(
        order_id=order_id, status_code=status_code, gross_amount=gross_amount, server_key=server_key
    )
    if not secure_equals(expected, presented.strip().lower()):
        raise WebhookAuthError("The Midtrans signature_key does not match this gateway account.")


def refund_report(
    data: Mapping[str, object], *, currency: str, gross_minor: int, error: type[Exception]
) -> RefundReport | None:
    """The RefundReport of a notification or status answer in a refund/chargeback status (None otherwise).

    The cumulative refunded amount: `refund_amount` when present; else the sum of the `refunds` list
    (`refund_amount` each); else, for a full `refund` / `chargeback`, the gross amount; else unknown (None: a
    partial refund without an amount cannot be applied)."""
    status = str(data.get("transaction_status") or "").strip().lower()
    if status not in _REFUND_STATES:
        return None
    total: int | None = None
    if data.get("refund_amount") is not None:
        total = gateway_amount_to_minor(
            field_text(data.get("refund_amount")), currency, param="refund_amount", error=error
        )
    elif isinstance(data.get("refunds"), list) and data["refunds"]:
        total = 0
        for item in data["refunds"]:
            value = item.get("refund_amount") if isinstance(item, Mapping) else None
            total += gateway_amount_to_minor(
                field_text(value), currency, param="refunds.refund_amount", error=error
            )
    if status in _FULL_REFUND_STATES:
        # A full refund or chargeback takes back the whole payment, whatever the refunds list sums to (a chargeback
        # after a partial refund may list only the earlier refund).
        total = max(total or 0, gross_minor)
    return RefundReport(total_minor=total, chargeback=status in _CHARGEBACK_STATES)


def parse_notification(raw_body: bytes) -> WebhookNotification:
    data = _load(raw_body)
    for key in ("order_id", "transaction_status"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise WebhookPayloadError(f"The Midtrans notification lacks {key!r}.")
    gross = field_text(data.get("gross_amount"))
    if gross is None:
        raise WebhookPayloadError("The Midtrans notification lacks 'gross_amount'.")
    check_status_code(data)
    transaction_status = data["transaction_status"].strip().lower()
    status = map_status(transaction_status, data.get("fraud_status"))
    currency = str(data.get("currency") or "IDR").upper()
    amount_minor = gateway_amount_to_minor(gross, currency, param="gross_amount", error=WebhookPayloadError)
    refund = refund_report(data, currency=currency, gross_minor=amount_minor, error=WebhookPayloadError)
    refunded = None
    if refund is not None and refund.total_minor is not None:
        # In the event id: each new cumulative total is a new event (also when only the refunds list says it).
        refunded = refund.total_minor
    settlement_time = data.get("settlement_time")
    transaction_time = data.get("transaction_time")
    occurred_at = parse_time(
        settlement_time, error=WebhookPayloadError, field="settlement_time"
    ) or parse_time(transaction_time, error=WebhookPayloadError, field="transaction_time")
    if occurred_at is None:
        raise WebhookPayloadError(
            "The Midtrans notification has neither settlement_time nor transaction_time."
        )
    transaction_id = data.get("transaction_id")
    if not isinstance(transaction_id, str) or not transaction_id:
        raise WebhookPayloadError("The Midtrans notification lacks 'transaction_id'.")
    parts = [transaction_id, transaction_status, str(settlement_time or transaction_time)]
    if refunded is not None:
        parts.append(str(refunded))
    return WebhookNotification(
        event_id=derive_event_id(*parts),
        gateway_reference=data["order_id"],
        payment_id=data["order_id"],
        status=status,
        amount_minor=amount_minor,
        currency=currency,
        occurred_at=occurred_at,
        refunded_amount_minor=refunded,
        refund=refund,
        raw=data,
    )
