"""Payments: one attempt to collect (part of) an invoice installment through a gateway, the log of every call
made to the gateway for it, and the refunds recorded on it.

Amounts are integer minor units of `currency`. Statuses and their transitions are in `payments.states` (the one
table every writer checks). Writes go through `payments.services` only.
"""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q

from paytrust.ids import ID_MAX_LENGTH, id_default
from paytrust.models import DailyRollup, Mode, TimeStampedModel
from paytrust.money import CURRENCIES


class PaymentStatus(models.TextChoices):
    INITIATING = "initiating", "Initiating"  # recorded, the gateway has not answered yet
    PENDING = "pending", "Pending"  # the gateway created it; waiting for the customer's money
    AUTHORIZED = "authorized", "Authorized"  # funds held (capture_method "manual"); to be captured or voided
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    EXPIRED = "expired", "Expired"
    UNKNOWN = "unknown", "Unknown"  # the gateway call's outcome is unknown (timeout): reconciliation asks
    REFUNDED = "refunded", "Refunded"
    PARTIALLY_REFUNDED = "partially_refunded", "Partially refunded"
    CANCELED = "canceled", "Canceled"  # an authorization voided (released) before capture; final


class CaptureMethod(models.TextChoices):
    AUTOMATIC = "automatic", "Automatic"  # the gateway collects at once
    MANUAL = "manual", "Manual"  # the gateway only authorizes; POST /v1/payments/{id}/capture collects


# What is under way at the gateway on an authorized payment's hold (payments/services/capture.py): taken under the
# payment's row lock before the gateway call, so a second capture or void is refused instead of sent.
class HoldOperation(models.TextChoices):
    NONE = "", "None"
    CAPTURE = "capture", "Capture"
    VOID = "void", "Void"
    # Completing a payment the customer approved at the gateway (PayPal: capturing / authorizing the approved
    # order; payments/services/completion.py). Taken on a pending or unknown payment.
    COMPLETE = "complete", "Complete an approved payment"


# Risk review (docs/adr/0053-risk-scoring.md): a payment the risk check flagged waits for finance staff.
class ReviewStatus(models.TextChoices):
    NONE = "none", "Not flagged"
    PENDING = "pending", "Pending review"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"


# A payment in one of these may still collect money: at most one per (invoice, installment) at a time.
OPEN_STATUSES = (
    PaymentStatus.INITIATING,
    PaymentStatus.PENDING,
    PaymentStatus.UNKNOWN,
    PaymentStatus.AUTHORIZED,
)
_OPEN = ["initiating", "pending", "unknown", "authorized"]


