"""Invoices, their line items and installments, and the rows that record how payments were applied.

Amounts are integer minor units (`*_minor`, BIGINT) of the invoice's currency. Every invoice has at least one
Installment row: an invoice without an installment plan has exactly one, covering the whole total (see
docs/adr/0023-installments-and-payment-application.md). Writes go through `invoices.services` only.
"""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q

from paytrust.ids import ID_MAX_LENGTH, id_default
from paytrust.models import DailyRollup, Mode, TimeStampedModel
from paytrust.money import CURRENCIES

MAX_LINE_ITEMS = 100
MIN_INSTALLMENTS = 2
MAX_INSTALLMENTS = 12


class InvoiceStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    PENDING = "pending", "Pending"
    PARTIALLY_PAID = "partially_paid", "Partially paid"
    PAID = "paid", "Paid"
    EXPIRED = "expired", "Expired"
    VOID = "void", "Void"


# Statuses in which money is still expected (and which the expiry job looks at).
OPEN_STATUSES = (InvoiceStatus.DRAFT, InvoiceStatus.PENDING, InvoiceStatus.PARTIALLY_PAID)
# Statuses that require payment_initiated_at.
INITIATED_STATUSES = (InvoiceStatus.PENDING, InvoiceStatus.PARTIALLY_PAID, InvoiceStatus.PAID)


class InstallmentStatus(models.TextChoices):
    UNPAID = "unpaid", "Unpaid"
    PARTIALLY_PAID = "partially_paid", "Partially paid"
    PAID = "paid", "Paid"


