"""The back office of the manual bank-transfer gateway (docs/adr/0052-manual-bank-transfer.md):

- Bank transfer receipts: the list of recorded transfers (read-only) and "Record a bank transfer" (the list's add
  button; permission `gateways.record_banktransferreceipt`, the finance role): reference, amount, date received,
  bank reference → `webhooks.inbound.manual_transfers.bank_transfer_record`, the service of `manage.py
  record_bank_transfer`. The service audits the recording; the admin also writes the receipt's history.
- Manual bank transfers: each payment's instructions (read-only; never the page token).
- Manual refunds: "Mark paid out by hand" (permission `gateways.payout_manualrefund`, finance) on ONE pending
  refund, with the bank reference of the payout: the gateway's refund is marked paid out and PayTrust asks the
  gateway about it at once (`payments.services.refund_reconcile`), so the refund succeeds through the same path as
  any gateway's answer (ledger `refund_succeeded`, event `refund.succeeded`). Audited.

Registered here (the inbound layer) because the actions join the gateway's records and payments, like the
sandbox checkout page.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.template.response import TemplateResponse

from apikeys.admin_base import ReadOnlyAdmin, short_datetime
from apikeys.services import Actor
from gateways.manual import services as manual
from gateways.models import BankTransferReceipt, ManualRefund, ManualRefundStatus, ManualTransfer
from payments.services import refund_reconcile
from paytrust import money
from paytrust.errors import ApplicationError
from webhooks.inbound.manual_transfers import bank_transfer_record

RECORD_PERMISSION = "gateways.record_banktransferreceipt"
PAYOUT_PERMISSION = "gateways.payout_manualrefund"


class RecordTransferForm(forms.Form):
    reference = forms.CharField(max_length=40, help_text="The reference the payer quoted, e.g. PT-7K3M-9QX2.")
    amount = forms.CharField(
        max_length=40, help_text="Amount received in the payment's currency, e.g. 150000 or 16.99."
    )
    received_on = forms.DateField(help_text="The date the bank received it (YYYY-MM-DD).")
    bank_reference = forms.CharField(
        max_length=64, help_text="The bank's id of the transfer (statement line)."
    )


class PayoutForm(forms.Form):
    payout_reference = forms.CharField(max_length=64, help_text="The bank's id of the payout you made.")


@admin.register(BankTransferReceipt)
class BankTransferReceiptAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "bank_reference",
        "transfer",
        "amount_display",
        "received_on",
        "recorded_by",
        "created",
    ]
    search_fields = ["bank_reference", "transfer__reference", "transfer__payment_id"]
    list_select_related = ["transfer"]
    fields = [
        "transfer",
        "account",
        "bank_reference",
        "amount_display",
        "received_on",
        "recorded_by",
        "created_at",
    ]
    readonly_fields = fields

    @admin.display(description="amount", ordering="amount_minor")
    def amount_display(self, obj):
        return money.format_display(obj.amount_minor, obj.currency)

    @admin.display(description="recorded", ordering="created_at")
    def created(self, obj):
        return short_datetime(obj.created_at)

    def has_add_permission(self, request, obj=None) -> bool:
        return request.user.has_perm(RECORD_PERMISSION)

    def add_view(self, request, form_url="", extra_context=None):
        """ "Record a bank transfer": the form, then the service; a refusal is shown on the form, nothing written."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = RecordTransferForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                recorded = bank_transfer_record(
                    reference=data["reference"],
                    amount=data["amount"].strip(),
                    received_on=data["received_on"],
                    bank_reference=data["bank_reference"],
                    actor=Actor.for_user(request),
                )
            except ApplicationError as exc:
                field = (exc.param or "").split(".")[0]
                form.add_error(field if field in form.fields else None, exc.message)
            else:
                receipt = BankTransferReceipt.objects.get(pk=recorded.receipt_id)
                if recorded.duplicate:
                    messages.warning(
                        request, f"{receipt.bank_reference} was already recorded; nothing changed."
                    )
                else:
                    self.history_log(
                        request, [receipt], f"Recorded {recorded.amount_display}: {recorded.outcome}"
                    )
                    messages.success(
                        request,
                        f"Recorded {recorded.amount_display} for {recorded.reference} ({recorded.payment_id}): "
                        f"{recorded.outcome}",
                    )
                return redirect("admin:gateways_banktransferreceipt_changelist")
        context = {
            **self.admin_site.each_context(request),
            "title": "Record a bank transfer",
            "opts": self.model._meta,
            "form": form,
        }
        return TemplateResponse(request, "admin/gateways/banktransferreceipt/record.html", context)


