"""Public (unauthenticated) sandbox checkout pages: /sandbox/checkout/{token}."""

from django.urls import path

from webhooks.inbound.sandbox_checkout import checkout

urlpatterns: list = [path("checkout/<str:token>", checkout, name="sandbox-checkout")]
