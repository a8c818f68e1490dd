"""Outbound: /v1/webhook-endpoints… and /v1/events…  (inbound owns /v1/webhooks/…)."""

from django.urls import path, re_path

from webhooks.api import (
    EventDetailApi,
    EventListApi,
    EventRedeliverApi,
    WebhookEndpointDeliveriesApi,
    WebhookEndpointDetailApi,
    WebhookEndpointListApi,
    WebhookEndpointRotateSecretApi,
)
from webhooks.inbound_api import FailedWebhooksApi, InboundWebhookApi, ReplayWebhookApi

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

# Inbound gateway webhooks (webhooks/inbound_api.py). The replay route only matches whk_ ids, so it never
# shadows /webhooks/{gateway}/{gateway_account_id}.
urlpatterns += [
    path("webhooks/failed", FailedWebhooksApi.as_view(), name="inbound-webhook-failed"),
    re_path(
        r"^webhooks/(?P<event_id>whk_[0-9A-Za-z]+)/replay$",
        ReplayWebhookApi.as_view(),
        name="inbound-webhook-replay",
    ),
    path(
        "webhooks/<str:gateway>/<str:account_id>", InboundWebhookApi.as_view(), name="inbound-webhook-receive"
    ),
]
