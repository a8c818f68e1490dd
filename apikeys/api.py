"""Admin API for API keys and the audit log. Every endpoint needs an API key with the `admin` scope (else 403).

The admin scope is an operator's scope: an admin key manages the keys of any merchant (its own by default,
another with `merchant`). A test-mode admin key sees and manages test-mode keys only.
"""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.response import Response

from apikeys.models import ApiKey, AuditLog, Scope
from apikeys.permissions import IsAdminKey
from apikeys.selectors import api_key_get, api_key_list, audit_log_list
from apikeys.services import (
    MAX_GRACE_SECONDS,
    Actor,
    api_key_create,
    api_key_mode_check,
    api_key_revoke,
    api_key_rotate,
)
from apikeys.viewsets import ApiViewSet
from merchants.selectors import merchant_get, merchant_rate_limit
from paytrust.models import Mode
from paytrust.pagination import paginate
from paytrust.params import query_choice, query_datetime
from paytrust.schema import PAGINATION_PARAMETERS, QUERY_DATETIME_SCHEMA, error_responses
from paytrust.serializers import StrictSerializer

# --- serializers -----------------------------------------------------------------------------------------


class ApiKeyCreateInput(StrictSerializer):
    merchant = serializers.CharField(
        required=False,
        max_length=40,
        help_text="Merchant id (mer_…); defaults to the calling key's merchant.",
    )
    name = serializers.CharField(required=False, allow_blank=True, max_length=100, default="")
    mode = serializers.ChoiceField(choices=Mode.choices)
    scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=Scope.choices), required=False, default=list, max_length=10
    )


class ApiKeyRotateInput(StrictSerializer):
    grace_seconds = serializers.IntegerField(
        required=False,
        default=0,
        min_value=0,
        max_value=MAX_GRACE_SECONDS,
        help_text="Keep the old key working this many seconds (default 0: it stops at once).",
    )


class ApiKeyOutput(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.CharField(default="api_key")
    merchant = serializers.CharField(source="merchant_id")
    name = serializers.CharField()
    mode = serializers.ChoiceField(choices=Mode.choices)
    scopes = serializers.ListField(child=serializers.CharField())
    prefix = serializers.CharField(help_text="Non-secret start of the key, for recognising it.")
    status = serializers.ChoiceField(choices=["active", "revoked", "expired"])
    rotated_from = serializers.CharField(source="rotated_from_id", allow_null=True)
    expires_at = serializers.DateTimeField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)
    last_used_at = serializers.DateTimeField(allow_null=True, help_text="Updated at most once a minute.")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class ApiKeyWithSecretOutput(ApiKeyOutput):
    secret = serializers.CharField(
        allow_null=True,
        help_text="The plaintext key, shown in this response only. Null in an idempotent replay: the secret "
        "is never stored.",
    )


class ApiKeyListOutput(serializers.Serializer):
    data = ApiKeyOutput(many=True)
    has_more = serializers.BooleanField()
    next_cursor = serializers.CharField(allow_null=True)


