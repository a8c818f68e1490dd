"""`manage.py purge_audit_log [--older-than-days 365]`: prints the number of deleted rows on the last line."""

from django.conf import settings
from django.core.management.base import BaseCommand

from apikeys.services import audit_log_purge


class Command(BaseCommand):
    help = (
        "Delete audit log rows older than N days (default: AUDIT_RETENTION_DAYS). Prints the count deleted."
    )

    def add_arguments(self, parser):
        parser.add_argument("--older-than-days", type=int, default=settings.AUDIT_RETENTION_DAYS)

    def handle(self, *args, older_than_days, **options):
        if older_than_days < 0:
            from django.core.management.base import CommandError

            raise CommandError("--older-than-days must be zero or more.")
        deleted = audit_log_purge(older_than_days=older_than_days)
        self.stderr.write(f"Deleted {deleted} audit log rows older than {older_than_days} days.")
        self.stdout.write(str(deleted))
