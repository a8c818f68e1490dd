"""Reconciliation runs and their lines (docs/adr/0054-reconciliation.md).

- `ReconciliationRun` (`rcn_…`): one per gateway account and UTC day. Running the day again (a re-run, another
  file) REPLACES its lines in one transaction and counts `attempts`; a discrepancy's resolution carries over to the
  new line with the same key, so a re-run gives the same result and loses no staff work.
- `ReconciliationLine`: one payment or refund compared, in one of five classes. Fees and payouts of the settlement
  are not lines: they post to the ledger and are summed on the run (`totals`).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from paytrust.ids import ID_MAX_LENGTH, id_default
from paytrust.models import Mode


class RunSource(models.TextChoices):
    API = "api", "Gateway API"  # Gateway.settlement_lines (the sandbox's export, Xendit's transaction list)
    FILE = "file", "Uploaded file"  # a settlement CSV read with the account's column mapping


class RunStatus(models.TextChoices):
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"  # every line matched or resolved
    DISCREPANCIES = "discrepancies", "Discrepancies open"
    FAILED = (
        "failed",
        "Failed",
    )  # the source could not be read (the error is kept); the previous lines are kept


class LineClass(models.TextChoices):
    MATCHED = "matched", "Matched"
    AMOUNT_MISMATCH = "amount_mismatch", "Amount mismatch"
    MISSING_IN_PAYTRUST = (
        "missing_in_paytrust",
        "Missing in PayTrust",
    )  # the gateway took money we don't know of
    MISSING_AT_GATEWAY = "missing_at_gateway", "Missing at the gateway"  # we recorded money it did not settle
    CURRENCY_MISMATCH = "currency_mismatch", "Currency mismatch"


DISCREPANCY_CLASSES = tuple(c for c in LineClass.values if c != LineClass.MATCHED)


class Resolution(models.TextChoices):
    NONE = "", "-"  # a matched line: nothing to resolve
    OPEN = "open", "Open"
    APPLIED = (
        "applied",
        "Applied",
    )  # missing in PayTrust: confirmed with the gateway and applied to the payment
    RESOLVED = "resolved", "Resolved by staff"  # with a note


class ReconciliationRun(models.Model):
    id = models.CharField(
        primary_key=True, max_length=ID_MAX_LENGTH, default=id_default("rcn"), editable=False
    )
    merchant = models.ForeignKey("merchants.Merchant", on_delete=models.PROTECT, related_name="+")
    mode = models.CharField(max_length=4, choices=Mode.choices)
    account = models.ForeignKey(
        "gateways.GatewayAccount", on_delete=models.PROTECT, related_name="reconciliation_runs"
    )
    day = models.DateField(help_text="The UTC day reconciled.")
    source = models.CharField(max_length=4, choices=RunSource.choices)
    source_name = models.CharField(max_length=255, blank=True, default="")  # the uploaded file's name
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.RUNNING)
    error = models.CharField(max_length=500, blank=True, default="")
    # Lines per class (LineClass values) and the open discrepancies.
    counts = models.JSONField(default=dict, blank=True)
    open_discrepancies = models.PositiveIntegerField(default=0)
    # Per currency: gross, refunds, fees, payouts, net settled for the matched lines, the ledger's movement on
    # gateway_clearing for the same lines, and whether they agree. Minor units.
    totals = models.JSONField(default=dict, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    started_by = models.CharField(max_length=150, blank=True, default="")  # "user:<name>", "job", "command"
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-day", "-created_at"]
        permissions = [
            ("run_reconciliation", "Can run a reconciliation or upload a settlement file"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["account", "day"], name="one_reconciliation_run_per_day"),
            models.CheckConstraint(
                condition=Q(mode__in=[m.value for m in Mode]), name="reconciliation_run_mode_valid"
            ),
        ]
        indexes = [models.Index(fields=["merchant", "mode", "-day"], name="reconciliation_run_tenant")]

    def __str__(self) -> str:
        return f"{self.id} {self.account_id} {self.day}"


class ReconciliationLine(models.Model):
    run = models.ForeignKey(ReconciliationRun, on_delete=models.CASCADE, related_name="lines")
    # The line's identity across re-runs: "<kind>:<gateway reference>" or, for what only PayTrust has,
    # "<kind>:<our id>". Unique in a run.
    key = models.CharField(max_length=200)
    line_class = models.CharField(max_length=20, choices=LineClass.choices)
    kind = models.CharField(max_length=12)  # SettlementKind: payment / refund / chargeback
    payment_id = models.CharField(max_length=64, blank=True, default="")  # ours, or as the gateway echoes it
    refund_id = models.CharField(max_length=64, blank=True, default="")
    gateway_reference = models.CharField(max_length=200, blank=True, default="")  # the gateway's line id
    currency = models.CharField(max_length=3)  # the gateway's (PayTrust's when missing at the gateway)
    gateway_amount_minor = models.BigIntegerField(null=True, blank=True)
    paytrust_currency = models.CharField(max_length=3, blank=True, default="")
    paytrust_amount_minor = models.BigIntegerField(null=True, blank=True)
    fee_minor = models.BigIntegerField(default=0)
    occurred_at = models.DateTimeField(null=True, blank=True)  # the gateway's time, else ours
    resolution = models.CharField(max_length=10, choices=Resolution.choices, blank=True, default="")
    resolution_note = models.TextField(blank=True, default="")
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "line_class", "occurred_at", "id"]
        permissions = [
            ("resolve_reconciliationline", "Can resolve a reconciliation discrepancy"),
            ("apply_reconciliationline", "Can apply a payment the gateway settled to PayTrust"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["run", "key"], name="reconciliation_line_key_unique"),
            models.CheckConstraint(
                condition=Q(line_class__in=LineClass.values), name="reconciliation_line_class_valid"
            ),
            # A matched line has nothing to resolve; a discrepancy is open, applied or resolved.
            models.CheckConstraint(
                condition=Q(line_class="matched", resolution="")
                | (~Q(line_class="matched") & Q(resolution__in=["open", "applied", "resolved"])),
                name="reconciliation_line_resolution_valid",
            ),
        ]
        indexes = [
            models.Index(fields=["run", "line_class"], name="reconciliation_line_class"),
            models.Index(fields=["payment_id"], name="reconciliation_line_payment"),
        ]

    def __str__(self) -> str:
        return f"{self.line_class} {self.key}"


class SettlementFileMapping(models.Model):
    """How an account's settlement CSV is read (reconciliation/files.py): a preset (`xendit_transactions_v2`,
    `midtrans`, `generic`) and, per field, the column name when the merchant's export names it differently."""

    account = models.OneToOneField(
        "gateways.GatewayAccount", on_delete=models.CASCADE, related_name="settlement_file_mapping"
    )
    preset = models.CharField(max_length=40, default="generic")
    # field -> column header, overriding the preset's (fields: reconciliation.files.FIELDS).
    columns = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.preset} mapping of {self.account_id}"
