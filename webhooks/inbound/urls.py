"""Inbound gateway notifications: /v1/webhooks/… (outbound owns /v1/webhook-endpoints… and /v1/events…).

The actions are mapped explicitly, not by a router: the receive URL has two parameters and no API key (its own
viewset), and the replay URL matches only whk_ ids (a regex path) so that it never shadows
/webhooks/{gateway}/{gateway_account_id}, while /webhooks/failed stays a plain path.
"""

from django.urls import path, re_path

from webhooks.inbound.api import InboundNotificationViewSet, InboundWebhookReceiveViewSet
from webhooks.inbound.gateway_return import gateway_cancel, gateway_return

urlpatterns: list = [
    path(
        "webhooks/failed",
        InboundNotificationViewSet.as_view({"get": "failed"}),
        name="inbound-webhook-failed",
    ),
    re_path(
        r"^webhooks/(?P<event_id>whk_[0-9A-Za-z]+)/replay$",
        InboundNotificationViewSet.as_view({"post": "replay"}),
        name="inbound-webhook-replay",
    ),
    # The customer's return from a gateway's approval page (PayPal return_url / cancel_url).
    path("webhooks/<str:gateway>/<str:account_id>/return", gateway_return, name="gateway-return"),
    path("webhooks/<str:gateway>/<str:account_id>/cancel", gateway_cancel, name="gateway-cancel"),
    path(
        "webhooks/<str:gateway>/<str:account_id>",
        InboundWebhookReceiveViewSet.as_view({"post": "receive"}),
        name="inbound-webhook-receive",
    ),
]
