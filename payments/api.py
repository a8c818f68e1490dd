"""The invoice and payment HTTP resources: `InvoiceViewSet` (/v1/invoices: list, create, retrieve, edit, void,
supplementary, installments, overpayment, and payment initiation at /v1/invoices/{id}/payments) and
`PaymentViewSet` (/v1/payments, and its refunds at /v1/payments/{id}/refunds: payments/refunds_api.py), registered on the router in payments/urls.py.

The invoice resource lives here, above the invoices app, because voiding an invoice closes its open payments
(`payments.services.invoice_void_closing_payments`) and an invoice embeds its payments
(`payments.selectors.payments_for_invoices`). Each method parses with an input serializer (shape only: invoice
ones in `invoices.serializers`), calls ONE service, and renders.
"""

from __future__ import annotations

import ipaddress

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.response import Response

from apikeys.viewsets import ApiViewSet, tenant
from invoices import selectors as invoice_selectors
from invoices import services as invoice_services
from invoices.fast_input import create_input
from invoices.models import Invoice
from invoices.serializers import (
    ERRORS,
    INVOICE_LIST_PARAMETERS,
    WRITE_ERRORS,
    InstallmentListOutput,
    InvoiceCreateInput,
    InvoiceListOutput,
    InvoiceOutput,
    InvoiceUpdateInput,
    OverpaymentOutput,
    PositiveAmountField,
    SupplementaryInput,
    invoice_filters,
    service_kwargs,
)
from payments import selectors, services
from payments.models import CaptureMethod, PaymentStatus
from payments.refunds_api import REFUND_CREATE_SCHEMA, refund_create_view
from payments.services.risk_check import RiskInput
from paytrust.db_routing import reads_from_replica
from paytrust.pagination import paginate
from paytrust.params import query_choice
from paytrust.schema import PAGINATION_PARAMETERS, RiskReason, error_responses
from paytrust.serializers import StrictSerializer

# ---- serializers (shape only) --------------------------------------------------------------------------------


