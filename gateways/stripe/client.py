"""Stripe's REST API over our one HTTP path (gateways/http.py: timeout, circuit breaker, metrics).

Protocol (shared/reference/gateways-global.md §1): base `https://api.stripe.com` (setting STRIPE_API_BASE), paths
`/v1/...`, the secret key as HTTP Basic user (Stripe accepts Basic as well as Bearer), POST bodies
application/x-www-form-urlencoded with nested keys `a[b][c]=v` and arrays `a[0]=v` (stripe-python _encode.py),
`Idempotency-Key` on every POST. Errors are `{"error": {type, code, decline_code, message, param}}`: a 4xx answer
other than 401/403/404/429 (which gateways/http.py classifies) becomes a `StripeApiError` carrying them, so the
adapter can act on Stripe's code (docs/adr/0050-stripe.md says why the stripe library's own HTTP client is not used).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote

import requests
from django.conf import settings

from gateways.http import GatewayHttp, loads_json
from paytrust.errors import GatewayError

DEFAULT_API_BASE = "https://api.stripe.com"


def api_base() -> str:
    return settings.STRIPE_API_BASE or DEFAULT_API_BASE


def encode_form(params: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    """Stripe's form encoding: nested dicts `a[b]=v`, lists `a[0]=v`, booleans true/false, None omitted."""
    for key, value in params.items():
        name = f"{prefix}[{key}]" if prefix else str(key)
        if value is None:
            continue
        if isinstance(value, Mapping):
            yield from encode_form(value, name)
        elif isinstance(value, list | tuple):
            for index, item in enumerate(value):
                if isinstance(item, Mapping):
                    yield from encode_form(item, f"{name}[{index}]")
                else:
                    yield f"{name}[{index}]", _scalar(item)
        else:
            yield name, _scalar(value)


def _scalar(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float):
        raise TypeError("floats are not allowed in Stripe parameters; amounts are integers")
    return str(value)


def error_message(data: Any) -> str:
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        error = data["error"]
        parts = [error.get("code"), error.get("decline_code"), error.get("message")]
        return ": ".join(str(part) for part in parts if part)
    return ""


class StripeApiError(GatewayError):
    """A 4xx answer with Stripe's error object (type card_error / invalid_request_error / idempotency_error …)."""

    code = "gateway_rejected"

    def __init__(
        self, message: str, *, http_status: int, error_type: str, error_code: str, decline_code: str
    ) -> None:
        # 409: a concurrent request with the same Idempotency-Key is still running at Stripe: retry later.
        super().__init__(message, retryable=http_status == 409)
        self.http_status = http_status
        self.error_type = error_type
        self.error_code = error_code
        self.decline_code = decline_code


def _error_hook(response, *args, **kwargs):
    status = response.status_code
    if status < 400 or status >= 500 or status in (401, 403, 404, 429):
        return response
    try:
        data = loads_json(response.content) if response.content else None
    except (ValueError, UnicodeDecodeError):
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("error"), dict):
        return response
    error = data["error"]
    raise StripeApiError(
        f"Stripe answered HTTP {status}: {error_message(data)}"[:300],
        http_status=status,
        error_type=str(error.get("type") or ""),
        error_code=str(error.get("code") or ""),
        decline_code=str(error.get("decline_code") or ""),
    )


def _object(data: Any, what: str) -> dict:
    if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not data["id"]:
        raise GatewayError(
            f"Stripe answered the {what} call with an unexpected body.",
            code="gateway_bad_response",
            retryable=True,
        )
    return data


def _page(data: Any, what: str) -> dict:
    if (
        not isinstance(data, dict)
        or data.get("object") != "list"
        or not isinstance(data.get("data"), list)
        or not all(isinstance(item, dict) for item in data["data"])
    ):
        raise GatewayError(
            f"Stripe answered the {what} list with an unexpected body.",
            code="gateway_bad_response",
            retryable=True,
        )
    return data


