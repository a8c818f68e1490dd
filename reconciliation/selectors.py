"""Reconciliation reads (docs/adr/0054)."""

from __future__ import annotations

from django.db.models import QuerySet

from gateways.models import GatewayAccount
from gateways.registry import GATEWAYS
from reconciliation.models import LineClass, ReconciliationRun


def api_reconcilable_accounts() -> QuerySet[GatewayAccount]:
    """Enabled gateway accounts whose gateway lists what it settled (`supports_settlement_report`): the daily job's
    and `manage.py reconcile`'s accounts when none is named."""
    names = [name for name, cls in GATEWAYS.items() if cls.supports_settlement_report]
    return GatewayAccount.objects.filter(enabled=True, gateway__in=names).order_by("created_at", "id")


def run_summary(run: ReconciliationRun) -> str:
    """One line: the run, its classes and what is open (the command's and the admin's message)."""
    counts = ", ".join(f"{cls} {run.counts.get(cls, 0)}" for cls in LineClass.values)
    money = "; ".join(
        f"{currency} net {figures['net']} fees {figures['fees']} payouts {figures['payouts']}"
        + ("" if figures.get("clearing_agrees", True) else " (gateway_clearing DISAGREES)")
        for currency, figures in (run.totals or {}).items()
    )
    text = f"{run.account_id} {run.day}: {run.status}; {counts}; open {run.open_discrepancies}"
    if money:
        text += f"; {money}"
    if run.error:
        text += f"; error: {run.error}"
    return text
