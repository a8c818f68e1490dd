from django.urls import path

from apikeys.api import ApiKeyDetailApi, ApiKeyRotateApi, ApiKeysApi, AuditLogApi

urlpatterns = [
    path("api-keys", ApiKeysApi.as_view(), name="api-keys"),
    path("api-keys/audit", AuditLogApi.as_view(), name="api-keys-audit"),
    path("api-keys/<str:key_id>", ApiKeyDetailApi.as_view(), name="api-key-detail"),
    path("api-keys/<str:key_id>/rotate", ApiKeyRotateApi.as_view(), name="api-key-rotate"),
]
