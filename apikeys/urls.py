from django.urls import path
from rest_framework.routers import SimpleRouter

from apikeys.api import ApiKeyViewSet, AuditLogViewSet, MerchantViewSet

router = SimpleRouter(trailing_slash=False, use_regex_path=False)
# The audit log first: its /api-keys/audit must not be taken for the key "audit" (/api-keys/{key_id}).
router.register("api-keys/audit", AuditLogViewSet, basename="api-keys-audit")
router.register("api-keys", ApiKeyViewSet, basename="api-key")

urlpatterns = [
    # /v1/merchant: the calling key's merchant, a singleton (no id in the URL) that a router does not express.
    path("merchant", MerchantViewSet.as_view({"get": "retrieve"}), name="merchant-me"),
    *router.urls,
]
