"""Django admin for payments: read-only, with the gateway calls (secrets redacted; customer e-mail and phone
masked for staff without `invoices.view_customer_contact`), the refunds recorded on each payment (gateway-reported
refunds and chargebacks: the "refunded" column, the "refunds" filter, the refunds inline), money received on a
closed invoice (filter), and a link to the inbound notifications that touched each payment. The actions:
"reconcile" (`payments.reconcile_payment`) queues jobs through payments.services; "refund"
(`payments.refund_payment`, finance) refunds through `refund_create` (payments/refund_admin.py, which also
registers the read-only refunds list). Amounts are shown with their
currency ("IDR 277,500", "USD 202.97"), never in minor units.

Also registers the invoice admin (`invoices.admin.InvoiceAdmin`, which invoices/admin.py defines without
registering): this layer adds the invoice's payments inline and the void / expire actions, which go through the
payments services (a void closes the invoice's open payments; the events list its payments). Admin URLs stay
/admin/invoices/invoice/… (they follow the model).
"""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.db.models import Exists, F, OuterRef
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html

from apikeys.admin_base import (
    ReadOnlyAdmin,
    ReadOnlyInline,
    can_see_contacts,
    html_table,
    short_datetime,
    truncated,
)
from invoices import admin as invoices_admin
from invoices.models import Invoice
from payments import refund_admin, review_admin  # noqa: F401 - registers the review queue
from payments.models import GatewayCall, Payment, Refund
from payments.services import (
    invoice_expire_with_payments,
    invoice_void_closing_payments,
    payments_reconcile_queue,
)
from paytrust.errors import ApplicationError
from paytrust.money import format_display
from paytrust.redaction import mask_contacts


def _pretty(value) -> str:
    return format_html(
        "<pre style='white-space: pre-wrap'>{}</pre>",
        json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False),
    )


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
    readonly_fields = [*fields, "request_masked", "response_masked"]

    def get_fields(self, request, obj=None):
        if can_see_contacts(request):
            return self.fields
        masked = {"request_json": "request_masked", "response_json": "response_masked"}
        return [masked.get(name, name) for name in self.fields]

    @admin.display(description="request (redacted)")
    def request_json(self, obj):
        return _pretty(obj.request)

    @admin.display(description="response (redacted)")
    def response_json(self, obj):
        return _pretty(obj.response)

    @admin.display(description="request (redacted)")
    def request_masked(self, obj):
        return _pretty(mask_contacts(obj.request))

    @admin.display(description="response (redacted)")
    def response_masked(self, obj):
        return _pretty(mask_contacts(obj.response))


class RefundInline(ReadOnlyInline):
    model = Refund
    fields = [
        "id",
        "amount_display",
        "chargeback",
        "origin",
        "status",
        "gateway_refund_reference",
        "succeeded_at",
    ]
    readonly_fields = fields

    @admin.display(description="amount")
    def amount_display(self, obj):
        return format_display(obj.amount_minor, obj.currency)


