"""Text for ISO 20022 messages: transliteration to printable ASCII, cutting to the schema limits, phone numbers.

Decision (docs/adr/0009-iso20022-messages.md): free text in our messages is restricted to printable ASCII, the
Unicode "Basic Latin" block U+0020-U+007E. The ISO base schemas allow any Unicode, but many banks' and clearing
systems' import paths still go through the SWIFT/Latin character sets, so a message that only contains ASCII is
accepted everywhere. Letters are transliterated, not dropped: an explicit table for letters Unicode does not
decompose (đ, ß, Ø, Ł, Æ, Þ, ...) and typographic punctuation, then NFKD with the combining marks removed
("Đặng Thị Hồng Nhung" -> "Dang Thi Hong Nhung", "Müller-Lüdenscheidt" -> "Muller-Ludenscheidt").
What has no Latin form (CJK, emoji, ...) becomes a word break; runs of spaces collapse. Cutting happens after
that, on ASCII, so it can never split a surrogate pair, a combining sequence or a multi-byte character.
"""

from __future__ import annotations

import unicodedata

# Letters that NFKD leaves alone (no canonical decomposition), and punctuation with an obvious ASCII stand-in.
_TABLE = str.maketrans(
    {
        "đ": "d",
        "Đ": "D",
        "ð": "d",
        "Ð": "D",
        "ß": "ss",
        "ẞ": "SS",
        "ø": "o",
        "Ø": "O",
        "ł": "l",
        "Ł": "L",
        "æ": "ae",
        "Æ": "AE",
        "œ": "oe",
        "Œ": "OE",
        "þ": "th",
        "Þ": "TH",
        "ı": "i",
        "ħ": "h",
        "Ħ": "H",
        "ŧ": "t",
        "Ŧ": "T",
        "ŋ": "n",
        "Ŋ": "N",
        "ĸ": "k",
        "ƒ": "f",
        "Ƒ": "F",
        "ə": "e",
        "Ə": "E",
        "ɨ": "i",
        "Ɨ": "I",
        "‘": "'",
        "’": "'",
        "‚": "'",
        "‛": "'",
        "′": "'",
        "ʼ": "'",
        "ʻ": "'",
        "“": '"',
        "”": '"',
        "„": '"',
        "‟": '"',
        "″": '"',
        "«": '"',
        "»": '"',
        "‐": "-",
        "‑": "-",
        "‒": "-",
        "–": "-",
        "—": "-",
        "―": "-",
        "−": "-",
        "€": "EUR",
    }
)

_PRINTABLE_ASCII = frozenset(chr(code) for code in range(0x21, 0x7F))  # without the space, handled apart


def to_ascii(text: str) -> str:
    """Transliterate to printable ASCII; unrepresentable characters and whitespace become single spaces."""
    out: list[str] = []
    pending_space = False
    for char in unicodedata.normalize("NFKD", text.translate(_TABLE)):
        if char in _PRINTABLE_ASCII:
            if pending_space and out:
                out.append(" ")
            pending_space = False
            out.append(char)
        elif unicodedata.combining(char) or unicodedata.category(char) == "Cf":
            # Accents, zero-width joiners, soft hyphens, variation selectors: no width, nothing to keep.
            continue
        else:
            # Spaces, controls, lone surrogates, CJK, emoji, symbols: a word break at most.
            pending_space = True
    return "".join(out)


def clean_text(value: str | None, max_length: int, *, fallback: str | None = None) -> str | None:
    """ASCII text of at most `max_length` characters, or `fallback` when nothing representable is left.

    For a required element pass a non-empty `fallback`, so the element is never empty (minLength 1).
    """
    text = to_ascii(value or "")
    if len(text) > max_length:
        text = text[:max_length].rstrip()
    if not text:
        if fallback is not None and not 1 <= len(fallback) <= max_length:
            raise ValueError(f"fallback {fallback!r} does not fit {max_length} characters")
        return fallback
    return text


# ITU-T E.164 country calling codes are prefix-free: 1 and 7 have one digit, these have two, all others three.
_TWO_DIGIT_CALLING_CODES = frozenset(
    "20 27 30 31 32 33 34 36 39 40 41 43 44 45 46 47 48 49 51 52 53 54 55 56 57 58 "
    "60 61 62 63 64 65 66 81 82 84 86 90 91 92 93 94 95 98".split()
)
_PHONE_SEPARATORS = frozenset(" -.()/")
_DIGITS = frozenset("0123456789")


def format_phone(value: str | None) -> str | None:
    """An international number ("+62 812-3456-7890", "0060123456789") in ISO 20022 form ("+62-81234567890").

    The schema's PhoneNumber is `\\+[0-9]{1,3}-[0-9()+\\-]{1,30}`. A number without an international prefix
    (its country is unknown) or with letters in it gives None: the element is left out rather than guessed.
    """
    if not value:
        return None
    text = value.strip()
    if text.startswith("00"):
        text = "+" + text[2:]
    if not text.startswith("+"):
        return None
    body = text[1:]
    if not body or any(char not in _DIGITS and char not in _PHONE_SEPARATORS for char in body):
        return None
    digits = "".join(char for char in body if char in _DIGITS)
    if not 4 <= len(digits) <= 15 or digits[0] == "0":
        return None
    if digits[0] in "17":
        code_length = 1
    elif digits[:2] in _TWO_DIGIT_CALLING_CODES:
        code_length = 2
    else:
        code_length = 3
    return f"+{digits[:code_length]}-{digits[code_length:]}"
