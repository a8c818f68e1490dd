"""Django admin for API keys and the audit log. Every write goes through apikeys.services (audited as
`user:<username>`); the plaintext of a created or rotated key is shown once, in a message."""

from django import forms
from django.contrib import admin, messages
from django.utils import timezone

from apikeys.models import ApiKey, AuditLog, Scope
from apikeys.services import Actor, api_key_create, api_key_revoke, api_key_rotate
from paytrust.errors import ApplicationError


class ApiKeyAddForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=Scope.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="admin: operator scope",
    )

    class Meta:
        model = ApiKey
        fields = ["merchant", "name", "mode", "scopes"]


def _show_plaintext(request, key: ApiKey, plaintext: str, verb: str) -> None:
    messages.warning(
        request,
        f"API key {key.id} {verb}. Copy it now, it will not be shown again: {plaintext}",
    )


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "prefix",
        "merchant",
        "mode",
        "name",
        "scopes",
        "status",
        "created_at",
        "last_used_at",
    ]
    list_filter = ["mode", ("merchant", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["id", "prefix", "name", "merchant__id", "merchant__name"]
    list_select_related = ["merchant"]
    ordering = ["-created_at"]
    actions = ["revoke_keys", "rotate_keys"]
    readonly = [
        "id",
        "merchant",
        "name",
        "mode",
        "scopes",
        "prefix",
        "rotated_from",
        "revoked_at",
        "expires_at",
        "last_used_at",
        "created_at",
        "updated_at",
    ]

    @admin.display(description="status")
    def status(self, obj: ApiKey) -> str:
        if obj.revoked_at:
            return "revoked"
        if obj.expires_at and obj.expires_at <= timezone.now():
            return "expired"
        return "active"

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = ApiKeyAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        return ApiKeyAddForm.Meta.fields if obj is None else self.readonly

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.readonly

    def has_delete_permission(self, request, obj=None):
        return False  # keys are revoked, never deleted (the audit log points at them)

    def save_model(self, request, obj, form, change):
        if change:
            return  # every field is read-only; changes go through the actions
        data = form.cleaned_data
        key, plaintext = api_key_create(
            merchant=data["merchant"],
            mode=data["mode"],
            actor=Actor.for_user(request),
            name=data.get("name") or "",
            scopes=list(data.get("scopes") or []),
        )
        # The admin continues with `obj` (change log, redirect): make it the created row.
        for field in ApiKey._meta.concrete_fields:
            setattr(obj, field.attname, getattr(key, field.attname))
        obj._state.adding = False
        obj._state.db = key._state.db
        _show_plaintext(request, key, plaintext, "created")

    @admin.action(description="Revoke selected API keys (refused from the next request)")
    def revoke_keys(self, request, queryset):
        actor = Actor.for_user(request)
        count = 0
        for key in queryset:
            if key.revoked_at is None:
                api_key_revoke(key=key, actor=actor)
                count += 1
        self.message_user(request, f"Revoked {count} API key(s).")

    @admin.action(description="Rotate selected API keys (old key stops at once)")
    def rotate_keys(self, request, queryset):
        actor = Actor.for_user(request)
        for key in queryset:
            try:
                new, plaintext = api_key_rotate(key=key, actor=actor)
            except ApplicationError as exc:
                self.message_user(request, f"{key.id}: {exc.message}", level=messages.ERROR)
                continue
            _show_plaintext(request, new, plaintext, f"created to replace {key.id}")


@admin.register(AuditLog)
class AuditLogAdmin(admin.ModelAdmin):
    """Read-only: the audit log is append-only."""

    list_display = ["created_at", "action", "actor", "merchant", "api_key", "ip", "request_id"]
    list_filter = ["action", "created_at", ("merchant", admin.RelatedOnlyFieldListFilter)]
    date_hierarchy = "created_at"
    search_fields = ["id", "actor", "request_id", "api_key__id", "merchant__id", "ip"]
    list_select_related = ["merchant", "api_key"]
    ordering = ["-created_at"]

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in AuditLog._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