class RefundsFilter(admin.SimpleListFilter):
    """Payments by what was refunded on them (a chargeback is a refund flagged as one)."""

    title = "refunds"
    parameter_name = "refunds"

    def lookups(self, request, model_admin):
        return [
            ("none", "Nothing refunded"),
            ("any", "Any refund"),
            ("partial", "Partially refunded"),
            ("full", "Fully refunded"),
            ("chargeback", "With a chargeback"),
        ]

    def queryset(self, request, queryset):
        value = self.value()
        if value == "none":
            return queryset.filter(amount_refunded_minor=0)
        if value == "any":
            return queryset.filter(amount_refunded_minor__gt=0)
        if value == "partial":
            return queryset.filter(
                amount_refunded_minor__gt=0, amount_refunded_minor__lt=F("amount_received_minor")
            )
        if value == "full":
            return queryset.filter(
                amount_refunded_minor__gt=0, amount_refunded_minor=F("amount_received_minor")
            )
        if value == "chargeback":
            return queryset.filter(Exists(Refund.objects.filter(payment=OuterRef("pk"), chargeback=True)))
        return queryset


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    # Fits a 1366-px screen: ids, short labels, the money columns; gateway, mode, currency are filters.
    list_display = [
        "id",
        "merchant_short",
        "invoice",
        "installment",
        "status",
        "amount_display",
        "received_display",
        "refunded_display",
        "created",
    ]
    list_filter = [
        "status",
        "review_status",
        "capture_method",
        ("received_on_closed_invoice", admin.BooleanFieldListFilter),
        RefundsFilter,
        "gateway",
        "mode",
        "currency",
        ("created_at", admin.DateFieldListFilter),
    ]
    search_fields = ["id", "invoice__id", "gateway_reference", "merchant__id", "merchant__name"]
    list_select_related = ["merchant", "invoice"]
    date_hierarchy = "created_at"
    actions = ["reconcile_selected", "refund_selected"]

    inlines = [RefundInline, GatewayCallInline]
    # Authorize and capture (docs/adr/0047): shown; captures and voids go through the API.
    _HOLD_FIELDS = [
        "capture_method",
        "capturable_display",
        "capture_before",
        "hold_operation",
        "hold_operation_at",
        "authorized_at",
        "captured_at",
        "canceled_at",
    ]
    # Risk (docs/adr/0053): the check's score and reasons; decisions are taken in the review queue.
    _RISK_FIELDS = [
        "risk_score",
        "risk_reasons_display",
        "customer_ip",
        "device_id",
        "checkout_ip",
        "review_status",
        "reviewed_by",
        "reviewed_at",
    ]
    fieldsets = [
        (None, {"fields": ["id", "merchant", "mode", "invoice", "installment_number", "status"]}),
        (
            "Amounts",
            {
                "fields": [
                    "amount_display",
                    "received_display",
                    "refunded_display",
                    "received_on_closed_invoice",
                ]
            },
        ),
        ("Authorization", {"fields": _HOLD_FIELDS}),
        ("Risk", {"fields": _RISK_FIELDS}),
        (
            "Gateway",
            {
                "fields": [
                    "gateway",
                    "gateway_account",
                    "gateway_reference",
                    "payment_url",
                    "failure_code",
                    "failure_message",
                    "inbound_notifications",
                ]
            },
        ),
        (
            "Dates",
            {
                "fields": [
                    "created_at",
                    "expires_at",
                    "succeeded_at",
                    "failed_at",
                    "expired_at",
                    "gateway_status_at",
                    "reconciled_at",
                    "reconcile_attempts",
                    "updated_at",
                ]
            },
        ),
    ]
    readonly_fields = [
        "id",
        "merchant",
        "mode",
        "invoice",
        "installment_number",
        "status",
        "amount_display",
        "received_display",
        "refunded_display",
        "received_on_closed_invoice",
        *_HOLD_FIELDS,
        *_RISK_FIELDS,
        "gateway",
        "gateway_account",
        "gateway_reference",
        "payment_url",
        "failure_code",
        "failure_message",
        "inbound_notifications",
        "created_at",
        "expires_at",
        "succeeded_at",
        "failed_at",
        "expired_at",
        "gateway_status_at",
        "reconciled_at",
        "reconcile_attempts",
        "updated_at",
    ]

    @admin.display(description="inbound notifications")
    def inbound_notifications(self, obj):
        """A link to the inbound notifications that named the payment, by admin URL name: the inbound app is
        above this one and is not imported here."""
        try:
            url = reverse("admin:inbound_inboundnotification_changelist")
        except NoReverseMatch:
            return "-"
        return format_html('<a href="{}?payment={}">Notifications naming this payment</a>', url, obj.pk)

    @admin.display(description="merchant", ordering="merchant__name")
    def merchant_short(self, obj):
        return truncated(obj.merchant.name)

    @admin.display(description="risk reasons")
    def risk_reasons_display(self, obj):
        return html_table(
            ["code", "message"], [[r.get("code"), r.get("message")] for r in obj.risk_reasons or []]
        )

    @admin.display(description="inst.", ordering="installment_number")
    def installment(self, obj):
        return obj.installment_number

    @admin.display(description="created", ordering="created_at")
    def created(self, obj):
        return short_datetime(obj.created_at)

    @admin.display(description="capturable", ordering="amount_capturable_minor")
    def capturable_display(self, obj):
        return format_display(obj.amount_capturable_minor, obj.currency)

    @admin.display(description="amount", ordering="amount_minor")
    def amount_display(self, obj):
        return format_display(obj.amount_minor, obj.currency)

    @admin.display(description="received", ordering="amount_received_minor")
    def received_display(self, obj):
        return format_display(obj.amount_received_minor, obj.currency)

    @admin.display(description="refunded", ordering="amount_refunded_minor")
    def refunded_display(self, obj):
        """Refunds recorded on the payment (chargebacks included), formatted; "-" when none."""
        return format_display(obj.amount_refunded_minor, obj.currency) if obj.amount_refunded_minor else "-"

    def has_reconcile_permission(self, request) -> bool:
        return request.user.has_perm("payments.reconcile_payment")

    @admin.action(description="Reconcile selected payments with the gateway", permissions=["reconcile"])
    def reconcile_selected(self, request, queryset):
        """Queues one reconciliation job per open payment (the gateways are asked by the workers, not inside this
        request: up to 500 payments x 2 calls x 10 s would not fit in one)."""
        payments = list(queryset[:500])
        ids = [payment.pk for payment in payments]
        queued = payments_reconcile_queue(payment_ids=ids)
        self.action_log(
            request,
            "payments.reconcile",
            payments,
            "Reconciliation with the gateway requested (queued unless the payment was final).",
            ids_key="payments",
            queued=queued,
        )
        messages.success(
            request,
            f"Queued {queued} reconciliation job{'s' if queued != 1 else ''}; "
            f"{len(ids) - queued} of the {len(ids)} selected payments are already final. "
            "The workers ask the gateways within a minute; reload to see the outcome.",
        )

    def has_refund_permission(self, request) -> bool:
        return request.user.has_perm("payments.refund_payment")

    @admin.action(description="Refund the selected payment…", permissions=["refund"])
    def refund_selected(self, request, queryset):
        """One payment: a form (amount, default all that is still refundable; reason), then a confirmation page,
        then `refund_create` (origin `admin`), audited. See payments/refund_admin.py."""
        return refund_admin.refund_action(self, request, queryset)


