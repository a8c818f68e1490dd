"""Prefixed, opaque, unguessable public ids (`inv_…`, `pay_…`)."""

import secrets
from functools import partial

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_LENGTH = 24  # 24 base62 chars ≈ 142 bits of randomness

PREFIXES = {"mer", "key", "inv", "pay", "gwa", "evt", "whk", "ref", "whe", "whd", "ins", "ckt", "aud"}


def new_id(prefix: str) -> str:
    if prefix not in PREFIXES:
        raise ValueError(f"unknown id prefix {prefix!r}")
    return f"{prefix}_" + "".join(secrets.choice(_ALPHABET) for _ in range(_LENGTH))


def id_default(prefix: str):
    """A model field default producing ids with the prefix (serialisable in migrations)."""
    return partial(new_id, prefix)


ID_MAX_LENGTH = 32
