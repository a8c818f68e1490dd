"""`manage.py rotate_encryption_keys [--dry-run] [--batch-size N]`: re-encrypt secrets under the first key.

Run after prepending a new key to FIELD_ENCRYPTION_KEYS (docs/adr/0003-secrets-at-rest.md). Exits non-zero if any
row could not be decrypted with the configured keys (the old key was removed too early).
"""

from django.core.management.base import BaseCommand, CommandError

from gateways.services import encryption_keys_rotate
from paytrust.progress import progress


class Command(BaseCommand):
    help = (
        "Re-encrypt every encrypted field (gateway credentials, …) with the first FIELD_ENCRYPTION_KEYS key."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Count what would be re-encrypted.")
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args, dry_run: bool, batch_size: int, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        with progress(self.stderr, total=None, desc="rows", unit="row") as bar:
            reports = encryption_keys_rotate(batch_size=batch_size, dry_run=dry_run, progress=bar.update)
        failed = 0
        for name, report in reports.items():
            verb = "would re-encrypt" if dry_run else "re-encrypted"
            self.stdout.write(
                f"{name}: {report.rows_seen} rows, {verb} {report.rows_rotated}, undecryptable {report.rows_failed}"
            )
            failed += report.rows_failed
        if failed:
            raise CommandError(f"{failed} rows could not be decrypted with the configured keys.")
