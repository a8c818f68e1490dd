"""GET/PATCH /v1/risk-settings: the calling key's merchant's risk rules for the key's mode (SPEC §13,
docs/adr/0053-risk-scoring.md). A singleton per (merchant, mode): no id in the URL; never another tenant's."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from apikeys.services import Actor
from apikeys.viewsets import ApiViewSet, tenant
from invoices.serializers import PositiveAmountField
from paytrust.schema import error_responses
from paytrust.serializers import StrictSerializer
from risk import selectors, services
from risk.services import BLOCKLIST_MAX_ENTRIES, DEVICE_ID_MAX_LENGTH

_LIMIT_HELP = (
    "Payments that passed the risk check in the window, per key, above which the next is blocked; null: none."
)
_THRESHOLDS_HELP = "{currency: amount} (decimal strings in major units); replaces the whole map. "


def _limit(help_text: str):
    return serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=1_000_000, help_text=help_text
    )


def _blocklist(help_text: str, max_length: int = 255):
    return serializers.ListField(
        child=serializers.CharField(max_length=max_length),
        required=False,
        max_length=BLOCKLIST_MAX_ENTRIES,
        help_text=help_text + " Replaces the whole list.",
    )


class RiskSettingsInput(StrictSerializer):
    review_threshold = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=100,
        help_text="Score from which a payment is flagged for review.",
    )
    block_threshold = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=100,
        help_text="Score from which a payment is blocked (402); above review_threshold.",
    )
    velocity_email_hour = _limit("Per customer e-mail, last hour. " + _LIMIT_HELP)
    velocity_email_day = _limit("Per customer e-mail, last 24 hours. " + _LIMIT_HELP)
    velocity_ip_hour = _limit("Per customer IP (`risk.customer_ip`), last hour. " + _LIMIT_HELP)
    velocity_ip_day = _limit("Per customer IP, last 24 hours. " + _LIMIT_HELP)
    velocity_device_hour = _limit("Per device (`risk.device_id`), last hour. " + _LIMIT_HELP)
    velocity_device_day = _limit("Per device, last 24 hours. " + _LIMIT_HELP)
    amount_thresholds = serializers.DictField(
        child=PositiveAmountField(),
        required=False,
        help_text=_THRESHOLDS_HELP + "A payment above its currency's amount scores 60.",
    )
    new_customer_thresholds = serializers.DictField(
        child=PositiveAmountField(),
        required=False,
        help_text=_THRESHOLDS_HELP
        + "A customer e-mail with no paid invoice yet: a first payment above its currency's amount scores 55.",
    )
    blocked_emails = _blocklist("E-mail addresses (case-insensitive) always blocked.", 254)
    blocked_email_domains = _blocklist("E-mail domains (`mailinator.com`) always blocked.", 253)
    blocked_ips = _blocklist(
        "IP addresses and CIDR blocks (`203.0.113.0/24`, `2001:db8::/32`) always blocked.", 49
    )
    blocked_device_ids = _blocklist("Device ids always blocked.", DEVICE_ID_MAX_LENGTH)


class RiskSettingsOutput(serializers.Serializer):
    object = serializers.CharField(default="risk_settings")
    mode = serializers.CharField()
    review_threshold = serializers.IntegerField()
    block_threshold = serializers.IntegerField()
    velocity_email_hour = serializers.IntegerField(allow_null=True)
    velocity_email_day = serializers.IntegerField(allow_null=True)
    velocity_ip_hour = serializers.IntegerField(allow_null=True)
    velocity_ip_day = serializers.IntegerField(allow_null=True)
    velocity_device_hour = serializers.IntegerField(allow_null=True)
    velocity_device_day = serializers.IntegerField(allow_null=True)
    amount_thresholds = serializers.DictField(child=serializers.CharField())
    new_customer_thresholds = serializers.DictField(child=serializers.CharField())
    blocked_emails = serializers.ListField(child=serializers.CharField())
    blocked_email_domains = serializers.ListField(child=serializers.CharField())
    blocked_ips = serializers.ListField(child=serializers.CharField())
    blocked_device_ids = serializers.ListField(child=serializers.CharField())
    customized = serializers.BooleanField(help_text="False: the merchant has not changed the defaults yet.")
    updated_at = serializers.DateTimeField(allow_null=True)


_DESCRIPTION = (
    "Rules of the risk check made before every payment is sent to its gateway, for the calling key's mode. "
    "Score 0-100: a block-list hit (e-mail, e-mail domain, IP/CIDR, device) or a velocity limit exceeded scores "
    "100; a payment above its currency's amount threshold 60; a new customer's first payment above the "
    "new-customer threshold 55 (several: the highest + 10 each). At or above `block_threshold` the initiation "
    "answers 402 `payment_blocked`; at or above `review_threshold` the payment is flagged for review."
)


class RiskSettingsViewSet(ApiViewSet):
    @extend_schema(
        operation_id="risk_settings_retrieve",
        summary="The risk rules (the defaults until changed)",
        description=_DESCRIPTION,
        responses={200: RiskSettingsOutput},
    )
    def retrieve(self, request):
        values = selectors.risk_settings_values(**tenant(request))
        return Response(selectors.risk_settings_representation(values, mode=request.user.mode))

    @extend_schema(
        operation_id="risk_settings_update",
        summary="Change the risk rules (fields not sent are kept)",
        description=_DESCRIPTION + " Lists and maps replace the stored ones. Audited.",
        request=RiskSettingsInput,
        responses={200: RiskSettingsOutput, **error_responses(400, 422)},
        examples=[
            OpenApiExample(
                "Stricter velocity, a block list and an IDR threshold",
                request_only=True,
                value={
                    "velocity_email_hour": 5,
                    "blocked_email_domains": ["mailinator.com"],
                    "blocked_ips": ["203.0.113.0/24"],
                    "amount_thresholds": {"IDR": "50000000"},
                },
            )
        ],
    )
    def partial_update(self, request):
        body = RiskSettingsInput(data=request.data)  # a JSON object; null or a list is a 400
        body.is_valid(raise_exception=True)
        values = services.risk_settings_update(
            **tenant(request), changes=dict(body.validated_data), actor=Actor.for_key(request)
        )
        return Response(selectors.risk_settings_representation(values, mode=request.user.mode))
