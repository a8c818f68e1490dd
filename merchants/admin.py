"""Django admin for merchants: settings and the creditor profile (ISO 20022). Writes go through
merchants.services and are audited as `user:<username>`."""

from django import forms
from django.contrib import admin

from apikeys.services import Actor
from merchants.models import Merchant
from merchants.services import (
    PROFILE_FIELDS,
    UPDATABLE_FIELDS,
    merchant_clean_fields,
    merchant_create,
    merchant_update,
)
from paytrust.errors import ApplicationError


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
class MerchantAdmin(admin.ModelAdmin):
    form = MerchantForm
    list_display = ["id", "name", "is_active", "rate_limit_per_minute", "country", "created_at"]
    list_filter = ["is_active", "country"]
    search_fields = ["id", "name", "legal_name"]
    ordering = ["-created_at"]
    readonly_fields = ["id", "created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["id", "name", "is_active", "rate_limit_per_minute", "created_at", "updated_at"]}),
        ("Creditor profile (ISO 20022 exports)", {"fields": list(PROFILE_FIELDS)}),
    ]

    def has_delete_permission(self, request, obj=None):
        return False  # merchants own payments and ledgers: deactivate instead

    def save_model(self, request, obj, form, change):
        actor = Actor.for_user(request)
        data = {field: form.cleaned_data[field] for field in UPDATABLE_FIELDS if field in form.cleaned_data}
        if change:
            changed = {field: data[field] for field in form.changed_data if field in data}
            merchant = merchant_update(merchant=obj, actor=actor, **changed)
        else:
            merchant = merchant_create(
                name=data["name"],
                rate_limit_per_minute=data.get("rate_limit_per_minute"),
                actor=actor,
                **{field: data.get(field) or "" for field in PROFILE_FIELDS},
            )
            if data.get("is_active") is False:
                merchant = merchant_update(merchant=merchant, actor=actor, is_active=False)
        for field in Merchant._meta.concrete_fields:
            setattr(obj, field.attname, getattr(merchant, field.attname))
        obj._state.adding = False
        obj._state.db = merchant._state.db
