"""PayPal REST APIs over HTTP (Orders v2, Payments v2, Notifications v1), OAuth2 client credentials.

- Base URL: `PAYPAL_API_BASE` when set (test and live accounts alike), else the sandbox
  (https://api-m.sandbox.paypal.com) for test-mode accounts and https://api-m.paypal.com for live ones.
- Token: POST /v1/oauth2/token, Basic auth client_id:client_secret, form `grant_type=client_credentials` ->
  `{"access_token", "token_type": "Bearer", "expires_in"}` (shared/gateway_samples/paypal_oauth_token.json).
  Cached in Django's cache under a key made of the account id and a SHA-256 of the credentials (a credential
  rotation never reuses the old token), until TOKEN_EXPIRY_MARGIN before `expires_in`. The token is never logged
  and never reaches a GatewayCall record. A 401 on an API call drops the cached token and retries once with a new
  one (PayPal may revoke tokens early).
- Every call goes through gateways/http.py (timeout, breaker, metrics, error classification). PayPal's error body
  is `{name, message, debug_id, details[{issue, description}]}` (shared/gateway_samples/paypal_error.json); the
  message we keep is "<details[0].issue>: <message> (debug_id …)".
"""

from __future__ import annotations

import hashlib
import time
from typing import Any
from urllib.parse import quote, urlencode

import requests
from django.conf import settings
from django.core.cache import cache

from gateways.breaker import breaker_for
from gateways.http import GatewayHttp, GatewayResponse
from gateways.metrics import observe_call
from paytrust.errors import GatewayError

SANDBOX_API_BASE = "https://api-m.sandbox.paypal.com"
LIVE_API_BASE = "https://api-m.paypal.com"
# Renew the token this long before PayPal says it expires (clock skew, a request in flight).
TOKEN_EXPIRY_MARGIN = 300
_CACHE_PREFIX = "paypal:token:"


def api_base(*, live: bool) -> str:
    return settings.PAYPAL_API_BASE or (LIVE_API_BASE if live else SANDBOX_API_BASE)


def error_message(data: Any) -> str:
    if not isinstance(data, dict):
        return ""
    if isinstance(data.get("error_description"), str):  # the OAuth endpoint's shape
        return f"{data.get('error')}: {data['error_description']}"
    parts = []
    details = data.get("details")
    if isinstance(details, list) and details and isinstance(details[0], dict) and details[0].get("issue"):
        parts.append(str(details[0]["issue"]))
    if isinstance(data.get("message"), str):
        parts.append(data["message"])
    elif isinstance(data.get("name"), str):
        parts.append(data["name"])
    text = ": ".join(parts)
    if isinstance(data.get("debug_id"), str):
        text += f" (debug_id {data['debug_id']})"
    return text


def error_issue(exc: GatewayError) -> str:
    """The PayPal `details[0].issue` kept in a GatewayError's message ("" when none)."""
    _, _, rest = exc.message.partition("HTTP ")
    _, _, rest = rest.partition(": ")
    issue = rest.split(":", 1)[0].strip()
    return issue if issue.isupper() or "_" in issue else ""


class _TokenRejected(GatewayError):
    """HTTP 401 on an API call: the bearer token is no longer valid (not the breaker's business)."""

    code = "gateway_authentication_failed"


def _reject_401(response, *args, **kwargs):
    if response.status_code == 401:
        raise _TokenRejected("PayPal answered HTTP 401: the access token was rejected.", retryable=False)
    return response


