"""Redaction of secrets from what we log about gateway traffic (gateway calls, inbound webhook headers), and the
masking of customer contact data (e-mail, phone) for back-office staff without the permission to see it.

Keys are matched case-insensitively, with `-` and `_` treated alike, at any nesting depth. The gateways' own
signatures (Midtrans `signature_key`, the sandbox's HMAC header) are not secrets (they are outputs of a keyed hash,
useless without the key) but are redacted anyway: nothing is lost that the raw body does not keep.
"""

from __future__ import annotations

import re
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


# ---- customer contact data, for staff who may not see it in full -----------------------------------------------

MASK = "•••"
_CONTACT_KEY_PARTS = ("email", "phone", "mobile")
_EMAIL_RE = re.compile(r"([A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]*@([A-Za-z0-9.\-]+\.[A-Za-z]{2,})")


def mask_email(value: str) -> str:
    """ "budi.santoso@example.com" -> "b•••@example.com" (the domain says which company, not who)."""
    local, sep, domain = str(value).partition("@")
    if not sep:
        return mask_phone(value) if value else value
    return f"{local[:1]}{MASK}@{domain}"


def mask_phone(value: str) -> str:
    """ "+6281234567890" -> "+62•••890": the country code and the last three digits, to match a caller's."""
    text = str(value)
    if len(text) <= 6:
        return MASK if text else text
    return f"{text[:3]}{MASK}{text[-3:]}"


def _is_contact_key(key: object) -> bool:
    return isinstance(key, str) and any(part in _norm(key) for part in _CONTACT_KEY_PARTS)


def mask_contacts(value: Any) -> Any:
    """A copy of `value` with customer e-mail addresses and phone numbers masked: the values of keys naming an
    e-mail or phone (at any depth of JSON-like data), and e-mail addresses anywhere in text."""
    if isinstance(value, Mapping):
        return {
            k: (_mask_scalar(v) if _is_contact_key(k) and isinstance(v, str) else mask_contacts(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [mask_contacts(item) for item in value]
    if isinstance(value, str):
        return _EMAIL_RE.sub(lambda m: f"{m.group(1)}{MASK}@{m.group(2)}", value)
    return value


def _mask_scalar(value: str) -> str:
    return mask_email(value) if "@" in value else mask_phone(value)
