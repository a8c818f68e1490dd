"""Finance staff's view of invoices. Domain changes go through `invoices.services` (never `Model.save()`):
a draft's customer/description/expiry/metadata can be edited (the service validates and recomputes); once a
payment has been initiated - or the invoice is no longer a draft - the whole page is read-only. Invoices are
created through the API, never here.

`InvoiceAdmin` is defined here but registered by payments/admin.py, as a subclass that adds the invoice's payments
and the void / expire actions (they go through the payments services, which close the payments and list them in
the events). `PaymentApplicationAdmin` is registered here."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.db import transaction
from django.utils import timezone

from apikeys.admin_base import (
    BackOfficeAdmin,
    ReadOnlyAdmin,
    ReadOnlyInline,
    can_see_contacts,
    html_table,
    short_datetime,
    truncated,
)
from invoices import services
from invoices.calc import CustomerIn
from invoices.models import Installment, Invoice, InvoiceStatus, LineItem, PaymentApplication
from invoices.states import effective_status
from paytrust.errors import ApplicationError
from paytrust.money import format_display, format_percent
from paytrust.redaction import mask_email, mask_phone

DRAFT_EDITABLE = (
    "description",
    "customer_name",
    "customer_email",
    "customer_phone",
    "expires_at",
    "metadata",
)


def _is_editable(invoice: Invoice | None) -> bool:
    return (
        invoice is not None
        and invoice.payment_initiated_at is None
        and effective_status(invoice, timezone.now()) == InvoiceStatus.DRAFT
    )


class _ReadOnlyInline(ReadOnlyInline):
    def get_queryset(self, request):
        return super().get_queryset(request).select_related("invoice")


class LineItemInline(_ReadOnlyInline):
    model = LineItem
    fields = ("line", "name", "quantity", "unit_price", "tax_rate_percent", "subtotal", "tax")
    readonly_fields = fields

    @admin.display(description="#")
    def line(self, line: LineItem) -> int:
        return line.position + 1  # stored from 0, read from 1

    @admin.display(description="tax rate")
    def tax_rate_percent(self, line: LineItem) -> str:
        return format_percent(line.tax_rate)

    @admin.display(description="unit price")
    def unit_price(self, line: LineItem) -> str:
        return format_display(line.unit_price_minor, line.invoice.currency)

    @admin.display(description="subtotal")
    def subtotal(self, line: LineItem) -> str:
        return format_display(line.subtotal_minor, line.invoice.currency)

    @admin.display(description="tax")
    def tax(self, line: LineItem) -> str:
        return format_display(line.tax_minor, line.invoice.currency)


class InstallmentInline(_ReadOnlyInline):
    model = Installment
    fields = ("number", "amount", "tax_share", "fee_share", "due_date", "paid", "status", "paid_at")
    readonly_fields = fields

    @admin.display(description="amount")
    def amount(self, inst: Installment) -> str:
        return format_display(inst.amount_minor, inst.invoice.currency)

    @admin.display(description="tax share")
    def tax_share(self, inst: Installment) -> str:
        return format_display(inst.tax_share_minor, inst.invoice.currency)

    @admin.display(description="fee share")
    def fee_share(self, inst: Installment) -> str:
        return format_display(inst.fee_share_minor, inst.invoice.currency)

    @admin.display(description="paid")
    def paid(self, inst: Installment) -> str:
        return format_display(inst.amount_paid_minor, inst.invoice.currency)


class PaymentApplicationInline(_ReadOnlyInline):
    model = PaymentApplication
    verbose_name = "payment applied"
    verbose_name_plural = "payments applied"
    fields = ("payment_id", "amount", "applied", "overpaid", "tax", "fee", "allocated", "paid_at")
    readonly_fields = fields

    @admin.display(description="allocated to installments")
    def allocated(self, row: PaymentApplication) -> str:
        return allocations_table(row)

    @admin.display(description="amount")
    def amount(self, row: PaymentApplication) -> str:
        return format_display(row.amount_minor, row.currency)

    @admin.display(description="applied")
    def applied(self, row: PaymentApplication) -> str:
        return format_display(row.applied_minor, row.currency)

    @admin.display(description="overpaid")
    def overpaid(self, row: PaymentApplication) -> str:
        return format_display(row.overpaid_minor, row.currency)

    @admin.display(description="tax carried")
    def tax(self, row: PaymentApplication) -> str:
        return format_display(row.tax_minor, row.currency)

    @admin.display(description="fee carried")
    def fee(self, row: PaymentApplication) -> str:
        return format_display(row.fee_minor, row.currency)


def allocations_table(row: PaymentApplication) -> str:
    """[{"number": 2, "amount": 5000}, ...] as a table: installment, amount."""
    return html_table(
        ["installment", "amount"],
        [[item["number"], format_display(item["amount"], row.currency)] for item in row.allocations or []],
    )


class InvoiceAdminForm(forms.ModelForm):
    """Validates a draft edit by running the real service in a savepoint that is rolled back, so the page shows
    the service's error next to the field instead of saving half a change."""

    class Meta:
        model = Invoice
        fields = DRAFT_EDITABLE

    def clean(self):
        cleaned = super().clean()
        if self.instance.pk and self.changed_data and not self.errors:
            try:
                with transaction.atomic():
                    _update_through_service(self.instance, cleaned, self.changed_data)
                    raise _DryRun
            except _DryRun:
                pass
            except ApplicationError as exc:
                field = exc.param.split(".")[0] if exc.param else None
                field = {"customer": "customer_email"}.get(field, field)
                if field in self.fields:
                    self.add_error(field, exc.message)
                else:
                    raise forms.ValidationError(exc.message)
        return cleaned


