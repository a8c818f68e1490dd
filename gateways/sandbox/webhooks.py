"""The sandbox gateway's webhook format and signature (decision record: docs/adr/0011-sandbox-gateway.md).

Body (UTF-8 JSON, amounts are decimal strings in major units like the PayTrust API):
    {"id": "sbxevt_<32 hex>", "type": "checkout.completed",
     "action": "pay|pay_partial|overpay|fail|expire|authorize",
     "checkout_id": "ckt_…", "payment_id": "pay_…", "invoice_id": "inv_…" | "", "installment": 2 | null,
     "status": "succeeded|failed|expired|authorized", "amount": "150000", "requested_amount": "150000",
     "currency": "IDR", "occurred_at": "2026-11-22T15:18:41Z"}
`amount` is what the customer paid ("0" unless status is succeeded), or the amount held when status is
`authorized` (a manual-capture checkout: docs/adr/0047); `requested_amount` what the session asked. Captures and
voids are answered by the sandbox's API calls themselves and send no webhook.

Signature header (Stripe-style, hex HMAC-SHA256 keyed with the account's sandbox signing secret):
    X-Sandbox-Signature: t=<unix seconds>,v1=<hex(HMAC_SHA256(secret, "<t>." + raw body))>
Several v1= entries are accepted (secret rotation). The timestamp must be within 5 minutes of now.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from datetime import datetime

from gateways.base import (
    GatewayOutcome,
    WebhookAuthError,
    WebhookNotification,
    WebhookPayloadError,
    gateway_amount_to_minor,
    header,
)
from paytrust import money

SIGNATURE_HEADER = "X-Sandbox-Signature"
TOLERANCE_SECONDS = 300
EVENT_TYPE = "checkout.completed"
_STATUSES = {
    "succeeded": GatewayOutcome.SUCCEEDED,
    "failed": GatewayOutcome.FAILED,
    "expired": GatewayOutcome.EXPIRED,
    "pending": GatewayOutcome.PENDING,
    "authorized": GatewayOutcome.AUTHORIZED,
}


def compute_signature(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
    """Headers for a sandbox webhook delivery."""
    ts = int(time.time()) if timestamp is None else timestamp
    return {
        "Content-Type": "application/json",
        "User-Agent": "PayTrust-Sandbox/1.0",
        SIGNATURE_HEADER: f"t={ts},v1={compute_signature(secret, ts, body)}",
    }


def verify(headers: Mapping[str, str], raw_body: bytes, *, secret: str, now: float | None = None) -> None:
    value = header(headers, SIGNATURE_HEADER)
    if not value:
        raise WebhookAuthError(f"Missing {SIGNATURE_HEADER} header.", code="webhook_signature_missing")
    timestamp: int | None = None
    signatures: list[str] = []
    for item in value.split(","):
        key, _, part = item.strip().partition("=")
        if key == "t":
            try:
                timestamp = int(part)
            except ValueError:
                timestamp = None
        elif key == "v1" and part:
            signatures.append(part.strip().lower())
    if timestamp is None or not signatures:
        raise WebhookAuthError(f"Malformed {SIGNATURE_HEADER} header.")
    current = time.time() if now is None else now
    if abs(current - timestamp) > TOLERANCE_SECONDS:
        raise WebhookAuthError("The sandbox webhook timestamp is outside the 5-minute tolerance.")
    if not secret:
        raise WebhookAuthError("This sandbox account has no signing secret.")
    expected = compute_signature(secret, timestamp, raw_body).encode()
    # Check every candidate (no early exit) so timing does not depend on which one matched.
    matched = False
    for candidate in signatures:
        matched |= hmac.compare_digest(expected, candidate.encode())
    if not matched:
        raise WebhookAuthError("The sandbox webhook signature does not match.")


def build_body(
    *,
    event_id: str,
    action: str,
    checkout_id: str,
    payment_id: str,
    invoice_id: str,
    installment: int | None,
    status: str,
    amount_minor: int,
    requested_minor: int,
    currency: str,
    occurred_at: datetime,
) -> bytes:
    payload = {
        "id": event_id,
        "type": EVENT_TYPE,
        "action": action,
        "checkout_id": checkout_id,
        "payment_id": payment_id,
        "invoice_id": invoice_id,
        "installment": installment,
        "status": status,
        "amount": money.format_amount(amount_minor, currency),
        "requested_amount": money.format_amount(requested_minor, currency),
        "currency": currency,
        "occurred_at": occurred_at.isoformat().replace("+00:00", "Z"),
    }
    return json.dumps(payload, separators=(",", ":")).encode()


def parse(raw_body: bytes) -> WebhookNotification:
    try:
        data = json.loads(raw_body)
    except (ValueError, UnicodeDecodeError):
        raise WebhookPayloadError("The sandbox webhook body is not valid JSON.")
    if not isinstance(data, dict):
        raise WebhookPayloadError("The sandbox webhook body must be a JSON object.")
    for key in (
        "id",
        "checkout_id",
        "payment_id",
        "status",
        "amount",
        "requested_amount",
        "currency",
        "occurred_at",
    ):
        if not isinstance(data.get(key), str) or not data[key]:
            raise WebhookPayloadError(f"The sandbox webhook lacks {key!r}.", param=key)
    if data["status"] not in _STATUSES:
        raise WebhookPayloadError(f"Unknown sandbox status {data['status']!r}.", param="status")
    status = _STATUSES[data["status"]]
    currency = data["currency"]
    held_or_paid = (GatewayOutcome.SUCCEEDED, GatewayOutcome.AUTHORIZED)
    amount_key = "amount" if status in held_or_paid else "requested_amount"
    amount_minor = gateway_amount_to_minor(
        data[amount_key], currency, param=amount_key, error=WebhookPayloadError
    )
    try:
        occurred_at = datetime.fromisoformat(data["occurred_at"])
    except ValueError:
        raise WebhookPayloadError("occurred_at is not an ISO 8601 timestamp.", param="occurred_at")
    if occurred_at.tzinfo is None:
        raise WebhookPayloadError("occurred_at has no time zone.", param="occurred_at")
    return WebhookNotification(
        event_id=data["id"],
        gateway_reference=data["checkout_id"],
        payment_id=data["payment_id"],
        status=status,
        amount_minor=amount_minor,
        currency=currency,
        occurred_at=occurred_at,
        raw=data,
    )
