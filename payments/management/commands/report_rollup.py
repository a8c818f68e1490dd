"""manage.py report_rollup [--rebuild]: check (or rebuild) the financial report's daily rollup against the facts."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from payments.services.report_rollup import report_rollup_check, report_rollup_rebuild

SHOWN = 50


class Command(BaseCommand):
    help = (
        "Recompute the financial report's daily rollup (collected, per tax rate, refunds; docs/adr/0040) from the "
        "raw facts (payment applications, their tax rows, succeeded refunds) and list every day/key where the "
        "rollup differs. Exit status 1 when a difference is found. With --rebuild the rollup is then replaced by "
        "the recomputation (under a table lock; concurrent payments wait for it, none is lost). Read-only "
        "otherwise; safe to run at any time."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--rebuild", action="store_true", help="Replace the rollup by the recomputation from the facts."
        )

    def handle(self, *args, rebuild=False, **options):
        differences = report_rollup_rebuild() if rebuild else report_rollup_check()
        for difference in differences[:SHOWN]:
            self.stdout.write(str(difference))
        if len(differences) > SHOWN:
            self.stdout.write(f"... and {len(differences) - SHOWN} more")
        if rebuild:
            self.stdout.write(
                f"rollup rebuilt from the facts; {len(differences)} key(s) differed before the rebuild."
            )
            return
        if differences:
            raise CommandError(f"{len(differences)} key(s) of the rollup differ from the facts.")
        self.stdout.write("rollup equal to the facts (every day, tenant, currency, gateway and tax rate).")
