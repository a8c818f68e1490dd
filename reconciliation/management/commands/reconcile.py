"""`manage.py reconcile --date D [--account gwa_…] [--file F]`: reconcile gateway accounts' UTC day (docs/adr/0054).

Without --account: every enabled account whose gateway has a settlement list API (the sandbox, Xendit). --file
reads an uploaded-style settlement CSV for the one --account (its column mapping, as in the back office).
Running a day again replaces its result (same result for the same data; nothing is posted twice).

Examples:
    manage.py reconcile --date 2026-11-30
    manage.py reconcile --date 2026-11-30 --account gwa_…
    manage.py reconcile --date 2026-11-30 --account gwa_… --file midtrans-2026-11-30.csv
"""

from __future__ import annotations

from datetime import date

from django.core.management.base import BaseCommand, CommandError

from gateways.models import GatewayAccount
from paytrust.errors import ApplicationError
from paytrust.progress import progress
from reconciliation.models import RunStatus
from reconciliation.selectors import api_reconcilable_accounts, run_summary
from reconciliation.services import reconcile_day, reconcile_file


class Command(BaseCommand):
    help = "Reconcile gateway accounts' UTC day against the gateways' settlement (API or a file)."

    def add_arguments(self, parser):
        parser.add_argument("--date", required=True, help="the UTC day, YYYY-MM-DD")
        parser.add_argument("--account", help="only this gateway account (gwa_…)")
        parser.add_argument("--file", help="a settlement CSV for --account (read with its column mapping)")

    def handle(self, *args, date=None, account=None, file=None, **options):
        day = _parse_day(date)
        if file and not account:
            raise CommandError("--file needs --account (whose mapping reads it).")
        if account:
            accounts = list(GatewayAccount.objects.filter(pk=account))
            if not accounts:
                raise CommandError(f"No gateway account {account}.")
        else:
            accounts = list(api_reconcilable_accounts())
        failed = 0
        with progress(self.stderr, total=len(accounts), desc="reconciling", unit="account") as bar:
            for gateway_account in accounts:
                try:
                    run = self._run(gateway_account, day, file)
                except ApplicationError as exc:
                    failed += 1
                    bar.note(f"{gateway_account.pk}: {exc.message}")
                    bar.update()
                    continue
                failed += run.status == RunStatus.FAILED
                self.stdout.write(run_summary(run))
                bar.update()
        self.stdout.write(f"reconciled {len(accounts) - failed} of {len(accounts)} account(s) for {day}")
        if failed:
            raise CommandError(f"{failed} account(s) could not be reconciled.")

    @staticmethod
    def _run(account: GatewayAccount, day: date, file: str | None):
        if file is None:
            return reconcile_day(account=account, day=day, started_by="command")
        try:
            stream = open(file, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise CommandError(f"Cannot read {file}: {exc.strerror}.") from None
        with stream:
            return reconcile_file(
                account=account, day=day, stream=stream, filename=file, started_by="command"
            )


def _parse_day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise CommandError(f"--date {value!r} is not a YYYY-MM-DD day.") from None
