"""The back office's refunds (docs/adr/0046-refunds.md): the payment admin's "Refund" action and the read-only
refunds list.

The action (permission `payments.refund_payment`, held by the finance role) works on ONE payment, in three steps
on the same changelist POST: a form (amount, default all that is still refundable; reason), a confirmation page
saying what will be refunded through which gateway, then `payments.services.refund_create` with origin `admin`
(the API's service: same locks, checks and gateway call). What it did is audited (`payments.refund`, with the
refund id, amount and outcome) and written to the payment's history. A refusal (409/422/400) changes nothing and
is shown as an error message.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse

from apikeys.admin_base import ReadOnlyAdmin, short_datetime, truncated
from payments.models import Payment, Refund, RefundOrigin
from payments.selectors import payment_refundable_minor
from payments.services import refund_create
from paytrust import money
from paytrust.errors import ApplicationError
from paytrust.errors import ValidationError as ApiValidationError


class RefundForm(forms.Form):
    amount = forms.CharField(max_length=40, help_text="In major units, e.g. 45000 or 16.99.")
    reason = forms.CharField(max_length=500, required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, payment: Payment, **kwargs):
        super().__init__(*args, **kwargs)
        self.payment = payment

    def clean_amount(self) -> int:
        raw = self.cleaned_data["amount"].replace(",", "").strip()
        try:
            return money.to_minor(raw, self.payment.currency, param="amount", allow_zero=False)
        except ApiValidationError as exc:
            raise forms.ValidationError(exc.message) from exc


def _render(model_admin, request, payment: Payment, form: RefundForm, *, confirm: bool):
    refundable = payment_refundable_minor(payment)
    amount = form.cleaned_data.get("amount") if confirm else None
    context = {
        **model_admin.admin_site.each_context(request),
        "title": f"Refund payment {payment.pk}",
        "opts": model_admin.model._meta,
        "payment": payment,
        "form": form,
        "confirm": confirm,
        "refundable_display": money.format_display(refundable, payment.currency),
        "received_display": money.format_display(payment.amount_received_minor, payment.currency),
        "amount_display": money.format_display(amount, payment.currency) if amount else "",
        "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
    }
    return TemplateResponse(request, "admin/payments/payment/refund.html", context)


def _apply(model_admin, request, payment: Payment, form: RefundForm) -> None:
    amount = form.cleaned_data["amount"]
    try:
        refund = refund_create(
            merchant=payment.merchant,
            mode=payment.mode,
            payment_id=payment.pk,
            amount_minor=amount,
            reason=form.cleaned_data.get("reason", ""),
            metadata={},
            origin=RefundOrigin.ADMIN,
        )
    except ApplicationError as exc:
        messages.error(request, f"{payment.pk}: {exc.message}")
        return
    shown = money.format_display(refund.amount_minor, refund.currency)
    model_admin.action_log(
        request,
        "payments.refund",
        [payment],
        f"Refund {refund.pk} of {shown} requested: {refund.status}.",
        ids_key="payments",
        refund=refund.pk,
        amount=money.format_amount(refund.amount_minor, refund.currency),
        currency=refund.currency,
        status=refund.status,
    )
    level = messages.ERROR if refund.status == "failed" else messages.SUCCESS
    detail = f" ({refund.failure_message})" if refund.failure_message else ""
    messages.add_message(request, level, f"Refund {refund.pk} of {shown}: {refund.status}{detail}.")


def refund_action(model_admin, request, queryset):
    payments = list(queryset.select_related("merchant")[:2])
    if len(payments) != 1:
        messages.error(request, "Select exactly one payment to refund.")
        return None
    payment = payments[0]
    step = request.POST.get("refund_step", "")
    if step not in ("confirm", "apply"):
        refundable = payment_refundable_minor(payment)
        initial = {"amount": money.format_amount(refundable, payment.currency)}
        return _render(
            model_admin, request, payment, RefundForm(initial=initial, payment=payment), confirm=False
        )
    form = RefundForm(request.POST, payment=payment)
    if not form.is_valid():
        return _render(model_admin, request, payment, form, confirm=False)
    if step == "confirm":
        return _render(model_admin, request, payment, form, confirm=True)
    _apply(model_admin, request, payment, form)
    return None


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "payment",
        "merchant_short",
        "status",
        "origin",
        "amount_display",
        "chargeback",
        "failure_code",
        "created",
    ]
    list_filter = [
        "status",
        "failure_code",  # `refund_exceeds_received`: paid out after a chargeback, held for review
        "origin",
        "chargeback",
        "mode",
        "currency",
        ("created_at", admin.DateFieldListFilter),
    ]
    search_fields = ["id", "payment__id", "gateway_refund_reference", "merchant__id", "merchant__name"]
    list_select_related = ["merchant", "payment"]
    date_hierarchy = "created_at"
    fields = [
        "id",
        "payment",
        "merchant",
        "mode",
        "status",
        "origin",
        "chargeback",
        "amount_display",
        "reason",
        "metadata",
        "gateway_refund_reference",
        "failure_code",
        "failure_message",
        "created_at",
        "succeeded_at",
        "failed_at",
        "reconciled_at",
        "reconcile_attempts",
        "updated_at",
    ]
    readonly_fields = fields

    @admin.display(description="merchant", ordering="merchant__name")
    def merchant_short(self, obj):
        return truncated(obj.merchant.name)

    @admin.display(description="amount", ordering="amount_minor")
    def amount_display(self, obj):
        return money.format_display(obj.amount_minor, obj.currency)

    @admin.display(description="created", ordering="created_at")
    def created(self, obj):
        return short_datetime(obj.created_at)
