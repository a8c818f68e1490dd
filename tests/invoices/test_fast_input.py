"""invoices.fast_input.create_input against the serializer it stands in for (InvoiceCreateInput): on any body,
valid or broken, it either returns exactly the serializer's validated data (and the serializer accepts the body)
or None (the serializer decides). And it does take the bodies merchants send, else it would be dead weight."""

import copy
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from invoices.fast_input import (
    _CUSTOMER_FIELDS,
    _FIELDS,
    _INSTALLMENT_FIELDS,
    _LINE_FIELDS,
    TEXT_RULES,
    create_input,
)
from invoices.serializers import CustomerInput, InstallmentsInput, InvoiceCreateInput, LineItemInput

BASE = {
    "currency": "IDR",
    "gateway": "xendit",
    "external_id": "order-1",
    "description": "Order",
    "customer": {"name": "Budi Santoso", "email": "budi@example.com", "phone": "+628111111111"},
    "line_items": [
        {"name": "Widget", "quantity": 2, "unit_price": "150000", "tax_rate": "0.11"},
        {"name": "Gadget", "quantity": 1, "unit_price": 99999},
    ],
    "installments": {"count": 3, "amounts": None},
    "metadata": {"source": "bench", "channel": "web"},
}

# Values that sit on the edges of the serializer's rules: types it refuses or coerces, whitespace it strips,
# lengths around the limits, characters it prohibits, what needs parsing, what an e-mail address must look like.
ODD = [
    None,
    "",
    "   ",
    " padded ",
    "x",
    "IDR",
    "USDOLLARS",
    "a" * 40,
    "a" * 41,
    "a" * 254,
    "a" * 255,
    "a" * 256,
    "a" * 64,
    "a" * 65,
    "a" * 5000,
    "a" * 5001,
    "a" * 500,
    "a" * 501,
    "nul\x00here",
    "lone \ud800 surrogate",
    "Zoë 張",
    "\u00a0nbsp\u00a0",
    "budi@example.com",
    "not-an-email",
    "a@b",
    "2026-12-31T00:00:00Z",
    "2026-12-31",
    0,
    1,
    -1,
    3,
    10**18,
    10**19,
    True,
    False,
    Decimal("2.0"),
    Decimal("1.5"),
    [],
    ["150000"],
    [Decimal("1.5"), 3],
    ["2026-12-31", "2027-01-31"],
    {},
    {"k": "v"},
    {"": "v"},
    {"k": 1},
    {f"k{i}": "v" for i in range(51)},
]

TEXT = st.text(max_size=12)
VALUES = st.one_of(st.sampled_from(ODD), TEXT, st.integers(-5, 5))


@st.composite
def mutated(draw, value):
    """`value` with some of its keys (at any depth) dropped, replaced by an odd value or added."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            action = draw(st.integers(0, 24))  # mostly kept, so that many bodies stay valid
            if action > 1:
                out[key] = draw(mutated(item))
            elif action == 1:
                out[key] = draw(VALUES)
        if draw(st.integers(0, 14)) == 0:
            out[draw(st.sampled_from(["unknown", "name", "count", "amounts", "due_dates", "expires_at"]))] = (
                draw(VALUES)
            )
        return out
    if isinstance(value, list):
        items = [draw(mutated(item)) for item in value]
        if draw(st.integers(0, 5)) == 0:
            items.append(draw(st.one_of(VALUES, mutated(BASE["line_items"][0]))))
        return items
    return value if draw(st.integers(0, 29)) else draw(VALUES)


def typed(value):
    """`value` with every leaf's type beside it: `==` alone takes True for 1 and Decimal("1") for 1."""
    if isinstance(value, dict):
        return {key: typed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [typed(item) for item in value]
    return (type(value), value)


def serializer_result(body):
    serializer = InvoiceCreateInput(data=copy.deepcopy(body))
    return serializer.validated_data if serializer.is_valid() else None


@settings(max_examples=1500, deadline=None)
@given(body=mutated(BASE))
def test_never_accepts_what_the_serializer_refuses_and_agrees_on_what_it_accepts(body):
    fast = create_input(copy.deepcopy(body))
    if fast is not None:
        assert typed(fast) == typed(serializer_result(body))


@pytest.mark.parametrize(
    "body",
    [
        BASE,
        {"currency": "IDR", "line_items": [{"name": "x", "quantity": 1, "unit_price": "1"}]},
        {**BASE, "external_id": None, "customer": None, "installments": None, "expires_at": None},
        {**BASE, "description": "", "customer": {"name": "", "email": "", "phone": ""}},
        {**BASE, "customer": {"name": "  Zoë 張  "}, "metadata": {}},
        {**BASE, "installments": {"count": 2, "amounts": ["100", Decimal("50.5")], "due_dates": None}},
        {**BASE, "line_items": [{"name": " Padded ", "quantity": 1, "unit_price": Decimal("16.99")}]},
        {**BASE, "line_items": []},  # the serializer takes it (the service refuses it, with its own error)
    ],
)
def test_takes_the_bodies_merchants_send_with_the_serializers_result(body):
    fast = create_input(copy.deepcopy(body))
    assert fast is not None
    assert typed(fast) == typed(serializer_result(body))


@pytest.mark.parametrize(
    "body",
    [
        {**BASE, "expires_at": "2026-12-31T00:00:00Z"},
        {**BASE, "installments": {"count": 2, "due_dates": ["2027-01-01", "2027-02-01"]}},
        {**BASE, "line_items": [{"name": "x", "quantity": Decimal("2.0"), "unit_price": "1"}]},
        {**BASE, "customer": {"email": "not-an-email"}},
        {**BASE, "description": "nul\x00"},
        {**BASE, "surprise": 1},
        [BASE],
    ],
)
def test_leaves_parsing_and_every_error_to_the_serializer(body):
    assert create_input(copy.deepcopy(body)) is None


def test_knows_every_field_the_serializers_declare():
    # A field added to a serializer and not here would send every body using it the slow way, unnoticed.
    assert _FIELDS == set(InvoiceCreateInput().fields)
    assert _LINE_FIELDS == set(LineItemInput().fields)
    assert _CUSTOMER_FIELDS == set(CustomerInput().fields)
    assert _INSTALLMENT_FIELDS == set(InstallmentsInput().fields)


def test_text_rules_are_the_serializers():
    # A max_length tightened, allow_blank changed or a validator added in a serializer must be reflected here.
    known = {"MaxLengthValidator", "ProhibitNullCharactersValidator", "ProhibitSurrogateCharactersValidator"}
    serializers = {"": InvoiceCreateInput(), "line_items": LineItemInput(), "customer": CustomerInput()}
    for rule, (max_length, allow_blank) in TEXT_RULES.items():
        owner, _, name = rule.rpartition(".")
        field = serializers[owner].fields[name]
        assert (field.max_length, field.allow_blank, field.trim_whitespace, field.min_length) == (
            max_length,
            allow_blank,
            True,
            None,
        ), rule
        extra = {type(v).__name__ for v in field.validators} - known
        assert extra == ({"EmailValidator"} if rule == "customer.email" else set()), rule
    for name, field in InvoiceCreateInput().fields.items():
        assert field.allow_null == (name in {"external_id", "customer", "expires_at", "installments"}), name
