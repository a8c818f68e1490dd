"""Outbound: /v1/webhook-endpoints… and /v1/events…  (inbound owns /v1/webhooks/…)."""

from django.urls import path

from webhooks.outbound.api import (
    EventDetailApi,
    EventListApi,
    EventRedeliverApi,
    WebhookEndpointDeliveriesApi,
    WebhookEndpointDetailApi,
    WebhookEndpointListApi,
    WebhookEndpointRotateSecretApi,
)

urlpatterns: list = [
    path("webhook-endpoints", WebhookEndpointListApi.as_view(), name="webhook-endpoint-list"),
    path(
        "webhook-endpoints/<str:endpoint_id>",
        WebhookEndpointDetailApi.as_view(),
        name="webhook-endpoint-detail",
    ),
    path(
        "webhook-endpoints/<str:endpoint_id>/rotate-secret",
        WebhookEndpointRotateSecretApi.as_view(),
        name="webhook-endpoint-rotate-secret",
    ),
    path(
        "webhook-endpoints/<str:endpoint_id>/deliveries",
        WebhookEndpointDeliveriesApi.as_view(),
        name="webhook-endpoint-deliveries",
    ),
    path("events", EventListApi.as_view(), name="event-list"),
    path("events/<str:event_id>", EventDetailApi.as_view(), name="event-detail"),
    path("events/<str:event_id>/redeliver", EventRedeliverApi.as_view(), name="event-redeliver"),
]