@admin.register(ManualTransfer)
class ManualTransferAdmin(ReadOnlyAdmin):
    list_display = [
        "reference",
        "payment_id",
        "merchant_name",
        "status",
        "amount_display",
        "received",
        "created",
    ]
    list_filter = ["status", "currency"]
    search_fields = ["reference", "payment_id", "invoice_id"]
    # Never the token: it is the bearer credential of the instructions page.
    fields = [
        "id",
        "account",
        "payment_id",
        "reference",
        "merchant_name",
        "invoice_id",
        "installment_number",
        "description",
        "amount_display",
        "status",
        "received",
        "received_at",
        "expires_at",
        "created_at",
    ]
    readonly_fields = fields

    @admin.display(description="amount", ordering="amount_minor")
    def amount_display(self, obj):
        return money.format_display(obj.amount_minor, obj.currency)

    @admin.display(description="received", ordering="amount_received_minor")
    def received(self, obj):
        return (
            money.format_display(obj.amount_received_minor, obj.currency)
            if obj.amount_received_minor
            else "-"
        )

    @admin.display(description="created", ordering="created_at")
    def created(self, obj):
        return short_datetime(obj.created_at)


@admin.register(ManualRefund)
class ManualRefundAdmin(ReadOnlyAdmin):
    list_display = [
        "refund_id",
        "transfer",
        "status",
        "amount_display",
        "payout_reference",
        "paid_out_by",
        "created",
    ]
    list_filter = ["status"]
    search_fields = ["refund_id", "transfer__reference", "transfer__payment_id", "payout_reference"]
    list_select_related = ["transfer"]
    fields = [
        "refund_id",
        "transfer",
        "amount_display",
        "status",
        "payout_reference",
        "paid_out_by",
        "paid_out_at",
        "created_at",
    ]
    readonly_fields = fields
    actions = ["mark_paid_out"]

    @admin.display(description="amount", ordering="amount_minor")
    def amount_display(self, obj):
        return money.format_display(obj.amount_minor, obj.currency)

    @admin.display(description="created", ordering="created_at")
    def created(self, obj):
        return short_datetime(obj.created_at)

    def has_payout_permission(self, request) -> bool:
        return request.user.has_perm(PAYOUT_PERMISSION)

    @admin.action(description="Mark paid out by hand", permissions=["payout"])
    def mark_paid_out(self, request, queryset):
        refunds = list(queryset.select_related("transfer")[:2])
        if len(refunds) != 1 or refunds[0].status != ManualRefundStatus.PENDING:
            messages.error(request, "Select exactly one pending refund.")
            return None
        refund = refunds[0]
        form = PayoutForm(request.POST if request.POST.get("payout_step") == "apply" else None)
        if not form.is_valid():
            context = {
                **self.admin_site.each_context(request),
                "title": f"Mark refund {refund.refund_id} paid out",
                "opts": self.model._meta,
                "refund": refund,
                "amount_display": money.format_display(refund.amount_minor, refund.currency),
                "form": form,
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            }
            return TemplateResponse(request, "admin/gateways/manualrefund/payout.html", context)
        try:
            refund, _ = manual.refund_mark_paid_out(
                refund_id=refund.refund_id,
                payout_reference=form.cleaned_data["payout_reference"],
                paid_out_by=Actor.for_user(request).label,
            )
        except ApplicationError as exc:
            messages.error(request, exc.message)
            return None
        refund_reconcile(refund_id=refund.refund_id)  # PayTrust asks the gateway now: the refund succeeds
        shown = money.format_display(refund.amount_minor, refund.currency)
        self.action_log(
            request,
            "payments.refund_paid_out_by_hand",
            [refund],
            f"Paid out by hand ({refund.payout_reference}): {shown}.",
            ids_key="manual_refunds",
            refund=refund.refund_id,
            payout_reference=refund.payout_reference,
            amount=money.format_amount(refund.amount_minor, refund.currency),
            currency=refund.currency,
        )
        messages.success(request, f"Refund {refund.refund_id} of {shown} marked paid out.")
        return None
