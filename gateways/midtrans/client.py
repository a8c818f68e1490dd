"""Midtrans over HTTP: Snap (create) and Core API (status, expire, refund, cancel, capture). Basic auth: server
key + ":".

Base URLs (SPEC §6): live accounts use production, test accounts the Midtrans sandbox; MIDTRANS_API_BASE /
MIDTRANS_SNAP_BASE, when set, override both (tests point them at a local fake).

Core API answers many errors with HTTP 200 and a `status_code` inside the body ("404" = no such
transaction, "412" = not allowed in this state, …): `check_body_status` turns those into the same classified
GatewayErrors as HTTP statuses.

The refund / cancel / capture answers that the adapter must tell apart (406 duplicate refund_key, 412 not allowed
in this state, 414 invalid amount; MDOCS reference/refund-transactions-card) come either as HTTP 200 with that
`status_code` in the body or as the HTTP status itself with the same body. Both become a `MidtransRejection`
(a permanent GatewayError carrying `midtrans_code`): the body case in `check_body_status`, the HTTP case in a
response hook on the Core API session (`_reject_hook`; gateways/http.py only keeps the status in the message).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import requests
from django.conf import settings

from gateways.base import GatewayPaymentNotFound
from gateways.http import GatewayHttp, loads_json
from paytrust import money
from paytrust.errors import GatewayError

API_BASE_PRODUCTION = "https://api.midtrans.com"
API_BASE_SANDBOX = "https://api.sandbox.midtrans.com"
SNAP_BASE_PRODUCTION = "https://app.midtrans.com/snap/v1"
SNAP_BASE_SANDBOX = "https://app.sandbox.midtrans.com/snap/v1"


def api_base(*, production: bool) -> str:
    return settings.MIDTRANS_API_BASE or (API_BASE_PRODUCTION if production else API_BASE_SANDBOX)


def snap_base(*, production: bool) -> str:
    return settings.MIDTRANS_SNAP_BASE or (SNAP_BASE_PRODUCTION if production else SNAP_BASE_SANDBOX)


def _error_message(data: Any) -> str:
    if isinstance(data, dict):
        if isinstance(data.get("error_messages"), list):
            return "; ".join(str(m) for m in data["error_messages"])
        if isinstance(data.get("status_message"), str):
            return data["status_message"]
    return ""


# Midtrans status codes the adapter acts on (refund / cancel / capture); see the module docstring.
DUPLICATE_REFUND_KEY = "406"
NOT_ALLOWED = "412"
INVALID_AMOUNT = "414"
_DISTINGUISHED = frozenset({DUPLICATE_REFUND_KEY, NOT_ALLOWED, INVALID_AMOUNT})


class MidtransRejection(GatewayError):
    """Midtrans refused the request with a status code the adapter distinguishes (406, 412, 414)."""

    code = "gateway_rejected"

    def __init__(self, message: str, *, midtrans_code: str) -> None:
        super().__init__(message, retryable=False)
        self.midtrans_code = midtrans_code


def _reject_hook(response, *args, **kwargs):
    """requests response hook: an HTTP 406 / 412 / 414 answer becomes a MidtransRejection (the body's own
    `status_code` wins when it has one)."""
    if response.status_code < 400 or response.status_code >= 500:
        return response
    try:
        data = loads_json(response.content) if response.content else None
    except (ValueError, UnicodeDecodeError):
        data = None
    code = str(response.status_code)
    if isinstance(data, dict) and data.get("status_code") is not None:
        code = str(data["status_code"])
    if code in _DISTINGUISHED:
        detail = _error_message(data) or response.reason or "rejected"
        raise MidtransRejection(
            f"Midtrans answered HTTP {response.status_code}: {detail}"[:300], midtrans_code=code
        )
    return response


def check_body_status(data: dict, *, ok: tuple[str, ...] = ("200", "201", "407")) -> dict:
    """Raise for an error `status_code` in a Core API body (HTTP was 2xx)."""
    code = str(data.get("status_code") or "")
    if not code or code in ok:
        return data
    message = f"Midtrans answered status_code {code}: {_error_message(data) or 'error'}"[:300]
    if code == "404":
        raise GatewayPaymentNotFound(message)
    if code in ("401", "403"):
        raise GatewayError(message, code="gateway_authentication_failed", retryable=False)
    if code == "429":
        raise GatewayError(message, code="gateway_rate_limited", retryable=True)
    if code.startswith("5"):
        raise GatewayError(message, code="gateway_server_error", retryable=True)
    if code.startswith("2"):
        return data
    if code in _DISTINGUISHED:
        raise MidtransRejection(message, midtrans_code=code)
    raise GatewayError(message, code="gateway_rejected", retryable=False)


class MidtransClient:
    def __init__(self, *, server_key: str, account_id: str, production: bool) -> None:
        auth = (server_key, "")
        self.snap = GatewayHttp(
            gateway="midtrans",
            account_id=account_id,
            base_url=snap_base(production=production),
            auth=auth,
            error_message=_error_message,
        )
        session = requests.Session()
        session.hooks["response"].append(_reject_hook)
        self.core = GatewayHttp(
            gateway="midtrans",
            account_id=account_id,
            base_url=api_base(production=production),
            auth=auth,
            error_message=_error_message,
            session=session,
        )

    def create_snap_transaction(
        self, body: dict, *, idempotency_key: str, notification_url: str = ""
    ) -> dict:
        """POST {snap}/transactions -> {"token", "redirect_url"} (HTTP 201)."""
        headers = {"Idempotency-Key": idempotency_key[:46]}
        if notification_url:
            # Route this transaction's notifications to the PayTrust account's inbound URL.
            headers["X-Override-Notification"] = notification_url
        response = self.snap.request(
            "POST", "/transactions", operation="create_payment", json_body=body, headers=headers
        )
        return _object(response.data)

    def get_status(self, order_id: str) -> dict:
        response = self.core.request("GET", f"/v2/{quote(order_id, safe='')}/status", operation="get_status")
        return check_body_status(_object(response.data))

    def expire(self, order_id: str) -> dict:
        response = self.core.request(
            "POST", f"/v2/{quote(order_id, safe='')}/expire", operation="expire_payment"
        )
        return check_body_status(_object(response.data))

    def refund(self, order_id: str, body: dict, *, idempotency_key: str) -> dict:
        response = self.core.request(
            "POST",
            f"/v2/{quote(order_id, safe='')}/refund",
            operation="refund",
            json_body=body,
            headers={"Idempotency-Key": idempotency_key[:46]},
        )
        return check_body_status(_object(response.data))

    def cancel(self, order_id: str, *, idempotency_key: str) -> dict:
        """POST /v2/{order_id}/cancel: a transaction not settled yet (pending, authorize, capture) -> cancel."""
        response = self.core.request(
            "POST",
            f"/v2/{quote(order_id, safe='')}/cancel",
            operation="cancel",
            headers={"Idempotency-Key": idempotency_key[:46]},
        )
        return check_body_status(_object(response.data))

    def capture(self, *, transaction_id: str, gross_amount: int, idempotency_key: str) -> dict:
        """POST /v2/capture {"transaction_id", "gross_amount"}: collect an `authorize` card transaction."""
        response = self.core.request(
            "POST",
            "/v2/capture",
            operation="capture",
            json_body={"transaction_id": transaction_id, "gross_amount": gross_amount},
            headers={"Idempotency-Key": idempotency_key[:46]},
        )
        return check_body_status(_object(response.data))


def bad_response(message: str) -> GatewayError:
    return GatewayError(message, code="gateway_bad_response", retryable=True)


def gross_amount_int(minor: int, currency: str) -> int:
    """Minor units -> the integer amount Midtrans takes (`gross_amount`, refund `amount`; IDR has no decimals)."""
    major = money.to_major(minor, currency)
    if major != major.to_integral_value():
        raise GatewayError("Midtrans needs whole-rupiah amounts.", code="gateway_rejected", retryable=False)
    return int(major)


def _object(data: Any) -> dict:
    if not isinstance(data, dict):
        raise GatewayError(
            "Midtrans answered with an unexpected body.", code="gateway_bad_response", retryable=True
        )
    return data
