"""`manage.py expire_invoices [--dry-run]`: move open invoices past their lapse time to `expired` (the same service
the periodic job calls; each expiry records `invoice.expired`)."""

from django.core.management.base import BaseCommand
from django.utils import timezone

from invoices.models import OPEN_STATUSES, Invoice
from invoices.services import invoice_expire_overdue


class Command(BaseCommand):
    help = "Expire open invoices whose expiry has passed with money still due."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Only count what would expire.")

    def handle(self, *args, dry_run: bool = False, **options):
        now = timezone.now()
        if dry_run:
            count = Invoice.objects.filter(status__in=OPEN_STATUSES, lapses_at__lte=now).count()
            self.stdout.write(f"{count} invoice(s) would expire.")
            return
        count = invoice_expire_overdue(now=now)
        self.stdout.write(self.style.SUCCESS(f"Expired {count} invoice(s)."))
