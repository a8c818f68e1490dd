"""What every app's admin shares: the base class of the back office's ModelAdmins, the audit of an admin action,
a read-only ModelAdmin, and the masking of customer contact data for staff without the permission to see it.

Lives with the audit log (apikeys) so that each app's admin can use it without importing another app's admin.
The roles that hold the permissions checked here are defined in reporting/roles.py (docs/adr/0042).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC

from django.contrib import admin
from django.contrib.admin.models import CHANGE, LogEntry
from django.core.exceptions import PermissionDenied
from django.db.models import Model
from django.utils.html import format_html, format_html_join

from apikeys.models import AuditLog
from apikeys.services import Actor, audit_record

# Held by the roles that need a customer's full e-mail address and phone number (finance, administrator); the
# others (support, operations) see them masked: "b•••@example.com", "+62•••890".
CONTACT_PERMISSION = "invoices.view_customer_contact"


def admin_audit(request, action: str, *, mode: str | None = None, **details) -> None:
    """Record one admin action (its name and the objects it touched) in the audit log, with the staff user
    (`user:<username>`), address, user agent and the request id; `mode` when the objects are of one mode."""
    audit_record(
        action=AuditLog.Action.ADMIN_ACTION,
        actor=Actor.for_user(request),
        mode=mode,
        action_name=action,
        **details,
    )


def can_see_contacts(request) -> bool:
    return request.user.has_perm(CONTACT_PERMISSION)


def truncated(text: object, limit: int = 24) -> str:
    """A long label (a merchant's name) cut to `limit` characters for a list column, the full text on hover."""
    full = str(text if text is not None else "")
    if len(full) <= limit:
        return full
    return format_html('<span title="{}">{}…</span>', full, full[: limit - 1].rstrip())


def short_datetime(value) -> str:
    """A list column's time, "2026-11-30 14:17" (UTC): narrower than Django's "Nov. 30, 2026, 2:17 p.m."."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if value else "-"


def html_table(headers: list[str], rows: list[list[object]]) -> str:
    """A small read-only table for a detail page (what would otherwise show as raw JSON); values are escaped."""
    if not rows:
        return "-"
    head = ""
    if any(headers):
        head = format_html(
            "<thead><tr>{}</tr></thead>", format_html_join("", "<th>{}</th>", ((h,) for h in headers))
        )
    body = format_html_join(
        "", "<tr>{}</tr>", ((format_html_join("", "<td>{}</td>", ((v,) for v in row)),) for row in rows)
    )
    return format_html('<table class="pt-small-table">{}<tbody>{}</tbody></table>', head, body)


def _posted_action(request) -> str:
    """The action a changelist POST asks for (the form whose button was pushed, as Django picks it), or ""."""
    names = request.POST.getlist("action")
    try:
        index = int(request.POST.get("index", 0))
    except ValueError:
        index = 0
    return names[index] if 0 <= index < len(names) else ""


class BackOfficeAdmin(admin.ModelAdmin):
    """The base of every ModelAdmin of the back office.

    - Every action declares `allowed_permissions` (`@admin.action(permissions=["void"])` with a
      `has_void_permission` method checking a custom permission). Django leaves an action out of the menu of a
      user who lacks it, and silently ignores a POST naming it ("No action selected."); here such a POST is a 403,
      so a forged request is refused as loudly as a forged change page.
    - An action that declares no permission (a third-party admin's, e.g. procrastinate's jobs) is for superusers.
    - A save that changed nothing writes no "Changed" entry in the object's history.
    - `action_log` records an action in the audit log and in the history of each object it changed.
    """

    def get_actions(self, request):
        """An action that declares no permission (a third-party admin's) is for superusers only."""
        actions = super().get_actions(request)
        if request.user.is_superuser:
            return actions
        return {
            name: action for name, action in actions.items() if getattr(action[0], "allowed_permissions", ())
        }

    def changelist_view(self, request, extra_context=None):
        if request.method == "POST" and "_save" not in request.POST:
            name = _posted_action(request)
            if name and name not in self.get_actions(request):
                raise PermissionDenied
        return super().changelist_view(request, extra_context)

    def log_change(self, request, obj, message):
        if not message:  # "No fields changed.": nothing happened, so nothing is written to the history
            return None
        return super().log_change(request, obj, message)

    def action_log(
        self, request, action: str, objects: Iterable[Model], message: str, *, ids_key: str, **details
    ) -> None:
        """One audit row for the action (its name, the objects' ids under `ids_key`, and `details`) and one history
        entry (Django's LogEntry, shown under "History") per object, saying what the action did to it."""
        objects = list(objects)
        if not objects:
            return
        # The row's mode: the objects' when they all have one and share it (admin keys read their own mode's rows).
        modes = {getattr(obj, "mode", "") for obj in objects}
        mode = modes.pop() if len(modes) == 1 else ""
        admin_audit(
            request, action, mode=mode or None, **{ids_key: [str(obj.pk) for obj in objects]}, **details
        )
        self.history_log(request, objects, message)

    def history_log(self, request, objects: Iterable[Model], message: str) -> None:
        """One history entry per object (for actions whose service writes its own audit row)."""
        objects = list(objects)
        if objects:
            LogEntry.objects.log_actions(
                user_id=request.user.pk, queryset=objects, action_flag=CHANGE, change_message=message
            )


class ReadOnlyAdmin(BackOfficeAdmin):
    """A list and detail pages that change nothing; writes go through actions that call services."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