class AuditLogOutput(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.CharField(default="audit_log")
    action = serializers.ChoiceField(choices=AuditLog.Action.choices)
    actor = serializers.CharField(help_text="key_…, user:<username>, cli:<command>, system or anonymous")
    merchant = serializers.CharField(source="merchant_id", allow_null=True)
    api_key = serializers.CharField(source="api_key_id", allow_null=True)
    mode = serializers.CharField(
        help_text="test or live; empty for back-office actions that belong to no mode"
    )
    ip = serializers.IPAddressField(allow_null=True)
    user_agent = serializers.CharField()
    request_id = serializers.CharField()
    details = serializers.DictField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField(source="created_at", help_text="Audit rows never change.")


class AuditLogListOutput(serializers.Serializer):
    data = AuditLogOutput(many=True)
    has_more = serializers.BooleanField()
    next_cursor = serializers.CharField(allow_null=True)


def key_status(key: ApiKey) -> str:
    if key.revoked_at is not None:
        return "revoked"
    if key.expires_at is not None and key.expires_at <= timezone.now():
        return "expired"
    return "active"


def render_key(key: ApiKey, plaintext: str | None = None) -> dict:
    key.status = key_status(key)
    if plaintext is None:
        return ApiKeyOutput(key).data
    key.secret = plaintext
    return ApiKeyWithSecretOutput(key).data


def _actor(request) -> Actor:
    return Actor.for_key(request)


def _target_merchant_id(request, raw: str | None) -> str:
    if not raw:
        return request.user.merchant.id
    return merchant_get(merchant_id=raw).id


_LIST_PARAMS = [
    OpenApiParameter(
        "merchant", OpenApiTypes.STR, description="Merchant id; default: the calling key's merchant."
    ),
    *PAGINATION_PARAMETERS,
]


# --- views -------------------------------------------------------------------------------------------------


# /v1/api-keys[/{key_id}[/rotate]]: an operator's management of API keys (admin scope).
class ApiKeyViewSet(ApiViewSet):
    permission_classes = [IsAdminKey]
    idempotency_secret_fields = ("secret",)
    lookup_url_kwarg = "key_id"

    @extend_schema(
        operation_id="api_keys_list",
        summary="List API keys (no secrets)",
        parameters=_LIST_PARAMS,
        responses={200: ApiKeyListOutput, **error_responses(403, 404)},
        tags=["API keys"],
    )
    def list(self, request):
        merchant_id = _target_merchant_id(request, request.query_params.get("merchant"))
        keys = api_key_list(merchant_id=merchant_id, caller_mode=request.user.mode)
        return Response(
            paginate(keys, params=request.query_params, render=lambda rows: [render_key(k) for k in rows])
        )

    @extend_schema(
        operation_id="api_keys_create",
        summary="Create an API key (the plaintext is returned once)",
        request=ApiKeyCreateInput,
        responses={201: ApiKeyWithSecretOutput, **error_responses(403, 404)},
        tags=["API keys"],
    )
    def create(self, request):
        data = ApiKeyCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        params = data.validated_data
        merchant = (
            merchant_get(merchant_id=params["merchant"]) if params.get("merchant") else request.user.merchant
        )
        api_key_mode_check(caller_mode=request.user.mode, mode=params["mode"])
        key, plaintext = api_key_create(
            merchant=merchant,
            mode=params["mode"],
            actor=_actor(request),
            name=params["name"],
            scopes=params["scopes"],
        )
        return Response(render_key(key, plaintext), status=201)

    @extend_schema(
        operation_id="api_keys_retrieve",
        summary="Retrieve an API key (no secret)",
        responses={200: ApiKeyOutput, **error_responses(403, 404)},
        tags=["API keys"],
    )
    def retrieve(self, request, key_id: str):
        return Response(render_key(api_key_get(key_id=key_id, caller_mode=request.user.mode)))

    @extend_schema(
        operation_id="api_keys_revoke",
        summary="Revoke an API key (refused from the next request on)",
        responses={200: ApiKeyOutput, **error_responses(403, 404)},
        tags=["API keys"],
    )
    def destroy(self, request, key_id: str):
        key = api_key_get(key_id=key_id, caller_mode=request.user.mode)
        return Response(render_key(api_key_revoke(key=key, actor=_actor(request))))

    @extend_schema(
        operation_id="api_keys_rotate",
        summary="Rotate an API key: a new key (plaintext returned once); the old one stops now or after grace",
        request=ApiKeyRotateInput,
        responses={200: ApiKeyWithSecretOutput, **error_responses(403, 404, 409)},
        tags=["API keys"],
    )
    @action(detail=True, methods=["put"])
    def rotate(self, request, key_id: str):
        data = ApiKeyRotateInput(data=request.data if request.data else {})
        data.is_valid(raise_exception=True)
        key = api_key_get(key_id=key_id, caller_mode=request.user.mode)
        new, plaintext = api_key_rotate(
            key=key, actor=_actor(request), grace_seconds=data.validated_data["grace_seconds"]
        )
        return Response(render_key(new, plaintext))


# /v1/api-keys/audit: the audit log (admin scope).
class AuditLogViewSet(ApiViewSet):
    permission_classes = [IsAdminKey]

    @extend_schema(
        operation_id="api_keys_audit_list",
        summary="Audit log: key lifecycle, failed authentications, admin actions",
        parameters=[
            OpenApiParameter(
                "merchant",
                OpenApiTypes.STR,
                description="Merchant id; default: every merchant (of the key's mode).",
            ),
            *_LIST_PARAMS[1:],
            OpenApiParameter("start", QUERY_DATETIME_SCHEMA, description="From this instant (inclusive)."),
            OpenApiParameter("end", QUERY_DATETIME_SCHEMA, description="Until this instant (exclusive)."),
            OpenApiParameter(
                "key", OpenApiTypes.STR, description="Only rows about this API key id (any merchant)."
            ),
            OpenApiParameter("action", OpenApiTypes.STR, enum=AuditLog.Action.values),
        ],
        responses={200: AuditLogListOutput, **error_responses(403, 404)},
        tags=["API keys"],
    )
    def list(self, request):
        params = request.query_params
        wanted = query_choice(params.get("action"), "action", AuditLog.Action.values)
        # Rows of the calling key's mode only; of one merchant with `merchant=`, else of every merchant.
        merchant = params.get("merchant")
        rows = audit_log_list(
            mode=request.user.mode,
            merchant_id=_target_merchant_id(request, merchant) if merchant else None,
            start=query_datetime(params.get("start"), "start"),
            end=query_datetime(params.get("end"), "end"),
            key_id=params.get("key") or None,
            action=wanted,
        )
        return Response(
            paginate(rows, params=params, render=lambda page: AuditLogOutput(page, many=True).data)
        )


# ---- the calling key's merchant (here, not in merchants/, which sits below the API plumbing) -------------


class MerchantOutput(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    mode = serializers.CharField(help_text="The calling key's mode.")
    rate_limit_per_minute = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


# /v1/merchant: the calling key's own merchant (a singleton: no id in the URL).
class MerchantViewSet(ApiViewSet):
    @extend_schema(responses={200: MerchantOutput}, summary="The calling key's merchant")
    def retrieve(self, request):
        merchant = request.user.merchant
        data = {
            "id": merchant.id,
            "name": merchant.name,
            "mode": request.user.mode,
            "rate_limit_per_minute": merchant_rate_limit(merchant),
            "created_at": merchant.created_at,
            "updated_at": merchant.updated_at,
        }
        return Response(MerchantOutput(data).data)
