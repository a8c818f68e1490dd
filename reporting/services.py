"""The one write of reporting: recording a run of the ledger checks (reporting.models.LedgerCheck)."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from reporting.ledger_check import ledger_check
from reporting.models import LedgerCheck

LEDGER_CHECK_BREAKS_KEPT = 100


def ledger_check_run(*, merchant_id: str | None = None, since: datetime | None = None) -> LedgerCheck:
    """Run every ledger check (one snapshot, reporting.ledger_check) and record the result; the first 100 breaks
    are kept, all are counted."""
    started_at = timezone.now()
    result = ledger_check(merchant_id=merchant_id, since=since)
    return LedgerCheck.objects.create(
        started_at=started_at,
        finished_at=timezone.now(),
        ok=result.ok,
        breaks_count=len(result.breaks),
        breaks=[item.as_dict() for item in result.breaks[:LEDGER_CHECK_BREAKS_KEPT]],
        summary=result.summary,
    )
