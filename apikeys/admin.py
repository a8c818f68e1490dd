"""Django admin for API keys and the audit log. Every write goes through apikeys.services (audited as
`user:<username>`); the plaintext of a created or rotated key is shown once, in a message. Creating a key needs
`apikeys.add_apikey`, rotating `apikeys.rotate_apikey`, revoking `apikeys.revoke_apikey` (the administrator
role); nothing of a key is edited in place."""

import re

from django import forms
from django.contrib import admin, messages
from django.utils import timezone

from apikeys.admin_base import BackOfficeAdmin, ReadOnlyAdmin, truncated
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


# Our ids: a short type prefix and a time-ordered suffix (paytrust/ids.py), e.g. inv_01J…, whd_01J….
_OBJECT_ID = re.compile(r"^[a-z]{2,5}_[0-9A-Za-z]{10,}$")


def _show_plaintext(request, key: ApiKey, plaintext: str, verb: str) -> None:
    messages.warning(
        request,
        f"API key {key.id} {verb}. Copy it now, it will not be shown again: {plaintext}",
    )


@admin.register(ApiKey)
class ApiKeyAdmin(BackOfficeAdmin):
    list_display = [
        "id",
        "prefix",
        "merchant_short",
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

    @admin.display(description="merchant", ordering="merchant__name")
    def merchant_short(self, obj: ApiKey) -> str:
        return truncated(obj.merchant.name)

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

    def has_change_permission(self, request, obj=None):
        return False  # nothing of a key is edited: it is rotated or revoked by the actions

    def has_delete_permission(self, request, obj=None):
        return False  # keys are revoked, never deleted (the audit log points at them)

    def has_rotate_permission(self, request) -> bool:
        return request.user.has_perm("apikeys.rotate_apikey")

    def has_revoke_permission(self, request) -> bool:
        return request.user.has_perm("apikeys.revoke_apikey")

    def save_model(self, request, obj, form, change):
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

    @admin.action(
        description="Revoke selected API keys (refused from the next request)", permissions=["revoke"]
    )
    def revoke_keys(self, request, queryset):
        """Audited by the service (`api_key.revoked`, actor `user:<name>`); each key's history says so too."""
        actor = Actor.for_user(request)
        revoked = []
        for key in queryset:
            if key.revoked_at is None:
                revoked.append(api_key_revoke(key=key, actor=actor))
        self.history_log(request, revoked, "Revoked (refused from the next request).")
        self.message_user(request, f"Revoked {len(revoked)} API key(s).")

    @admin.action(description="Rotate selected API keys (old key stops at once)", permissions=["rotate"])
    def rotate_keys(self, request, queryset):
        """Audited by the service (`api_key.rotated`); the old key's history names its replacement."""
        actor = Actor.for_user(request)
        for key in queryset:
            try:
                new, plaintext = api_key_rotate(key=key, actor=actor)
            except ApplicationError as exc:
                self.message_user(request, f"{key.id}: {exc.message}", level=messages.ERROR)
                continue
            self.history_log(request, [key], f"Rotated: replaced by {new.id}.")
            self.log_addition(request, new, f"Created by rotating {key.id}.")
            _show_plaintext(request, new, plaintext, f"created to replace {key.id}")


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyAdmin):
    """Read-only: the audit log is append-only."""

    list_display = ["created_at", "what", "actor", "merchant_short", "ip", "request_id"]
    list_filter = ["action", "created_at", ("merchant", admin.RelatedOnlyFieldListFilter)]
    date_hierarchy = "created_at"
    search_fields = ["id", "actor", "request_id", "api_key__id", "merchant__id", "ip"]
    list_select_related = ["merchant", "api_key"]
    ordering = ["-created_at"]

    def get_readonly_fields(self, request, obj=None):
        return ["what", *[field.name for field in AuditLog._meta.fields]]

    @admin.display(description="merchant", ordering="merchant__name")
    def merchant_short(self, obj: AuditLog) -> str:
        return truncated(obj.merchant.name) if obj.merchant_id else "-"

    @admin.display(description="what")
    def what(self, obj: AuditLog) -> str:
        """The action and its object: "invoices.void: inv_…", "api_key.rotated: key_…", not "Admin Action"."""
        details = obj.details or {}
        name = details.get("action_name") or details.get("operation") or obj.action
        subjects = [obj.api_key_id] if obj.api_key_id else []
        for key, value in details.items():
            values = value if isinstance(value, list) else [value]
            subjects += [
                v for v in values if isinstance(v, str) and (_OBJECT_ID.match(v) or key == "username")
            ]
        if not subjects and obj.merchant_id:
            subjects = [obj.merchant_id]
        if not subjects:
            return name
        more = f" (+{len(subjects) - 3} more)" if len(subjects) > 3 else ""
        return f"{name}: {', '.join(subjects[:3])}{more}"
