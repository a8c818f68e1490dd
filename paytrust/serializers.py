"""Input serializer base: unknown fields and values of the wrong JSON type are rejected (400, `param` = the
field), metadata is validated."""

from decimal import Decimal
from typing import ClassVar

from django.utils.functional import cached_property
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.utils.serializer_helpers import BindingDict

from paytrust.money import ENABLED_CURRENCIES

METADATA_MAX_KEYS = 50
METADATA_KEY_MAX = 40
METADATA_VALUE_MAX = 500


def _json_type_error(field: serializers.Field, value) -> str | None:
    """Why `value` is not of the JSON type the field's OpenAPI schema states, or None. DRF would coerce it
    (`0` to false, `5` to "5", "5" to 5); the schema says boolean, string, integer, so the API does not."""
    if value is None:
        return None  # the field's allow_null decides
    if isinstance(field, serializers.BooleanField):
        return None if isinstance(value, bool) else "Expected a boolean (true or false)."
    if isinstance(field, serializers.IntegerField):
        ok = isinstance(value, int | Decimal) and not isinstance(value, bool)
        return None if ok else "Expected an integer."
    if isinstance(
        field,
        serializers.CharField | serializers.ChoiceField | serializers.DateField | serializers.DateTimeField,
    ):
        return None if isinstance(value, str) else "Expected a string."
    return None


class StrictSerializer(serializers.Serializer):
    """Rejects fields it does not declare, and values of another JSON type than the field's (no coercion), at
    every nesting level where it is used.

    Its bound fields are built once per class and process, not per instance: DRF deep-copies every declared field
    for each serializer instance (and again for each nested serializer inside it), which on invoice creation was
    ~9 % of the request's Python time. Sharing them is safe because input serializers are validated, never
    saved: validation reads the fields and stores its results on the root instance (`validated_data`, `errors`).
    Fields reach their root for `partial` and `context` only, so an instance given either gets its own copy.
    """

    # What the services check beyond the fields' own validation (ranges, enums, list lengths), merged into the
    # field's OpenAPI schema by paytrust.schema.ApiAutoSchema, so the schema says what the server accepts while
    # the serializer stays a shape check: {"quantity": {"minimum": 1}}.
    schema_constraints: ClassVar[dict[str, dict]] = {}

    _shared_fields: dict[type, BindingDict] = {}

    @cached_property
    def fields(self) -> BindingDict:
        root = self.root
        if root.partial or getattr(root, "_context", None):
            return self._bind_fields()
        cls = type(self)
        fields = StrictSerializer._shared_fields.get(cls)
        if fields is None:  # two threads may both build it: equal results, the last one is kept
            fields = StrictSerializer._shared_fields[cls] = cls()._bind_fields()
        return fields

    def _bind_fields(self) -> BindingDict:
        fields = BindingDict(self)
        for name, field in self.get_fields().items():
            fields[name] = field
        return fields

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = [key for key in data if key not in self.fields or self.fields[key].read_only]
            if unknown:
                raise serializers.ValidationError(
                    {unknown[0]: [serializers.ErrorDetail("Unknown field.", code="unknown_field")]}
                )
            for key, value in data.items():
                message = _json_type_error(self.fields[key], value)
                if message is not None:
                    raise serializers.ValidationError(
                        {key: [serializers.ErrorDetail(message, code="invalid")]}
                    )
        return super().to_internal_value(data)


@extend_schema_field({"type": "string", "enum": list(ENABLED_CURRENCIES)}, component_name="Currency")
class CurrencyField(serializers.CharField):
    """An enabled currency's ISO 4217 code. The services check it (400 `currency_invalid`); the field documents
    the enum once, as the `Currency` schema component."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 8)
        super().__init__(**kwargs)


@extend_schema_field(
    {
        "type": "object",
        "maxProperties": METADATA_MAX_KEYS,
        "additionalProperties": {"type": "string", "maxLength": METADATA_VALUE_MAX},
        "description": f"Up to {METADATA_MAX_KEYS} keys of 1–{METADATA_KEY_MAX} characters, each with a string "
        f"value of at most {METADATA_VALUE_MAX} characters.",
    }
)
class MetadataField(serializers.JSONField):
    """Up to 50 string keys (≤ 40 chars) with string values (≤ 500 chars)."""

    def to_internal_value(self, data):
        data = super().to_internal_value(data)
        if not isinstance(data, dict):
            raise serializers.ValidationError("metadata must be an object of string keys and string values.")
        if len(data) > METADATA_MAX_KEYS:
            raise serializers.ValidationError(f"metadata allows at most {METADATA_MAX_KEYS} keys.")
        for key, value in data.items():
            if not isinstance(key, str) or not key or len(key) > METADATA_KEY_MAX:
                raise serializers.ValidationError(f"metadata keys must be 1–{METADATA_KEY_MAX} characters.")
            if not isinstance(value, str) or len(value) > METADATA_VALUE_MAX:
                raise serializers.ValidationError(
                    f"metadata values must be strings of at most {METADATA_VALUE_MAX} characters."
                )
        return data
