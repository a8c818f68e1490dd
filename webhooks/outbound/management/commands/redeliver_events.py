"""`manage.py redeliver_events` — re-queue outbound webhook deliveries (same service as the API and the admin).

Examples:
    manage.py redeliver_events --failed --since 2025-01-01
    manage.py redeliver_events --event evt_…            # every endpoint that matches the event now
    manage.py redeliver_events --failed --endpoint whe_… --dry-run
"""

from __future__ import annotations

from datetime import datetime

from django.core.management.base import BaseCommand, CommandError

from paytrust.errors import ValidationError
from paytrust.params import query_datetime
from paytrust.progress import progress
from webhooks.outbound import services
from webhooks.outbound.models import Delivery, DeliveryStatus, Event

CHUNK = 200


def _parse_since(value: str) -> datetime:
    """--since: an ISO date or date-time (no offset: UTC), parsed by the API's one parser."""
    try:
        return query_datetime(value, "--since")
    except ValidationError as exc:
        raise CommandError(exc.message) from None


class Command(BaseCommand):
    help = "Re-queue outbound webhook deliveries (failed ones, or an event's, or an endpoint's)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--failed", action="store_true", help="only deliveries whose retries are exhausted"
        )
        parser.add_argument("--since", help="only events created at or after this ISO date/datetime (UTC)")
        parser.add_argument("--endpoint", help="only deliveries to this endpoint (whe_…)")
        parser.add_argument("--event", help="only this event (evt_…); alone: every endpoint matching it now")
        parser.add_argument(
            "--dry-run", action="store_true", help="show what would be queued, change nothing"
        )

    def handle(self, *args, failed=False, since=None, endpoint=None, event=None, dry_run=False, **options):
        if not (failed or since or endpoint or event):
            raise CommandError("Choose what to redeliver: --failed, --since, --endpoint and/or --event.")
        if event and not (failed or since or endpoint):
            return self._one_event(event, dry_run=dry_run)

        qs = Delivery.objects.all()
        if failed:
            qs = qs.filter(status=DeliveryStatus.FAILED)
        if since:
            qs = qs.filter(event__created_at__gte=_parse_since(since))
        if endpoint:
            qs = qs.filter(endpoint_id=endpoint)
        if event:
            qs = qs.filter(event_id=event)
        ids = list(qs.order_by("created_at", "id").values_list("id", flat=True))

        queued = 0
        with progress(self.stderr, total=len(ids), desc="redelivering", unit="delivery") as bar:
            for start in range(0, len(ids), CHUNK):
                chunk = ids[start : start + CHUNK]
                if dry_run:
                    queued += (
                        Delivery.objects.filter(
                            pk__in=chunk, endpoint__enabled=True, endpoint__deleted_at__isnull=True
                        )
                        .exclude(status=DeliveryStatus.SENDING)
                        .count()
                    )
                else:
                    queued += services.deliveries_requeue(delivery_ids=chunk)
                bar.update(len(chunk))
        self._summary(selected=len(ids), queued=queued, dry_run=dry_run)

    def _one_event(self, event_id: str, *, dry_run: bool) -> None:
        event = Event.objects.filter(pk=event_id).first()
        if event is None:
            raise CommandError(f"No such event: {event_id}")
        if dry_run:
            from webhooks.outbound.models import ALL_EVENTS, WebhookEndpoint

            n = WebhookEndpoint.objects.filter(
                merchant_id=event.merchant_id,
                mode=event.mode,
                enabled=True,
                deleted_at__isnull=True,
                enabled_events__overlap=[event.type, ALL_EVENTS],
            ).count()
            return self._summary(selected=n, queued=n, dry_run=True)
        queued = services.event_redeliver(event=event)
        self._summary(selected=queued, queued=queued, dry_run=False)

    def _summary(self, *, selected: int, queued: int, dry_run: bool) -> None:
        verb = "would queue" if dry_run else "queued"
        self.stdout.write(
            f"redeliver_events: {selected} selected, {verb} {queued}, skipped {selected - queued} "
            f"(in flight, or endpoint disabled/deleted){' [dry run]' if dry_run else ''}"
        )