class Invoice(TimeStampedModel):
    id = models.CharField(
        primary_key=True, max_length=ID_MAX_LENGTH, default=id_default("inv"), editable=False
    )
    # No single-column indexes on the foreign keys (nor the `varchar_pattern_ops` copies Django adds for them):
    # every query by merchant is by merchant and mode, served by `invoice_tenant_created`, and each index costs
    # every invoice insert (migration 0005, ADR 0024).
    merchant = models.ForeignKey(
        "merchants.Merchant", on_delete=models.PROTECT, related_name="invoices", db_index=False
    )
    mode = models.CharField(max_length=4, choices=Mode.choices)
    status = models.CharField(max_length=16, choices=InvoiceStatus.choices, default=InvoiceStatus.DRAFT)
    currency = models.CharField(max_length=3)
    # The account the invoice is collected through, and its gateway name (denormalised for filters/reports).
    gateway_account = models.ForeignKey(
        "gateways.GatewayAccount", on_delete=models.PROTECT, related_name="invoices", db_index=False
    )
    gateway = models.CharField(max_length=20)
    external_id = models.CharField(max_length=255, null=True, blank=True)
    description = models.TextField(blank=True, default="")

    customer_name = models.CharField(max_length=255, blank=True, default="")
    customer_email = models.CharField(max_length=254, blank=True, default="")
    customer_phone = models.CharField(max_length=40, blank=True, default="")

    subtotal_minor = models.BigIntegerField()
    tax_total_minor = models.BigIntegerField()
    service_fee_minor = models.BigIntegerField()
    total_minor = models.BigIntegerField()
    # Money applied to the invoice's installments (never above total) and money received above the total.
    amount_paid_minor = models.BigIntegerField(default=0)
    overpaid_minor = models.BigIntegerField(default=0)
    # The fee terms used for service_fee (snapshot of the gateway account's fee at computation time).
    fee_percent = models.DecimalField(max_digits=6, decimal_places=4, default=0)
    fee_fixed_minor = models.BigIntegerField(default=0)

    expires_at = models.DateTimeField()
    # When the invoice lapses if money is still due: expires_at, except for installment plans that have received
    # money, which stay open until the end of the last installment's due date (docs/adr/0021).
    lapses_at = models.DateTimeField(
        help_text=(
            "When the invoice expires if money is still due: the expiry time, or for an installment plan that has "
            "received money, the end of the last installment's due date."
        )
    )
    payment_initiated_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    expired_at = models.DateTimeField(null=True, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)

    # What the merchant asked for: {"count": n, "amounts": [minor, ...] | null, "due_dates": ["YYYY-MM-DD"] | null}
    # or null for no plan. Kept so a draft edit can recompute the installments.
    installment_plan = models.JSONField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    parent_invoice = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="supplementary_invoices",
        db_index=False,
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        # Back-office actions and data (reporting/roles.py grants them; docs/adr/0042).
        permissions = [
            ("void_invoice", "Can void invoices"),
            ("expire_invoice", "Can expire overdue invoices"),
            ("view_customer_contact", "Can see customers' full e-mail addresses and phone numbers"),
        ]
        indexes = [
            # Tenant-scoped list, newest first (cursor pagination keyset).
            models.Index(fields=["merchant", "mode", "-created_at", "-id"], name="invoice_tenant_created"),
            # The expiry job: open invoices whose lapse time has passed.
            models.Index(
                fields=["lapses_at"],
                name="invoice_open_lapses",
                condition=Q(status__in=["draft", "pending", "partially_paid"]),
            ),
            models.Index(fields=["customer_email"], name="invoice_customer_email"),
            # The reverse lookups of the foreign keys (an account's invoices, e.g. to PROTECT its deletion; an
            # invoice's supplementary invoices): plain indexes, without Django's extra pattern-ops copies.
            models.Index(fields=["gateway_account"], name="invoice_gateway_account"),
            models.Index(fields=["parent_invoice"], name="invoice_parent_invoice"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "mode", "external_id"],
                condition=Q(external_id__isnull=False),
                name="invoice_external_id_unique",
            ),
            models.CheckConstraint(condition=Q(currency__in=list(CURRENCIES)), name="invoice_currency_known"),
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in InvoiceStatus]), name="invoice_status_valid"
            ),
            models.CheckConstraint(condition=Q(mode__in=[m.value for m in Mode]), name="invoice_mode_valid"),
            models.CheckConstraint(
                condition=Q(
                    subtotal_minor__gte=0,
                    tax_total_minor__gte=0,
                    service_fee_minor__gte=0,
                    total_minor__gt=0,
                    amount_paid_minor__gte=0,
                    overpaid_minor__gte=0,
                    fee_fixed_minor__gte=0,
                    fee_percent__gte=0,
                    fee_percent__lte=1,
                ),
                name="invoice_amounts_non_negative",
            ),
            models.CheckConstraint(
                condition=Q(total_minor=F("subtotal_minor") + F("tax_total_minor") + F("service_fee_minor")),
                name="invoice_total_adds_up",
            ),
            models.CheckConstraint(
                condition=Q(amount_paid_minor__lte=F("total_minor")), name="invoice_paid_within_total"
            ),
            models.CheckConstraint(
                condition=~Q(status="paid") | Q(amount_paid_minor=F("total_minor"), paid_at__isnull=False),
                name="invoice_paid_means_fully_paid",
            ),
            models.CheckConstraint(
                condition=~Q(status__in=["pending", "partially_paid", "paid"])
                | Q(payment_initiated_at__isnull=False),
                name="invoice_initiated_statuses",
            ),
            models.CheckConstraint(
                condition=~Q(status="draft") | Q(amount_paid_minor=0, payment_initiated_at__isnull=True),
                name="invoice_draft_untouched",
            ),
            models.CheckConstraint(
                condition=Q(lapses_at__gte=F("expires_at")), name="invoice_lapses_not_before_expiry"
            ),
        ]

    def __str__(self) -> str:
        return self.id

    @property
    def amount_due_minor(self) -> int:
        return self.total_minor - self.amount_paid_minor

    @property
    def has_installment_plan(self) -> bool:
        return bool(self.installment_plan)


