"""The balance resource (SPEC §13): `GET /v1/balance` (the calling key's merchant and mode, per currency) and
`GET /v1/balance/transactions[/{id}]` (the ledger's movements, each with its entries and the object that caused
it). Read-only: the ledger is written only by the state changes that move money (payments.services.bookkeeping).

How the figures derive from the chart of accounts: docs/adr/0045-ledger-chart-of-accounts.md. In short, every
figure is one account's balance with the sign turned so that what the merchant is owed shows positive:
`available` merchant_payable, `pending` merchant_pending, `refunds_in_flight` refunds_payable, `tax_held`
tax_payable, `fees` service_fees, `customer_credit` customer_credit (all credit-normal: −SUM(entries)).
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from apikeys.viewsets import ApiViewSet, tenant
from ledger import selectors
from ledger.models import AccountCode, Movement, MovementType
from paytrust.money import format_amount
from paytrust.pagination import paginate
from paytrust.params import query_choice, query_datetime
from paytrust.schema import PAGINATION_PARAMETERS, QUERY_DATETIME_SCHEMA, error_responses

# figure -> the credit-normal account it shows (shown positive: −SUM of its entries).
BALANCE_FIGURES: dict[str, str] = {
    "available": AccountCode.MERCHANT_PAYABLE,
    "pending": AccountCode.MERCHANT_PENDING,
    "refunds_in_flight": AccountCode.REFUNDS_PAYABLE,
    "tax_held": AccountCode.TAX_PAYABLE,
    "fees": AccountCode.SERVICE_FEES,
    "customer_credit": AccountCode.CUSTOMER_CREDIT,
}

# ---- output (shape only) -------------------------------------------------------------------------------------

_SIGNED_AMOUNT = "Decimal string in major units; negative when the merchant owes it."


class _BalanceCurrencyOutput(serializers.Serializer):
    currency = serializers.CharField()
    available = serializers.CharField(
        help_text="Money collected for the merchant, net of tax, service fees, customer credit and refunds "
        "(merchant_payable). " + _SIGNED_AMOUNT
    )
    pending = serializers.CharField(
        help_text="Held by card authorizations not yet captured (merchant_pending)."
    )
    refunds_in_flight = serializers.CharField(
        help_text="Refunds requested from the gateway and not yet confirmed (refunds_payable)."
    )
    tax_held = serializers.CharField(help_text="Tax collected on the merchant's invoices (tax_payable).")
    fees = serializers.CharField(
        help_text="Service fees collected on the merchant's invoices (service_fees)."
    )
    customer_credit = serializers.CharField(
        help_text="Money customers paid above what was due and that was not refunded (customer_credit)."
    )


class BalanceOutput(serializers.Serializer):
    object = serializers.CharField(default="balance")
    mode = serializers.CharField()
    currencies = _BalanceCurrencyOutput(
        many=True,
        help_text="One entry per currency the merchant has money in, by code; never summed across currencies.",
    )


class _EntryOutput(serializers.Serializer):
    account = serializers.ChoiceField(
        choices=AccountCode.values, help_text="Account code (chart of accounts)."
    )
    amount = serializers.CharField(
        help_text="Signed decimal string in major units: a debit is positive, a credit negative; a transaction's "
        "entries sum to zero."
    )


class _SourceOutput(serializers.Serializer):
    type = serializers.CharField(
        help_text='What caused it: "payment", "refund", or "movement" (a reversal of another transaction).'
    )
    id = serializers.CharField(help_text="That object's id (pay_…, ref_…, txn_…).")


class BalanceTransactionOutput(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.CharField(default="balance_transaction")
    mode = serializers.CharField()
    type = serializers.ChoiceField(choices=MovementType.values)
    currency = serializers.CharField()
    amount = serializers.CharField(
        help_text="The transaction's gross: the sum of its debits (never negative)."
    )
    occurred_at = serializers.DateTimeField(
        help_text="When the money moved (a payment's paid time, a refund's success time): what periods go by."
    )
    description = serializers.CharField()
    source = _SourceOutput()
    reverses = serializers.CharField(
        allow_null=True, help_text="The txn_ id this transaction reverses (type reversal), else null."
    )
    entries = _EntryOutput(many=True)
    created_at = serializers.DateTimeField(help_text="When it was recorded.")
    updated_at = serializers.DateTimeField(help_text="Always created_at: balance transactions never change.")


class BalanceTransactionListOutput(serializers.Serializer):
    data = BalanceTransactionOutput(many=True)
    has_more = serializers.BooleanField()
    next_cursor = serializers.CharField(allow_null=True)


# ---- rendering -----------------------------------------------------------------------------------------------


def balance_representation(balances: dict[str, dict[str, int]], *, mode: str) -> dict:
    currencies = []
    for currency in sorted(balances):
        codes = balances[currency]
        line = {"currency": currency}
        for figure, code in BALANCE_FIGURES.items():
            line[figure] = format_amount(-codes.get(code, 0), currency)
        currencies.append(line)
    return BalanceOutput({"object": "balance", "mode": mode, "currencies": currencies}).data


def transaction_representation(movement: Movement) -> dict:
    """One movement; its entries must be prefetched with their accounts (selectors.movement_list)."""
    entries = list(movement.entries.all())
    currency = movement.currency
    data = {
        "id": movement.id,
        "object": "balance_transaction",
        "mode": movement.mode,
        "type": movement.type,
        "currency": currency,
        "amount": format_amount(sum(e.amount_minor for e in entries if e.amount_minor > 0), currency),
        "occurred_at": movement.occurred_at,
        "description": movement.description,
        "source": {"type": movement.source_type, "id": movement.source_id},
        "reverses": movement.reverses_id,
        "entries": [
            {"account": e.account.code, "amount": format_amount(e.amount_minor, currency)} for e in entries
        ],
        "created_at": movement.created_at,
        "updated_at": movement.created_at,
    }
    return BalanceTransactionOutput(data).data


def transactions_render(movements) -> list[dict]:
    return [transaction_representation(m) for m in movements]


# ---- views ---------------------------------------------------------------------------------------------------

_BALANCE_EXAMPLE = {
    "object": "balance",
    "mode": "test",
    "currencies": [
        {
            "currency": "IDR",
            "available": "280000",
            "pending": "0",
            "refunds_in_flight": "0",
            "tax_held": "33000",
            "fees": "8000",
            "customer_credit": "9000",
        }
    ],
}

_TRANSACTION_EXAMPLE = {
    "id": "txn_0FpXo5Ak3w9QJg2kR7cLmN4b",
    "object": "balance_transaction",
    "mode": "test",
    "type": "payment",
    "currency": "IDR",
    "amount": "330000",
    "occurred_at": "2026-11-30T09:12:44Z",
    "description": "payment pay_0FpXo4… on invoice inv_0FpXn9…",
    "source": {"type": "payment", "id": "pay_0FpXo4Zx2mC8tH6yB1vQe3Ld"},
    "reverses": None,
    "entries": [
        {"account": "gateway_clearing", "amount": "330000"},
        {"account": "merchant_payable", "amount": "-280000"},
        {"account": "service_fees", "amount": "-8000"},
        {"account": "tax_payable", "amount": "-33000"},
        {"account": "customer_credit", "amount": "-9000"},
    ],
    "created_at": "2026-11-30T09:12:45Z",
    "updated_at": "2026-11-30T09:12:45Z",
}


# /v1/balance: the calling key's balance (a singleton: no id in the URL).
class BalanceViewSet(ApiViewSet):
    @extend_schema(
        operation_id="balance_retrieve",
        summary="The balance per currency: available, pending, refunds in flight, tax held, fees, customer credit",
        description=(
            "The ledger's balances of the calling key's merchant and mode, one entry per currency that has any "
            "(never summed across currencies), as decimal strings in major units. `available` is what the "
            "merchant is owed: payments' money net of tax, service fees and customer credit, less refunds and "
            "chargebacks (it can be negative when refunds exceed it); `pending` is held by card authorizations "
            "not yet captured; `refunds_in_flight` is refunded money the gateway has not confirmed paying out; "
            "`tax_held` and `fees` are the tax and service fees collected on the merchant's invoices; "
            "`customer_credit` is what customers paid above what was due and was not refunded."
        ),
        responses={200: BalanceOutput},
        examples=[OpenApiExample("One currency", response_only=True, value=_BALANCE_EXAMPLE)],
    )
    def retrieve(self, request):
        balances = selectors.account_balances(**tenant(request), codes=BALANCE_FIGURES.values())
        return Response(balance_representation(balances, mode=request.user.mode))


# /v1/balance/transactions[/{transaction_id}]: the ledger's movements.
class BalanceTransactionViewSet(ApiViewSet):
    lookup_url_kwarg = "transaction_id"
    lookup_value_converter = "str"

    @extend_schema(
        operation_id="balance_transactions_list",
        summary="List balance transactions (newest first by occurred_at, cursor pagination)",
        description=(
            "Every money movement of the calling key's merchant and mode with its entries (double-entry: debits "
            "positive, credits negative, summing to zero) and the object that caused it. Append-only: a mistake is "
            "corrected by a `reversal` transaction, never by changing one. Ordered by `occurred_at` (when the "
            "money moved), newest first."
        ),
        parameters=[
            OpenApiParameter("type", str, enum=MovementType.values),
            OpenApiParameter("start", QUERY_DATETIME_SCHEMA, description="occurred_at from (inclusive)."),
            OpenApiParameter("end", QUERY_DATETIME_SCHEMA, description="occurred_at until (exclusive)."),
            *PAGINATION_PARAMETERS,
        ],
        responses={200: BalanceTransactionListOutput},
        examples=[
            OpenApiExample(
                "A payment",
                response_only=True,
                value={"data": [_TRANSACTION_EXAMPLE], "has_more": False, "next_cursor": None},
            )
        ],
    )
    def list(self, request):
        params = request.query_params
        qs = selectors.movement_list(
            **tenant(request),
            type=query_choice(params.get("type"), "type", MovementType.values),
            start=query_datetime(params.get("start"), "start"),
            end=query_datetime(params.get("end"), "end"),
        )
        return Response(
            paginate(
                qs, params=params, render=transactions_render, created_field="occurred_at", pk_field="id"
            )
        )

    @extend_schema(
        operation_id="balance_transactions_retrieve",
        summary="Retrieve a balance transaction",
        responses={200: BalanceTransactionOutput, **error_responses(404)},
        examples=[OpenApiExample("A payment", response_only=True, value=_TRANSACTION_EXAMPLE)],
    )
    def retrieve(self, request, transaction_id: str):
        movement = selectors.movement_get(**tenant(request), movement_id=transaction_id)
        return Response(transaction_representation(movement))