class Payment(TimeStampedModel):
    id = models.CharField(
        primary_key=True, max_length=ID_MAX_LENGTH, default=id_default("pay"), editable=False
    )
    merchant = models.ForeignKey("merchants.Merchant", on_delete=models.PROTECT, related_name="payments")
    mode = models.CharField(max_length=4, choices=Mode.choices)
    invoice = models.ForeignKey("invoices.Invoice", on_delete=models.PROTECT, related_name="payments")
    installment_number = models.PositiveSmallIntegerField()
    gateway_account = models.ForeignKey(
        "gateways.GatewayAccount", on_delete=models.PROTECT, related_name="payments"
    )
    gateway = models.CharField(max_length=20)  # denormalised from the account, for filters and reports
    status = models.CharField(max_length=20, choices=PaymentStatus.choices, default=PaymentStatus.INITIATING)
    currency = models.CharField(max_length=3)
    # What the payment asks for (what the installment still owed at initiation) and what the gateway collected.
    amount_minor = models.BigIntegerField()
    amount_received_minor = models.BigIntegerField(default=0)
    # The sum of the payment's SUCCEEDED refunds (ours and those the gateway reports, chargebacks included).
    amount_refunded_minor = models.BigIntegerField(default=0)
    # Money that arrived after its invoice was voided or had expired (paid after the lapse time): all of it is
    # overpayment of a closed invoice, for finance staff to refund (admin filter, event
    # `payment.received_on_closed_invoice`).
    received_on_closed_invoice = models.BooleanField(default=False)
    # Authorize and capture (docs/adr/0047): what the hold lets us still collect (0 unless authorized), until when.
    capture_method = models.CharField(
        max_length=10, choices=CaptureMethod.choices, default=CaptureMethod.AUTOMATIC
    )
    amount_capturable_minor = models.BigIntegerField(default=0)
    capture_before = models.DateTimeField(null=True, blank=True)
    hold_operation = models.CharField(
        max_length=10, choices=HoldOperation.choices, blank=True, default=HoldOperation.NONE
    )
    hold_operation_at = models.DateTimeField(null=True, blank=True)

    gateway_reference = models.CharField(max_length=128, blank=True, default="")
    payment_url = models.CharField(max_length=2048, blank=True, default="")
    expires_at = models.DateTimeField(null=True, blank=True)
    # pain.002 TxSts of the current status (payments.pain002.payment_status_to_pain002) and its reason code.
    pain002_status = models.CharField(max_length=4, blank=True, default="")
    pain002_reason = models.CharField(max_length=4, blank=True, default="")
    failure_code = models.CharField(max_length=64, blank=True, default="")
    failure_message = models.CharField(max_length=500, blank=True, default="")

    succeeded_at = models.DateTimeField(null=True, blank=True)  # the gateway's paid time
    failed_at = models.DateTimeField(null=True, blank=True)
    expired_at = models.DateTimeField(null=True, blank=True)
    authorized_at = models.DateTimeField(null=True, blank=True)
    captured_at = models.DateTimeField(null=True, blank=True)
    canceled_at = models.DateTimeField(null=True, blank=True)
    # When the gateway said the latest applied status happened (webhook occurred_at / status paid_at).
    gateway_status_at = models.DateTimeField(null=True, blank=True)
    # Reconciliation bookkeeping: when we last asked the gateway, and how many times.
    reconciled_at = models.DateTimeField(null=True, blank=True)
    reconcile_attempts = models.PositiveIntegerField(default=0)

    # Risk (docs/adr/0053): the score and reasons of the check made before the gateway was called (null: made
    # before risk scoring existed), what the merchant told us of the payer, the IP the sandbox checkout saw, and
    # the review of a flagged payment. A blocked attempt is a `failed` payment with failure_code payment_blocked.
    risk_score = models.PositiveSmallIntegerField(null=True, blank=True)
    risk_reasons = models.JSONField(default=list, blank=True)
    customer_ip = models.GenericIPAddressField(null=True, blank=True)
    device_id = models.CharField(max_length=128, blank=True, default="")
    checkout_ip = models.GenericIPAddressField(null=True, blank=True)
    review_status = models.CharField(max_length=10, choices=ReviewStatus.choices, default=ReviewStatus.NONE)
    reviewed_by = models.CharField(max_length=200, blank=True, default="")
    reviewed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        # Back-office actions (reporting/roles.py grants them; docs/adr/0042).
        permissions = [
            ("reconcile_payment", "Can reconcile payments with the gateway"),
            ("refund_payment", "Can refund payments"),
            ("approve_payment_review", "Can approve a payment flagged by the risk check"),
            ("reject_payment_review", "Can reject a payment flagged by the risk check"),
        ]
        indexes = [
            models.Index(fields=["merchant", "mode", "-created_at", "-id"], name="payment_tenant_created"),
            models.Index(fields=["invoice", "installment_number"], name="payment_invoice_installment"),
            # Reconciliation scans the open payments only.
            models.Index(
                fields=["status", "created_at"],
                name="payment_open_status",
                condition=Q(status__in=_OPEN),
            ),
            # Reports: succeeded payments by time.
            models.Index(fields=["succeeded_at"], name="payment_succeeded_at"),
            # The admin's review queue: flagged payments waiting for a decision.
            models.Index(
                fields=["created_at"], name="payment_review_pending", condition=Q(review_status="pending")
            ),
        ]
        constraints = [
            # Never two open payments (two live gateway charges) for one installment.
            models.UniqueConstraint(
                fields=["invoice", "installment_number"],
                condition=Q(status__in=_OPEN),
                name="payment_one_open_per_installment",
            ),
            models.UniqueConstraint(
                fields=["gateway_account", "gateway_reference"],
                condition=~Q(gateway_reference=""),
                name="payment_gateway_reference_unique",
            ),
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in PaymentStatus]), name="payment_status_valid"
            ),
            models.CheckConstraint(condition=Q(mode__in=[m.value for m in Mode]), name="payment_mode_valid"),
            models.CheckConstraint(condition=Q(currency__in=list(CURRENCIES)), name="payment_currency_known"),
            models.CheckConstraint(
                condition=Q(amount_minor__gt=0, amount_received_minor__gte=0, amount_refunded_minor__gte=0)
                & Q(amount_refunded_minor__lte=F("amount_received_minor")),
                name="payment_amounts_valid",
            ),
            models.CheckConstraint(condition=Q(installment_number__gte=1), name="payment_installment_valid"),
            models.CheckConstraint(
                condition=Q(review_status__in=[r.value for r in ReviewStatus])
                & (Q(risk_score__isnull=True) | Q(risk_score__lte=100)),
                name="payment_review_valid",
            ),
            models.CheckConstraint(
                condition=Q(capture_method__in=[c.value for c in CaptureMethod]),
                name="payment_capture_method_valid",
            ),
            # A hold exists only while authorized (its amount is the gateway's word); nothing is held once the
            # payment leaves `authorized`, and a capture or void under way is only ever one of an authorized payment.
            models.CheckConstraint(
                condition=Q(amount_capturable_minor__gte=0)
                & (Q(status="authorized") | Q(amount_capturable_minor=0)),
                name="payment_capturable_only_authorized",
            ),
            models.CheckConstraint(
                condition=Q(hold_operation__in=[h.value for h in HoldOperation])
                & (
                    Q(hold_operation="")
                    | Q(status="authorized", hold_operation__in=["capture", "void"])
                    | Q(status__in=["pending", "unknown"], hold_operation="complete")
                ),
                name="payment_hold_operation_valid",
            ),
            # Money collected <=> a success (or a refund of one).
            models.CheckConstraint(
                condition=Q(
                    status__in=["succeeded", "refunded", "partially_refunded"], succeeded_at__isnull=False
                )
                | (
                    ~Q(status__in=["succeeded", "refunded", "partially_refunded"])
                    & Q(amount_received_minor=0)
                ),
                name="payment_success_consistent",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.id} ({self.status})"


