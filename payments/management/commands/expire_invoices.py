"""`manage.py expire_invoices [--dry-run]`: move open invoices past their lapse time to `expired` (the same service
the periodic job calls; each expiry records `invoice.expired` with the invoice's payments)."""

from django.core.management.base import BaseCommand
from django.utils import timezone

from invoices.selectors import invoices_overdue_count
from payments.services import invoices_expire_overdue
from paytrust.progress import progress


class Command(BaseCommand):
    help = "Expire open invoices whose expiry has passed with money still due."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Only count what would expire.")

    def handle(self, *args, dry_run: bool = False, **options):
        now = timezone.now()
        if dry_run:
            self.stdout.write(f"{invoices_overdue_count(now=now)} invoice(s) would expire.")
            return
        total = invoices_overdue_count(now=now)
        with progress(self.stderr, total=total, desc="expiring", unit="invoice") as bar:
            count = invoices_expire_overdue(now=now, progress=bar.update)
        self.stdout.write(self.style.SUCCESS(f"Expired {count} invoice(s)."))
