"""Xendit Invoice API over HTTP (https://api.xendit.co): Basic auth with the secret key as user, empty password."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from django.conf import settings

from gateways.http import GatewayHttp
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


class XenditClient:
    def __init__(self, *, secret_key: str, account_id: str, base_url: str | None = None) -> None:
        self.http = GatewayHttp(
            gateway="xendit",
            account_id=account_id,
            base_url=base_url or api_base(),
            auth=(secret_key, ""),
            error_message=_error_message,
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


def _object(data: Any) -> dict:
    if not isinstance(data, dict):
        raise GatewayError(
            "Xendit answered with an unexpected body.", code="gateway_bad_response", retryable=True
        )
    return data
