"""The back office's review queue (docs/adr/0053-risk-scoring.md): the payments the risk check flagged, newest
first, pending ones by default, with their score, reasons, the payer's IP (the merchant's and the sandbox
checkout's) and device.

Two actions, each behind its own permission (held by the finance role) and a confirmation page, each audited
(`payments.review_approve` / `payments.review_reject`, with what followed) and written to each payment's history:
- approve (`payments.approve_payment_review`): a held authorization is captured in full;
- reject (`payments.reject_payment_review`): a hold is voided, a succeeded payment refunded, an open checkout
  expired. Both through payments.services.review (the existing capture, void, refund and expiry services).
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.template.response import TemplateResponse

from apikeys.admin_base import ReadOnlyAdmin, short_datetime, truncated
from payments.models import PaymentReview, ReviewStatus
from payments.services.review import payment_review_approve, payment_review_reject
from paytrust.errors import ApplicationError
from paytrust.money import format_display

MAX_PER_ACTION = 50
_CONSEQUENCE = {
    "approve": {"authorized": "captured in full"},
    "reject": {
        "authorized": "its authorization voided",
        "succeeded": "refunded (all that is still refundable)",
        "partially_refunded": "refunded (all that is still refundable)",
        "pending": "its checkout expired at the gateway",
        "initiating": "its checkout expired at the gateway",
        "unknown": "its checkout expired at the gateway",
    },
}


class ReviewFilter(admin.SimpleListFilter):
    title = "review"
    parameter_name = "review"

    def lookups(self, request, model_admin):
        return [
            ("pending", "Pending (default)"),
            ("approved", "Approved"),
            ("rejected", "Rejected"),
            ("all", "All"),
        ]

    def choices(self, changelist):
        for choice in super().choices(changelist):
            if choice["display"] == "All" and choice["query_string"].endswith("?"):
                continue  # Django's own "All" (no value) means pending here; ours is explicit
            yield choice

    def queryset(self, request, queryset):
        value = self.value() or "pending"
        if value == "all":
            return queryset
        return queryset.filter(review_status=value)


@admin.register(PaymentReview)
class PaymentReviewAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "merchant_short",
        "status",
        "amount_display",
        "risk_score",
        "reasons",
        "customer_ip",
        "checkout_ip",
        "review_status",
        "created",
    ]
    list_filter = [ReviewFilter, "status", "capture_method", "mode", "currency"]
    search_fields = ["id", "invoice__id", "merchant__id", "merchant__name"]
    list_select_related = ["merchant"]
    actions = ["approve_selected", "reject_selected"]
    fields = [
        "id",
        "merchant",
        "mode",
        "invoice",
        "status",
        "capture_method",
        "amount_display",
        "risk_score",
        "reasons",
        "customer_ip",
        "device_id",
        "checkout_ip",
        "review_status",
        "reviewed_by",
        "reviewed_at",
        "created_at",
    ]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).exclude(review_status=ReviewStatus.NONE)

    @admin.display(description="merchant", ordering="merchant__name")
    def merchant_short(self, obj):
        return truncated(obj.merchant.name)

    @admin.display(description="amount", ordering="amount_minor")
    def amount_display(self, obj):
        return format_display(obj.amount_minor, obj.currency)

    @admin.display(description="reasons")
    def reasons(self, obj):
        return ", ".join(reason.get("code", "?") for reason in obj.risk_reasons or []) or "-"

    @admin.display(description="created", ordering="created_at")
    def created(self, obj):
        return short_datetime(obj.created_at)

    def has_approve_permission(self, request) -> bool:
        return request.user.has_perm("payments.approve_payment_review")

    def has_reject_permission(self, request) -> bool:
        return request.user.has_perm("payments.reject_payment_review")

    @admin.action(
        description="Approve the selected flagged payments (capture held ones)…", permissions=["approve"]
    )
    def approve_selected(self, request, queryset):
        return self._decide(request, queryset, "approve")

    @admin.action(
        description="Reject the selected flagged payments (void, refund or expire)…", permissions=["reject"]
    )
    def reject_selected(self, request, queryset):
        return self._decide(request, queryset, "reject")

    def _decide(self, request, queryset, verb: str):
        payments = list(
            queryset.filter(review_status=ReviewStatus.PENDING).select_related("merchant")[:MAX_PER_ACTION]
        )
        if not payments:
            messages.error(request, "None of the selected payments is waiting for a review.")
            return None
        if request.POST.get("review_step") != "apply":
            rows = [
                (
                    p,
                    format_display(p.amount_minor, p.currency),
                    _CONSEQUENCE[verb].get(p.status, "nothing else"),
                )
                for p in payments
            ]
            context = {
                **self.admin_site.each_context(request),
                "title": f"{verb.capitalize()} {len(payments)} flagged payment(s)",
                "opts": self.model._meta,
                "verb": verb,
                "rows": rows,
                "action": f"{verb}_selected",
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            }
            return TemplateResponse(request, "admin/payments/paymentreview/confirm.html", context)
        service = payment_review_approve if verb == "approve" else payment_review_reject
        reviewer = f"user:{request.user.get_username()}"
        for payment in payments:
            try:
                outcome = service(payment_id=payment.pk, reviewer=reviewer)
            except ApplicationError as exc:
                messages.error(request, f"{payment.pk}: {exc.message}")
                continue
            self.action_log(
                request,
                f"payments.review_{verb}",
                [payment],
                f"Risk review: {verb}d; then {outcome.action}.",
                ids_key="payments",
                followed=outcome.action,
                detail=outcome.detail,
                risk_score=payment.risk_score,
            )
            level = messages.ERROR if outcome.action.endswith("_failed") else messages.SUCCESS
            detail = f" ({outcome.detail})" if outcome.detail else ""
            messages.add_message(request, level, f"{payment.pk}: {verb}d; {outcome.action}{detail}.")
        return None