class _DryRun(Exception):
    pass


def _update_through_service(invoice: Invoice, cleaned: dict, changed: list[str]) -> Invoice:
    changes: dict = {}
    if {"customer_name", "customer_email", "customer_phone"} & set(changed):
        changes["customer"] = CustomerIn(
            cleaned.get("customer_name", invoice.customer_name),
            cleaned.get("customer_email", invoice.customer_email),
            cleaned.get("customer_phone", invoice.customer_phone),
        )
    for name in ("description", "expires_at", "metadata"):
        if name in changed:
            changes[name] = cleaned.get(name)
    return services.invoice_update(
        merchant=invoice.merchant, mode=invoice.mode, invoice_id=invoice.pk, **changes
    )


class InvoiceAdmin(BackOfficeAdmin):
    """Not registered here: payments/admin.py registers it (see the module docstring)."""

    form = InvoiceAdminForm
    # Fits a 1366-px screen: ids, short labels, the money columns; gateway, mode, currency are filters.
    list_display = (
        "id",
        "merchant_short",
        "customer",
        "state",
        "total",
        "amount_paid",
        "amount_due",
        "created",
    )
    list_filter = (
        "status",
        "currency",
        "gateway",
        "mode",
        ("created_at", admin.DateFieldListFilter),
        "expires_at",
    )
    search_fields = ("=id", "=external_id", "customer_email")
    list_select_related = ("merchant",)
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-id")
    inlines = (LineItemInline, InstallmentInline, PaymentApplicationInline)
    readonly_fields = (
        "customer_email_masked",
        "customer_phone_masked",
        "installment_plan_table",
        "id",
        "merchant",
        "mode",
        "current_status",
        "currency",
        "gateway",
        "gateway_account",
        "external_id",
        "subtotal",
        "tax_total",
        "service_fee",
        "total",
        "amount_paid",
        "amount_due",
        "overpaid",
        "fee_terms",
        "lapses_at",
        "payment_initiated_at",
        "paid_at",
        "expired_at",
        "voided_at",
        "parent_invoice",
        "supplementary",
        "created_at",
        "updated_at",
    )
    fieldsets = (
        (None, {"fields": ("id", "merchant", "mode", "current_status", "external_id", "description")}),
        ("Customer", {"fields": ("customer_name", "customer_email", "customer_phone")}),
        (
            "Amounts",
            {
                "fields": (
                    "currency",
                    "subtotal",
                    "tax_total",
                    "service_fee",
                    "fee_terms",
                    "total",
                    "amount_paid",
                    "amount_due",
                    "overpaid",
                )
            },
        ),
        ("Gateway", {"fields": ("gateway", "gateway_account")}),
        (
            "Dates",
            {
                "fields": (
                    "expires_at",
                    "lapses_at",
                    "payment_initiated_at",
                    "paid_at",
                    "expired_at",
                    "voided_at",
                    "created_at",
                    "updated_at",
                )
            },
        ),
        ("Links", {"fields": ("parent_invoice", "supplementary", "installment_plan_table", "metadata")}),
    )

    def get_readonly_fields(self, request, obj=None):
        if _is_editable(obj) and self.has_change_permission(request, obj):
            return self.readonly_fields
        return self.readonly_fields + DRAFT_EDITABLE

    def get_fieldsets(self, request, obj=None):
        """Staff without `invoices.view_customer_contact` (support, operations) see the e-mail and phone masked."""
        fieldsets = super().get_fieldsets(request, obj)
        if can_see_contacts(request):
            return fieldsets
        masked = {"customer_email": "customer_email_masked", "customer_phone": "customer_phone_masked"}
        return [
            (name, {**options, "fields": tuple(masked.get(f, f) for f in options["fields"])})
            for name, options in fieldsets
        ]

    def get_list_display(self, request):
        if can_see_contacts(request):
            return self.list_display
        return tuple("customer_masked" if name == "customer" else name for name in self.list_display)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        """Only a draft nobody has started paying can be edited (`invoices.change_invoice`, the finance role); any
        other invoice's page is view-only, so saving it is refused and writes no history."""
        if obj is not None and not _is_editable(obj):
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change):
        """Never `obj.save()`: the change goes through the service (validated already by the form)."""
        if not change or not form.changed_data or not _is_editable(obj):
            return
        fresh = Invoice.objects.select_related("merchant").get(pk=obj.pk)
        _update_through_service(fresh, form.cleaned_data, form.changed_data)

    def save_related(self, request, form, formsets, change):
        """Inlines are view-only (no fields), so saving their formsets writes nothing; it is still called so the
        admin's change message can be built."""
        super().save_related(request, form, formsets, change)

    # ---- display helpers ----

    def _money(self, obj: Invoice, minor: int) -> str:
        return format_display(minor, obj.currency)

    @admin.display(description="merchant", ordering="merchant__name")
    def merchant_short(self, obj: Invoice) -> str:
        return truncated(obj.merchant.name)

    @admin.display(description="customer")
    def customer(self, obj: Invoice) -> str:
        """The name, else the e-mail address."""
        return truncated(obj.customer_name or obj.customer_email, 20) or "-"

    @admin.display(description="customer")
    def customer_masked(self, obj: Invoice) -> str:
        """The name, else the e-mail address masked (staff without `invoices.view_customer_contact`)."""
        return truncated(obj.customer_name or mask_email(obj.customer_email), 20) or "-"

    @admin.display(description="e-mail")
    def customer_email_masked(self, obj: Invoice) -> str:
        return mask_email(obj.customer_email) or "-"

    @admin.display(description="phone")
    def customer_phone_masked(self, obj: Invoice) -> str:
        return mask_phone(obj.customer_phone) or "-"

    @admin.display(description="created", ordering="created_at")
    def created(self, obj: Invoice) -> str:
        return short_datetime(obj.created_at)

    @admin.display(description="amount due")
    def amount_due(self, obj: Invoice) -> str:
        return self._money(obj, obj.amount_due_minor)

    @admin.display(description="installment plan")
    def installment_plan_table(self, obj: Invoice) -> str:
        """What the merchant asked for ({"count": 3, "amounts": [...] | null, "due_dates": [...] | null}), as a
        table; "-" for no plan."""
        plan = obj.installment_plan
        if not plan:
            return "-"
        count = plan.get("count") or 0
        amounts = plan.get("amounts") or [None] * count
        due_dates = plan.get("due_dates") or [None] * count
        rows = [
            [
                number,
                "equal share" if amount is None else format_display(amount, obj.currency),
                due or "computed",
            ]
            for number, (amount, due) in enumerate(zip(amounts, due_dates, strict=False), start=1)
        ]
        return html_table(["installment", "amount asked", "due date asked"], rows)

    @admin.display(description="status", ordering="status")
    def current_status(self, obj: Invoice) -> str:
        return InvoiceStatus(effective_status(obj, timezone.now())).label

    @admin.display(description="status", ordering="status")
    def state(self, obj: Invoice) -> str:
        """The list's status column says "test" for test-mode invoices (mode is a filter, not a column)."""
        status = InvoiceStatus(
            effective_status(obj, timezone.now())
        ).label  # "Partially paid", not partially_paid
        return f"{status} · test" if obj.mode == "test" else status

    @admin.display(description="total", ordering="total_minor")
    def total(self, obj: Invoice) -> str:
        return self._money(obj, obj.total_minor)

    @admin.display(description="subtotal")
    def subtotal(self, obj: Invoice) -> str:
        return self._money(obj, obj.subtotal_minor)

    @admin.display(description="tax total")
    def tax_total(self, obj: Invoice) -> str:
        return self._money(obj, obj.tax_total_minor)

    @admin.display(description="service fee")
    def service_fee(self, obj: Invoice) -> str:
        return self._money(obj, obj.service_fee_minor)

    @admin.display(description="amount paid")
    def amount_paid(self, obj: Invoice) -> str:
        return self._money(obj, obj.amount_paid_minor)

    @admin.display(description="overpaid")
    def overpaid(self, obj: Invoice) -> str:
        return self._money(obj, obj.overpaid_minor)

    @admin.display(description="fee terms")
    def fee_terms(self, obj: Invoice) -> str:
        return f"{format_percent(obj.fee_percent)} of the subtotal + {self._money(obj, obj.fee_fixed_minor)}"

    @admin.display(description="supplementary invoices")
    def supplementary(self, obj: Invoice) -> str:
        return ", ".join(obj.supplementary_invoices.values_list("id", flat=True)) or "-"


