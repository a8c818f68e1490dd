"""Redaction of secrets from what we log about gateway traffic (gateway calls, inbound webhook headers).

Keys are matched case-insensitively, with `-` and `_` treated alike, at any nesting depth. The gateways' own
signatures (Midtrans `signature_key`, the sandbox's HMAC header) are not secrets (they are outputs of a keyed hash,
useless without the key) but are redacted anyway: nothing is lost that the raw body does not keep.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

REDACTED = "[redacted]"

SECRET_KEYS = frozenset(
    {
        "authorization",
        "proxy_authorization",
        "cookie",
        "set_cookie",
        "x_api_key",
        "x_callback_token",
        "callback_token",
        "secret_key",
        "server_key",
        "client_key",
        "signing_secret",
        "password",
        "card_number",
        "cvv",
        "cvn",
        "card_cvn",
        "token_id",
    }
)


def _norm(key: str) -> str:
    return key.strip().lower().replace("-", "_")


def is_secret_key(key: object) -> bool:
    return isinstance(key, str) and _norm(key) in SECRET_KEYS


def redact(value: Any) -> Any:
    """A copy of `value` (JSON-like) with the values of secret keys replaced by "[redacted]"."""
    if isinstance(value, Mapping):
        return {k: (REDACTED if is_secret_key(k) else redact(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    return value


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Request headers as a plain dict, lower-cased names, secrets redacted."""
    return {str(k).lower(): (REDACTED if is_secret_key(k) else str(v)) for k, v in headers.items()}
