"""Reporting reads the other apps' tables and writes one of its own: `LedgerCheck`, the record of each run of the
ledger verification (reporting/ledger_check.py, the daily job in reporting/tasks.py; docs/adr/0049).

`FinancialReport` only carries the permission to read the financial report (its page, CSV and the back-office
dashboard's money figures): Django keeps permissions per model, and this one belongs to no other app's model.
Unmanaged, so no table is ever created for it."""

from django.db import models


class FinancialReport(models.Model):
    class Meta:
        managed = False
        db_table = "reporting_financial_report_permission_only"  # never created
        default_permissions = ()
        permissions = [("view_financial_report", "Can view the financial report, its CSV and the dashboard")]


class LedgerCheck(models.Model):
    """One run of the ledger's invariant checks. Written once when the run ends; never changed."""

    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    ok = models.BooleanField()
    breaks_count = models.PositiveIntegerField()
    # The first LEDGER_CHECK_BREAKS_KEPT breaks: [{"invariant", "object", "detail"}, ...].
    breaks = models.JSONField(default=list, blank=True)
    # movements, entries, merchants, currencies checked, duration_seconds, merchant, since, until.
    summary = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["-started_at"], name="ledger_check_started")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ok=models.Q(breaks_count=0)), name="ledger_check_ok_means_no_breaks"
            )
        ]

    def __str__(self) -> str:
        return f"ledger check {self.started_at:%Y-%m-%d %H:%M} ({'ok' if self.ok else f'{self.breaks_count} breaks'})"
