"""Staff users and their roles in the back office (reporting/roles.py, docs/adr/0042).

The pages are Django's own user and group admins (django.contrib.auth registers them during autodiscovery); the
back-office site (reporting/admin_site.py) composes them with the mixins below when they are registered, which
add the back office's base (forged actions are a 403, no empty history entries; `back_office_base` gives it to
any other third-party admin too) and the guard rails of a
role-based back office: staff who are not superusers (the administrator role) give a user one role group and
nothing else - never superuser status or individual permissions - and cannot change a superuser (nor its
password). Every save is audited (`staff.created` / `staff.changed`, actor `user:<name>`).
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import UserChangeForm
from django.contrib.auth.models import Group

from apikeys.admin_base import BackOfficeAdmin, admin_audit
from reporting.roles import ROLES, staff_role

ONLY_SUPERUSERS_CHANGE = ("is_superuser", "user_permissions", "last_login", "date_joined")


class StaffUserChangeForm(UserChangeForm):
    def clean_groups(self):
        groups = self.cleaned_data.get("groups")
        if groups is not None and len([g for g in groups if g.name in ROLES]) > 1:
            raise forms.ValidationError("A staff user has exactly one role.")
        return groups


class StaffUserAdminMixin(BackOfficeAdmin):
    form = StaffUserChangeForm
    list_display = ("username", "email", "role", "is_staff", "is_active", "is_superuser", "last_login")
    list_filter = ("is_staff", "is_superuser", "is_active", "groups")

    @admin.display(description="role")
    def role(self, obj) -> str:
        return staff_role(obj) or ("superuser" if obj.is_superuser else "-")

    def get_readonly_fields(self, request, obj=None):
        fields = tuple(super().get_readonly_fields(request, obj))
        return fields if request.user.is_superuser else (*fields, *ONLY_SUPERUSERS_CHANGE)

    def has_change_permission(self, request, obj=None) -> bool:
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False  # Django's password page asks the same question
        return super().has_change_permission(request, obj)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "groups" and not request.user.is_superuser:
            kwargs["queryset"] = Group.objects.filter(name__in=list(ROLES)).order_by("name")
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        user = form.instance
        admin_audit(
            request,
            "staff.changed" if change else "staff.created",
            username=user.get_username(),
            role=staff_role(user),
            fields=sorted(form.changed_data),  # names only: no password reaches the audit log
        )


class RoleGroupAdminMixin(BackOfficeAdmin):
    """The role groups are defined in code (reporting/roles.py) and applied again by `manage.py create_staff`:
    only superusers may change a group here."""


def back_office_base(model) -> type[BackOfficeAdmin]:
    """The base the back-office site puts in front of an admin class registered for `model` that is not already
    a BackOfficeAdmin (Django's user and group admins, procrastinate's jobs)."""
    if model is get_user_model():
        return StaffUserAdminMixin
    if model is Group:
        return RoleGroupAdminMixin
    return BackOfficeAdmin
