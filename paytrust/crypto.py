"""Secrets at rest: symmetric encryption of small secrets (gateway credentials, …) with Fernet.

Keys come from `settings.FIELD_ENCRYPTION_KEYS` (comma-separated urlsafe-base64 Fernet keys). They are used as a
`MultiFernet`: the FIRST key encrypts, every key decrypts. Rotation (docs/adr/0003-secrets-at-rest.md):

1. generate a key (`python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"`),
2. prepend it to FIELD_ENCRYPTION_KEYS on every instance and restart,
3. run `manage.py rotate_encryption_keys` (re-encrypts every registered field with the first key),
4. remove the old key from the list.

Apps that store encrypted columns register them with `register_encrypted_field` (in their AppConfig.ready) so
the rotation command finds them. Ciphertexts are Fernet tokens (AES-128-CBC + HMAC-SHA256, authenticated).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class DecryptionError(Exception):
    """The ciphertext is corrupt or none of the configured keys can decrypt it (a key was removed too early)."""


@dataclass(frozen=True)
class EncryptedField:
    model_label: str  # "app_label.ModelName"
    field_name: str


_registry: list[EncryptedField] = []
_cache_lock = threading.Lock()
_cache: tuple[tuple[str, ...], MultiFernet] | None = None


def register_encrypted_field(model_label: str, field_name: str) -> None:
    """Declare a TextField holding `encrypt_*` output, so `rotate_encryption_keys` re-encrypts it."""
    entry = EncryptedField(model_label, field_name)
    if entry not in _registry:
        _registry.append(entry)


def encrypted_fields() -> list[EncryptedField]:
    return list(_registry)


def _keys() -> tuple[str, ...]:
    raw = settings.FIELD_ENCRYPTION_KEYS
    if isinstance(raw, str):
        raw = raw.split(",")
    keys = tuple(k.strip() for k in raw if k and k.strip())
    if not keys:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS is empty: set at least one Fernet key to store secrets (see .env.example)."
        )
    return keys


def _fernet() -> MultiFernet:
    global _cache
    keys = _keys()
    cached = _cache
    if cached is not None and cached[0] == keys:
        return cached[1]
    with _cache_lock:
        try:
            multi = MultiFernet([Fernet(k.encode()) for k in keys])
        except (ValueError, TypeError) as exc:
            raise ImproperlyConfigured(
                "FIELD_ENCRYPTION_KEYS contains a value that is not a Fernet key "
                "(32 url-safe base64-encoded bytes)."
            ) from exc
        _cache = (keys, multi)
        return multi


def generate_key() -> str:
    return Fernet.generate_key().decode()


def encrypt_str(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt_str(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except (InvalidToken, ValueError, TypeError) as exc:
        raise DecryptionError("cannot decrypt: unknown key or corrupt ciphertext") from exc


def encrypt_json(data: dict) -> str:
    """Encrypt a JSON-serialisable dict (e.g. gateway credentials)."""
    return encrypt_str(json.dumps(data, sort_keys=True, separators=(",", ":")))


def decrypt_json(token: str) -> dict:
    if not token:
        return {}
    value = json.loads(decrypt_str(token))
    if not isinstance(value, dict):
        raise DecryptionError("decrypted value is not a JSON object")
    return value


def rotate_token(token: str) -> str:
    """Re-encrypt a token under the current first key (keeps its original timestamp). Empty stays empty."""
    if not token:
        return token
    try:
        return _fernet().rotate(token.encode()).decode()
    except (InvalidToken, ValueError, TypeError) as exc:
        raise DecryptionError("cannot rotate: unknown key or corrupt ciphertext") from exc


def is_current(token: str) -> bool:
    """True when `token` decrypts with the first (primary) key, i.e. needs no rotation."""
    if not token:
        return True
    primary = Fernet(_keys()[0].encode())
    try:
        primary.decrypt(token.encode())
    except (InvalidToken, ValueError, TypeError):
        return False
    return True
