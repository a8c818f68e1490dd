"""Django admin for gateway accounts: credentials are a write-only JSON field, fees are edited inline.

Every write goes through gateways.services (same validation, encryption and audit as the API; actor
`user:<username>`). The checkout sessions of the sandbox gateway are shown read-only for support.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages

from apikeys.services import Actor
from gateways import services
from gateways.models import GatewayAccount, GatewayFee, SandboxCheckoutSession
from gateways.registry import gateway_class
from gateways.selectors import gateway_account_webhook_url
from paytrust import money
from paytrust.errors import ApplicationError


def _actor(request) -> Actor:
    return Actor(
        label=f"user:{request.user.get_username()}",
        ip=request.META.get("REMOTE_ADDR") or None,
        user_agent=request.META.get("HTTP_USER_AGENT", ""),
        request_id=getattr(request, "request_id", ""),
    )


class GatewayAccountForm(forms.ModelForm):
    credentials = forms.JSONField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "autocomplete": "off"}),
        help_text=(
            'Write-only JSON. xendit: {"secret_key": "…", "callback_token": "…"}; midtrans: '
            '{"server_key": "…", "client_key": "…"}; sandbox: leave empty (generated). When editing, leave '
            "empty to keep the stored credentials, or give only the keys to replace."
        ),
    )

    class Meta:
        model = GatewayAccount
        fields = ["merchant", "mode", "gateway", "currencies", "enabled", "metadata"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial["credentials"] = None  # never render stored secrets

    def clean(self):
        cleaned = super().clean()
        gateway = cleaned.get("gateway") or (self.instance.gateway if self.instance.pk else None)
        if not gateway:
            return cleaned
        try:
            cls = gateway_class(gateway)
            if "currencies" in cleaned:
                cleaned["currencies"] = services.clean_currencies(
                    gateway=gateway, currencies=cleaned["currencies"]
                )
            credentials = cleaned.get("credentials")
            if not self.instance.pk and cls.credential_fields:
                cls.validate_credentials(credentials)
            elif credentials and not cls.credential_fields:
                self.add_error("credentials", f"{gateway} takes no credentials.")
            elif credentials is not None and not isinstance(credentials, dict):
                self.add_error("credentials", "Enter a JSON object.")
            merchant = cleaned.get("merchant") or getattr(self.instance, "merchant", None)
            mode = cleaned.get("mode") or self.instance.mode
            if cleaned.get("enabled") and merchant is not None:
                others = GatewayAccount.objects.filter(
                    merchant=merchant, mode=mode, gateway=gateway, enabled=True
                )
                if others.exclude(pk=self.instance.pk).exists():
                    self.add_error("enabled", f"An enabled {gateway} account already exists in {mode} mode.")
        except ApplicationError as exc:
            field = (exc.param or "").split(".")[0]
            self.add_error(field if field in self.fields else None, exc.message)
        return cleaned


class GatewayFeeForm(forms.ModelForm):
    fixed = forms.CharField(required=False, help_text="Fixed fee in the currency, e.g. 2000 or 0.30")

    class Meta:
        model = GatewayFee
        fields = ["currency", "percent"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["fixed"] = money.format_amount(self.instance.fixed_minor, self.instance.currency)
        self.fields["percent"].help_text = "Fraction: 0.029 is 2.9 %"


class GatewayFeeInline(admin.TabularInline):
    model = GatewayFee
    form = GatewayFeeForm
    extra = 0


@admin.register(GatewayAccount)
class GatewayAccountAdmin(admin.ModelAdmin):
    form = GatewayAccountForm
    inlines = [GatewayFeeInline]
    list_display = [
        "id",
        "merchant",
        "mode",
        "gateway",
        "enabled",
        "currencies",
        "credentials_set",
        "created_at",
    ]
    list_filter = ["gateway", "mode", "enabled"]
    search_fields = ["id", "merchant__id", "merchant__name"]
    list_select_related = ["merchant"]
    ordering = ["-created_at"]

    def get_readonly_fields(self, request, obj=None):
        fields = ["id", "credentials_hint", "webhook_url", "created_at", "updated_at"]
        if obj is not None:
            fields = ["merchant", "mode", "gateway", *fields]
        return fields

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["merchant", "mode", "gateway", "currencies", "enabled", "credentials", "metadata"]
        return [
            "id",
            "merchant",
            "mode",
            "gateway",
            "currencies",
            "enabled",
            "credentials",
            "credentials_hint",
            "webhook_url",
            "metadata",
            "created_at",
            "updated_at",
        ]

    @admin.display(description="Webhook URL (configure at the gateway)")
    def webhook_url(self, obj):
        return gateway_account_webhook_url(obj) if obj and obj.pk else ""

    @admin.display(boolean=True)
    def credentials_set(self, obj):
        return obj.credentials_set

    def has_delete_permission(self, request, obj=None):
        return False  # payments reference accounts: disable instead

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        actor = _actor(request)
        if change:
            changes = {
                field: data[field]
                for field in ("currencies", "enabled", "metadata")
                if field in form.changed_data
            }
            if data.get("credentials"):
                changes["credentials"] = data["credentials"]
            # Fees of removed currencies go; the inline's fees are then applied as a set in save_related.
            account = services.gateway_account_update(
                account=obj, actor=actor, drop_stray_fees=True, **changes
            )
        else:
            account = services.gateway_account_create(
                merchant=data["merchant"],
                mode=data["mode"],
                gateway=data["gateway"],
                credentials=data.get("credentials") or None,
                currencies=data["currencies"],
                enabled=data["enabled"],
                metadata=data.get("metadata") or {},
                actor=actor,
            )
        for field in GatewayAccount._meta.concrete_fields:
            setattr(obj, field.attname, getattr(account, field.attname))
        obj._state.adding = False
        obj._state.db = account._state.db

    def save_related(self, request, form, formsets, change):
        """Fees are written through the service (validated with money.py, replaced as a set), not by the formset."""
        form.save_m2m()
        for formset in formsets:
            if formset.model is not GatewayFee:
                formset.save()
                continue
            # Not saved by the formset: tell the admin's change message there is nothing to list.
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
            if not formset.has_changed():
                continue
            fees = [
                {
                    "currency": f.cleaned_data["currency"],
                    "percent": str(f.cleaned_data.get("percent") or "0"),
                    "fixed": (f.cleaned_data.get("fixed") or "0").strip(),
                }
                for f in formset.forms
                if f.cleaned_data and not f.cleaned_data.get("DELETE")
            ]
            try:
                services.gateway_account_update(account=form.instance, fees=fees, actor=_actor(request))
            except ApplicationError as exc:
                messages.error(request, f"Fees not saved: {exc.message} ({exc.param})")


@admin.register(SandboxCheckoutSession)
class SandboxCheckoutSessionAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "payment_id",
        "account",
        "status",
        "action",
        "amount_minor",
        "currency",
        "created_at",
    ]
    list_filter = ["status", "action"]
    search_fields = ["id", "payment_id", "invoice_id"]
    exclude = ["token", "form_nonce"]  # the token is a bearer credential for the checkout page
    ordering = ["-created_at"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
