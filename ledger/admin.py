"""Django admin for the ledger: read-only for everyone (append-only: no add, change or delete, not even for a
superuser; a correction is a reversing movement posted by a service). Movements ("balance transactions") with their
entries inline, filtered by type, currency and mode, searched by txn id or the id of the object that caused them
(pay_…, ref_…); accounts with their balances. Amounts are shown with their currency, never in minor units. Who may
look: reporting/roles.py (support and finance).
"""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Q, Sum

from apikeys.admin_base import ReadOnlyAdmin, ReadOnlyInline, short_datetime, truncated
from ledger.models import ASSET_CODES, Account, Entry, Movement
from paytrust.money import format_display


class EntryInline(ReadOnlyInline):
    model = Entry
    fields = ["account_code", "debit", "credit"]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("account")

    @admin.display(description="account")
    def account_code(self, obj):
        return obj.account.code

    @admin.display(description="debit")
    def debit(self, obj):
        return format_display(obj.amount_minor, obj.account.currency) if obj.amount_minor > 0 else ""

    @admin.display(description="credit")
    def credit(self, obj):
        return format_display(-obj.amount_minor, obj.account.currency) if obj.amount_minor < 0 else ""


@admin.register(Movement)
class MovementAdmin(ReadOnlyAdmin):
    list_display = ["id", "merchant_short", "mode", "type", "amount_display", "source", "occurred"]
    list_filter = ["type", "currency", "mode", ("occurred_at", admin.DateFieldListFilter)]
    # Exact ids only: a txn_ id, or the pay_/ref_ id of the object that caused the movement.
    search_fields = ["=id", "=source_id"]
    search_help_text = "A txn_ id, or the id of the payment or refund that caused the movement."
    list_select_related = ["merchant"]
    inlines = [EntryInline]
    fields = [
        "id",
        "merchant",
        "mode",
        "type",
        "currency",
        "amount_display",
        "source_type",
        "source_id",
        "reverses",
        "reversed_by_link",
        "description",
        "occurred_at",
        "created_at",
    ]
    readonly_fields = fields

    def get_queryset(self, request):
        # The gross (sum of the debits) for the list and the detail page in the same query.
        return (
            super()
            .get_queryset(request)
            .annotate(gross=Sum("entries__amount_minor", filter=Q(entries__amount_minor__gt=0)))
        )

    @admin.display(description="merchant", ordering="merchant__name")
    def merchant_short(self, obj):
        return truncated(obj.merchant.name)

    @admin.display(description="amount")
    def amount_display(self, obj):
        return format_display(obj.gross or 0, obj.currency)

    @admin.display(description="source")
    def source(self, obj):
        return f"{obj.source_type} {obj.source_id}"

    @admin.display(description="occurred", ordering="occurred_at")
    def occurred(self, obj):
        return short_datetime(obj.occurred_at)

    @admin.display(description="reversed by")
    def reversed_by_link(self, obj):
        reversal = Movement.objects.filter(reverses=obj).values_list("id", flat=True).first()
        return reversal or "-"


@admin.register(Account)
class AccountAdmin(ReadOnlyAdmin):
    list_display = ["code", "merchant_short", "mode", "currency", "balance_display"]
    list_filter = ["code", "currency", "mode"]
    search_fields = ["=merchant__id", "merchant__name"]
    list_select_related = ["merchant"]
    fields = ["merchant", "mode", "currency", "code", "balance_display", "created_at"]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(total=Sum("entries__amount_minor"))

    @admin.display(description="merchant", ordering="merchant__name")
    def merchant_short(self, obj):
        return truncated(obj.merchant.name)

    @admin.display(description="balance")
    def balance_display(self, obj):
        """In the account's normal direction: assets (debit-normal) as debits sum, the others as credits sum."""
        total = int(obj.total or 0)
        shown = total if obj.code in ASSET_CODES else -total
        side = "debit" if obj.code in ASSET_CODES else "credit"
        return f"{format_display(shown, obj.currency)} ({side})"