class PaymentReview(Payment):
    """The admin's review queue (payments/review_admin.py): the payments the risk check flagged. Same table."""

    class Meta:
        proxy = True
        verbose_name = "flagged payment"
        verbose_name_plural = "review queue (flagged payments)"


class RefundOrigin(models.TextChoices):
    API = "api", "API"  # POST /v1/payments/{id}/refunds
    ADMIN = "admin", "Admin"  # the payment admin's "Refund" action (finance)
    GATEWAY = "gateway", "Gateway"  # reported by the gateway: made in its dashboard / API, or a chargeback


class RefundStatus(models.TextChoices):
    PENDING = "pending", "Pending"  # requested; the gateway has not said it paid it out (yet)
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class Refund(TimeStampedModel):
    """Money given back on a payment (SPEC §13 refund object, `ref_…`; docs/adr/0046-refunds.md).

    Origins: `api` / `admin` refunds are ours (payments.services.refunds.refund_create): created `pending`, sent to
    the gateway with the refund id as its idempotency key, then `succeeded` or `failed` by the gateway's answer,
    its later `get_refund` answer (reconciliation) or a gateway report that covers them. `gateway` refunds are
    what a gateway reports that we did not ask for (made in its dashboard, or a chargeback: `chargeback` True,
    shown as `dispute` in the API); they are recorded `succeeded` at once (payments.services.gateway_refunds).

    The payment's `amount_refunded_minor` is the sum of its SUCCEEDED refunds; what may still be refunded is
    `amount_received_minor` minus the succeeded and the pending ones.

    Idempotency: a report of ONE refund carries the gateway's refund id (`gateway_refund_reference`, Xendit
    `rfd-…`), unique per payment; a CUMULATIVE report (Midtrans `refund_amount`) leaves it blank and records the
    increment from the payment's refunded amount to the reported total, so a replay (increment 0) records nothing.
    """

    id = models.CharField(
        primary_key=True, max_length=ID_MAX_LENGTH, default=id_default("ref"), editable=False
    )
    # Indexed by refund_payment_created (no separate FK index).
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds", db_index=False)
    merchant = models.ForeignKey(
        "merchants.Merchant", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    mode = models.CharField(max_length=4, choices=Mode.choices)
    currency = models.CharField(max_length=3)
    amount_minor = models.BigIntegerField()
    status = models.CharField(max_length=20, choices=RefundStatus.choices, default=RefundStatus.PENDING)
    origin = models.CharField(max_length=20, choices=RefundOrigin.choices, default=RefundOrigin.GATEWAY)
    chargeback = models.BooleanField(default=False)  # `dispute` in the API
    reason = models.CharField(max_length=500, blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    gateway_refund_reference = models.CharField(max_length=128, blank=True, default="")
    failure_code = models.CharField(max_length=64, blank=True, default="")
    failure_message = models.CharField(max_length=500, blank=True, default="")
    # When the gateway says the refund happened, else when we learned of it. Set <=> succeeded.
    succeeded_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    # Reconciliation of pending refunds: when we last asked the gateway, and how many times.
    reconciled_at = models.DateTimeField(null=True, blank=True)
    reconcile_attempts = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["payment", "created_at"], name="refund_payment_created"),
            models.Index(fields=["merchant", "mode", "-created_at", "-id"], name="refund_tenant_created"),
            # The financial report's refunds (reporting.selectors.refunds_paid_out_in; docs/adr/0049): a tenant's
            # refunds paid out in a period, summed from the index alone; the payment id leads to the gateway.
            # Partial: pending and failed refunds are in no report.
            models.Index(
                fields=["merchant", "mode", "succeeded_at"],
                include=["currency", "amount_minor", "payment"],
                condition=Q(status="succeeded"),
                name="refund_report",
            ),
            # The same for every merchant at once: the cut edges of an all-merchants period (docs/adr/0040).
            models.Index(
                fields=["mode", "succeeded_at"],
                include=["currency", "amount_minor", "payment"],
                condition=Q(status="succeeded"),
                name="refund_all_report",
            ),
            # The refund reconciliation scans the pending refunds only.
            models.Index(fields=["created_at"], name="refund_pending_created", condition=Q(status="pending")),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["payment", "gateway_refund_reference"],
                condition=~Q(gateway_refund_reference=""),
                name="refund_gateway_reference_unique",
            ),
            models.CheckConstraint(condition=Q(amount_minor__gt=0), name="refund_amount_positive"),
            models.CheckConstraint(condition=Q(mode__in=[m.value for m in Mode]), name="refund_mode_valid"),
            models.CheckConstraint(condition=Q(currency__in=list(CURRENCIES)), name="refund_currency_known"),
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in RefundStatus]), name="refund_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(origin__in=[o.value for o in RefundOrigin]), name="refund_origin_valid"
            ),
            # succeeded <=> succeeded_at; failed <=> failed_at.
            models.CheckConstraint(
                condition=Q(status="succeeded", succeeded_at__isnull=False)
                | (~Q(status="succeeded") & Q(succeeded_at__isnull=True)),
                name="refund_succeeded_consistent",
            ),
            models.CheckConstraint(
                condition=Q(status="failed", failed_at__isnull=False)
                | (~Q(status="failed") & Q(failed_at__isnull=True)),
                name="refund_failed_consistent",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.id} ({self.payment_id}, {self.status})"


