"""Inbound gateway webhooks over HTTP.

- `POST /v1/webhooks/{gateway}/{gateway_account_id}`: called by gateways. No API key (AllowAny, no
  authentication class, so neither the API-key rate limiter nor CSRF applies); the gateway's signature or token
  authenticates it. 200 `{"received": true, …}` once stored, also for a duplicate delivery.
- `GET /v1/webhooks/failed`: failed inbound events (a merchant key: its own, in its mode; an admin key: all).
- `POST /v1/webhooks/{id}/replay`: queue an event for processing again.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.viewsets import ViewSet

from apikeys.viewsets import ApiViewSet
from paytrust.pagination import paginate
from paytrust.schema import PAGINATION_PARAMETERS, error_responses
from webhooks.inbound import services as inbound
from webhooks.inbound.selectors import (
    inbound_event_representation,
    inbound_events_failed,
    inbound_events_render,
)


class InboundAttemptOutput(serializers.Serializer):
    number = serializers.IntegerField()
    started_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    succeeded = serializers.BooleanField(allow_null=True)
    error = serializers.CharField(allow_null=True)


class InboundEventOutput(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.CharField(default="inbound_webhook_event")
    mode = serializers.CharField()
    merchant = serializers.CharField()
    gateway = serializers.CharField()
    gateway_account = serializers.CharField()
    gateway_event_id = serializers.CharField()
    payment = serializers.CharField(
        allow_null=True, help_text="The payment it was applied to, once processed."
    )
    payment_reference = serializers.CharField(allow_null=True, help_text="The payment id the gateway named.")
    notification_status = serializers.CharField()
    status = serializers.CharField(help_text="`received`, `processing`, `processed` or `failed`.")
    attempts = serializers.IntegerField()
    next_attempt_at = serializers.DateTimeField(allow_null=True)
    last_error = serializers.CharField(allow_null=True)
    outcome = serializers.CharField(allow_null=True)
    processed_at = serializers.DateTimeField(allow_null=True)
    attempt_log = InboundAttemptOutput(many=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class InboundEventListOutput(serializers.Serializer):
    data = InboundEventOutput(many=True)
    has_more = serializers.BooleanField()
    next_cursor = serializers.CharField(allow_null=True)


AckOutput = inline_serializer(
    name="InboundWebhookAck",
    fields={
        "received": serializers.BooleanField(),
        "id": serializers.CharField(allow_null=True, help_text="whk_ id; null for a duplicate delivery"),
        "duplicate": serializers.BooleanField(),
    },
)


# POST /v1/webhooks/{gateway}/{gateway_account_id}, called by gateways: a plain DRF viewset, not an ApiViewSet
# (no API key, so no authentication class, rate limit, Idempotency-Key or CSRF check).
class InboundWebhookReceiveViewSet(ViewSet):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="webhooks_inbound_receive",
        summary="Receive a gateway notification (called by Xendit, Midtrans, PayPal, the sandbox)",
        description=(
            "Authenticated by the gateway's own mechanism: Xendit `x-callback-token`, Midtrans `signature_key` "
            "(SHA512 of order_id + status_code + gross_amount + server key), PayPal's verify-webhook-signature API "
            "(the PAYPAL-TRANSMISSION-* headers and the account's webhook_id; when PayPal cannot be reached the "
            "answer is 503 with Retry-After and PayPal delivers again), sandbox `X-Sandbox-Signature`. "
            "The raw body is stored and acknowledged with 200; processing happens in a background worker. "
            "A duplicate delivery returns 200 and changes nothing. A notification for a payment this account "
            "does not know is stored and acknowledged (it fails in processing and shows in "
            "/v1/webhooks/failed), so the gateway does not retry it pointlessly."
        ),
        request={"application/json": OpenApiTypes.OBJECT},
        responses={
            200: AckOutput,
            400: OpenApiResponse(description="Malformed payload (not JSON, missing fields)."),
            401: OpenApiResponse(
                description="Missing or invalid signature / callback token. Nothing stored."
            ),
            404: OpenApiResponse(description="No such gateway account for this gateway."),
            503: OpenApiResponse(
                description="The gateway's verification API (PayPal) cannot be reached now; nothing stored. "
                "Retry-After says when to deliver again."
            ),
        },
        auth=[],
    )
    def receive(self, request, gateway: str, account_id: str):
        result = inbound.inbound_webhook_receive(
            gateway=gateway, account_id=account_id, headers=request.headers, raw_body=request.body
        )
        return Response({"received": True, "id": result.event_id, "duplicate": result.duplicate}, status=200)


# /v1/webhooks/failed and /v1/webhooks/{id}/replay: inbound notifications for the merchants (a merchant key: its
# own, in its mode; an admin key: all).
class InboundNotificationViewSet(ApiViewSet):
    @extend_schema(
        operation_id="webhooks_inbound_failed_list",
        summary="List failed inbound gateway webhooks (merchant: its own; admin key: every merchant's, of its mode)",
        parameters=[
            OpenApiParameter("gateway", str),
            *PAGINATION_PARAMETERS,
        ],
        responses={200: InboundEventListOutput},
    )
    def failed(self, request):
        principal = request.user
        qs = inbound_events_failed(
            merchant=None if principal.is_admin else principal.merchant,
            mode=principal.mode,  # an admin key sees every merchant's, of its own mode only
            gateway=request.query_params.get("gateway") or None,
        )
        return Response(paginate(qs, params=request.query_params, render=inbound_events_render))

    @extend_schema(
        operation_id="webhooks_inbound_replay",
        summary="Queue an inbound gateway webhook for processing again",
        description="Works for failed and processed events (processing is idempotent). 202 with the event.",
        request=None,
        responses={202: InboundEventOutput, **error_responses(404, 409)},
    )
    def replay(self, request, event_id: str):
        principal = request.user
        event = inbound.inbound_event_replay(
            event_id=event_id,
            merchant=None if principal.is_admin else principal.merchant,
            mode=principal.mode,  # an admin key sees every merchant's, of its own mode only
        )
        return Response(inbound_event_representation(event), status=202)