class LineItem(models.Model):
    # Indexed by the (invoice, position) unique constraint: no separate index (see Invoice.merchant).
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="line_items", db_index=False)
    position = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=255)
    quantity = models.BigIntegerField()
    unit_price_minor = models.BigIntegerField()
    tax_rate = models.DecimalField(max_digits=5, decimal_places=4)
    subtotal_minor = models.BigIntegerField()
    tax_minor = models.BigIntegerField()

    class Meta:
        ordering = ["invoice", "position"]
        constraints = [
            models.UniqueConstraint(fields=["invoice", "position"], name="line_item_position_unique"),
            models.CheckConstraint(
                condition=Q(
                    quantity__gte=1,
                    unit_price_minor__gte=0,
                    tax_minor__gte=0,
                    tax_rate__gte=0,
                    tax_rate__lte=1,
                ),
                name="line_item_values_valid",
            ),
            models.CheckConstraint(
                condition=Q(subtotal_minor=F("quantity") * F("unit_price_minor")),
                name="line_item_subtotal_is_quantity_times_price",
            ),
            models.CheckConstraint(
                condition=Q(position__lt=MAX_LINE_ITEMS), name="line_item_position_in_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.invoice_id} #{self.position + 1} {self.name}"


class Installment(models.Model):
    # Indexed by the (invoice, number) unique constraint: no separate index (see Invoice.merchant).
    invoice = models.ForeignKey(
        Invoice, on_delete=models.CASCADE, related_name="installments", db_index=False
    )
    number = models.PositiveSmallIntegerField()
    amount_minor = models.BigIntegerField()
    tax_share_minor = models.BigIntegerField()
    fee_share_minor = models.BigIntegerField()
    due_date = models.DateField()
    amount_paid_minor = models.BigIntegerField(default=0)
    status = models.CharField(
        max_length=16, choices=InstallmentStatus.choices, default=InstallmentStatus.UNPAID
    )
    paid_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["invoice", "number"]
        constraints = [
            models.UniqueConstraint(fields=["invoice", "number"], name="installment_number_unique"),
            models.CheckConstraint(
                condition=Q(number__gte=1, number__lte=MAX_INSTALLMENTS), name="installment_number_range"
            ),
            models.CheckConstraint(
                condition=Q(amount_minor__gte=1, tax_share_minor__gte=0, fee_share_minor__gte=0),
                name="installment_amounts_valid",
            ),
            models.CheckConstraint(
                condition=Q(amount_paid_minor__gte=0, amount_paid_minor__lte=F("amount_minor")),
                name="installment_paid_within_amount",
            ),
            models.CheckConstraint(
                condition=Q(status="unpaid", amount_paid_minor=0, paid_at__isnull=True)
                | Q(
                    status="partially_paid",
                    amount_paid_minor__gt=0,
                    amount_paid_minor__lt=F("amount_minor"),
                    paid_at__isnull=True,
                )
                | Q(status="paid", amount_paid_minor=F("amount_minor"), paid_at__isnull=False),
                name="installment_status_matches_amount",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.invoice_id} installment {self.number}"

    @property
    def amount_due_minor(self) -> int:
        return self.amount_minor - self.amount_paid_minor


class PaymentApplication(models.Model):
    """How one successful payment was applied to an invoice. One row per payment id (the idempotency key of
    `invoice_apply_payment`): the amount, its allocation per installment and the part above the amount due.

    It is also the reporting fact of the payment (SPEC §10), written in the same transaction: merchant, mode,
    gateway and currency (denormalised from the invoice), `paid_at` (the payment's success time), the gross
    `amount_minor`, and what the payment carries of the invoice's tax and service fee (`tax_minor`, `fee_minor`:
    an installment's shares, proportional floors for partial pieces, the completing piece taking the rest;
    overpaid money carries none) with the rest of the applied money as `taxable_minor`
    (applied = taxable + tax + fee). `invoices.calc.carried_by_payment` has the rules; PaymentApplicationTax the
    split per tax rate."""

    payment_id = models.CharField(max_length=ID_MAX_LENGTH, unique=True)
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="payment_applications")
    # The report index leads with merchant, so the FK needs no index of its own.
    merchant = models.ForeignKey(
        "merchants.Merchant", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    mode = models.CharField(max_length=4, choices=Mode.choices)
    gateway = models.CharField(max_length=20)
    currency = models.CharField(max_length=3)
    amount_minor = models.BigIntegerField()
    applied_minor = models.BigIntegerField()
    overpaid_minor = models.BigIntegerField()
    tax_minor = models.BigIntegerField(default=0)
    fee_minor = models.BigIntegerField(default=0)
    taxable_minor = models.BigIntegerField(default=0)
    target_installment = models.PositiveSmallIntegerField(null=True, blank=True)
    # [{"number": 2, "amount": 5000}, ...] in allocation order; amounts in minor units.
    allocations = models.JSONField(default=list)
    paid_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["invoice", "created_at"], name="payment_application_invoice"),
            # The financial report (reporting.selectors): one tenant's payments in a time range, aggregated
            # per currency and gateway from the index alone (index-only scan).
            models.Index(
                fields=["merchant", "mode", "paid_at"],
                include=["currency", "gateway", "amount_minor", "tax_minor", "fee_minor"],
                name="payment_application_report",
            ),
            # The same for every merchant at once (the admin's "all merchants"): the parts of days a period cuts,
            # which the daily rollup cannot answer (docs/adr/0040).
            models.Index(
                fields=["mode", "paid_at"],
                include=["currency", "gateway", "amount_minor", "tax_minor", "fee_minor"],
                name="payment_application_all_report",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    amount_minor__gt=0,
                    applied_minor__gte=0,
                    overpaid_minor__gte=0,
                    tax_minor__gte=0,
                    fee_minor__gte=0,
                ),
                name="payment_application_amounts_valid",
            ),
            models.CheckConstraint(
                condition=Q(amount_minor=F("applied_minor") + F("overpaid_minor")),
                name="payment_application_adds_up",
            ),
            models.CheckConstraint(
                condition=Q(applied_minor=F("taxable_minor") + F("tax_minor") + F("fee_minor")),
                name="payment_application_shares_add_up",
            ),
            models.CheckConstraint(
                condition=Q(mode__in=[m.value for m in Mode]), name="payment_application_mode_valid"
            ),
            models.CheckConstraint(
                condition=Q(currency__in=list(CURRENCIES)), name="payment_application_currency_known"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.payment_id} -> {self.invoice_id}"


class PaymentApplicationTax(models.Model):
    """The part of one payment's taxable base and tax at one of its invoice's tax rates (reporting fact, SPEC §10).
    A payment's rows add up exactly to its `taxable_minor` and `tax_minor`. The tenant, currency, gateway and time
    are repeated from the application so the per-rate report is one index-only scan, without a join."""

    application = models.ForeignKey(PaymentApplication, on_delete=models.CASCADE, related_name="tax_rates")
    merchant = models.ForeignKey(
        "merchants.Merchant", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    mode = models.CharField(max_length=4, choices=Mode.choices)
    gateway = models.CharField(max_length=20)
    currency = models.CharField(max_length=3)
    paid_at = models.DateTimeField()
    tax_rate = models.DecimalField(max_digits=5, decimal_places=4)
    taxable_minor = models.BigIntegerField()
    tax_minor = models.BigIntegerField()

    class Meta:
        ordering = ["application", "tax_rate"]
        indexes = [
            models.Index(
                fields=["merchant", "mode", "paid_at"],
                include=["currency", "gateway", "tax_rate", "taxable_minor", "tax_minor"],
                name="payment_application_tax_report",
            ),
            models.Index(
                fields=["mode", "paid_at"],
                include=["currency", "gateway", "tax_rate", "taxable_minor", "tax_minor"],
                name="payment_application_tax_all",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["application", "tax_rate"], name="payment_application_tax_unique"
            ),
            models.CheckConstraint(
                condition=Q(tax_rate__gte=0, tax_rate__lte=1), name="payment_application_tax_rate_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.application_id} @ {self.tax_rate}"


class CollectedDay(DailyRollup):
    """Daily rollup of the report's collected figures (docs/adr/0040): per (merchant, mode, UTC day of `paid_at`,
    currency, gateway) the count and sums of the PaymentApplication facts. Added to by
    `invoices.services.report_rollup.rollup_add_application` in the transaction that writes the fact (an upsert
    that adds: concurrent writers never lose an increment). `slot` spreads concurrent writers of the same day over
    a few rows (the writer's backend pid modulo ROLLUP_SLOTS) so they do not queue on one row lock; readers sum
    the slots. Rebuilt from the facts by `manage.py report_rollup --rebuild` (slot 0)."""

    payments_count = models.BigIntegerField()
    gross_minor = models.BigIntegerField()
    tax_minor = models.BigIntegerField()
    fee_minor = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "mode", "day", "currency", "gateway", "slot"], name="collected_day_key"
            ),
        ]


class CollectedDayTax(DailyRollup):
    """Daily rollup of PaymentApplicationTax: per (merchant, mode, UTC day, currency, gateway, tax rate) the
    taxable base and tax. Maintained with CollectedDay, by the same function, in the same transaction."""

    tax_rate = models.DecimalField(max_digits=5, decimal_places=4)
    taxable_minor = models.BigIntegerField()
    tax_minor = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "mode", "day", "currency", "gateway", "tax_rate", "slot"],
                name="collected_day_tax_key",
            ),
        ]
