"""Prefixed, opaque, unguessable public ids (`inv_…`, `pay_…`)."""

import os
from functools import partial

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_LENGTH = 24  # 24 base62 chars ≈ 142 bits of randomness

PREFIXES = {"mer", "key", "inv", "pay", "gwa", "evt", "whk", "ref", "whe", "whd", "ins", "ckt", "aud"}


def _random_chars(count: int) -> str:
    """`count` characters drawn uniformly from the alphabet with the OS CSPRNG (what `secrets` uses).

    One urandom call instead of one per character (`secrets.choice` 24 times was ~30 µs per id, on every
    invoice and event): bytes below 248 = 4 × 62 map uniformly onto the 62 symbols, the rest are discarded."""
    chars: list[str] = []
    while len(chars) < count:
        chars.extend(_ALPHABET[b % 62] for b in os.urandom(count + 8) if b < 248)
    return "".join(chars[:count])


def new_id(prefix: str) -> str:
    if prefix not in PREFIXES:
        raise ValueError(f"unknown id prefix {prefix!r}")
    return f"{prefix}_" + _random_chars(_LENGTH)


def id_default(prefix: str):
    """A model field default producing ids with the prefix (serialisable in migrations)."""
    return partial(new_id, prefix)


ID_MAX_LENGTH = 32
