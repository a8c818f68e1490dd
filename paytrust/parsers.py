"""JSON parsing for the API: numbers with a fraction become Decimal, never float; NaN/Infinity are refused; strings
PostgreSQL cannot store (U+0000, lone UTF-16 surrogates) are refused with a 400 naming the field."""

import codecs
import functools
import json
import re
from decimal import Decimal

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from paytrust.errors import ValidationError


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


# JSON may escape them (`"\\u0000"`, a lone `"\\ud800"`), but PostgreSQL text and jsonb cannot store U+0000, and a
# lone surrogate is not a character at all (it cannot be encoded as UTF-8).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# A UTF-8 body can only hold them through an escape: JSON refuses a raw control character in a string, and strict
# UTF-8 decoding refuses an encoded lone surrogate. Such a body is walked only if it has such an escape (or an
# escaped backslash before "u0000"-like text, a harmless false positive). A body in another charset (utf-7,
# unicode_escape, ... - Django accepts any codec Content-Type names) is always walked: it can decode to a lone
# surrogate without any JSON escape.
_ESCAPED_UNSTORABLE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")
_UNSTORABLE_MESSAGE = "must not contain U+0000 or a lone UTF-16 surrogate (\\ud800-\\udfff)"


def _reject_unstorable(value, path: str) -> None:
    """Refuse unstorable strings anywhere in the body with a 400 naming the field, instead of letting the database
    raise (a 500)."""
    if isinstance(value, str):
        if _UNSTORABLE.search(value):
            raise ValidationError(
                f"Strings {_UNSTORABLE_MESSAGE}.", code="invalid_characters", param=path or None
            )
    elif isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            if _UNSTORABLE.search(key):
                raise ValidationError(
                    f"Keys {_UNSTORABLE_MESSAGE}.", code="invalid_characters", param=path or None
                )
            _reject_unstorable(item, child)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _reject_unstorable(item, f"{path}.{index}" if path else str(index))


@functools.cache
def _is_utf8(encoding: str) -> bool:
    try:
        return codecs.lookup(encoding).name == "utf-8"
    except LookupError:
        return False


class DecimalJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = codecs.getreader(encoding)(stream).read()
            data = json.loads(text, parse_float=Decimal, parse_constant=_reject_constant)
        except RecursionError:
            raise ParseError("the JSON document is nested too deeply")
        except (ValueError, UnicodeDecodeError) as exc:
            raise ParseError(str(exc))
        if _is_utf8(encoding) and not _ESCAPED_UNSTORABLE.search(text):
            return data  # nothing to refuse: the walk below is skipped for (nearly) every body
        try:
            _reject_unstorable(data, "")
        except RecursionError:
            raise ParseError("the JSON document is nested too deeply")
        return data
