from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from paytrust import ops, pages

handler400 = "paytrust.errors.handler400"
handler403 = "paytrust.errors.handler403"
handler404 = "paytrust.errors.handler404"
handler500 = "paytrust.errors.handler500"

api_v1 = [
    path("", include("apikeys.urls")),
    path("", include("gateways.urls")),
    path("", include("ledger.urls")),
    path("", include("risk.urls")),
    path("", include("payments.urls")),
    path("", include("webhooks.outbound.urls")),
    path("", include("webhooks.inbound.urls")),
    path("", include("reporting.urls")),
    path("", include("iso20022.urls")),
]

urlpatterns = [
    path("", pages.landing, name="landing"),
    path("v1/", include(api_v1)),
    path("v1/schema", SpectacularAPIView.as_view(), name="schema"),
    path("docs", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("redoc", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    path("healthz", ops.healthz, name="healthz"),
    path("readyz", ops.readyz, name="readyz"),
    path("metrics", ops.metrics_view, name="metrics"),
    re_path(r"^static/(?P<path>.+)$", ops.static, name="static"),
    path("sandbox/", include("webhooks.inbound.sandbox_urls")),
    path("admin/", admin.site.urls),
    # Near-misses a person types (APPEND_SLASH is off: the API's URLs have no trailing slash).
    path("admin", pages.redirect_to("/admin/")),
    path("docs/", pages.redirect_to("/docs")),
    path("redoc/", pages.redirect_to("/redoc")),
]