class GatewayCallOperation(models.TextChoices):
    CREATE_PAYMENT = "create_payment", "Create payment"
    GET_STATUS = "get_status", "Get status"
    EXPIRE_PAYMENT = "expire_payment", "Expire payment"
    REFUND = "refund", "Refund"
    GET_REFUND = "get_refund", "Get refund"
    CAPTURE = "capture", "Capture"
    VOID_AUTHORIZATION = "void_authorization", "Void authorization"
    COMPLETE_PAYMENT = "complete_payment", "Complete an approved payment"


class GatewayCall(models.Model):
    """One call to a gateway for a payment: what we asked and what it answered (secrets redacted). Append-only."""

    payment = models.ForeignKey(Payment, on_delete=models.CASCADE, related_name="gateway_calls")
    operation = models.CharField(max_length=20, choices=GatewayCallOperation.choices)
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(default=0)
    # "ok", or the GatewayError code (gateway_timeout, gateway_rejected, ...).
    outcome = models.CharField(max_length=64)
    request = models.JSONField(default=dict, blank=True)
    response = models.JSONField(default=dict, blank=True)
    error_message = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        ordering = ["started_at", "id"]
        indexes = [models.Index(fields=["payment", "started_at"], name="gateway_call_payment")]

    def __str__(self) -> str:
        return f"{self.operation} {self.outcome} ({self.payment_id})"


class RefundDay(DailyRollup):
    """Daily rollup of the report's refunds (docs/adr/0040): per (merchant, mode, UTC day of `succeeded_at`,
    currency, gateway of the refund's payment) the count and sum of the SUCCEEDED refunds. Added to by
    `payments.services.report_rollup.rollup_add_refund` in the transaction that makes a refund succeeded (an
    upsert that adds). `slot` as in invoices.CollectedDay."""

    refunds_count = models.BigIntegerField()
    refunds_minor = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "mode", "day", "currency", "gateway", "slot"], name="refund_day_key"
            ),
        ]