class PaymentInline(ReadOnlyInline):
    model = Payment
    fields = ["id", "installment_number", "status", "gateway", "amount", "received", "created_at"]
    readonly_fields = fields
    show_change_link = True

    @admin.display(description="amount")
    def amount(self, obj):
        return format_display(obj.amount_minor, obj.currency)

    @admin.display(description="received")
    def received(self, obj):
        return format_display(obj.amount_received_minor, obj.currency)


@admin.register(Invoice)
class InvoiceAdmin(invoices_admin.InvoiceAdmin):
    """The invoice admin with its payments, and the actions that go through the payments services."""

    inlines = (*invoices_admin.InvoiceAdmin.inlines, PaymentInline)
    actions = ("void_selected", "expire_overdue_selected")

    def has_void_permission(self, request) -> bool:
        return request.user.has_perm("invoices.void_invoice")

    def has_expire_permission(self, request) -> bool:
        return request.user.has_perm("invoices.expire_invoice")

    @admin.action(
        description="Void selected invoices (draft/pending, no money received)", permissions=["void"]
    )
    def void_selected(self, request, queryset):
        voided = []
        for invoice in queryset.select_related("merchant"):
            try:
                invoice_void_closing_payments(
                    merchant=invoice.merchant, mode=invoice.mode, invoice_id=invoice.pk
                )
                voided.append(invoice)
            except ApplicationError as exc:
                self.message_user(request, f"{invoice.pk}: {exc.message}", level=messages.ERROR)
        if voided:
            self.action_log(
                request, "invoices.void", voided, "Voided (its open payments closed).", ids_key="invoices"
            )
            self.message_user(request, f"Voided {len(voided)} invoice(s).", level=messages.SUCCESS)

    @admin.action(description="Expire selected invoices that are past their expiry", permissions=["expire"])
    def expire_overdue_selected(self, request, queryset):
        expired = [invoice for invoice in queryset if invoice_expire_with_payments(invoice_id=invoice.pk)]
        self.action_log(request, "invoices.expire", expired, "Expired (past its expiry).", ids_key="invoices")
        self.message_user(request, f"Expired {len(expired)} invoice(s).", level=messages.SUCCESS)
