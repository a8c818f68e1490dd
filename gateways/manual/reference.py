"""Transfer references the payer quotes on a manual bank transfer: "PT-7K3M-9QX2".

Seven random Crockford base32 characters (no I, L, O, U: nothing to misread) and one check character computed with
the Luhn mod N algorithm over the same alphabet, so a single mistyped character or two swapped neighbours are
caught before anything is looked up. 32^7 ≈ 3.4e10 references; a unique index decides collisions (the caller
retries). Parsing is forgiving the way Crockford's decoding is: case, spaces and dashes are ignored, O reads as 0
and I/L as 1, the "PT" prefix is optional.
"""

from __future__ import annotations

import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
PREFIX = "PT"
BODY_LENGTH = 7
_INDEX = {char: i for i, char in enumerate(ALPHABET)}
_READS_AS = str.maketrans({"O": "0", "I": "1", "L": "1"})


class InvalidReference(ValueError):
    pass


def check_character(body: str) -> str:
    """Luhn mod N (N = 32) check character of `body` (characters of ALPHABET)."""
    factor, total = 2, 0
    for char in reversed(body):
        addend = factor * _INDEX[char]
        factor = 1 if factor == 2 else 2
        total += addend // 32 + addend % 32
    return ALPHABET[(32 - total % 32) % 32]


def _format(code: str) -> str:
    return f"{PREFIX}-{code[:4]}-{code[4:]}"


def generate() -> str:
    body = "".join(secrets.choice(ALPHABET) for _ in range(BODY_LENGTH))
    return _format(body + check_character(body))


def normalize(text: object) -> str:
    """The canonical "PT-XXXX-XXXX" of what someone typed; InvalidReference when it cannot be one."""
    if not isinstance(text, str):
        raise InvalidReference("A transfer reference is a text like PT-7K3M-9QX2.")
    code = "".join(text.upper().split()).replace("-", "")
    if code.startswith(PREFIX) and len(code) == BODY_LENGTH + 1 + len(PREFIX):
        code = code[len(PREFIX) :]
    code = code.translate(_READS_AS)
    if len(code) != BODY_LENGTH + 1 or any(char not in _INDEX for char in code):
        raise InvalidReference(f"{text!r} is not a transfer reference (they look like PT-7K3M-9QX2).")
    if check_character(code[:-1]) != code[-1]:
        raise InvalidReference(f"{text!r} is not a valid transfer reference: check it for a typing mistake.")
    return _format(code)
