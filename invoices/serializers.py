"""The invoice API's serializers (shape only) and query-parameter parsing. The invoice resource's viewset is in
`payments.api` (voiding closes payments and an invoice embeds its payments); it parses with these, calls ONE
service and renders with `invoices.selectors.invoices_render`.

Business rules (amount precision per currency, expiry bounds, installment sums, gateway checks, state) live in
`invoices.services`; errors are raised there and rendered by the one exception handler.
"""

from __future__ import annotations

from decimal import Decimal

from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema_field,
    extend_schema_serializer,
    inline_serializer,
)
from rest_framework import serializers

from gateways.models import GatewayName
from invoices import selectors
from invoices.calc import MAX_QUANTITY, CustomerIn, InstallmentsIn, LineItemIn
from invoices.models import MAX_INSTALLMENTS, MAX_LINE_ITEMS, MIN_INSTALLMENTS, InvoiceStatus
from paytrust.errors import ValidationError
from paytrust.money import CURRENCIES
from paytrust.params import query_choice, query_datetime
from paytrust.schema import (
    AMOUNT_SCHEMA,
    PAGINATION_PARAMETERS,
    POSITIVE_AMOUNT_SCHEMA,
    QUERY_DATETIME_SCHEMA,
    RATE_SCHEMA,
    error_responses,
)
from paytrust.serializers import CurrencyField, MetadataField, StrictSerializer

# ---- input (shape only) --------------------------------------------------------------------------------------


