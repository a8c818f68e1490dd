"""Reporting writes nothing and has no table. `FinancialReport` only carries the permission to read the financial
report (its page, CSV and the back-office dashboard's money figures): Django keeps permissions per model, and this
one belongs to no other app's model. Unmanaged, so no table is ever created for it."""

from django.db import models


class FinancialReport(models.Model):
    class Meta:
        managed = False
        db_table = "reporting_financial_report_permission_only"  # never created
        default_permissions = ()
        permissions = [("view_financial_report", "Can view the financial report, its CSV and the dashboard")]
