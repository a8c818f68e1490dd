"""paytrust.jsonenc and the API's renderer: orjson where it encodes the same JSON value as the standard library,
the standard library (same output or error as ever) everywhere else."""

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.serializers.json import DjangoJSONEncoder
from hypothesis import given, settings
from hypothesis import strategies as st
from rest_framework.renderers import JSONRenderer as DrfJSONRenderer

from paytrust import jsonenc
from paytrust.renderers import JSONRenderer

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)  # beyond 64 bits: orjson refuses, the fallback encodes
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()  # any code point, lone surrogates and U+2028 included
    | st.decimals(allow_nan=False, allow_infinity=False)
    | st.datetimes(timezones=st.just(UTC))
    | st.dates()
    | st.uuids()
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=20,
)


def _stdlib(value) -> bytes:
    return json.dumps(value, cls=DjangoJSONEncoder).encode()


def _outcome(encode, value):
    try:
        return "ok", json.loads(encode(value))
    except (TypeError, ValueError, UnicodeError) as exc:
        return "error", type(exc).__name__


@settings(max_examples=400, deadline=None)
@given(_values)
def test_the_same_json_value_or_the_same_error_as_the_standard_library(value):
    default = DjangoJSONEncoder().default
    ours = _outcome(lambda v: jsonenc.dumps(v, default=default, fallback=_stdlib), value)
    theirs = _outcome(_stdlib, value)
    assert ours == theirs


@settings(max_examples=300, deadline=None)
@given(_values)
def test_the_renderer_gives_drfs_value_and_escapes_line_separators(value):
    ours = _outcome(lambda v: JSONRenderer().render(v), value)
    theirs = _outcome(lambda v: DrfJSONRenderer().render(v), value)
    assert ours == theirs
    if ours[0] == "ok":
        rendered = JSONRenderer().render(value)
        assert "\u2028".encode() not in rendered and "\u2029".encode() not in rendered


def test_orjson_is_used_and_falls_back_only_where_it_cannot_encode_alike():
    calls = []

    def fallback(value):
        calls.append(value)
        return _stdlib(value)

    default = DjangoJSONEncoder().default
    moment = datetime(2026, 12, 1, 10, 0, 0, 123456, tzinfo=UTC)
    plain = {"a": [1, "é", None, True], "when": moment, "amount": Decimal("1.10"), "id": uuid.UUID(int=5)}
    encoded = jsonenc.dumps(plain, default=default, fallback=fallback)
    assert not calls and b" " not in encoded
    assert json.loads(encoded) == json.loads(_stdlib(plain))
    assert json.loads(encoded)["when"] == "2026-12-01T10:00:00.123Z"  # DjangoJSONEncoder's own format
    for odd in ({"n": 2**65}, {1: "non-string key"}, {"s": "\ud800"}):
        assert jsonenc.dumps(odd, default=default, fallback=fallback) == _stdlib(odd)
    assert len(calls) == 3


def test_ascii_only_keeps_log_lines_ascii():
    line = jsonenc.dumps(
        {"m": "Budi Santoso ✓", "t": timedelta(seconds=3)}, default=str, fallback=_log, ascii_only=True
    )
    assert line == _log({"m": "Budi Santoso ✓", "t": timedelta(seconds=3)}) and line.isascii()
    assert jsonenc.dumps(
        {"m": "plain", "d": date(2026, 1, 2)}, default=str, fallback=_never, ascii_only=True
    ) == (b'{"m":"plain","d":"2026-01-02"}')


def _log(value) -> bytes:
    return json.dumps(value, default=str).encode()


def _never(value) -> bytes:
    raise AssertionError("the fallback was used")


@pytest.mark.parametrize("accept", ["application/json; indent=4", "application/json; indent=2"])
def test_an_indented_rendering_is_drfs_own(accept):
    data = {"a": [1, 2], "b": "x"}
    assert JSONRenderer().render(data, accept) == DrfJSONRenderer().render(data, accept)


def test_nothing_renders_as_an_empty_body():
    assert JSONRenderer().render(None) == b""
