"""Gateway accounts API: POST/GET /v1/gateway-accounts, GET/PATCH /v1/gateway-accounts/{id}.

Credentials are write-only: responses show `credentials_set` and `credentials_hint` (last 4 characters of each
secret at most), never the values. The mode is the calling key's.
"""

from __future__ import annotations

from decimal import Decimal

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.response import Response

from apikeys.services import Actor
from apikeys.viewsets import ApiViewSet, tenant
from gateways import selectors, services
from gateways.models import GatewayAccount, GatewayName
from gateways.registry import GATEWAYS
from paytrust import money
from paytrust.pagination import paginate
from paytrust.params import query_bool, query_choice
from paytrust.schema import AMOUNT_SCHEMA, PAGINATION_PARAMETERS, RATE_SCHEMA, error_responses
from paytrust.serializers import CurrencyField, MetadataField, StrictSerializer


class DecimalInput(serializers.Field):
    """A decimal string or JSON number, passed through unchanged (money.py parses it in the service)."""

    default_error_messages = {"invalid": "Expected a decimal string."}

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, str | int | Decimal):
            self.fail("invalid")
        return data

    def to_representation(self, value):
        return str(value)


@extend_schema_field(
    {"type": "object", "additionalProperties": {"type": "string", "minLength": 1, "maxLength": 500}}
)
class CredentialsField(serializers.JSONField):
    """Write-only gateway credentials: an object of strings (which keys, and their prefixes, depend on the
    gateway and the mode; the gateway adapter checks them)."""


@extend_schema_field(RATE_SCHEMA)
class RateInput(DecimalInput):
    pass


@extend_schema_field(AMOUNT_SCHEMA)
class AmountInput(DecimalInput):
    pass


# Checked by gateways.services (at least one, each at most once); documented so the schema says what the server
# accepts.
_CURRENCIES_SCHEMA = {"minItems": 1, "uniqueItems": True}


class FeeInput(StrictSerializer):
    currency = CurrencyField(max_length=3)
    percent = RateInput(required=False, help_text='Fraction, at most 4 decimals: "0.029" is 2.9 %.')
    fixed = AmountInput(required=False, help_text='Fixed fee in the currency, e.g. "2000".')


class GatewayAccountCreateInput(StrictSerializer):
    schema_constraints = {"currencies": _CURRENCIES_SCHEMA}

    # Only the gateways this deployment has an adapter for (gateways/registry.py); GatewayName also names the ones
    # still to come.
    gateway = serializers.ChoiceField(choices=[c for c in GatewayName.choices if c[0] in GATEWAYS])
    credentials = CredentialsField(
        required=False,
        help_text='xendit: {"secret_key", "callback_token"}; midtrans: {"server_key", "client_key"}; '
        'paypal: {"client_id", "client_secret", "webhook_id"}; sandbox: none. Write-only.',
    )
    currencies = serializers.ListField(
        child=CurrencyField(max_length=3),
        required=False,
        max_length=20,
        help_text="Default: every enabled currency the gateway supports.",
    )
    enabled = serializers.BooleanField(required=False, default=True)
    fees = FeeInput(many=True, required=False, max_length=20)
    metadata = MetadataField(required=False)


class GatewayAccountUpdateInput(StrictSerializer):
    schema_constraints = {"currencies": _CURRENCIES_SCHEMA}

    credentials = CredentialsField(
        required=False, help_text="Merged over the stored credentials: send only the keys you rotate."
    )
    currencies = serializers.ListField(child=CurrencyField(max_length=3), required=False, max_length=20)
    enabled = serializers.BooleanField(required=False)
    fees = FeeInput(many=True, required=False, max_length=20, help_text="Replaces all fees.")
    metadata = MetadataField(required=False)


class FeeOutput(serializers.Serializer):
    currency = serializers.CharField()
    percent = serializers.CharField()
    fixed = serializers.CharField()


