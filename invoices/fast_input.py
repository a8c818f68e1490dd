"""`POST /v1/invoices`'s body checked without DRF's field machinery, for the bodies merchants send every day.

`create_input(data)` returns exactly what `InvoiceCreateInput(data=data).validated_data` would be (the same dict,
key for key and value for value) when it can tell for certain that the serializer accepts `data`, and None in
every other case: then the view runs the serializer, whose errors (envelope, `param`, message) are the API's.
So it never decides an error and never accepts what the serializer refuses; anything it does not recognise
(a `\\u0000`, a lone surrogate, an `expires_at` or `due_dates` to parse, an integer given as a decimal, an invalid
e-mail address, a missing or unknown field) goes the serializer's way. `tests/invoices/test_fast_input.py`
compares the two on generated bodies, valid and broken.

Why: DRF validates the create body field by field through ~30 field objects (run_validation, validators,
default handling), ~11-16 % of a creation's CPU; these checks are the same rules written out once (ADR 0024).
The rules mirror the serializers in invoices/serializers.py and paytrust/serializers.py: a field added there
must be added here, else every body carrying it falls back to the serializer (correct, just slower), and the
test's field list fails first.
"""

from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email

from paytrust.serializers import METADATA_KEY_MAX, METADATA_MAX_KEYS, METADATA_VALUE_MAX

# (max_length, allow_blank) of every text field, as the serializers declare them (a test compares the two).
TEXT_RULES = {
    "currency": (8, False),
    "gateway": (64, False),
    "external_id": (255, False),
    "description": (5000, True),
    "line_items.name": (255, False),
    "customer.name": (255, True),
    "customer.email": (254, True),
    "customer.phone": (40, True),
}
# DRF's IntegerField takes any int; bigger ones are left to it (str() of a huge int fails).
_INT_BOUND = 10**18
_AMOUNT_TYPES = (str, int, Decimal)


class _Fallback(Exception):  # noqa: N818 - "let the serializer decide", not an error
    pass


def _text(value, rule: str) -> str:
    """A DRF CharField's accepted value: a string, whitespace-stripped, within max_length, without NUL or a lone
    surrogate (the UTF-8 encoding refuses those)."""
    max_length, allow_blank = TEXT_RULES[rule]
    if type(value) is not str:
        raise _Fallback
    text = value.strip()
    if (not text and not allow_blank) or len(text) > max_length or "\x00" in text:
        raise _Fallback
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise _Fallback from None
    return text


def _integer(value) -> int:
    if type(value) is not int or not -_INT_BOUND < value < _INT_BOUND:
        raise _Fallback
    return value


def _amount(value):
    if type(value) not in _AMOUNT_TYPES:
        raise _Fallback
    return value


def _object(value, fields: frozenset[str]) -> dict:
    if type(value) is not dict or not fields.issuperset(value):
        raise _Fallback
    return value


_LINE_FIELDS = frozenset({"name", "quantity", "unit_price", "tax_rate"})


def _line_item(item) -> dict:
    item = _object(item, _LINE_FIELDS)
    return {
        "name": _text(item.get("name"), "line_items.name"),
        "quantity": _integer(item.get("quantity")),
        "unit_price": _amount(item.get("unit_price")),
        "tax_rate": _amount(item["tax_rate"]) if "tax_rate" in item else "0",
    }


_CUSTOMER_FIELDS = frozenset({"name", "email", "phone"})


def _customer(value) -> dict | None:
    if value is None:
        return None
    value = _object(value, _CUSTOMER_FIELDS)
    out = {}
    if "name" in value:
        out["name"] = _text(value["name"], "customer.name")
    if "email" in value:
        email = out["email"] = _text(value["email"], "customer.email")
        if email:
            try:
                validate_email(email)
            except DjangoValidationError:
                raise _Fallback from None
    if "phone" in value:
        out["phone"] = _text(value["phone"], "customer.phone")
    return out


_INSTALLMENT_FIELDS = frozenset({"count", "amounts", "due_dates"})


def _installments(value) -> dict | None:
    if value is None:
        return None
    value = _object(value, _INSTALLMENT_FIELDS)
    out = {"count": _integer(value.get("count"))}
    if "amounts" in value:
        amounts = value["amounts"]
        if amounts is None:
            out["amounts"] = None
        elif type(amounts) is list:
            out["amounts"] = [_amount(amount) for amount in amounts]
        else:
            raise _Fallback
    if "due_dates" in value:
        if value["due_dates"] is not None:
            raise _Fallback  # dates to parse: the serializer's DateField does it
        out["due_dates"] = None
    return out


def _metadata(value) -> dict:
    if type(value) is not dict or len(value) > METADATA_MAX_KEYS:
        raise _Fallback
    for key, item in value.items():
        if not 0 < len(key) <= METADATA_KEY_MAX or type(item) is not str or len(item) > METADATA_VALUE_MAX:
            raise _Fallback
    return value


_FIELDS = frozenset(
    {
        "currency",
        "gateway",
        "external_id",
        "description",
        "customer",
        "expires_at",
        "line_items",
        "installments",
        "metadata",
    }
)


def create_input(data) -> dict | None:
    """`InvoiceCreateInput(data=data).validated_data` when the serializer certainly accepts `data`, else None."""
    try:
        data = _object(data, _FIELDS)
        out = {"currency": _text(data.get("currency"), "currency")}
        if "gateway" in data:
            out["gateway"] = _text(data["gateway"], "gateway")
        if "external_id" in data:
            external_id = data["external_id"]
            out["external_id"] = None if external_id is None else _text(external_id, "external_id")
        if "description" in data:
            out["description"] = _text(data["description"], "description")
        if "customer" in data:
            out["customer"] = _customer(data["customer"])
        if "expires_at" in data:
            if data["expires_at"] is not None:
                raise _Fallback  # a timestamp to parse: the serializer's DateTimeField does it
            out["expires_at"] = None
        lines = data.get("line_items")
        if type(lines) is not list:
            raise _Fallback
        out["line_items"] = [_line_item(item) for item in lines]
        if "installments" in data:
            out["installments"] = _installments(data["installments"])
        if "metadata" in data:
            out["metadata"] = _metadata(data["metadata"])
    except _Fallback:
        return None
    return out
