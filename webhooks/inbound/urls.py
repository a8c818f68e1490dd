"""Inbound gateway notifications: /v1/webhooks/… (outbound owns /v1/webhook-endpoints… and /v1/events…)."""

from django.urls import path, re_path

from webhooks.inbound.api import FailedWebhooksApi, InboundWebhookApi, ReplayWebhookApi

urlpatterns: list = []

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
