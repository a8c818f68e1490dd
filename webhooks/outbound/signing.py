"""Standard Webhooks signing (symmetric `v1`, HMAC-SHA256) and the endpoint secrets.

`webhook-signature: v1,<base64(HMAC-SHA256(key, f"{id}.{timestamp}.{body}"))>` over the exact body bytes sent;
the key is the base64-decoded part of `whsec_<base64>`. Several space-separated signatures during a rotation.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from paytrust import crypto

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32  # Standard Webhooks: 24–64 random bytes


def secret_generate() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_key_bytes(secret: str) -> bytes:
    raw = secret.removeprefix(SECRET_PREFIX)
    return base64.b64decode(raw)


def sign(*, secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """One `v1,<base64>` signature of `msg_id.timestamp.body`."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(*, secrets_: list[str], msg_id: str, timestamp: int, body: bytes) -> str:
    return " ".join(sign(secret=s, msg_id=msg_id, timestamp=timestamp, body=body) for s in secrets_)


def headers_for(*, secrets_: list[str], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(
            secrets_=secrets_, msg_id=msg_id, timestamp=timestamp, body=body
        ),
    }


# --- Secrets at rest (paytrust.crypto: Fernet over settings.FIELD_ENCRYPTION_KEYS) ---------------------------


def secret_encrypt(plaintext: str) -> str:
    return crypto.encrypt_str(plaintext)


def secret_decrypt(token: str) -> str:
    return crypto.decrypt_str(token)