class PayPalClient:
    def __init__(
        self, *, client_id: str, client_secret: str, account_id: str, live: bool, base_url: str | None = None
    ) -> None:
        base = base_url or api_base(live=live)
        self._client_id = client_id
        self._client_secret = client_secret
        digest = hashlib.sha256(f"{client_id}\0{client_secret}\0{base}".encode()).hexdigest()[:32]
        self._cache_key = f"{_CACHE_PREFIX}{account_id}:{digest}"
        session = requests.Session()
        session.hooks["response"].append(_reject_401)

        def http(auth: tuple[str, str] | None, http_session: requests.Session | None = None) -> GatewayHttp:
            return GatewayHttp(
                gateway="paypal",
                account_id=account_id,
                base_url=base,
                auth=auth,
                error_message=error_message,
                session=http_session,
            )

        self.token_http = http((client_id, client_secret))
        self.http = http(None, session)
        # Webhook verification is triggered by whoever POSTs to the public webhook URL: its failures (PayPal's 429 /
        # 5xx under a flood of forged deliveries) trip a breaker of their own, never the one that guards the
        # merchant's payments, captures and refunds.
        self.verify_http = http(None, session)
        self.verify_http.breaker = breaker_for("paypal", f"{account_id}:webhook-verification")

    def __repr__(self) -> str:  # never shows credentials or the token
        return f"<PayPalClient {self.http.base_url}>"

    # ----- OAuth2 --------------------------------------------------------------------------------------------
    def _token(self) -> str:
        token = cache.get(self._cache_key)
        if token:
            return token
        return self._fetch_token()

    def _fetch_token(self) -> str:
        http = self.token_http
        started, outcome = time.perf_counter(), "ok"
        try:
            response: GatewayResponse = http.breaker.call(
                lambda: http._send(
                    "POST",
                    f"{http.base_url}/v1/oauth2/token",
                    body=urlencode({"grant_type": "client_credentials"}).encode(),
                    headers={
                        "Accept": "application/json",
                        "Content-Type": "application/x-www-form-urlencoded",
                    },
                    params=None,
                )
            )
        except GatewayError as exc:
            outcome = exc.code
            raise
        finally:
            observe_call(
                gateway="paypal",
                operation="oauth_token",
                outcome=outcome,
                seconds=time.perf_counter() - started,
            )
        data = response.data
        token = data.get("access_token") if isinstance(data, dict) else None
        expires_in = data.get("expires_in") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token or not isinstance(expires_in, int) or expires_in <= 0:
            raise GatewayError(
                "PayPal's token answer lacks access_token or expires_in.",
                code="gateway_bad_response",
                retryable=True,
            )
        lifetime = expires_in - TOKEN_EXPIRY_MARGIN
        if lifetime > 0:
            cache.set(self._cache_key, token, timeout=lifetime)
        return token

    def forget_token(self) -> None:
        cache.delete(self._cache_key)

    # ----- one API call ----------------------------------------------------------------------------------------
    def call(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        json_body: Any = None,
        request_id: str | None = None,
        prefer_representation: bool = True,
        http: GatewayHttp | None = None,
    ) -> dict:
        """One authenticated call; a 401 (token revoked early) drops the cached token and retries once."""
        http = http or self.http
        headers = {}
        if request_id:
            headers["PayPal-Request-Id"] = request_id
        if prefer_representation:
            headers["Prefer"] = "return=representation"
        for attempt in (1, 2):
            headers["Authorization"] = f"Bearer {self._token()}"
            try:
                response = http.request(
                    method, path, operation=operation, json_body=json_body, headers=headers
                )
            except _TokenRejected:
                self.forget_token()
                if attempt == 2:
                    raise GatewayError(
                        "PayPal rejected a fresh access token (HTTP 401).",
                        code="gateway_authentication_failed",
                        retryable=False,
                    )
                continue
            return _object(response.data)
        raise AssertionError("unreachable")

    # ----- Orders v2 -------------------------------------------------------------------------------------------
    def create_order(self, body: dict, *, request_id: str) -> dict:
        return self.call(
            "POST", "/v2/checkout/orders", operation="create_payment", json_body=body, request_id=request_id
        )

    def get_order(self, order_id: str) -> dict:
        return self.call("GET", f"/v2/checkout/orders/{_q(order_id)}", operation="get_status")

    def capture_order(self, order_id: str, *, request_id: str) -> dict:
        return self.call(
            "POST",
            f"/v2/checkout/orders/{_q(order_id)}/capture",
            operation="complete_payment",
            json_body={},
            request_id=request_id,
        )

    def authorize_order(self, order_id: str, *, request_id: str) -> dict:
        return self.call(
            "POST",
            f"/v2/checkout/orders/{_q(order_id)}/authorize",
            operation="complete_payment",
            json_body={},
            request_id=request_id,
        )

    # ----- Payments v2 -----------------------------------------------------------------------------------------
    def capture_authorization(self, authorization_id: str, body: dict, *, request_id: str) -> dict:
        return self.call(
            "POST",
            f"/v2/payments/authorizations/{_q(authorization_id)}/capture",
            operation="capture",
            json_body=body,
            request_id=request_id,
        )

    def void_authorization(self, authorization_id: str, *, request_id: str) -> dict | None:
        """POST …/void answers 204 (no body) with return=minimal, 200 + the authorization with representation."""
        return self.call(
            "POST",
            f"/v2/payments/authorizations/{_q(authorization_id)}/void",
            operation="void_authorization",
            request_id=request_id,
        )

    def get_authorization(self, authorization_id: str) -> dict:
        return self.call("GET", f"/v2/payments/authorizations/{_q(authorization_id)}", operation="get_status")

    def get_capture(self, capture_id: str) -> dict:
        return self.call("GET", f"/v2/payments/captures/{_q(capture_id)}", operation="get_status")

    def refund_capture(self, capture_id: str, body: dict, *, request_id: str) -> dict:
        return self.call(
            "POST",
            f"/v2/payments/captures/{_q(capture_id)}/refund",
            operation="refund",
            json_body=body,
            request_id=request_id,
        )

    def get_refund(self, refund_id: str) -> dict:
        return self.call("GET", f"/v2/payments/refunds/{_q(refund_id)}", operation="get_refund")

    # ----- Notifications v1 ------------------------------------------------------------------------------------
    def verify_webhook_signature(self, body: dict) -> dict:
        return self.call(
            "POST",
            "/v1/notifications/verify-webhook-signature",
            operation="verify_webhook",
            json_body=body,
            prefer_representation=False,
            http=self.verify_http,
        )


def _q(value: str) -> str:
    return quote(value, safe="")


def _object(data: Any) -> dict:
    if not isinstance(data, dict):
        raise GatewayError(
            "PayPal answered with an unexpected body.", code="gateway_bad_response", retryable=True
        )
    return data
