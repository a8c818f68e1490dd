"""`manage.py verify_ledger [--merchant mer_…] [--since DATE/DATETIME]`: check every ledger invariant (SPEC §13).

Prints each break on its own line (`<invariant> <movement or object id>: <what is wrong>`) and exits 1 when there
is any; otherwise prints a summary (movements, entries, merchants, currencies checked, duration) and exits 0.
`--since` (an ISO date or date-time, no offset = UTC; the API's parser) checks what happened since then (and
compares the report with the ledger over [since, now)); default: everything. The checks: reporting/ledger_check.py.
The daily job (reporting/tasks.py) runs the same checks and records a LedgerCheck.
"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from merchants.models import Merchant
from paytrust.errors import ValidationError
from paytrust.params import query_datetime
from reporting.ledger_check import ledger_check


class Command(BaseCommand):
    help = "Verify the ledger's invariants; exit 1 on any break."

    def add_arguments(self, parser):
        parser.add_argument("--merchant", help="only this merchant (mer_…)")
        parser.add_argument("--since", help="only what happened at or after this ISO date/datetime (UTC)")

    def handle(self, *args, merchant=None, since=None, **options):
        try:
            since_at = query_datetime(since, "--since")
        except ValidationError as exc:
            raise CommandError(str(exc.message), returncode=2) from None
        if merchant and not Merchant.objects.filter(pk=merchant).exists():
            raise CommandError(f"No merchant {merchant}.", returncode=2)
        result = ledger_check(merchant_id=merchant, since=since_at)
        for item in result.breaks:
            self.stdout.write(str(item))
        summary = json.dumps(result.summary, sort_keys=True)
        if result.breaks:
            self.stderr.write(f"verify_ledger: {len(result.breaks)} breaks. {summary}")
            raise SystemExit(1)
        s = result.summary
        if options.get("verbosity", 1) >= 2:
            self.stdout.write(summary)
        self.stdout.write(
            f"ledger OK: {s['movements']} movements, {s['entries']} entries, {s['merchants']} merchants, "
            f"{s['currencies']} currencies checked in {s['duration_seconds']:.2f} s"
        )