@extend_schema_field(AMOUNT_SCHEMA)
class AmountField(serializers.Field):
    """A decimal string in major units ("150000", "16.99"); a JSON number is accepted too. Converted to minor
    units by the service, which knows the currency."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, str | int | Decimal):
            raise serializers.ValidationError("Expected a decimal string.", code="invalid")
        return data

    def to_representation(self, value):
        return value


@extend_schema_field(POSITIVE_AMOUNT_SCHEMA)
class PositiveAmountField(AmountField):
    """An amount greater than zero."""


@extend_schema_field(RATE_SCHEMA)
class RateField(AmountField):
    """A fraction 0–1 such as a tax rate ("0.11"), at most 4 decimals."""


# The constraints below (`schema_constraints`) are checked by invoices.calc / invoices.services; they are in
# the OpenAPI schema so that it says what the server accepts.
_INVOICE_CONSTRAINTS = {
    # A gateway name or a gateway account id (gateways.selectors.gateway_account_resolve).
    "gateway": {
        "anyOf": [
            {"type": "string", "enum": list(GatewayName.values)},
            {"type": "string", "pattern": r"^gwa_[0-9A-Za-z]+$"},
        ]
    },
    "line_items": {"minItems": 1, "maxItems": MAX_LINE_ITEMS},
}


class LineItemInput(StrictSerializer):
    schema_constraints = {"quantity": {"minimum": 1, "maximum": MAX_QUANTITY}}

    name = serializers.CharField(max_length=255)
    quantity = serializers.IntegerField()
    unit_price = AmountField()
    tax_rate = RateField(
        required=False, default="0", help_text='A fraction 0–1, at most 4 decimals ("0.11").'
    )


class CustomerInput(StrictSerializer):
    name = serializers.CharField(max_length=255, required=False, allow_blank=True)
    email = serializers.EmailField(max_length=254, required=False, allow_blank=True)
    phone = serializers.CharField(max_length=40, required=False, allow_blank=True)


class InstallmentsInput(StrictSerializer):
    schema_constraints = {
        "count": {"minimum": MIN_INSTALLMENTS, "maximum": MAX_INSTALLMENTS},
        "amounts": {"minItems": MIN_INSTALLMENTS, "maxItems": MAX_INSTALLMENTS},
        "due_dates": {"minItems": MIN_INSTALLMENTS, "maxItems": MAX_INSTALLMENTS, "uniqueItems": True},
    }

    count = serializers.IntegerField(help_text="2–12")
    amounts = serializers.ListField(
        child=PositiveAmountField(),
        required=False,
        allow_null=True,
        help_text="One per installment (`count` entries), summing to the invoice total.",
    )
    due_dates = serializers.ListField(
        child=serializers.DateField(),
        required=False,
        allow_null=True,
        help_text="One per installment (`count` entries), strictly increasing, within 5 years from today.",
    )


class InvoiceCreateInput(StrictSerializer):
    schema_constraints = _INVOICE_CONSTRAINTS

    currency = CurrencyField()
    gateway = serializers.CharField(
        max_length=64,
        required=False,
        help_text="A gateway name or gateway account id (test mode default: sandbox).",
    )
    external_id = serializers.CharField(max_length=255, required=False, allow_null=True)
    description = serializers.CharField(max_length=5000, required=False, allow_blank=True)
    customer = CustomerInput(required=False, allow_null=True)
    expires_at = serializers.DateTimeField(
        required=False, allow_null=True, help_text="1 hour to 30 days from now; default 24 hours."
    )
    line_items = serializers.ListField(child=LineItemInput())
    installments = InstallmentsInput(required=False, allow_null=True)
    metadata = MetadataField(required=False)


class InvoiceUpdateInput(StrictSerializer):
    schema_constraints = _INVOICE_CONSTRAINTS

    currency = CurrencyField(required=False)
    gateway = serializers.CharField(max_length=64, required=False)
    external_id = serializers.CharField(max_length=255, required=False, allow_null=True)
    description = serializers.CharField(max_length=5000, required=False, allow_blank=True)
    customer = CustomerInput(required=False, allow_null=True)
    expires_at = serializers.DateTimeField(
        required=False, allow_null=True, help_text="1 hour to 30 days from now; default 24 hours."
    )
    line_items = serializers.ListField(child=LineItemInput(), required=False)
    installments = InstallmentsInput(required=False, allow_null=True)
    metadata = MetadataField(required=False)


class SupplementaryInput(InvoiceCreateInput):
    currency = CurrencyField(required=False, help_text="Inherited from the parent.")


def _line_items(data: list[dict]) -> list[LineItemIn]:
    return [LineItemIn(d["name"], d["quantity"], d["unit_price"], d.get("tax_rate", "0")) for d in data]


def _customer(data: dict | None) -> CustomerIn | None:
    if data is None:
        return None
    return CustomerIn(data.get("name", ""), data.get("email", ""), data.get("phone", ""))


def _installments(data: dict | None) -> InstallmentsIn | None:
    if data is None:
        return None
    return InstallmentsIn(count=data["count"], amounts=data.get("amounts"), due_dates=data.get("due_dates"))


_CONVERTERS = {"line_items": _line_items, "customer": _customer, "installments": _installments}


def service_kwargs(validated: dict) -> dict:
    """An input serializer's validated data as the keyword arguments of the invoices services."""
    return {key: _CONVERTERS[key](value) if key in _CONVERTERS else value for key, value in validated.items()}


# ---- output (documentation; rendering is invoices.render) ----------------------------------------------------


class LineItemOutput(serializers.Serializer):
    name = serializers.CharField()
    quantity = serializers.IntegerField()
    unit_price = serializers.CharField()
    tax_rate = serializers.CharField()
    subtotal = serializers.CharField()
    tax = serializers.CharField()


class InstallmentOutput(serializers.Serializer):
    number = serializers.IntegerField()
    amount = serializers.CharField()
    tax_share = serializers.CharField()
    fee_share = serializers.CharField()
    due_date = serializers.DateField()
    amount_paid = serializers.CharField()
    amount_due = serializers.CharField()
    status = serializers.CharField(help_text="`unpaid`, `partially_paid` or `paid`.")
    paid_at = serializers.DateTimeField(allow_null=True)


class CustomerOutput(serializers.Serializer):
    name = serializers.CharField(allow_null=True)
    email = serializers.CharField(allow_null=True)
    phone = serializers.CharField(allow_null=True)


