"""JSON parsing for the API: numbers with a fraction become Decimal, never float; NaN/Infinity are refused."""

import codecs
import json
from decimal import Decimal

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from paytrust.errors import ValidationError


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _reject_nul(value, path: str) -> None:
    """PostgreSQL text and jsonb cannot store U+0000: refuse it anywhere in the body with a 400 naming the field,
    instead of letting the database raise (a 500)."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValidationError(
                "Strings must not contain the NUL character (\\u0000).",
                code="invalid_characters",
                param=path or None,
            )
    elif isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            if "\x00" in key:
                raise ValidationError(
                    "Keys must not contain the NUL character (\\u0000).",
                    code="invalid_characters",
                    param=path or None,
                )
            _reject_nul(item, child)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _reject_nul(item, f"{path}.{index}" if path else str(index))


class DecimalJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        try:
            decoded = codecs.getreader(encoding)(stream)
            data = json.load(decoded, parse_float=Decimal, parse_constant=_reject_constant)
        except RecursionError:
            raise ParseError("the JSON document is nested too deeply")
        except (ValueError, UnicodeDecodeError) as exc:
            raise ParseError(str(exc))
        try:
            _reject_nul(data, "")
        except RecursionError:
            raise ParseError("the JSON document is nested too deeply")
        return data
