"""Django admin for inbound gateway notifications: read-only, with the replay action (permission
`inbound.replay_inboundnotification`, the operations role; audited and written to each notification's history),
which calls webhooks.inbound.services like the API and `manage.py replay_webhooks`. Secrets in headers are redacted
at receipt; customer e-mail addresses and phone numbers in the body are masked for staff without
`invoices.view_customer_contact`.
"""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.utils.html import format_html

from apikeys.admin_base import ReadOnlyAdmin, can_see_contacts, short_datetime, truncated
from paytrust.errors import ApplicationError
from paytrust.money import CURRENCIES, format_display
from paytrust.redaction import mask_contacts
from webhooks.inbound import manual_admin  # noqa: F401 - registers the manual gateway's back office
from webhooks.inbound.models import InboundNotification, InboundNotificationAttempt


class InboundNotificationAttemptInline(admin.TabularInline):
    model = InboundNotificationAttempt
    fields = ["number", "started_at", "finished_at", "succeeded", "error"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(InboundNotification)
class InboundNotificationAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "created",
        "gateway",
        "merchant_short",
        "notification_status",
        "amount",
        "payment_reference",
        "status",
        "attempts",
        "error",
    ]
    list_filter = [
        "status",
        "gateway",
        "mode",
        "notification_status",
        ("created_at", admin.DateFieldListFilter),
    ]
    search_fields = ["id", "gateway_event_id", "payment_reference", "gateway_reference", "merchant__id"]
    list_select_related = ["merchant"]
    date_hierarchy = "created_at"
    exclude = ["body", "headers", "amount_minor"]
    inlines = [InboundNotificationAttemptInline]
    actions = ["replay_selected"]

    def get_readonly_fields(self, request, obj=None):
        body = "raw_body" if can_see_contacts(request) else "raw_body_masked"
        return ["amount", body, "headers_redacted"]

    @admin.display(description="merchant", ordering="merchant__name")
    def merchant_short(self, obj):
        return truncated(obj.merchant.name)

    @admin.display(description="received", ordering="created_at")
    def created(self, obj):
        return short_datetime(obj.created_at)

    @admin.display(description="amount", ordering="amount_minor")
    def amount(self, obj):
        if obj.amount_minor is None or obj.currency not in CURRENCIES:
            return "-"
        return format_display(obj.amount_minor, obj.currency)

    @admin.display(description="last error")
    def error(self, obj):
        return truncated(obj.last_error, 40) or "-"

    @admin.display(description="raw body")
    def raw_body(self, obj):
        return format_html(
            "<pre style='white-space: pre-wrap'>{}</pre>", bytes(obj.body).decode("utf-8", "replace")
        )

    @admin.display(description="body (customer e-mail and phone masked)")
    def raw_body_masked(self, obj):
        text = bytes(obj.body).decode("utf-8", "replace")
        try:
            text = json.dumps(mask_contacts(json.loads(text)), indent=2, sort_keys=True, ensure_ascii=False)
        except ValueError:
            text = mask_contacts(text)
        return format_html("<pre style='white-space: pre-wrap'>{}</pre>", text)

    @admin.display(description="headers (secrets redacted)")
    def headers_redacted(self, obj):
        return format_html(
            "<pre>{}</pre>", json.dumps(obj.headers, indent=2, sort_keys=True, ensure_ascii=False)
        )

    def has_replay_permission(self, request) -> bool:
        return request.user.has_perm("inbound.replay_inboundnotification")

    @admin.action(description="Replay selected (queue processing again)", permissions=["replay"])
    def replay_selected(self, request, queryset):
        from webhooks.inbound.services import inbound_event_replay

        replayed, skipped = [], []
        for notification in queryset:
            try:
                inbound_event_replay(event_id=notification.pk)
                replayed.append(notification)
            except ApplicationError:
                skipped.append(notification.pk)
        self.action_log(
            request,
            "webhooks.inbound_replay",
            replayed,
            "Replayed: processing queued again.",
            ids_key="events",
        )
        messages.success(request, f"{len(replayed)} event(s) queued for processing; {len(skipped)} skipped.")
