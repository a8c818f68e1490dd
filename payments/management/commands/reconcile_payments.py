"""manage.py reconcile_payments [--payment pay_… ...] [--limit N]: ask gateways for the truth about open payments."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from payments.services import ReconcileSummary, payments_reconcile, payments_to_reconcile
from paytrust.progress import progress


class Command(BaseCommand):
    help = (
        "Ask the gateways about payments whose outcome is unknown, that are stuck initiating or pending past "
        "their expiry, and apply the answers (the same code path as webhooks). Safe to run at any time."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--payment", action="append", dest="payments", help="Only this payment (repeatable)."
        )
        parser.add_argument(
            "--limit", type=int, default=500, help="At most this many payments (default 500)."
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="List the payments that are due; ask nobody."
        )

    def handle(self, *args, payments=None, limit=500, dry_run=False, **options):
        if dry_run:
            due = payments or payments_to_reconcile(limit=limit)
            for pk in due:
                self.stdout.write(pk)
            self.stdout.write(f"{len(due)} payment(s) due for reconciliation (dry run).")
            return
        due = payments or payments_to_reconcile(limit=limit)
        summary = ReconcileSummary()
        with progress(self.stderr, total=len(due), desc="reconciling", unit="payment") as bar:
            for pk in due:  # one at a time through the same service, so the bar moves with each gateway call
                one = payments_reconcile(payment_ids=[pk])
                summary.checked += one.checked
                summary.changed += one.changed
                summary.unchanged += one.unchanged
                summary.errors += one.errors
                bar.update()
        self.stdout.write(
            f"checked {summary.checked}, changed {summary.changed}, unchanged {summary.unchanged}, "
            f"errors {summary.errors}"
        )
