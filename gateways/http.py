"""The one HTTP path to payment gateways: timeout, circuit breaker, metrics, exact JSON, error classification,
and a trace span per call (paytrust.tracing.gateway_span_start: gateway, operation, URL without query, status,
outcome, duration; never headers, credentials or bodies).

Adapters (xendit/client.py, midtrans/client.py) call `GatewayHttp.request`; they never use `requests` directly.

Error classification (all are paytrust.errors.GatewayError; `code` is stable):
| what happened                          | exception / code                         | retryable | counts for breaker |
| timeout (connect or read)              | GatewayTimeout  gateway_timeout (504)    | yes       | yes |
| connection refused / reset             | gateway_connection_error                 | yes       | yes |
| HTTP 5xx                               | gateway_server_error                     | yes       | yes |
| HTTP 429                               | gateway_rate_limited                     | yes       | yes |
| 2xx but not a JSON object/array        | gateway_bad_response                     | yes       | yes |
| HTTP 401/403                           | gateway_authentication_failed            | no        | no  |
| HTTP 404                               | GatewayPaymentNotFound                   | no        | no  |
| other 4xx                              | gateway_rejected                         | no        | no  |
| breaker open                           | gateway_unavailable (nothing sent)       | yes       | -   |
The gateway's own error message is kept in the exception message (it never contains our secrets).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import requests
from django.conf import settings

from gateways.base import GatewayPaymentNotFound
from gateways.breaker import breaker_for
from gateways.metrics import observe_call
from paytrust import tracing
from paytrust.errors import GatewayError, GatewayTimeout

logger = logging.getLogger("paytrust.gateways")

USER_AGENT = "PayTrust/1.0"
_MAX_MESSAGE = 300


def dumps_json(value: Any) -> str:
    """JSON text where Decimal becomes a JSON NUMBER written exactly (never via float): Decimal("16.99") -> 16.99."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("non-finite Decimal in gateway JSON")
        return format(value, "f")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        raise TypeError("floats are not allowed in gateway payloads; use Decimal")
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Mapping):
        items = []
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError("JSON object keys must be strings")
            items.append(f"{json.dumps(key, ensure_ascii=False)}:{dumps_json(item)}")
        return "{" + ",".join(items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(dumps_json(item) for item in value) + "]"
    raise TypeError(f"cannot serialise {type(value).__name__} to gateway JSON")


def loads_json(text: str | bytes) -> Any:
    """Parse gateway JSON: numbers with a fraction become Decimal, never float; NaN/Infinity refused."""

    def _reject(name: str):
        raise ValueError(f"{name} is not valid JSON")

    return json.loads(text, parse_float=Decimal, parse_constant=_reject)


@dataclass(frozen=True)
class GatewayResponse:
    status: int
    data: Any  # parsed JSON (dict or list)
    headers: Mapping[str, str]


def _default_message(data: Any) -> str:
    if isinstance(data, dict):
        for key in ("message", "status_message", "error", "error_message"):
            if isinstance(data.get(key), str):
                return data[key]
        if isinstance(data.get("error_messages"), list):
            return "; ".join(str(m) for m in data["error_messages"])
    return ""


class GatewayHttp:
    def __init__(
        self,
        *,
        gateway: str,
        account_id: str,
        base_url: str,
        auth: tuple[str, str],
        timeout: float | None = None,
        error_message: Callable[[Any], str] = _default_message,
        session: requests.Session | None = None,
    ) -> None:
        self.gateway = gateway
        self.account_id = account_id
        self.base_url = base_url.rstrip("/")
        self._auth = auth
        self.timeout = float(timeout if timeout is not None else settings.GATEWAY_TIMEOUT_SECONDS)
        self._error_message = error_message
        self._session = session or requests.Session()
        self.breaker = breaker_for(gateway, account_id)

    def __repr__(self) -> str:  # never shows the auth tuple
        return f"<GatewayHttp {self.gateway} {self.base_url}>"

    def request(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
        form: Sequence[tuple[str, str]] | None = None,
    ) -> GatewayResponse:
        """Send one request; returns the parsed 2xx answer or raises a classified GatewayError. `json_body` is sent
        as exact JSON; `form` (already flattened string pairs, e.g. Stripe's `a[b]=c`) as
        application/x-www-form-urlencoded."""
        url = f"{self.base_url}{path}"
        send_headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        body = None
        if json_body is not None:
            body = dumps_json(json_body).encode()
            send_headers["Content-Type"] = "application/json"
        elif form is not None:
            body = urlencode(list(form)).encode()
            send_headers["Content-Type"] = "application/x-www-form-urlencoded"
        send_headers.update(headers or {})
        started = time.perf_counter()
        outcome = "ok"
        span = tracing.gateway_span_start(gateway=self.gateway, operation=operation, method=method, url=url)
        try:
            return self.breaker.call(
                lambda: self._send(method, url, body=body, headers=send_headers, params=params)
            )
        except GatewayError as exc:
            outcome = exc.code
            raise
        finally:
            tracing.gateway_span_end(span, outcome=outcome)
            observe_call(
                gateway=self.gateway,
                operation=operation,
                outcome=outcome,
                seconds=time.perf_counter() - started,
            )

    def _send(self, method, url, *, body, headers, params) -> GatewayResponse:
        name = self.gateway.capitalize()
        try:
            response = self._session.request(
                method,
                url,
                data=body,
                headers=headers,
                params=params,
                auth=self._auth,
                timeout=(self.timeout, self.timeout),
                allow_redirects=False,
            )
        except requests.Timeout:
            raise GatewayTimeout(f"{name} did not answer within {self.timeout:g} s.")
        except requests.RequestException as exc:
            logger.warning(
                "gateway connection error", extra={"gateway": self.gateway, "error": type(exc).__name__}
            )
            raise GatewayError(
                f"Could not reach {name} ({type(exc).__name__}).",
                code="gateway_connection_error",
                retryable=True,
            )
        try:
            data = loads_json(response.content) if response.content else None
        except (ValueError, UnicodeDecodeError):
            data = None
        status = response.status_code
        tracing.set_current_attribute("http.response.status_code", status)
        if 200 <= status < 300:
            if not isinstance(data, dict | list):
                raise GatewayError(
                    f"{name} answered HTTP {status} with a body that is not JSON.",
                    code="gateway_bad_response",
                    retryable=True,
                )
            return GatewayResponse(status=status, data=data, headers=dict(response.headers))
        message = (self._error_message(data) or response.reason or "")[:_MAX_MESSAGE]
        detail = f"{name} answered HTTP {status}" + (f": {message}" if message else ".")
        if status in (401, 403):
            raise GatewayError(detail, code="gateway_authentication_failed", retryable=False)
        if status == 404:
            raise GatewayPaymentNotFound(detail)
        if status == 429:
            raise GatewayError(detail, code="gateway_rate_limited", retryable=True)
        if status >= 500:
            raise GatewayError(detail, code="gateway_server_error", retryable=True)
        raise GatewayError(detail, code="gateway_rejected", retryable=False)
