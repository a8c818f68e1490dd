"""`manage.py replay_webhooks` — queue inbound gateway webhooks for processing again (same service as the API
`POST /v1/webhooks/{id}/replay` and the admin's "Replay selected").

Examples:
    manage.py replay_webhooks --id whk_…                    # one event (failed or processed)
    manage.py replay_webhooks --failed --since 2026-11-01   # every failed event since a date
    manage.py replay_webhooks --failed --gateway xendit --dry-run
    manage.py replay_webhooks --failed --sync               # process right here, without a worker
"""

from __future__ import annotations

from datetime import datetime

from django.core.management.base import BaseCommand, CommandError

from paytrust.errors import ApplicationError, ValidationError
from paytrust.jobs import RetryLater
from paytrust.params import query_datetime
from paytrust.progress import progress
from webhooks.inbound import services as inbound
from webhooks.inbound.models import InboundNotification, InboundStatus


def _parse_since(value: str) -> datetime:
    """--since: an ISO date or date-time (no offset: UTC), parsed by the API's one parser."""
    try:
        return query_datetime(value, "--since")
    except ValidationError as exc:
        raise CommandError(exc.message) from None


class Command(BaseCommand):
    help = "Queue inbound gateway webhooks for processing again (processing is idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--id", action="append", dest="ids", help="this event (whk_…); repeatable")
        parser.add_argument("--failed", action="store_true", help="only events whose processing failed")
        parser.add_argument("--since", help="only events received at or after this ISO date/datetime (UTC)")
        parser.add_argument("--gateway", help="only events of this gateway (xendit, midtrans, sandbox, …)")
        parser.add_argument(
            "--dry-run", action="store_true", help="show what would be replayed, change nothing"
        )
        parser.add_argument(
            "--sync",
            action="store_true",
            help="process each replayed event here (no worker needed); a retry it asks for is queued as a job",
        )

    def handle(
        self, *args, ids=None, failed=False, since=None, gateway=None, dry_run=False, sync=False, **opts
    ):
        if not (ids or failed or since or gateway):
            raise CommandError("Choose what to replay: --id, --failed, --since and/or --gateway.")
        qs = InboundNotification.objects.all()
        if ids:
            qs = qs.filter(pk__in=ids)
        if failed:
            qs = qs.filter(status=InboundStatus.FAILED)
        if since:
            qs = qs.filter(created_at__gte=_parse_since(since))
        if gateway:
            qs = qs.filter(gateway=gateway)
        selected = list(qs.order_by("created_at", "id").values_list("pk", flat=True))
        if ids:
            missing = sorted(set(ids) - set(selected))
            for pk in missing:
                self.stderr.write(f"no such event: {pk}")
        if dry_run:
            for pk in selected:
                self.stdout.write(pk)
            self.stdout.write(f"{len(selected)} event(s) would be replayed (dry run).")
            return
        replayed = skipped = processed = errors = 0
        with progress(self.stderr, total=len(selected), desc="replaying", unit="event") as bar:
            for pk in selected:
                try:
                    inbound.inbound_event_replay(event_id=pk, defer=not sync)
                except ApplicationError as exc:
                    skipped += 1
                    bar.note(f"{pk}: skipped ({exc.code})")
                    bar.update()
                    continue
                replayed += 1
                if sync:
                    outcome = self._process(pk)
                    if outcome == "processed":
                        processed += 1
                    else:
                        errors += 1
                        bar.note(f"{pk}: {outcome}")
                bar.update()
        summary = f"replayed {replayed}, skipped {skipped}"
        if sync:
            summary += f", processed {processed}, not processed {errors}"
        self.stdout.write(summary + f" (of {len(selected)} selected)")

    @staticmethod
    def _process(pk: str) -> str:
        """One attempt here; a retry it asks for is left to the workers as a job due then."""
        try:
            return inbound.inbound_event_process(event_id=pk)
        except RetryLater as retry:
            inbound.inbound_event_defer(event_id=pk, at=retry.at)
            return f"retry queued for {retry.at.isoformat()} ({retry.reason})"
