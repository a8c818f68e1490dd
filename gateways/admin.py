"""Django admin for merchants and their gateway accounts: credentials are a write-only JSON field, fees are
edited inline.

Merchants are administered here, not in merchants/admin.py: adding a merchant onboards it with its test-mode
sandbox gateway account (gateways.services.merchant_onboard), and merchants sit below gateways.

Every write goes through gateways.services (same validation, encryption and audit as the API; actor
`user:<username>`). The checkout sessions of the sandbox gateway are shown read-only for support.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages

from apikeys.admin_base import (
    BackOfficeAdmin,
    ReadOnlyAdmin,
    can_see_contacts,
    html_table,
    short_datetime,
    truncated,
)
from apikeys.services import Actor
from gateways import services
from gateways.models import GatewayAccount, GatewayFee, SandboxCheckoutSession
from gateways.registry import gateway_class
from gateways.selectors import gateway_account_webhook_url
from merchants.models import Merchant
from merchants.services import PROFILE_FIELDS, UPDATABLE_FIELDS, merchant_clean_fields
from paytrust import money
from paytrust.errors import ApplicationError
from paytrust.redaction import mask_contacts


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
        fields = ["merchant", "mode", "gateway", "currencies", "enabled", "metadata", "bank_details"]
        help_texts = {
            "bank_details": 'manual gateway only: {"bank_name": "…", "account_name": "…", "account_number": "…", '
            '"swift_code": "…", "instructions": {"IDR": "…"}} (shown to payers).'
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial["credentials"] = None  # never render stored secrets

    def clean(self):
        cleaned = super().clean()
        gateway = cleaned.get("gateway") or (None if self.instance._state.adding else self.instance.gateway)
        if not gateway:
            return cleaned
        try:
            cls = gateway_class(gateway)
            if "currencies" in cleaned:
                cleaned["currencies"] = services.clean_currencies(
                    gateway=gateway, currencies=cleaned["currencies"]
                )
            credentials = cleaned.get("credentials")
            if cls.takes_bank_details or cleaned.get("bank_details") is not None:
                cleaned["bank_details"] = services.clean_bank_details_for(
                    gateway, cleaned.get("bank_details"), currencies=cleaned.get("currencies") or []
                )
            mode = cleaned.get("mode") or self.instance.mode
            if self.instance._state.adding and cls.credential_fields:
                cls.validate_credentials(credentials, mode=mode)
            elif credentials and not cls.credential_fields:
                self.add_error("credentials", f"{gateway} takes no credentials.")
            elif credentials is not None and not isinstance(credentials, dict):
                self.add_error("credentials", "Enter a JSON object.")
            merchant = cleaned.get("merchant") or getattr(self.instance, "merchant", None)
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
class GatewayAccountAdmin(BackOfficeAdmin):
    form = GatewayAccountForm
    inlines = [GatewayFeeInline]
    list_display = [
        "id",
        "merchant_short",
        "mode",
        "gateway",
        "enabled",
        "currencies",
        "credentials_set",
        "created",
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
            return [
                "merchant",
                "mode",
                "gateway",
                "currencies",
                "enabled",
                "credentials",
                "metadata",
                "bank_details",
            ]
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
            "bank_details",
            "created_at",
            "updated_at",
        ]

    @admin.display(description="merchant", ordering="merchant__name")
    def merchant_short(self, obj):
        return truncated(obj.merchant.name)

    @admin.display(description="created", ordering="created_at")
    def created(self, obj):
        return short_datetime(obj.created_at)

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
        actor = Actor.for_user(request)
        if change:
            changes = {
                field: data[field]
                for field in ("currencies", "enabled", "metadata", "bank_details")
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
                bank_details=data.get("bank_details"),
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
                services.gateway_account_update(
                    account=form.instance, fees=fees, actor=Actor.for_user(request)
                )
            except ApplicationError as exc:
                messages.error(request, f"Fees not saved: {exc.message} ({exc.param})")


@admin.register(SandboxCheckoutSession)
class SandboxCheckoutSessionAdmin(ReadOnlyAdmin):
    list_display = ["id", "payment_id", "merchant", "status", "action", "amount", "created"]
    list_filter = ["status", "action"]
    search_fields = ["id", "payment_id", "invoice_id"]
    # Never the token or the form nonce: the token is a bearer credential for the checkout page.
    fields = [
        "id",
        "account",
        "payment_id",
        "invoice_id",
        "installment_number",
        "merchant_name",
        "description",
        "amount",
        "paid",
        "refunded",
        "customer_contact",
        "status",
        "action",
        "expires_at",
        "completed_at",
        "success_redirect_url",
        "failure_redirect_url",
        "webhook_event_id",
        "webhook_delivered_at",
        "webhook_error",
        "created_at",
        "updated_at",
    ]
    ordering = ["-created_at"]

    def get_fields(self, request, obj=None):
        if can_see_contacts(request):
            return self.fields
        return [("customer_masked" if name == "customer_contact" else name) for name in self.fields]

    def get_readonly_fields(self, request, obj=None):
        return [*self.fields, "customer_masked"]

    @admin.display(description="customer")
    def customer_contact(self, obj):
        return html_table(["", ""], [[key, value] for key, value in (obj.customer or {}).items()])

    @admin.display(description="customer")
    def customer_masked(self, obj):
        return html_table(
            ["", ""], [[key, value] for key, value in mask_contacts(obj.customer or {}).items()]
        )

    @admin.display(description="paid")
    def paid(self, obj):
        return money.format_display(obj.amount_paid_minor, obj.currency)

    @admin.display(description="refunded")
    def refunded(self, obj):
        return money.format_display(obj.amount_refunded_minor, obj.currency)

    @admin.display(description="merchant", ordering="merchant_name")
    def merchant(self, obj):
        return truncated(obj.merchant_name)

    @admin.display(description="amount", ordering="amount_minor")
    def amount(self, obj):
        return money.format_display(obj.amount_minor, obj.currency)

    @admin.display(description="created", ordering="created_at")
    def created(self, obj):
        return short_datetime(obj.created_at)


# ---- merchants -------------------------------------------------------------------------------------------------


class MerchantForm(forms.ModelForm):
    class Meta:
        model = Merchant
        fields = list(UPDATABLE_FIELDS)

    def clean(self):
        cleaned = super().clean()
        try:
            cleaned.update(merchant_clean_fields({k: v for k, v in cleaned.items() if k in UPDATABLE_FIELDS}))
        except ApplicationError as exc:
            self.add_error(exc.param if exc.param in self.fields else None, exc.message)
        return cleaned


@admin.register(Merchant)
class MerchantAdmin(BackOfficeAdmin):
    form = MerchantForm
    list_display = ["id", "short_name", "is_active", "rate_limit_per_minute", "country", "created_at"]
    list_filter = ["is_active", "country"]
    search_fields = ["id", "name", "legal_name"]
    ordering = ["-created_at"]
    readonly_fields = ["id", "created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["id", "name", "is_active", "rate_limit_per_minute", "created_at", "updated_at"]}),
        ("Creditor profile (ISO 20022 exports)", {"fields": list(PROFILE_FIELDS)}),
    ]

    @admin.display(description="name", ordering="name")
    def short_name(self, obj):
        return truncated(obj.name, 40)

    def has_delete_permission(self, request, obj=None):
        return False  # merchants own payments and ledgers: deactivate instead

    def save_model(self, request, obj, form, change):
        actor = Actor.for_user(request)
        data = {field: form.cleaned_data[field] for field in UPDATABLE_FIELDS if field in form.cleaned_data}
        if change:
            changed = {field: data[field] for field in form.changed_data if field in data}
            merchant = services.merchant_settings_update(merchant=obj, actor=actor, **changed)
        else:
            merchant = services.merchant_onboard(
                name=data["name"],
                rate_limit_per_minute=data.get("rate_limit_per_minute"),
                actor=actor,
                **{field: data.get(field) or "" for field in PROFILE_FIELDS},
            )
            if data.get("is_active") is False:
                merchant = services.merchant_settings_update(merchant=merchant, actor=actor, is_active=False)
        for field in Merchant._meta.concrete_fields:
            setattr(obj, field.attname, getattr(merchant, field.attname))
        obj._state.adding = False
        obj._state.db = merchant._state.db