class InvoiceOutput(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.CharField()
    mode = serializers.CharField(help_text="`test` or `live` (the calling key's).")
    status = serializers.CharField(
        help_text="`draft`, `pending`, `partially_paid`, `paid`, `expired` (also when `expires_at` has passed "
        "with money due) or `void`."
    )
    currency = serializers.CharField()
    gateway = serializers.CharField()
    gateway_account = serializers.CharField()
    external_id = serializers.CharField(allow_null=True)
    description = serializers.CharField()
    customer = CustomerOutput()
    subtotal = serializers.CharField()
    tax_total = serializers.CharField()
    service_fee = serializers.CharField()
    total = serializers.CharField()
    amount_paid = serializers.CharField()
    amount_due = serializers.CharField()
    overpaid = serializers.CharField()
    amount_refunded = serializers.CharField(
        help_text="Refunded on the invoice's payments (succeeded refunds; chargebacks included). The money stays "
        "applied to the invoice: `amount_paid` and the status do not change."
    )
    line_items = LineItemOutput(many=True)
    installments = InstallmentOutput(many=True)
    expires_at = serializers.DateTimeField()
    payment_initiated_at = serializers.DateTimeField(allow_null=True)
    paid_at = serializers.DateTimeField(allow_null=True)
    payments = serializers.ListField(child=serializers.DictField())
    metadata = serializers.DictField(child=serializers.CharField())
    parent_invoice = serializers.CharField(allow_null=True)
    supplementary_invoices = serializers.ListField(child=serializers.CharField())
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


# many=False: a list envelope, not a list (the schema must not wrap a viewset `list` action's response in an array).
@extend_schema_serializer(many=False, component_name="InvoiceList")
class InvoiceListOutput(serializers.Serializer):
    data = InvoiceOutput(many=True)
    has_more = serializers.BooleanField()
    next_cursor = serializers.CharField(allow_null=True)


InstallmentListOutput = inline_serializer(
    name="InstallmentList", fields={"data": InstallmentOutput(many=True)}
)
OverpaymentOutput = inline_serializer(
    name="InvoiceOverpayment",
    fields={
        "currency": serializers.CharField(),
        "amount": serializers.CharField(),
        "payments": inline_serializer(
            name="OverpaymentPayment",
            fields={
                "payment": serializers.CharField(),
                "amount": serializers.CharField(),
                "paid_at": serializers.DateTimeField(),
            },
            many=True,
        ),
    },
)
# 400/401/429/500 (+409/422/413/415 on writes) are added by paytrust.schema.ApiAutoSchema.
ERRORS = error_responses(404)
WRITE_ERRORS = error_responses(404, 409)


# ---- query parameters ----------------------------------------------------------------------------------------


def invoice_filters(params) -> selectors.InvoiceFilters:
    """The list's query parameters (400 with `param` when one is invalid)."""
    currency = params.get("currency")
    if currency is not None and currency not in CURRENCIES:
        raise ValidationError(f"Unknown currency {currency!r}.", code="currency_invalid", param="currency")
    return selectors.InvoiceFilters(
        status=query_choice(params.get("status"), "status", InvoiceStatus.values),
        currency=currency,
        gateway=params.get("gateway") or None,
        created_gte=query_datetime(params.get("created_gte"), "created_gte"),
        created_lt=query_datetime(params.get("created_lt"), "created_lt"),
        external_id=params.get("external_id") or None,
    )


INVOICE_LIST_PARAMETERS = [
    OpenApiParameter("status", str, enum=InvoiceStatus.values),
    OpenApiParameter("currency", str, enum=list(CURRENCIES)),
    OpenApiParameter("gateway", str, description="Gateway name or gateway account id"),
    OpenApiParameter("created_gte", QUERY_DATETIME_SCHEMA, description="Created at or after (inclusive)."),
    OpenApiParameter("created_lt", QUERY_DATETIME_SCHEMA, description="Created before (exclusive)."),
    OpenApiParameter("external_id", str),
    *PAGINATION_PARAMETERS,
]
