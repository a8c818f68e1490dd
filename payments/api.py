"""Payments API: POST /v1/invoices/{id}/payments, GET /v1/payments, GET /v1/payments/{id}."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from apikeys.viewsets import ApiView, tenant
from payments import selectors, services
from payments.models import PaymentStatus
from paytrust.pagination import paginate
from paytrust.schema import error_responses
from paytrust.serializers import StrictSerializer


class PaymentCreateInput(StrictSerializer):
    installment = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=12,
        help_text="Installment number; default the next one due. Only the lowest unpaid installment is payable.",
    )


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
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class PaymentListOutput(serializers.Serializer):
    data = PaymentOutput(many=True)
    has_more = serializers.BooleanField()
    next_cursor = serializers.CharField(allow_null=True)


class InvoicePaymentCreateApi(ApiView):
    @extend_schema(
        operation_id="invoices_payments_create",
        summary="Initiate a payment for an invoice (installment)",
        description=(
            "Creates the payment at the invoice's gateway and returns it with `payment_url` (201). If a payment "
            "for the same installment is still open (initiating, pending or unknown) that payment is returned "
            "instead (200): never a second gateway charge. A concurrent initiation on the same invoice gets 409 "
            "`payment_in_progress`; a later installment 409 `installment_out_of_order`; an expired invoice 409 "
            "`invoice_expired`. Gateway refusal: 502 `gateway_error` (payment `failed`); gateway timeout: 504 "
            "(payment `unknown`, settled later by reconciliation)."
        ),
        request=PaymentCreateInput,
        responses={
            201: PaymentOutput,
            200: PaymentOutput,
            **error_responses(404, 409, 502, 504),
        },
    )
    def post(self, request, invoice_id: str):
        body = PaymentCreateInput(data=request.data if request.data is not None else {})
        body.is_valid(raise_exception=True)
        result = services.payment_initiate(
            **tenant(request),
            invoice_id=invoice_id,
            installment_number=body.validated_data.get("installment"),
        )
        return Response(
            selectors.payment_representation(result.payment), status=201 if result.created else 200
        )


class PaymentListApi(ApiView):
    @extend_schema(
        operation_id="payments_list",
        summary="List payments (newest first, cursor pagination)",
        parameters=[
            OpenApiParameter("status", str, enum=PaymentStatus.values),
            OpenApiParameter("invoice", str, description="Only this invoice's payments"),
            OpenApiParameter("limit", int, description="1–100, default 20"),
            OpenApiParameter("cursor", str),
        ],
        responses={200: PaymentListOutput},
    )
    def get(self, request):
        params = request.query_params
        qs = selectors.payment_list(
            **tenant(request), status=params.get("status") or None, invoice=params.get("invoice") or None
        )
        return Response(paginate(qs, params=params, render=selectors.payments_render))


class PaymentDetailApi(ApiView):
    @extend_schema(
        operation_id="payments_retrieve",
        summary="Retrieve a payment",
        responses={200: PaymentOutput, **error_responses(404)},
    )
    def get(self, request, payment_id: str):
        payment = selectors.payment_get(**tenant(request), payment_id=payment_id)
        return Response(selectors.payment_representation(payment))