class GatewayAccountOutput(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.CharField(default="gateway_account")
    gateway = serializers.CharField()
    mode = serializers.CharField()
    currencies = serializers.ListField(child=serializers.CharField())
    enabled = serializers.BooleanField()
    fees = FeeOutput(many=True)
    credentials_set = serializers.BooleanField()
    credentials_hint = serializers.DictField(
        child=serializers.CharField(),
        help_text='Last 4 characters of each secret, e.g. {"secret_key": "…a1b2"}.',
    )
    webhook_url = serializers.CharField(help_text="Configure this as the notification URL at the gateway.")
    metadata = serializers.DictField(child=serializers.CharField())
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class GatewayAccountList(serializers.Serializer):
    data = GatewayAccountOutput(many=True)
    has_more = serializers.BooleanField()
    next_cursor = serializers.CharField(allow_null=True)


def render_account(account: GatewayAccount) -> dict:
    fees = sorted(account.fees.all(), key=lambda f: f.currency)
    data = {
        "id": account.pk,
        "object": "gateway_account",
        "gateway": account.gateway,
        "mode": account.mode,
        "currencies": list(account.currencies),
        "enabled": account.enabled,
        "fees": [
            {
                "currency": fee.currency,
                "percent": money.format_rate(fee.percent),
                "fixed": money.format_amount(fee.fixed_minor, fee.currency),
            }
            for fee in fees
        ],
        "credentials_set": account.credentials_set,
        "credentials_hint": dict(account.credentials_hint or {}),
        "webhook_url": selectors.gateway_account_webhook_url(account),
        "metadata": account.metadata or {},
        "created_at": account.created_at,
        "updated_at": account.updated_at,
    }
    return GatewayAccountOutput(data).data


def _actor(request) -> Actor:
    return Actor.for_key(request)


_EXAMPLE = OpenApiExample(
    "Xendit account",
    value={
        "gateway": "xendit",
        "credentials": {"secret_key": "xnd_development_…", "callback_token": "…"},
        "currencies": ["IDR", "USD"],
        "enabled": True,
        "fees": [{"currency": "IDR", "percent": "0.029", "fixed": "2000"}],
    },
    request_only=True,
)


# /v1/gateway-accounts[/{account_id}]: the merchant's gateway accounts in the calling key's mode.
class GatewayAccountViewSet(ApiViewSet):
    lookup_url_kwarg = "account_id"

    @extend_schema(
        summary="List gateway accounts",
        operation_id="gateway_accounts_list",
        parameters=[
            OpenApiParameter("gateway", OpenApiTypes.STR, enum=[c for c, _ in GatewayName.choices]),
            OpenApiParameter("enabled", OpenApiTypes.BOOL),
            *PAGINATION_PARAMETERS,
        ],
        responses={200: GatewayAccountList},
    )
    def list(self, request):
        scope = tenant(request)
        params = request.query_params
        qs = selectors.gateway_account_list(
            **scope,
            gateway=query_choice(params.get("gateway"), "gateway", GatewayName.values),
            enabled=query_bool(params.get("enabled"), "enabled"),
        )
        page = paginate(
            qs, params=request.query_params, render=lambda rows: [render_account(a) for a in rows]
        )
        return Response(page)

    @extend_schema(
        summary="Create a gateway account",
        operation_id="gateway_accounts_create",
        request=GatewayAccountCreateInput,
        responses={201: GatewayAccountOutput, **error_responses(409)},
        examples=[_EXAMPLE],
    )
    def create(self, request):
        body = GatewayAccountCreateInput(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        scope = tenant(request)
        account = services.gateway_account_create(
            merchant=scope["merchant"],
            mode=scope["mode"],
            gateway=data["gateway"],
            credentials=data.get("credentials"),
            currencies=data.get("currencies"),
            enabled=data.get("enabled", True),
            fees=[dict(fee) for fee in data.get("fees", [])],
            metadata=data.get("metadata"),
            actor=_actor(request),
        )
        account = selectors.gateway_account_get(**scope, account_id=account.pk)
        return Response(render_account(account), status=201)

    @extend_schema(
        summary="Retrieve a gateway account", responses={200: GatewayAccountOutput, **error_responses(404)}
    )
    def retrieve(self, request, account_id: str):
        account = selectors.gateway_account_get(**tenant(request), account_id=account_id)
        return Response(render_account(account))

    @extend_schema(
        summary="Update a gateway account",
        operation_id="gateway_accounts_update",
        request=GatewayAccountUpdateInput,
        responses={200: GatewayAccountOutput, **error_responses(404, 409)},
    )
    def partial_update(self, request, account_id: str):
        scope = tenant(request)
        account = selectors.gateway_account_get(**scope, account_id=account_id)
        body = GatewayAccountUpdateInput(data=request.data)
        body.is_valid(raise_exception=True)
        changes = dict(body.validated_data)
        if "fees" in changes:
            changes["fees"] = [dict(fee) for fee in changes["fees"]]
        services.gateway_account_update(account=account, actor=_actor(request), **changes)
        account = selectors.gateway_account_get(**scope, account_id=account_id)
        return Response(render_account(account))
