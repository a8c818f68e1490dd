"""The ledger: accounts and append-only, balanced, double-entry postings (SPEC §13; chart of accounts in
docs/adr/0045-ledger-chart-of-accounts.md).

It knows accounts and movements, not invoices or payments: a movement names the object that caused it by type and
id (`source_type`, `source_id`), and the layers above decide what to post (payments.services.bookkeeping).

- `Account`: one per (merchant, mode, currency, code). Never shared across currencies or modes.
- `Movement` (`txn_…`): one money movement, e.g. "payment pay_… applied" or "refund ref_… succeeded". Unique per
  (source_type, source_id, type): a replayed notification or job can never post the same movement twice.
- `Entry`: one line of a movement on one account, in integer minor units of the movement's currency; debit > 0,
  credit < 0. A movement's entries sum to zero (checked by a deferred constraint trigger at commit), and every entry
  is on an account of the movement's merchant, mode and currency (same trigger).
- Movements and entries are append-only: a trigger refuses UPDATE and DELETE (migration 0002); a mistake is
  corrected by a reversing movement (`reverses`).
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from paytrust.ids import ID_MAX_LENGTH, id_default
from paytrust.models import Mode
from paytrust.money import CURRENCIES


class AccountCode(models.TextChoices):
    """The chart of accounts (docs/adr/0045). Normal balance: assets debit, the rest credit."""

    GATEWAY_CLEARING = (
        "gateway_clearing",
        "Gateway clearing",
    )  # asset: collected money the gateways hold for us
    GATEWAY_AUTHORIZED = (
        "gateway_authorized",
        "Gateway authorized",
    )  # asset (memo): card holds not yet captured
    MERCHANT_PAYABLE = "merchant_payable", "Merchant payable"  # liability: the merchant's available balance
    MERCHANT_PENDING = "merchant_pending", "Merchant pending"  # liability (memo): held by authorizations
    TAX_PAYABLE = "tax_payable", "Tax payable"  # liability: tax collected on the merchant's invoices
    SERVICE_FEES = "service_fees", "Service fees"  # revenue: the invoices' service fees
    CUSTOMER_CREDIT = "customer_credit", "Customer credit"  # liability: money paid above what was due
    REFUNDS_PAYABLE = "refunds_payable", "Refunds payable"  # liability: refunds sent, not yet confirmed
    GATEWAY_FEES = "gateway_fees", "Gateway fees"  # expense: what gateways charge (reconciliation posts it)
    BANK = "bank", "Bank"  # asset: settled money (reconciliation posts payouts and settlements)


ASSET_CODES = frozenset(
    {AccountCode.GATEWAY_CLEARING, AccountCode.GATEWAY_AUTHORIZED, AccountCode.BANK, AccountCode.GATEWAY_FEES}
)


class MovementType(models.TextChoices):
    PAYMENT = (
        "payment",
        "Payment",
    )  # a payment's money applied: gross split into tax, fee, merchant, overpayment
    REFUND = "refund", "Refund"  # a refund requested: its amount leaves the merchant's balance (in flight)
    REFUND_SUCCEEDED = "refund_succeeded", "Refund succeeded"  # the gateway paid it out
    REFUND_FAILED = "refund_failed", "Refund failed"  # a refund in flight failed: its amount comes back
    CHARGEBACK = "chargeback", "Chargeback"  # the card holder's bank took money back
    AUTHORIZATION = "authorization", "Authorization"  # funds held on a card, not yet collected
    CAPTURE = "capture", "Capture"  # the hold released because it was captured (the payment movement follows)
    AUTHORIZATION_RELEASE = "authorization_release", "Authorization released"  # voided or expired hold
    REVERSAL = "reversal", "Reversal"  # corrects a movement posted in error (the reverse of its entries)
    # Settlement (reconciliation, docs/adr/0054): what a gateway's settlement says it charged and paid out.
    GATEWAY_FEE = "gateway_fee", "Gateway fee"  # the gateway kept its fee out of our money
    PAYOUT = "payout", "Payout"  # the gateway paid money it held for us to the bank
    SETTLEMENT = "settlement", "Settlement"  # one transaction settled straight to the bank, net of its fee


class Account(models.Model):
    merchant = models.ForeignKey("merchants.Merchant", on_delete=models.PROTECT, related_name="+")
    mode = models.CharField(max_length=4, choices=Mode.choices)
    currency = models.CharField(max_length=3)
    code = models.CharField(max_length=32, choices=AccountCode.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["merchant", "mode", "currency", "code"]
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "mode", "currency", "code"], name="ledger_account_unique"
            ),
            models.CheckConstraint(
                condition=Q(mode__in=[m.value for m in Mode]), name="ledger_account_mode_valid"
            ),
            models.CheckConstraint(
                condition=Q(currency__in=list(CURRENCIES)), name="ledger_account_currency_known"
            ),
            models.CheckConstraint(
                condition=Q(code__in=[c.value for c in AccountCode]), name="ledger_account_code_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.currency} ({self.merchant_id}, {self.mode})"


class Movement(models.Model):
    id = models.CharField(
        primary_key=True, max_length=ID_MAX_LENGTH, default=id_default("txn"), editable=False
    )
    merchant = models.ForeignKey(
        "merchants.Merchant", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    mode = models.CharField(max_length=4, choices=Mode.choices)
    currency = models.CharField(max_length=3)
    type = models.CharField(max_length=32, choices=MovementType.choices)
    # The object that caused it: ("payment", "pay_…"), ("refund", "ref_…"); with `type`, the idempotency key.
    source_type = models.CharField(max_length=32)
    source_id = models.CharField(max_length=ID_MAX_LENGTH)
    # The business time (a payment's paid time, a refund's success time): what periods and reports go by.
    occurred_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    description = models.CharField(max_length=255, blank=True, default="")
    # A REVERSAL names the movement it undoes.
    reverses = models.OneToOneField(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="reversed_by"
    )

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [
            # Balance transactions of a tenant, newest first (cursor pagination), and periods (verify_ledger).
            models.Index(fields=["merchant", "mode", "-occurred_at", "-id"], name="ledger_movement_tenant"),
            models.Index(fields=["occurred_at"], name="ledger_movement_occurred"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["source_type", "source_id", "type"], name="ledger_movement_once"),
            models.CheckConstraint(
                condition=Q(mode__in=[m.value for m in Mode]), name="ledger_movement_mode_valid"
            ),
            models.CheckConstraint(
                condition=Q(currency__in=list(CURRENCIES)), name="ledger_movement_currency_known"
            ),
            models.CheckConstraint(
                condition=Q(type__in=[t.value for t in MovementType]), name="ledger_movement_type_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.id} {self.type} {self.source_id}"


class Entry(models.Model):
    movement = models.ForeignKey(Movement, on_delete=models.PROTECT, related_name="entries", db_index=False)
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="entries", db_index=False)
    amount_minor = models.BigIntegerField()  # debit > 0, credit < 0, never 0

    class Meta:
        ordering = ["movement", "id"]
        indexes = [
            models.Index(fields=["movement"], name="ledger_entry_movement"),
            # Balances: the sum per account from the index alone.
            models.Index(fields=["account"], include=["amount_minor"], name="ledger_entry_account"),
        ]
        constraints = [models.CheckConstraint(condition=~Q(amount_minor=0), name="ledger_entry_nonzero")]

    def __str__(self) -> str:
        return f"{self.movement_id} {self.account_id} {self.amount_minor}"
