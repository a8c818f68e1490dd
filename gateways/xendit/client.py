"""Xendit Invoice and Refund APIs over HTTP (https://api.xendit.co): Basic auth with the secret key as user, empty
password.

Refund API errors carry an `error_code` the adapter acts on (409 DUPLICATE_ERROR, 400 MAXIMUM_REFUND_AMOUNT_REACHED,
REFUND_NOT_SUPPORTED, …; docs/adr/0048-midtrans-xendit-refunds-and-capture.md). gateways/http.py keeps only the
HTTP status in its message, so the refund calls go through their own session whose response hook
(`_refund_error_hook`) turns a 4xx answer with an `error_code` (other than 401 / 404 / 429, which http.py
classifies) into a `XenditApiError` carrying `error_code` and `http_status`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import requests
from django.conf import settings

from gateways.http import GatewayHttp, loads_json
from paytrust.errors import GatewayError

DEFAULT_API_BASE = "https://api.xendit.co"


def api_base() -> str:
    return settings.XENDIT_API_BASE or DEFAULT_API_BASE


def _error_message(data: Any) -> str:
    # Xendit errors: {"error_code": "INVALID_API_KEY", "message": "..."}
    if isinstance(data, dict):
        code, message = data.get("error_code"), data.get("message")
        return ": ".join(str(part) for part in (code, message) if part)
    return ""


class XenditApiError(GatewayError):
    """A 4xx Refund API answer with Xendit's `error_code` (permanent unless the adapter decides otherwise)."""

    code = "gateway_rejected"

    def __init__(self, message: str, *, error_code: str, http_status: int) -> None:
        super().__init__(message, retryable=False)
        self.error_code = error_code
        self.http_status = http_status


def _refund_error_hook(response, *args, **kwargs):
    status = response.status_code
    if status < 400 or status >= 500 or status in (401, 404, 429):
        return response
    try:
        data = loads_json(response.content) if response.content else None
    except (ValueError, UnicodeDecodeError):
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("error_code"), str):
        return response
    raise XenditApiError(
        f"Xendit answered HTTP {status}: {_error_message(data)}"[:300],
        error_code=data["error_code"],
        http_status=status,
    )


class XenditClient:
    def __init__(self, *, secret_key: str, account_id: str, base_url: str | None = None) -> None:
        self.http = GatewayHttp(
            gateway="xendit",
            account_id=account_id,
            base_url=base_url or api_base(),
            auth=(secret_key, ""),
            error_message=_error_message,
        )
        session = requests.Session()
        session.hooks["response"].append(_refund_error_hook)
        self.refunds_http = GatewayHttp(
            gateway="xendit",
            account_id=account_id,
            base_url=base_url or api_base(),
            auth=(secret_key, ""),
            error_message=_error_message,
            session=session,
        )

    def create_invoice(self, body: dict, *, idempotency_key: str) -> dict:
        """POST /v2/invoices. The legacy-documented X-IDEMPOTENCY-KEY header makes a retry return the same one."""
        response = self.http.request(
            "POST",
            "/v2/invoices",
            operation="create_payment",
            json_body=body,
            headers={"X-IDEMPOTENCY-KEY": idempotency_key},
        )
        return _object(response.data)

    def get_invoice(self, invoice_id: str) -> dict:
        response = self.http.request(
            "GET", f"/v2/invoices/{quote(invoice_id, safe='')}", operation="get_status"
        )
        return _object(response.data)

    def find_invoices(self, *, external_id: str) -> list[dict]:
        """GET /v2/invoices?external_id=…: Xendit answers with a JSON array (empty when none)."""
        response = self.http.request(
            "GET", "/v2/invoices", operation="get_status", params={"external_id": external_id}
        )
        data = response.data
        if isinstance(data, dict) and isinstance(data.get("data"), list):  # tolerate a paginated envelope
            data = data["data"]
        if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
            raise GatewayError(
                "Xendit answered the invoice search with an unexpected body.",
                code="gateway_bad_response",
                retryable=True,
            )
        return data

    def expire_invoice(self, invoice_id: str) -> dict:
        """POST /invoices/{id}/expire! (no /v2, literal "!")."""
        response = self.http.request(
            "POST", f"/invoices/{quote(invoice_id, safe='')}/expire!", operation="expire_payment"
        )
        return _object(response.data)

    # ----- Refund API (XPY docs/RefundApi.md) -------------------------------------------------------------------
    def create_refund(self, body: dict, *, idempotency_key: str) -> dict:
        """POST /refunds with header `idempotency-key`."""
        response = self.refunds_http.request(
            "POST",
            "/refunds",
            operation="refund",
            json_body=body,
            headers={"idempotency-key": idempotency_key},
        )
        return _object(response.data)

    def get_refund(self, refund_id: str) -> dict:
        """GET /refunds/{refund_id}; 404 -> GatewayPaymentNotFound (http.py), turned into not-found by the adapter."""
        response = self.refunds_http.request(
            "GET", f"/refunds/{quote(refund_id, safe='')}", operation="get_refund"
        )
        return _object(response.data)

    def list_refunds(self, *, invoice_id: str, after_id: str = "", limit: int = 100) -> dict:
        """GET /refunds?invoice_id=…&limit=…[&after_id=…] -> {"data": [Refund], "has_more": bool}. The API filters by
        payment_request_id / invoice_id / payment_method_type / channel_code, not by reference_id."""
        params = {"invoice_id": invoice_id, "limit": str(limit)}
        if after_id:
            params["after_id"] = after_id
        response = self.refunds_http.request("GET", "/refunds", operation="get_refund", params=params)
        data = _object(response.data)
        if not isinstance(data.get("data"), list) or not all(isinstance(item, dict) for item in data["data"]):
            raise GatewayError(
                "Xendit answered the refund list with an unexpected body.",
                code="gateway_bad_response",
                retryable=True,
            )
        return data

    # ----- Transaction API (xendit-python docs/TransactionApi.md; docs.xendit.co/apidocs/list-transactions) -----
    def list_transactions(
        self, *, created_gte: str, created_lte: str, after_id: str = "", limit: int = 50
    ) -> dict:
        """GET /transactions?created[gte]=…&created[lte]=…&limit=…[&after_id=…] -> {"data": [Transaction],
        "has_more": bool, "links": [...]}: every type and status (the adapter keeps the settled ones)."""
        params = {"created[gte]": created_gte, "created[lte]": created_lte, "limit": str(limit)}
        if after_id:
            params["after_id"] = after_id
        response = self.http.request("GET", "/transactions", operation="settlement_lines", params=params)
        data = _object(response.data)
        if not isinstance(data.get("data"), list) or not all(isinstance(item, dict) for item in data["data"]):
            raise GatewayError(
                "Xendit answered the transaction list with an unexpected body.",
                code="gateway_bad_response",
                retryable=True,
            )
        return data


def _object(data: Any) -> dict:
    if not isinstance(data, dict):
        raise GatewayError(
            "Xendit answered with an unexpected body.", code="gateway_bad_response", retryable=True
        )
    return data
