"""The refund HTTP resource (SPEC §13; docs/adr/0046-refunds.md): `POST /v1/payments/{id}/refunds` (an action of
`payments.api.PaymentViewSet`, which calls `refund_create_view` here) and `RefundViewSet` (`GET /v1/refunds`,
`GET /v1/refunds/{id}`). Parse with an input serializer (shape only), call ONE service, render."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from apikeys.viewsets import ApiViewSet, tenant
from invoices.serializers import PositiveAmountField
from payments import selectors, services
from payments.models import RefundOrigin, RefundStatus
from paytrust import money
from paytrust.db_routing import reads_from_replica
from paytrust.pagination import paginate
from paytrust.params import query_choice
from paytrust.schema import PAGINATION_PARAMETERS, error_responses
from paytrust.serializers import MetadataField, StrictSerializer


class RefundCreateInput(StrictSerializer):
    amount = PositiveAmountField(
        required=False, help_text="Decimal string in major units; default all that is still refundable."
    )
    reason = serializers.CharField(required=False, allow_blank=True, max_length=500)
    metadata = MetadataField(required=False)


class RefundOutput(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.CharField(default="refund")
    mode = serializers.CharField()
    status = serializers.ChoiceField(choices=RefundStatus.values)
    amount = serializers.CharField()
    currency = serializers.CharField()
    payment = serializers.CharField()
    invoice = serializers.CharField()
    reason = serializers.CharField(allow_null=True)
    metadata = serializers.DictField(child=serializers.CharField())
    origin = serializers.ChoiceField(choices=RefundOrigin.values)
    dispute = serializers.BooleanField(help_text="A chargeback: the card holder's bank took the money back.")
    gateway_reference = serializers.CharField(allow_null=True, help_text="The gateway's id for the refund.")
    failure_code = serializers.CharField(allow_null=True)
    failure_message = serializers.CharField(allow_null=True, help_text="The gateway's reason, with `failed`.")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    succeeded_at = serializers.DateTimeField(allow_null=True)


class RefundListOutput(serializers.Serializer):
    data = RefundOutput(many=True)
    has_more = serializers.BooleanField()
    next_cursor = serializers.CharField(allow_null=True)


REFUND_CREATE_SCHEMA = extend_schema(
    operation_id="payments_refunds_create",
    summary="Refund a payment (in full or in part)",
    description=(
        "Refunds `amount` (default: all that is still refundable = received minus succeeded and pending refunds) "
        "through the payment's gateway, with the refund id as the gateway's idempotency key. 201 with the refund: "
        "`succeeded`, `failed` (with the gateway's `failure_message`) or `pending` (the gateway will say later; "
        "PayTrust asks it and sends `refund.succeeded` / `refund.failed`). 409 `payment_not_refundable` unless the "
        "payment collected money (succeeded, partially_refunded, refunded); 422 `refund_exceeds_available` when the "
        "amount is more than is still refundable (a fully refunded payment: anything); 400 `refund_unsupported` / "
        "`partial_refund_unsupported` when the gateway cannot."
    ),
    request=RefundCreateInput,
    responses={201: RefundOutput, **error_responses(400, 404, 409, 422)},
    examples=[
        OpenApiExample(
            "Part of the payment", request_only=True, value={"amount": "45000", "reason": "Returned"}
        )
    ],
)


def refund_create_view(request, payment_id: str) -> Response:
    body = RefundCreateInput(data=request.data if request.data is not None else {})
    body.is_valid(raise_exception=True)
    data = body.validated_data
    amount_minor = None
    if "amount" in data:
        payment = selectors.payment_get(**tenant(request), payment_id=payment_id)
        amount_minor = money.to_minor(data["amount"], payment.currency, param="amount", allow_zero=False)
    refund = services.refund_create(
        **tenant(request),
        payment_id=payment_id,
        amount_minor=amount_minor,
        reason=data.get("reason", ""),
        metadata=data.get("metadata"),
        origin=RefundOrigin.API,
    )
    return Response(selectors.refund_representation(refund, refund.payment), status=201)


class RefundViewSet(ApiViewSet):
    lookup_url_kwarg = "refund_id"
    lookup_value_converter = "str"

    @extend_schema(
        operation_id="refunds_list",
        summary="List refunds (newest first, cursor pagination)",
        parameters=[
            OpenApiParameter("payment", str, description="Only this payment's refunds"),
            OpenApiParameter("status", str, enum=RefundStatus.values),
            *PAGINATION_PARAMETERS,
        ],
        responses={200: RefundListOutput, **error_responses(400)},
    )
    @reads_from_replica
    def list(self, request):
        params = request.query_params
        qs = selectors.refund_list(
            **tenant(request),
            payment=params.get("payment") or None,
            status=query_choice(params.get("status"), "status", RefundStatus.values),
        )
        return Response(paginate(qs, params=params, render=selectors.refunds_render))

    @extend_schema(
        operation_id="refunds_retrieve",
        summary="Retrieve a refund",
        responses={200: RefundOutput, **error_responses(404)},
    )
    def retrieve(self, request, refund_id: str):
        refund = selectors.refund_get(**tenant(request), refund_id=refund_id)
        return Response(selectors.refund_representation(refund, refund.payment))