@admin.register(PaymentApplication)
class PaymentApplicationAdmin(ReadOnlyAdmin):
    list_display = ("payment_id", "invoice", "gateway", "amount", "applied", "overpaid", "tax", "fee", "paid")
    search_fields = ("=payment_id", "=invoice__id")
    list_filter = ("currency", "mode", "gateway")
    fields = (
        "payment_id",
        "invoice",
        "merchant",
        "mode",
        "gateway",
        "target_installment",
        "amount",
        "applied",
        "overpaid",
        "taxable",
        "tax",
        "fee",
        "allocated",
        "paid_at",
        "created_at",
    )
    readonly_fields = fields

    def _money(self, row: PaymentApplication, minor: int) -> str:
        return format_display(minor, row.currency)

    @admin.display(description="amount", ordering="amount_minor")
    def amount(self, row: PaymentApplication) -> str:
        return self._money(row, row.amount_minor)

    @admin.display(description="applied")
    def applied(self, row: PaymentApplication) -> str:
        return self._money(row, row.applied_minor)

    @admin.display(description="overpaid")
    def overpaid(self, row: PaymentApplication) -> str:
        return self._money(row, row.overpaid_minor)

    @admin.display(description="taxable")
    def taxable(self, row: PaymentApplication) -> str:
        return self._money(row, row.taxable_minor)

    @admin.display(description="tax carried")
    def tax(self, row: PaymentApplication) -> str:
        return self._money(row, row.tax_minor)

    @admin.display(description="fee carried")
    def fee(self, row: PaymentApplication) -> str:
        return self._money(row, row.fee_minor)

    @admin.display(description="allocated to installments")
    def allocated(self, row: PaymentApplication) -> str:
        return allocations_table(row)

    @admin.display(description="paid", ordering="paid_at")
    def paid(self, row: PaymentApplication) -> str:
        return short_datetime(row.paid_at)
