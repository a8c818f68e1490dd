"""What every app's admin shares: the audit of an admin action and a read-only ModelAdmin.

Lives with the audit log (apikeys) so that each app's admin can use it without importing another app's admin.
"""

from __future__ import annotations

from django.contrib import admin

from apikeys.models import AuditLog
from apikeys.services import Actor, audit_record


def admin_actor(request) -> Actor:
    """The staff user behind an admin request, as the audit log names it (`user:<username>`)."""
    return Actor(
        label=f"user:{request.user.get_username()}",
        ip=request.META.get("REMOTE_ADDR"),
        user_agent=request.META.get("HTTP_USER_AGENT", ""),
    )


def admin_audit(request, action: str, **details) -> None:
    """Record one admin action (its name and the objects it touched) in the audit log."""
    audit_record(
        action=AuditLog.Action.ADMIN_ACTION, actor=admin_actor(request), action_name=action, **details
    )


class ReadOnlyAdmin(admin.ModelAdmin):
    """A list and detail pages that change nothing; writes go through actions that call services."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
