"""Outbound: /v1/webhook-endpoints… and /v1/events…  (inbound owns /v1/webhooks/…)."""

from rest_framework.routers import SimpleRouter

from webhooks.outbound.api import EventViewSet, WebhookEndpointViewSet

router = SimpleRouter(trailing_slash=False, use_regex_path=False)
router.register("webhook-endpoints", WebhookEndpointViewSet, basename="webhook-endpoint")
router.register("events", EventViewSet, basename="event")

urlpatterns = router.urls