@extend_schema_field({"type": "string", "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]})
class IpAddressField(serializers.CharField):
    """An IPv4 or IPv6 address (`ipaddress`), returned in its canonical form ("2001:db8::1"); no zone id."""

    def __init__(self, **kwargs):
        super().__init__(max_length=45, **kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        try:
            if "%" in value:
                raise ValueError(value)
            return str(ipaddress.ip_address(value))
        except ValueError:
            raise serializers.ValidationError("Not an IPv4 or IPv6 address.", code="invalid") from None


class PaymentRiskInput(StrictSerializer):
    customer_ip = IpAddressField(
        required=False,
        help_text="The payer's IP address (IPv4 or IPv6) as your server saw it: checked against the IP block list "
        "and counted by the IP velocity limits.",
    )
    device_id = serializers.CharField(
        required=False,
        max_length=128,
        help_text="Your identifier of the payer's device (at most 128 characters): device block list and velocity.",
    )


class PaymentCreateInput(StrictSerializer):
    installment = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=12,
        help_text="Installment number; default the next one due. Only the lowest unpaid installment is payable.",
    )
    capture_method = serializers.ChoiceField(
        choices=CaptureMethod.values,
        required=False,
        default=CaptureMethod.AUTOMATIC,
        help_text='"automatic" (collect at once) or "manual": the gateway only authorizes (holds) the money and '
        "POST /v1/payments/{id}/capture collects it. Only gateways that can hold money take manual.",
    )
    risk = PaymentRiskInput(
        required=False,
        help_text="What your server knows of the payer, for the risk check made before the gateway is called.",
    )


class PaymentCaptureInput(StrictSerializer):
    amount = PositiveAmountField(
        required=False,
        help_text="How much to capture, at most `amount_capturable`; default all of it. The rest of the hold is "
        "released.",
    )


class PaymentReviewOutput(serializers.Serializer):
    status = serializers.ChoiceField(choices=["pending", "approved", "rejected"])
    reviewed_at = serializers.DateTimeField(allow_null=True)


class PaymentOutput(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.CharField(default="payment")
    mode = serializers.CharField()
    status = serializers.CharField(
        help_text="One of: " + ", ".join(f"`{v}`" for v in PaymentStatus.values) + "."
    )
    invoice = serializers.CharField()
    installment = serializers.IntegerField()
    currency = serializers.CharField()
    amount = serializers.CharField(help_text="What the installment still owed at initiation.")
    amount_received = serializers.CharField(help_text="What the gateway collected (may differ from amount).")
    amount_refunded = serializers.CharField()
    received_on_closed_invoice = serializers.BooleanField(
        help_text="The money arrived after the invoice was voided or had expired: overpayment to refund."
    )
    capture_method = serializers.ChoiceField(choices=CaptureMethod.values)
    amount_capturable = serializers.CharField(
        help_text="What the authorization still holds (0 unless `authorized`): at most this can be captured."
    )
    capture_before = serializers.DateTimeField(
        allow_null=True,
        help_text="An authorized payment not captured by then expires (its hold is released).",
    )
    authorized_at = serializers.DateTimeField(allow_null=True)
    captured_at = serializers.DateTimeField(allow_null=True)
    canceled_at = serializers.DateTimeField(allow_null=True)
    gateway = serializers.CharField()
    gateway_account = serializers.CharField()
    gateway_reference = serializers.CharField(allow_null=True)
    payment_url = serializers.CharField(allow_null=True, help_text="Send the customer here.")
    expires_at = serializers.DateTimeField(allow_null=True)
    paid_at = serializers.DateTimeField(allow_null=True)
    failure_code = serializers.CharField(allow_null=True)
    failure_message = serializers.CharField(allow_null=True)
    iso20022_status = serializers.CharField(
        allow_null=True, help_text="pain.002 TxSts: ACSC, ACSP, PDNG, RJCT"
    )
    iso20022_reason = serializers.CharField(allow_null=True)
    risk_score = serializers.IntegerField(
        allow_null=True,
        min_value=0,
        max_value=100,
        help_text="The risk check's score (0-100) before the gateway was called; null for payments made before "
        "risk scoring existed.",
    )
    risk_reasons = RiskReason(many=True, help_text="What made the score (codes and messages).")
    review = PaymentReviewOutput(
        allow_null=True,
        help_text="Null unless the risk check flagged the payment for review (a `manual` capture is then held "
        "until approved).",
    )
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class PaymentListOutput(serializers.Serializer):
    data = PaymentOutput(many=True)
    has_more = serializers.BooleanField()
    next_cursor = serializers.CharField(allow_null=True)


# ---- rendering -----------------------------------------------------------------------------------------------


def _invoices_render(invoices) -> list[dict]:
    """A page of invoices with their payments (one query for the page's payments)."""
    invoices = list(invoices)
    return invoice_selectors.invoices_render(invoices, payments=selectors.payments_for_invoices(invoices))


def _created(invoice: Invoice) -> Response:
    return Response(invoice_selectors.invoice_render_created(invoice), status=201)


def _invoice_render(invoice: Invoice) -> dict:
    return invoice_selectors.invoice_render(
        invoice, payments=selectors.invoice_payments(invoice_id=invoice.id)
    )


# ---- views ---------------------------------------------------------------------------------------------------


class InvoiceViewSet(ApiViewSet):
    lookup_url_kwarg = "invoice_id"
    lookup_value_converter = "str"

    def _created_with_replay(self, request, new: invoice_services.NewInvoice) -> Response:
        """The 201 of a prepared invoice, written with its stored Idempotency-Key replay in one statement: the
        invoice and the replay commit together, with no transaction round trips of their own (ADR 0024)."""
        response = _created(new.invoice)
        replay = self.idempotency_replay_cte(request, response)
        invoice_services.invoice_insert(new, also=[replay] if replay is not None else [])
        return self.idempotency_stored(response)

    @extend_schema(
        operation_id="invoices_list",
        summary="List invoices (newest first, cursor pagination)",
        parameters=INVOICE_LIST_PARAMETERS,
        responses={200: InvoiceListOutput, **ERRORS},
    )
    @reads_from_replica
    def list(self, request):
        qs = invoice_selectors.invoice_list(**tenant(request), filters=invoice_filters(request.query_params))
        return Response(paginate(qs, params=request.query_params, render=_invoices_render))

    @extend_schema(
        operation_id="invoices_create",
        summary="Create an invoice",
        description=(
            "Line items with per-line tax rates; totals, the gateway's service fee and the installments (2-12, "
            "optional) are computed from them; amounts are decimal strings in major units. The invoice is created "
            "as `draft` (editable with PATCH) and becomes `pending` when its first payment is initiated; the "
            "gateway account is `gateway` (a name or a `gwa_` id) or the mode's default for the currency."
        ),
        request=InvoiceCreateInput,
        responses={201: InvoiceOutput, **WRITE_ERRORS},
        examples=[
            OpenApiExample(
                "Three installments in IDR",
                request_only=True,
                value={
                    "currency": "IDR",
                    "gateway": "sandbox",
                    "external_id": "order-1042",
                    "description": "English course, term 1",
                    "customer": {"name": "Budi", "email": "budi@example.com"},
                    "line_items": [
                        {"name": "Course fee", "quantity": 1, "unit_price": "300000", "tax_rate": "0.11"}
                    ],
                    "installments": {"count": 3},
                    "metadata": {"crm_id": "C-77"},
                },
            )
        ],
    )
    def create(self, request):
        validated = create_input(request.data)  # None: the serializer decides (and words any error)
        if validated is None:
            body = InvoiceCreateInput(data=request.data)
            body.is_valid(raise_exception=True)
            validated = body.validated_data
        new = invoice_services.invoice_prepare(**tenant(request), **service_kwargs(validated))
        return self._created_with_replay(request, new)

    @extend_schema(
        operation_id="invoices_retrieve",
        summary="Retrieve an invoice",
        responses={200: InvoiceOutput, **ERRORS},
    )
    def retrieve(self, request, invoice_id: str):
        invoice = invoice_selectors.invoice_get(**tenant(request), invoice_id=invoice_id)
        return Response(_invoice_render(invoice))

    @extend_schema(
        operation_id="invoices_update",
        summary="Edit a draft invoice (amounts are recomputed); metadata can change in any status",
        request=InvoiceUpdateInput,
        responses={200: InvoiceOutput, **WRITE_ERRORS},
    )
    def partial_update(self, request, invoice_id: str):
        body = InvoiceUpdateInput(data=request.data)
        body.is_valid(raise_exception=True)
        invoice = invoice_services.invoice_update(
            **tenant(request), invoice_id=invoice_id, **service_kwargs(body.validated_data)
        )
        return Response(_invoice_render(invoice))

    @extend_schema(
        operation_id="invoices_void",
        summary="Void an invoice that has received no money (draft or pending)",
        request=None,
        responses={200: InvoiceOutput, **WRITE_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def void(self, request, invoice_id: str):
        invoice = services.invoice_void_closing_payments(**tenant(request), invoice_id=invoice_id)
        return Response(_invoice_render(invoice))

    @extend_schema(
        operation_id="invoices_supplementary_create",
        summary="Create a supplementary invoice (currency, customer and gateway inherited)",
        request=SupplementaryInput,
        responses={201: InvoiceOutput, **WRITE_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def supplementary(self, request, invoice_id: str):
        body = SupplementaryInput(data=request.data)
        body.is_valid(raise_exception=True)
        new = invoice_services.invoice_prepare_supplementary(
            **tenant(request), parent_id=invoice_id, **service_kwargs(body.validated_data)
        )
        return self._created_with_replay(request, new)

    @extend_schema(
        operation_id="invoices_installments_list",
        summary="An invoice's installments",
        responses={200: InstallmentListOutput, **ERRORS},
    )
    @action(detail=True, methods=["get"])
    def installments(self, request, invoice_id: str):
        return Response(invoice_selectors.invoice_installments(**tenant(request), invoice_id=invoice_id))

    @extend_schema(
        operation_id="invoices_overpayment_retrieve",
        summary="Money received above the invoice's amount due, by payment",
        responses={200: OverpaymentOutput, **ERRORS},
    )
    @action(detail=True, methods=["get"])
    def overpayment(self, request, invoice_id: str):
        return Response(invoice_selectors.invoice_overpayment(**tenant(request), invoice_id=invoice_id))

    @extend_schema(
        operation_id="invoices_payments_create",
        examples=[OpenApiExample("The next installment due", request_only=True, value={})],
        summary="Initiate a payment for an invoice (installment)",
        description=(
            "Creates the payment at the invoice's gateway and returns it with `payment_url` (201). If a payment "
            "for the same installment is still open (initiating, pending or unknown) that payment is returned "
            "instead (200): never a second gateway charge. A concurrent initiation on the same invoice gets 409 "
            "`payment_in_progress`; a later installment 409 `installment_out_of_order`; an expired invoice 409 "
            "`invoice_expired`. Gateway refusal: 502 `gateway_error` (payment `failed`); gateway timeout: 504 "
            '(payment `unknown`, settled later by reconciliation). `capture_method: "manual"` authorizes only '
            "(the payment becomes `authorized`; capture it with POST /v1/payments/{id}/capture); a gateway that "
            "cannot hold money gives 400 `capture_method_unsupported`; a gateway account that no longer takes the "
            "invoice's currency gives 400 `gateway_currency_unsupported` (GET /v1/gateway-accounts shows each "
            "gateway's capabilities). Risk: the attempt is scored before the "
            "gateway is called (rules: GET/PATCH /v1/risk-settings; `risk` passes the payer's IP and device); a "
            "score at or above the block threshold gives 402 `payment_blocked` (the error names the failed "
            "`payment` and its `risk_reasons`; event `payment.blocked`; nothing reaches the gateway); at or above "
            "the review threshold the payment proceeds flagged (`review.status` pending; a manual capture is held "
            "until approved)."
        ),
        request=PaymentCreateInput,
        responses={
            201: PaymentOutput,
            200: PaymentOutput,
            **error_responses(400, 402, 404, 409, 502, 504),
        },
    )
    @action(detail=True, methods=["post"])
    def payments(self, request, invoice_id: str):
        body = PaymentCreateInput(data=request.data if request.data is not None else {})
        body.is_valid(raise_exception=True)
        result = services.payment_initiate(
            **tenant(request),
            invoice_id=invoice_id,
            installment_number=body.validated_data.get("installment"),
            capture_method=body.validated_data["capture_method"],
            risk=RiskInput(**body.validated_data["risk"]) if "risk" in body.validated_data else None,
        )
        return Response(
            selectors.payment_representation(result.payment), status=201 if result.created else 200
        )


class PaymentViewSet(ApiViewSet):
    lookup_url_kwarg = "payment_id"
    lookup_value_converter = "str"

    @extend_schema(
        operation_id="payments_list",
        summary="List payments (newest first, cursor pagination)",
        parameters=[
            OpenApiParameter("status", str, enum=PaymentStatus.values),
            OpenApiParameter("invoice", str, description="Only this invoice's payments"),
            *PAGINATION_PARAMETERS,
        ],
        responses={200: PaymentListOutput},
    )
    @reads_from_replica
    def list(self, request):
        params = request.query_params
        qs = selectors.payment_list(
            **tenant(request),
            status=query_choice(params.get("status"), "status", PaymentStatus.values),
            invoice=params.get("invoice") or None,
        )
        return Response(paginate(qs, params=params, render=selectors.payments_render))

    @extend_schema(
        operation_id="payments_retrieve",
        summary="Retrieve a payment",
        responses={200: PaymentOutput, **error_responses(404)},
    )
    def retrieve(self, request, payment_id: str):
        payment = selectors.payment_get(**tenant(request), payment_id=payment_id)
        return Response(selectors.payment_representation(payment))

    @extend_schema(
        operation_id="payments_capture",
        summary="Capture an authorized payment (all of it, or part)",
        description=(
            "Collects `amount` (default: all of `amount_capturable`) of an `authorized` payment through its "
            "gateway; the rest of the hold is released. The payment becomes `succeeded` with `amount_received` = "
            "the captured amount, which is applied to the invoice (a partial capture pays part of it). Not "
            "authorized (or its hold lapsed): 409 `payment_not_capturable`; more than held: 422 "
            "`capture_exceeds_authorized`; a capture or void already under way: 409 `capture_in_progress`; flagged by "
            "the risk check and not yet approved: 409 `payment_under_review` (rejected: `payment_review_rejected`). "
            "Gateway "
            "refusal: 502 (still authorized); timeout: 504 (still authorized; PayTrust asks the gateway later)."
        ),
        request=PaymentCaptureInput,
        responses={200: PaymentOutput, **error_responses(400, 404, 409, 422, 502, 504)},
        examples=[OpenApiExample("Capture part of the hold", request_only=True, value={"amount": "100000"})],
    )
    @action(detail=True, methods=["post"])
    def capture(self, request, payment_id: str):
        body = PaymentCaptureInput(data=request.data if request.data is not None else {})
        body.is_valid(raise_exception=True)
        payment = services.payment_capture(
            **tenant(request), payment_id=payment_id, amount=body.validated_data.get("amount")
        )
        return Response(selectors.payment_representation(payment))

    @extend_schema(
        operation_id="payments_void",
        summary="Void an authorized payment (release its hold)",
        description=(
            "Releases the hold of an `authorized` payment at its gateway; the payment becomes `canceled` (final). "
            "Not authorized: 409 `payment_not_voidable`; a capture under way: 409 `capture_in_progress`."
        ),
        request=None,
        responses={200: PaymentOutput, **error_responses(404, 409, 502, 504)},
    )
    @action(detail=True, methods=["post"])
    def void(self, request, payment_id: str):
        # No fields: anything sent is refused (400 unknown field), as everywhere (SPEC §2).
        StrictSerializer(data=request.data if request.data is not None else {}).is_valid(raise_exception=True)
        payment = services.payment_void(**tenant(request), payment_id=payment_id)
        return Response(selectors.payment_representation(payment))

    @REFUND_CREATE_SCHEMA
    @action(detail=True, methods=["post"])
    def refunds(self, request, payment_id: str):
        return refund_create_view(request, payment_id)
