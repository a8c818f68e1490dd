"""StrictSerializer: unknown fields are refused, and bound fields are shared per class (not deep-copied per request)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from rest_framework import serializers

from invoices.serializers import InvoiceCreateInput
from paytrust.serializers import StrictSerializer


class _Inner(StrictSerializer):
    code = serializers.CharField(max_length=3)


class _Outer(StrictSerializer):
    name = serializers.CharField(max_length=10)
    count = serializers.IntegerField(min_value=1)
    inner = _Inner(required=False)
    items = serializers.ListField(child=_Inner(), required=False)


def test_instances_share_their_bound_fields_at_every_level():
    first, second = _Outer(data={}), _Outer(data={})
    assert first.fields is second.fields
    assert first.fields["inner"].fields is _Inner().fields
    assert first.fields["items"].child.fields is second.fields["items"].child.fields


def test_partial_or_context_gets_its_own_fields():
    shared = _Outer(data={}).fields
    partial = _Outer(data={}, partial=True)
    with_context = _Outer(data={}, context={"request": object()})
    assert partial.fields is not shared and with_context.fields is not shared
    assert with_context.fields["name"].context == {"request": with_context.context["request"]}
    assert partial.is_valid(), partial.errors  # partial: the required fields may be left out
    assert not _Outer(data={}).is_valid()


def test_results_and_errors_stay_with_their_own_instance_across_threads():
    def validate(i: int):
        data = {"name": f"n{i}", "count": i % 3, "inner": {"code": "ab" if i % 2 else "abcd"}}
        if i % 5 == 0:
            data["extra"] = 1
        s = _Outer(data=data)
        return i, s.is_valid(), dict(s.validated_data) if s.is_valid() else s.errors

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(validate, range(400)))
    for i, valid, payload in results:
        expected_valid = i % 3 != 0 and i % 2 == 1 and i % 5 != 0
        assert valid is expected_valid, (i, payload)
        if valid:
            assert payload == {"name": f"n{i}", "count": i % 3, "inner": {"code": "ab"}}
        elif i % 5 == 0:
            assert list(payload) == ["extra"]  # unknown field, refused before the others are checked
        else:
            expected = {name for name, bad in (("count", i % 3 == 0), ("inner", i % 2 == 0)) if bad}
            assert set(payload) == expected, (i, payload)


def test_invoice_input_unknown_nested_field_is_still_refused():
    body = {
        "currency": "IDR",
        "line_items": [{"name": "a", "quantity": 1, "unit_price": "1", "colour": "red"}],
    }
    first = InvoiceCreateInput(data=body)
    assert not first.is_valid()
    assert "colour" in str(first.errors)
    body["line_items"][0].pop("colour")
    second = InvoiceCreateInput(data=body)
    assert second.is_valid(), second.errors
    assert first.fields is second.fields
