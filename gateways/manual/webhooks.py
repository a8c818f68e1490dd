"""The manual gateway's notifications: a recorded bank transfer, signed by PayTrust itself.

A recording (webhooks/inbound/manual_transfers.py) builds this body and hands it, signed with the account's
generated signing secret, to the same receive/process pipeline as every gateway's HTTP delivery, so dedup, replay
and the audit of attempts are the pipeline's. The public URL /v1/webhooks/manual/{account} accepts only bodies
signed with that secret, which never leaves PayTrust.

    {"type": "bank_transfer.received", "transfer_id": "mbt_…", "reference": "PT-7K3M-9QX2",
     "payment_id": "pay_…", "bank_reference": "BCA-2026113000123", "amount": "150000", "currency": "IDR",
     "received_on": "2026-11-30", "occurred_at": "2026-11-30T00:00:00Z", "recorded_by": "user:alice"}
Header: X-Manual-Signature: t=<unix seconds>,v1=<hex(HMAC_SHA256(secret, "<t>." + raw body))>; 5-minute tolerance.
Event id: "bank_transfer:<bank reference>" (the same bank transfer recorded twice is one event).
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
    derive_event_id,
    gateway_amount_to_minor,
    header,
)

SIGNATURE_HEADER = "X-Manual-Signature"
TOLERANCE_SECONDS = 300
EVENT_TYPE = "bank_transfer.received"
_FIELDS = ("transfer_id", "reference", "payment_id", "bank_reference", "amount", "currency", "occurred_at")


def _signature(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes) -> dict[str, str]:
    timestamp = int(time.time())
    return {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: f"t={timestamp},v1={_signature(secret, timestamp, body)}",
    }


def verify(headers: Mapping[str, str], raw_body: bytes, *, secret: str) -> None:
    value = header(headers, SIGNATURE_HEADER) or ""
    parts = dict(item.strip().partition("=")[::2] for item in value.split(",") if "=" in item)
    try:
        timestamp = int(parts.get("t", ""))
    except ValueError:
        raise WebhookAuthError(
            f"Missing or malformed {SIGNATURE_HEADER} header.", code="webhook_signature_missing"
        )
    if abs(time.time() - timestamp) > TOLERANCE_SECONDS:
        raise WebhookAuthError("The notification timestamp is outside the 5-minute tolerance.")
    if not secret or not hmac.compare_digest(_signature(secret, timestamp, raw_body), parts.get("v1", "")):
        raise WebhookAuthError("The notification signature does not match.")


def event_id(bank_reference: str) -> str:
    return derive_event_id("bank_transfer", bank_reference)


def build_body(
    *,
    transfer_id: str,
    reference: str,
    payment_id: str,
    bank_reference: str,
    amount: str,
    currency: str,
    received_on: str,
    occurred_at: datetime,
    recorded_by: str,
) -> bytes:
    payload = {
        "type": EVENT_TYPE,
        "transfer_id": transfer_id,
        "reference": reference,
        "payment_id": payment_id,
        "bank_reference": bank_reference,
        "amount": amount,
        "currency": currency,
        "received_on": received_on,
        "occurred_at": occurred_at.isoformat().replace("+00:00", "Z"),
        "recorded_by": recorded_by,
    }
    return json.dumps(payload, separators=(",", ":")).encode()


def parse(raw_body: bytes) -> WebhookNotification:
    try:
        data = json.loads(raw_body)
    except (ValueError, UnicodeDecodeError):
        raise WebhookPayloadError("The notification body is not valid JSON.")
    if not isinstance(data, dict) or data.get("type") != EVENT_TYPE:
        raise WebhookPayloadError(f"The notification must be a {EVENT_TYPE} object.")
    missing = [key for key in _FIELDS if not isinstance(data.get(key), str) or not data.get(key)]
    if missing:
        raise WebhookPayloadError(f"The notification lacks {missing[0]}.")
    try:
        occurred_at = datetime.fromisoformat(data["occurred_at"].replace("Z", "+00:00"))
    except ValueError:
        raise WebhookPayloadError("occurred_at is not an ISO 8601 time.")
    if occurred_at.tzinfo is None:
        raise WebhookPayloadError("occurred_at must carry a time zone.")
    amount_minor = gateway_amount_to_minor(
        data["amount"], data["currency"], param="amount", error=WebhookPayloadError
    )
    return WebhookNotification(
        event_id=event_id(data["bank_reference"]),
        gateway_reference=data["transfer_id"],
        payment_id=data["payment_id"],
        status=GatewayOutcome.SUCCEEDED,
        amount_minor=amount_minor,
        currency=data["currency"],
        occurred_at=occurred_at,
        raw=data,
    )
