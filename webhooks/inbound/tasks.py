"""Background jobs of this app (procrastinate autodiscovers tasks.py).

One job per inbound notification on the `inbound_webhooks` queue, its procrastinate lock the row id. Failed
attempts are retried by procrastinate at the time the service stored on the row (`RetryLater`, read by the retry
strategy `RETRY_AS_ASKED`); a job whose worker died is retried by `paytrust.jobs.retry_stalled_jobs`.
"""

from __future__ import annotations

from paytrust.jobs import RETRY_AS_ASKED, app
from webhooks.inbound.services import PROCESS_TASK, inbound_event_process

INBOUND_QUEUE = "inbound_webhooks"


@app.task(name=PROCESS_TASK, queue=INBOUND_QUEUE, retry=RETRY_AS_ASKED)
def process_inbound_event(*, event_id: str) -> str:
    """One processing attempt of an inbound gateway notification (idempotent; the row says what to do)."""
    return inbound_event_process(event_id=event_id)
