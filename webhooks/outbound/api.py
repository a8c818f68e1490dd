"""Outbound webhooks API: `/v1/webhook-endpoints…` and `/v1/events…`.

(`/v1/webhooks/…` belongs to the inbound side: gateway -> PayTrust.)
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.response import Response

from apikeys.viewsets import ApiViewSet, tenant
from paytrust.db_routing import reads_from_replica
from paytrust.pagination import paginate
from paytrust.params import query_choice
from paytrust.schema import PAGINATION_PARAMETERS, error_responses
from paytrust.serializers import MetadataField, StrictSerializer
from webhooks.outbound import selectors, services
from webhooks.outbound.models import ALL_EVENTS, DeliveryStatus, EventType

# Common errors (400, 401, 429, 500, idempotency 409/422) are added by paytrust.schema.ApiAutoSchema.
READ_ERRORS = error_responses(404)
WRITE_ERRORS = error_responses(404, 422)

EVENT_TYPE_CHOICES = [*EventType.values, ALL_EVENTS]


# --- input (shape only) ------------------------------------------------------------------------------------

# webhooks.outbound.destinations checks the URL when it is registered: http(s), a host, a port up to 65535, no
# credentials or fragment (documented here, host names as plain ASCII); that the host resolves to a public address
# (and http only for localhost in test mode) is checked against DNS and the mode, which no schema can say.
_PORT = r"(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4})"
_URL_CONSTRAINTS = {
    "url": {
        "pattern": rf"^[Hh][Tt][Tt][Pp][Ss]?://[A-Za-z0-9.-]+(:{_PORT})?([/?][^#\s]*)?$",
        "format": "uri",
    }
}
# services._validate_enabled_events: event types (repeats are dropped), or "*" alone.
_EVENTS_CONSTRAINTS = {
    "enabled_events": {
        "anyOf": [
            {
                "type": "array",
                "items": {"type": "string", "enum": list(EventType.values)},
                "minItems": 1,
                "maxItems": len(EVENT_TYPE_CHOICES),
            },
            {
                "type": "array",
                "items": {"type": "string", "enum": [ALL_EVENTS]},
                "minItems": 1,
                "maxItems": len(EVENT_TYPE_CHOICES),
            },
        ]
    }
}


class EndpointCreateInput(StrictSerializer):
    schema_constraints = {**_URL_CONSTRAINTS, **_EVENTS_CONSTRAINTS}

    url = serializers.CharField(
        max_length=2048, help_text="https:// URL (http://localhost allowed in test mode)."
    )
    enabled_events = serializers.ListField(
        child=serializers.ChoiceField(choices=EVENT_TYPE_CHOICES),
        min_length=1,
        max_length=len(EVENT_TYPE_CHOICES),
        help_text='Event types to receive, or ["*"] for all.',
    )
    description = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    metadata = MetadataField(required=False, default=dict)
    enabled = serializers.BooleanField(required=False, default=True)


class EndpointUpdateInput(StrictSerializer):
    schema_constraints = {**_URL_CONSTRAINTS, **_EVENTS_CONSTRAINTS}

    url = serializers.CharField(max_length=2048, required=False)
    enabled_events = serializers.ListField(
        child=serializers.ChoiceField(choices=EVENT_TYPE_CHOICES),
        min_length=1,
        max_length=len(EVENT_TYPE_CHOICES),
        required=False,
    )
    description = serializers.CharField(max_length=500, required=False, allow_blank=True)
    metadata = MetadataField(required=False)
    enabled = serializers.BooleanField(required=False)


class RotateSecretInput(StrictSerializer):
    grace_seconds = serializers.IntegerField(
        required=False,
        min_value=0,
        max_value=services.MAX_GRACE_SECONDS,
        help_text="How long the previous secret keeps signing beside the new one (default 24 h).",
    )


# --- output ------------------------------------------------------------------------------------------------


class EndpointOutput(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.CharField(default="webhook_endpoint")
    mode = serializers.CharField()
    url = serializers.CharField()
    description = serializers.CharField()
    enabled_events = serializers.ListField(child=serializers.CharField())
    enabled = serializers.BooleanField()
    disabled_reason = serializers.CharField(
        allow_null=True, help_text='"gone" (answered 410), "manual" or null.'
    )
    metadata = serializers.DictField(child=serializers.CharField())
    previous_secret_expires_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class EndpointWithSecretOutput(EndpointOutput):
    secret = serializers.CharField(
        allow_null=True,
        help_text="The whsec_ signing secret, shown in this response only (null in an idempotent replay).",
    )


class EventOutput(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.CharField(default="event")
    mode = serializers.CharField()
    type = serializers.CharField()
    data = serializers.JSONField(help_text="Snapshot of the object when the event happened.")
    created_at = serializers.DateTimeField()


class AttemptOutput(serializers.Serializer):
    attempted_at = serializers.DateTimeField()
    succeeded = serializers.BooleanField()
    status_code = serializers.IntegerField(allow_null=True)
    latency_ms = serializers.IntegerField(allow_null=True)
    error = serializers.CharField()
    response_excerpt = serializers.CharField()


class DeliveryOutput(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.CharField(default="webhook_delivery")
    event = serializers.CharField(source="event_id")
    event_type = serializers.CharField(source="event.type")
    endpoint = serializers.CharField(source="endpoint_id")
    status = serializers.ChoiceField(choices=DeliveryStatus.choices)
    attempt_count = serializers.IntegerField()
    next_attempt_at = serializers.DateTimeField(allow_null=True)
    last_attempt_at = serializers.DateTimeField(allow_null=True)
    last_status_code = serializers.IntegerField(allow_null=True)
    last_error = serializers.CharField()
    succeeded_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class DeliveryWithAttemptsOutput(DeliveryOutput):
    attempts = AttemptOutput(many=True, source="recent_attempts")


class EventDetailOutput(EventOutput):
    deliveries = DeliveryWithAttemptsOutput(many=True)


def _list_envelope(name: str, item) -> serializers.Serializer:
    return inline_serializer(
        name=name,
        fields={
            "data": item(many=True),
            "has_more": serializers.BooleanField(),
            "next_cursor": serializers.CharField(allow_null=True),
        },
    )


def render_endpoint(endpoint, *, secret: str | None = None) -> dict:
    data = EndpointOutput(endpoint).data
    data["disabled_reason"] = endpoint.disabled_reason or None
    if secret is not None:
        data["secret"] = secret
    return data


def render_event(event) -> dict:
    return EventOutput(event).data


# --- views -------------------------------------------------------------------------------------------------


# /v1/webhook-endpoints[/{endpoint_id}[/rotate-secret|/deliveries]]: the merchant's webhook endpoints.
class WebhookEndpointViewSet(ApiViewSet):
    idempotency_secret_fields = ("secret",)  # an idempotent replay returns secret: null, it is never stored
    lookup_url_kwarg = "endpoint_id"

    def _endpoint(self, request, endpoint_id):
        return selectors.endpoint_get(**tenant(request), endpoint_id=endpoint_id)

    @extend_schema(
        summary="List webhook endpoints",
        operation_id="v1_webhook_endpoints_list",
        parameters=PAGINATION_PARAMETERS,
        responses={200: _list_envelope("WebhookEndpointList", EndpointOutput), **READ_ERRORS},
        tags=["webhook endpoints"],
    )
    @reads_from_replica
    def list(self, request):
        qs = selectors.endpoint_list(**tenant(request))
        return Response(
            paginate(qs, params=request.query_params, render=lambda rows: [render_endpoint(e) for e in rows])
        )

    @extend_schema(
        summary="Register a webhook endpoint",
        description="The response carries the `whsec_` signing secret; it is never shown again.",
        request=EndpointCreateInput,
        examples=[
            OpenApiExample(
                "Paid invoices",
                request_only=True,
                value={
                    "url": "https://shop.example.com/paytrust/webhooks",
                    "enabled_events": ["invoice.paid", "invoice.partially_paid", "payment.failed"],
                    "description": "Order fulfilment",
                },
            )
        ],
        responses={201: EndpointWithSecretOutput, **WRITE_ERRORS},
        tags=["webhook endpoints"],
    )
    def create(self, request):
        data = EndpointCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint, secret = services.endpoint_create(**tenant(request), **data.validated_data)
        return Response(render_endpoint(endpoint, secret=secret), status=201)

    @extend_schema(
        summary="Retrieve a webhook endpoint",
        responses={200: EndpointOutput, **READ_ERRORS},
        tags=["webhook endpoints"],
    )
    def retrieve(self, request, endpoint_id: str):
        return Response(render_endpoint(self._endpoint(request, endpoint_id)))

    @extend_schema(
        summary="Update a webhook endpoint",
        description="`enabled: true` re-enables an endpoint that was disabled (also after it answered 410).",
        request=EndpointUpdateInput,
        responses={200: EndpointOutput, **WRITE_ERRORS},
        tags=["webhook endpoints"],
    )
    def partial_update(self, request, endpoint_id: str):
        endpoint = self._endpoint(request, endpoint_id)
        data = EndpointUpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint = services.endpoint_update(endpoint=endpoint, **data.validated_data)
        return Response(render_endpoint(endpoint))

    @extend_schema(
        summary="Delete a webhook endpoint",
        description="Stops deliveries at once (pending ones are cancelled). Delivery history is kept.",
        responses={
            200: inline_serializer(
                name="WebhookEndpointDeleted",
                fields={
                    "id": serializers.CharField(),
                    "object": serializers.CharField(),
                    "deleted": serializers.BooleanField(),
                },
            ),
            **READ_ERRORS,
        },
        tags=["webhook endpoints"],
    )
    def destroy(self, request, endpoint_id: str):
        endpoint = services.endpoint_delete(endpoint=self._endpoint(request, endpoint_id))
        return Response({"id": endpoint.id, "object": "webhook_endpoint", "deleted": True})

    @extend_schema(
        summary="Rotate a webhook endpoint's signing secret",
        description=(
            "Returns the new `whsec_` secret once. Until `previous_secret_expires_at` every delivery carries two "
            "`v1,` signatures (new and previous secret), so the receiver can switch without losing events."
        ),
        request=RotateSecretInput,
        responses={200: EndpointWithSecretOutput, **WRITE_ERRORS},
        tags=["webhook endpoints"],
    )
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request, endpoint_id: str):
        endpoint = self._endpoint(request, endpoint_id)
        data = RotateSecretInput(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint, secret = services.endpoint_rotate_secret(
            endpoint=endpoint, grace_seconds=data.validated_data.get("grace_seconds")
        )
        return Response(render_endpoint(endpoint, secret=secret))

    @extend_schema(
        summary="List an endpoint's deliveries",
        parameters=[
            OpenApiParameter("status", str, enum=DeliveryStatus.values),
            *PAGINATION_PARAMETERS,
        ],
        responses={
            200: _list_envelope("WebhookDeliveryList", DeliveryOutput),
            **READ_ERRORS,
        },
        tags=["webhook endpoints"],
    )
    @action(detail=True, methods=["get"])
    def deliveries(self, request, endpoint_id: str):
        endpoint = self._endpoint(request, endpoint_id)
        status = query_choice(request.query_params.get("status"), "status", DeliveryStatus.values)
        qs = selectors.endpoint_deliveries(endpoint=endpoint, status=status)
        return Response(
            paginate(
                qs, params=request.query_params, render=lambda rows: DeliveryOutput(rows, many=True).data
            )
        )


# /v1/events[/{event_id}[/redeliver]]: the merchant's outbound events, with their deliveries.
class EventViewSet(ApiViewSet):
    lookup_url_kwarg = "event_id"

    @extend_schema(
        summary="List events",
        operation_id="v1_events_list",
        parameters=[
            OpenApiParameter("type", str, enum=EventType.values),
            *PAGINATION_PARAMETERS,
        ],
        responses={200: _list_envelope("EventList", EventOutput), **READ_ERRORS},
        tags=["events"],
    )
    @reads_from_replica
    def list(self, request):
        event_type = query_choice(request.query_params.get("type"), "type", EventType.values)
        qs = selectors.event_list(**tenant(request), type=event_type)
        return Response(
            paginate(qs, params=request.query_params, render=lambda rows: [render_event(e) for e in rows])
        )

    @extend_schema(
        summary="Retrieve an event with its deliveries and their attempts",
        responses={200: EventDetailOutput, **READ_ERRORS},
        tags=["events"],
    )
    def retrieve(self, request, event_id: str):
        event = selectors.event_get(**tenant(request), event_id=event_id)
        data = render_event(event)
        data["deliveries"] = DeliveryWithAttemptsOutput(
            selectors.event_deliveries(event=event), many=True
        ).data
        return Response(data)

    @extend_schema(
        summary="Redeliver an event",
        description=(
            "Queues the event again for every enabled endpoint that matches it now (also those that already "
            "received it; receivers deduplicate on `webhook-id`, the event id)."
        ),
        request=None,
        responses={
            202: inline_serializer(
                name="EventRedelivered",
                fields={"event": serializers.CharField(), "deliveries_queued": serializers.IntegerField()},
            ),
            **READ_ERRORS,
        },
        tags=["events"],
    )
    @action(detail=True, methods=["post"])
    def redeliver(self, request, event_id: str):
        event = selectors.event_get(**tenant(request), event_id=event_id)
        queued = services.event_redeliver(event=event)
        return Response({"event": event.id, "deliveries_queued": queued}, status=202)
