"""What every app's admin shares: the audit of an admin action and a read-only ModelAdmin.

Lives with the audit log (apikeys) so that each app's admin can use it without importing another app's admin.
"""

from __future__ import annotations

from django.contrib import admin

from apikeys.models import AuditLog
from apikeys.services import Actor, audit_record


def admin_audit(request, action: str, **details) -> None:
    """Record one admin action (its name and the objects it touched) in the audit log."""
    audit_record(
        action=AuditLog.Action.ADMIN_ACTION, actor=Actor.for_user(request), action_name=action, **details
    )


class ReadOnlyAdmin(admin.ModelAdmin):
    """A list and detail pages that change nothing; writes go through actions that call services."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
