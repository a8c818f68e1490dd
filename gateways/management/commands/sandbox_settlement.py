"""`manage.py sandbox_settlement`: show the sandbox gateway's settlement export for a UTC day, or inject a
discrepancy into it for a reconciliation demo (gateways/sandbox/settlement.py, docs/adr/0054).

Examples:
    manage.py sandbox_settlement --account gwa_… --date 2026-11-30                 # the export, as CSV
    manage.py sandbox_settlement --account gwa_… --date 2026-11-30 --inject unknown_payment --amount 75000
    manage.py sandbox_settlement --account gwa_… --date 2026-11-30 --inject alter_amount --payment pay_… --amount 90000
    manage.py sandbox_settlement --account gwa_… --date 2026-11-30 --inject drop --payment pay_…

The CSV is in reconciliation's `generic` format: a sandbox account's back-office upload reads it as is.
"""

from __future__ import annotations

import csv
from datetime import date

from django.core.management.base import BaseCommand, CommandError

from gateways.models import GatewayAccount, SandboxSettlementAdjustmentKind
from gateways.sandbox.settlement import sandbox_settlement_inject, sandbox_settlement_lines
from paytrust import money
from paytrust.errors import ApplicationError

COLUMNS = [
    "type",
    "reference",
    "payment_id",
    "gateway_reference",
    "refund_id",
    "amount",
    "fee",
    "currency",
    "occurred_at",
]


class Command(BaseCommand):
    help = "Show the sandbox's settlement export for a day, or inject a discrepancy into it."

    def add_arguments(self, parser):
        parser.add_argument("--account", required=True, help="the sandbox gateway account (gwa_…)")
        parser.add_argument("--date", required=True, help="the UTC day, YYYY-MM-DD")
        parser.add_argument("--inject", choices=SandboxSettlementAdjustmentKind.values)
        parser.add_argument(
            "--payment", default="", help="pay_… (alter_amount, drop; unknown_payment: optional)"
        )
        parser.add_argument("--amount", help="in major units (unknown_payment, alter_amount)")
        parser.add_argument(
            "--currency", default="", help="unknown_payment's currency (default the account's)"
        )

    def handle(self, *args, account, date: str, inject=None, payment="", amount=None, currency="", **options):
        gateway_account = GatewayAccount.objects.filter(pk=account, gateway="sandbox").first()
        if gateway_account is None:
            raise CommandError(f"No sandbox gateway account {account}.")
        try:
            day = _day(date)
            if inject:
                cur = currency or (gateway_account.currencies[0] if gateway_account.currencies else "IDR")
                adjustment = sandbox_settlement_inject(
                    account=gateway_account,
                    day=day,
                    kind=inject,
                    payment_id=payment,
                    amount_minor=money.to_minor(amount, cur, param="--amount") if amount else None,
                    currency=cur if inject == "unknown_payment" else "",
                )
                self.stdout.write(f"injected {adjustment.kind} {adjustment.payment_id} on {day}")
                return
            self._export(gateway_account, day)
        except ApplicationError as exc:
            raise CommandError(exc.message) from None

    def _export(self, account: GatewayAccount, day: date) -> None:
        writer = csv.writer(self.stdout, lineterminator="\n")
        writer.writerow(COLUMNS)
        for line in sandbox_settlement_lines(account=account, day=day):
            writer.writerow(
                [
                    line.kind,
                    line.reference,
                    line.payment_id,
                    line.gateway_reference,
                    line.refund_id,
                    money.format_amount(line.amount_minor, line.currency),
                    money.format_amount(line.fee_minor, line.currency),
                    line.currency,
                    line.occurred_at.isoformat(),
                ]
            )


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--date {value!r} is not a YYYY-MM-DD day.") from None
