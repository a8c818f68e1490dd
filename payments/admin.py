"""Django admin for payments: read-only, with the gateway calls (secrets redacted) and the inbound webhook events
that touched each payment. The one action ("reconcile") calls payments.services, like manage.py and the job.

Also adds a read-only payments inline to the invoice admin, if the invoices app registered one (done here so
invoices/admin.py need not know about payments).
"""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.utils.html import format_html

from apikeys.models import AuditLog
from apikeys.services import Actor, audit_record
from payments.models import GatewayCall, Payment
from payments.services import payments_reconcile
from paytrust.money import format_amount


def _audit(request, action: str, **details) -> None:
    actor = Actor(
        label=f"user:{request.user.get_username()}",
        ip=request.META.get("REMOTE_ADDR"),
        user_agent=request.META.get("HTTP_USER_AGENT", ""),
    )
    audit_record(action=AuditLog.Action.ADMIN_ACTION, actor=actor, action_name=action, **details)


def _pretty(value) -> str:
    return format_html(
        "<pre style='white-space: pre-wrap'>{}</pre>", json.dumps(value, indent=2, sort_keys=True)
    )


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


class GatewayCallInline(ReadOnlyInline):
    model = GatewayCall
    fields = [
        "started_at",
        "operation",
        "outcome",
        "duration_ms",
        "error_message",
        "request_json",
        "response_json",
    ]
    readonly_fields = fields

    @admin.display(description="request (redacted)")
    def request_json(self, obj):
        return _pretty(obj.request)

    @admin.display(description="response (redacted)")
    def response_json(self, obj):
        return _pretty(obj.response)


def _inbound_inline():
    """Inline of the inbound webhook events that named the payment (defined by the webhooks app)."""
    try:
        from webhooks.inbound.models import InboundNotification
    except ImportError:  # pragma: no cover - the inbound model not migrated yet
        return None

    class WebhookEventInline(ReadOnlyInline):
        model = InboundNotification
        fk_name = "payment"
        fields = [
            "id",
            "created_at",
            "gateway_event_id",
            "notification_status",
            "status",
            "attempts",
            "outcome",
        ]
        readonly_fields = fields
        show_change_link = True

    return WebhookEventInline


@admin.register(Payment)
class PaymentAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "merchant",
        "mode",
        "invoice",
        "installment_number",
        "gateway",
        "status",
        "amount_display",
        "received_display",
        "created_at",
    ]
    list_filter = ["status", "gateway", "mode", "currency", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["id", "invoice__id", "gateway_reference", "merchant__id", "merchant__name"]
    list_select_related = ["merchant", "invoice"]
    date_hierarchy = "created_at"
    actions = ["reconcile_selected"]

    def get_inlines(self, request, obj):
        inbound = _inbound_inline()
        return [GatewayCallInline, *([inbound] if inbound else [])]

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="amount")
    def amount_display(self, obj):
        return f"{format_amount(obj.amount_minor, obj.currency)} {obj.currency}"

    @admin.display(description="received")
    def received_display(self, obj):
        return f"{format_amount(obj.amount_received_minor, obj.currency)} {obj.currency}"

    @admin.action(description="Reconcile selected payments with the gateway")
    def reconcile_selected(self, request, queryset):
        ids = list(queryset.values_list("pk", flat=True)[:500])
        summary = payments_reconcile(payment_ids=ids)
        _audit(request, "payments.reconcile", payments=ids)
        messages.success(
            request,
            f"Checked {summary.checked}: {summary.changed} changed, {summary.unchanged} unchanged, "
            f"{summary.errors} errors.",
        )


class PaymentInline(ReadOnlyInline):
    model = Payment
    fields = [
        "id",
        "installment_number",
        "status",
        "gateway",
        "amount_minor",
        "amount_received_minor",
        "created_at",
    ]
    readonly_fields = fields
    show_change_link = True


def _add_payments_inline_to_invoice_admin() -> bool:
    from invoices.models import Invoice

    registered = admin.site._registry.get(Invoice)
    if registered is None:
        return False
    base = type(registered)
    if PaymentInline in (base.inlines or []):
        return True
    admin.site.unregister(Invoice)
    admin.site.register(Invoice, type(base.__name__, (base,), {"inlines": [*base.inlines, PaymentInline]}))
    return True


_add_payments_inline_to_invoice_admin()