class StripeClient:
    def __init__(self, *, secret_key: str, account_id: str, base_url: str | None = None) -> None:
        session = requests.Session()
        session.hooks["response"].append(_error_hook)
        self.http = GatewayHttp(
            gateway="stripe",
            account_id=account_id,
            base_url=base_url or api_base(),
            auth=(secret_key, ""),
            error_message=error_message,
            session=session,
        )

    def _post(self, path: str, params: Mapping[str, Any], *, operation: str, idempotency_key: str) -> dict:
        response = self.http.request(
            "POST",
            path,
            operation=operation,
            form=list(encode_form(params)),
            headers={"Idempotency-Key": idempotency_key},
        )
        return _object(response.data, operation)

    def _get(self, path: str, *, operation: str, params: Mapping[str, Any] | None = None) -> dict:
        response = self.http.request("GET", path, operation=operation, params=list(encode_form(params or {})))
        return response.data if isinstance(response.data, dict) else _object(response.data, operation)

    # ----- Checkout Sessions --------------------------------------------------------------------------------
    def create_session(self, params: Mapping[str, Any], *, idempotency_key: str) -> dict:
        return self._post(
            "/v1/checkout/sessions", params, operation="create_payment", idempotency_key=idempotency_key
        )

    def get_session(self, session_id: str) -> dict:
        """The session with its PaymentIntent and that intent's latest charge expanded (status, refunds)."""
        data = self._get(
            f"/v1/checkout/sessions/{quote(session_id, safe='')}",
            operation="get_status",
            params={"expand": ["payment_intent", "payment_intent.latest_charge"]},
        )
        return _object(data, "get_status")

    def list_sessions(self, *, created_gte: int, starting_after: str = "", limit: int = 100) -> dict:
        params: dict[str, Any] = {"limit": limit, "created": {"gte": created_gte}}
        if starting_after:
            params["starting_after"] = starting_after
        return _page(self._get("/v1/checkout/sessions", operation="get_status", params=params), "session")

    def expire_session(self, session_id: str, *, idempotency_key: str) -> dict:
        return self._post(
            f"/v1/checkout/sessions/{quote(session_id, safe='')}/expire",
            {},
            operation="expire_payment",
            idempotency_key=idempotency_key,
        )

    # ----- PaymentIntents -----------------------------------------------------------------------------------
    def get_intent(self, intent_id: str) -> dict:
        """GET /v1/payment_intents/{id} (its metadata names our payment: set at session creation)."""
        data = self._get(f"/v1/payment_intents/{quote(intent_id, safe='')}", operation="get_status")
        return _object(data, "get_status")

    def capture_intent(self, intent_id: str, *, amount: int, idempotency_key: str) -> dict:
        return self._post(
            f"/v1/payment_intents/{quote(intent_id, safe='')}/capture",
            {"amount_to_capture": amount, "expand": ["latest_charge"]},
            operation="capture",
            idempotency_key=idempotency_key,
        )

    def cancel_intent(self, intent_id: str, *, idempotency_key: str) -> dict:
        return self._post(
            f"/v1/payment_intents/{quote(intent_id, safe='')}/cancel",
            {"expand": ["latest_charge"]},
            operation="void_authorization",
            idempotency_key=idempotency_key,
        )

    # ----- Refunds ------------------------------------------------------------------------------------------
    def create_refund(self, params: Mapping[str, Any], *, idempotency_key: str) -> dict:
        return self._post("/v1/refunds", params, operation="refund", idempotency_key=idempotency_key)

    def get_refund(self, refund_id: str) -> dict:
        return _object(
            self._get(f"/v1/refunds/{quote(refund_id, safe='')}", operation="get_refund"), "get_refund"
        )

    def list_refunds(self, *, payment_intent: str, starting_after: str = "", limit: int = 100) -> dict:
        params: dict[str, Any] = {"payment_intent": payment_intent, "limit": limit}
        if starting_after:
            params["starting_after"] = starting_after
        return _page(self._get("/v1/refunds", operation="get_refund", params=params), "refund")

    # ----- Balance transactions (settlement) ----------------------------------------------------------------
    def list_balance_transactions(
        self, *, created_gte: int, created_lt: int, starting_after: str = ""
    ) -> dict:
        params: dict[str, Any] = {
            "created": {"gte": created_gte, "lt": created_lt},
            "limit": 100,
            "expand": ["data.source", "data.source.payment_intent"],
        }
        if starting_after:
            params["starting_after"] = starting_after
        return _page(
            self._get("/v1/balance_transactions", operation="settlement_lines", params=params),
            "balance transaction",
        )
