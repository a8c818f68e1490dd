"""`manage.py record_bank_transfer` — record a bank transfer received for a manual bank-transfer payment (the same
service as the back office's "Record a bank transfer" form; docs/adr/0052-manual-bank-transfer.md).

Example:
    manage.py record_bank_transfer --reference PT-7K3M-9QX2 --amount 150000 --received-on 2026-11-30 \\
        --bank-reference BCA-2026113000123 [--currency IDR] [--merchant mer_…]

Exit 0 with what processing did (also for a repeat of a transfer already recorded: nothing changes); exit 1
(CommandError) with the reason when the recording is refused (unknown or mistyped reference, amount, date,
currency, a bank reference already used for another transfer).
"""

from __future__ import annotations

from datetime import date

from django.core.management.base import BaseCommand, CommandError

from apikeys.services import Actor
from paytrust.errors import ApplicationError
from webhooks.inbound.manual_transfers import bank_transfer_record


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--received-on must be a date YYYY-MM-DD, not {value!r}.") from None


class Command(BaseCommand):
    help = "Record a received bank transfer against the manual payment whose reference it quotes."

    def add_arguments(self, parser):
        parser.add_argument(
            "--reference", required=True, help="the transfer reference the payer quoted (PT-…)"
        )
        parser.add_argument(
            "--amount", required=True, help="amount received, decimal in the currency: 150000"
        )
        parser.add_argument("--received-on", required=True, help="date the bank received it, YYYY-MM-DD")
        parser.add_argument("--bank-reference", required=True, help="the bank's id of the transfer")
        parser.add_argument("--currency", help="the currency received; refused unless it is the payment's")
        parser.add_argument("--merchant", help="only a payment of this merchant (mer_…)")

    def handle(
        self, *args, reference, amount, received_on, bank_reference, currency=None, merchant=None, **opts
    ):
        try:
            recorded = bank_transfer_record(
                reference=reference,
                amount=amount,
                received_on=_date(received_on),
                bank_reference=bank_reference,
                currency=currency.upper() if currency else None,
                merchant_id=merchant,
                actor=Actor.for_cli("record_bank_transfer"),
            )
        except ApplicationError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from None
        if recorded.duplicate:
            self.stdout.write(
                f"already recorded: {recorded.amount_display} for {recorded.reference} ({recorded.payment_id}); "
                "nothing changed"
            )
            return
        self.stdout.write(
            f"recorded {recorded.amount_display} for {recorded.reference} ({recorded.payment_id}), event "
            f"{recorded.event.pk} {recorded.event.status}: {recorded.outcome}"
        )
