"""The back office's pages of the ledger checks (reporting.models.LedgerCheck): read-only.

Registered by the back-office site itself (reporting.admin_site.BackOfficeSite.__init__): reporting/admin.py is
imported while that site is being built, so it cannot register on it.
"""

from __future__ import annotations

from django.contrib import admin

from apikeys.admin_base import ReadOnlyAdmin, html_table
from reporting.models import LedgerCheck


class LedgerCheckAdmin(ReadOnlyAdmin):
    """Each run of the ledger verification: when, ok or how many breaks, and the first 100 breaks. Every role may
    view it (`reporting.view_ledgercheck`, reporting/roles.py)."""

    list_display = ("started_at", "ok", "breaks_count", "movements", "duration")
    list_filter = ("ok",)
    date_hierarchy = "started_at"
    fields = ("started_at", "finished_at", "ok", "breaks_count", "summary_table", "breaks_table")
    readonly_fields = fields

    @admin.display(description="movements")
    def movements(self, obj: LedgerCheck):
        return obj.summary.get("movements", "-")

    @admin.display(description="duration (s)")
    def duration(self, obj: LedgerCheck):
        return obj.summary.get("duration_seconds", "-")

    @admin.display(description="summary")
    def summary_table(self, obj: LedgerCheck) -> str:
        return html_table(["", ""], [[key, value] for key, value in sorted(obj.summary.items())])

    @admin.display(description="breaks (the first 100)")
    def breaks_table(self, obj: LedgerCheck) -> str:
        rows = [[b.get("invariant"), b.get("object"), b.get("detail")] for b in obj.breaks]
        return html_table(["invariant", "movement / object", "detail"], rows) if rows else "-"
