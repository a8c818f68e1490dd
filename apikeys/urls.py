from rest_framework.routers import SimpleRouter

from apikeys.api import ApiKeyViewSet, AuditLogViewSet

router = SimpleRouter(trailing_slash=False, use_regex_path=False)
# The audit log first: its /api-keys/audit must not be taken for the key "audit" (/api-keys/{key_id}).
router.register("api-keys/audit", AuditLogViewSet, basename="api-keys-audit")
router.register("api-keys", ApiKeyViewSet, basename="api-key")

urlpatterns = router.urls
