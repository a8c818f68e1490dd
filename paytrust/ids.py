"""Prefixed, opaque, unguessable public ids (`inv_…`, `pay_…`), in creation order.

24 base62 characters: 8 for the creation time (milliseconds since 1970, fixed width, so ids of one type sort by
creation time under the byte order of the C collation and, within a millisecond, at random), then 16 drawn with the OS
CSPRNG (≈ 95 bits: unguessable). The time prefix is for the database: with fully random keys every insert lands
on a random leaf page of each primary-key index, and once a table's indexes outgrow PostgreSQL's buffers every
insert reads and dirties pages from all over them (the invoice bench did 22 % fewer creations per second over
5 minutes); time-ordered keys are appended at the right edge, where the pages stay cached.
The id reveals when the object was created, which its `created_at` says anyway. See docs/adr/0041-time-ordered-ids.md.
"""

import os
import time
from functools import partial

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_LENGTH = 24
_TIME_LENGTH = 8  # 62**8 ms ≈ 6,900 years from 1970
_RANDOM_LENGTH = _LENGTH - _TIME_LENGTH  # 16 base62 chars ≈ 95 bits of randomness

PREFIXES = {
    "mer",
    "key",
    "inv",
    "pay",
    "gwa",
    "evt",
    "whk",
    "ref",
    "whe",
    "whd",
    "ins",
    "ckt",
    "aud",
    "txn",
    "rcn",
    "mbt",
}


def _random_chars(count: int) -> str:
    """`count` characters drawn uniformly from the alphabet with the OS CSPRNG (what `secrets` uses).

    One urandom call instead of one per character (`secrets.choice` 24 times was ~30 µs per id, on every
    invoice and event): bytes below 248 = 4 × 62 map uniformly onto the 62 symbols, the rest are discarded."""
    chars: list[str] = []
    while len(chars) < count:
        chars.extend(_ALPHABET[b % 62] for b in os.urandom(count + 8) if b < 248)
    return "".join(chars[:count])


def _time_chars(ms: int) -> str:
    chars = []
    for _ in range(_TIME_LENGTH):
        ms, digit = divmod(ms, 62)
        chars.append(_ALPHABET[digit])
    return "".join(reversed(chars))


def now_ms() -> int:
    """The time written into a new id: milliseconds since 1970 (also the SQL twin's, `paytrust_new_id`)."""
    return time.time_ns() // 1_000_000


def new_id(prefix: str) -> str:
    if prefix not in PREFIXES:
        raise ValueError(f"unknown id prefix {prefix!r}")
    return f"{prefix}_" + _time_chars(now_ms()) + _random_chars(_RANDOM_LENGTH)


def id_time_ms(value: str) -> int:
    """The creation time (ms since 1970) written into an id by `new_id`."""
    ms = 0
    for char in value.partition("_")[2][:_TIME_LENGTH]:
        ms = ms * 62 + _ALPHABET.index(char)
    return ms


def id_default(prefix: str):
    """A model field default producing ids with the prefix (serialisable in migrations)."""
    return partial(new_id, prefix)


ID_MAX_LENGTH = 32
