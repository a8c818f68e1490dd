"""Background jobs of this app (procrastinate autodiscovers tasks.py).

One job per outbound delivery on the `outbound_webhooks` queue, its procrastinate lock the delivery id. Failed
attempts are retried by procrastinate at the time the delivery engine stored on the row (`RetryLater`, read by the
retry strategy `RETRY_AS_ASKED`); a job whose worker died is retried by `paytrust.jobs.retry_stalled_jobs`.
"""

from __future__ import annotations

from paytrust.jobs import RETRY_AS_ASKED, app
from webhooks.outbound.delivery import DELIVER_TASK, delivery_attempt

OUTBOUND_QUEUE = "outbound_webhooks"


@app.task(name=DELIVER_TASK, queue=OUTBOUND_QUEUE, retry=RETRY_AS_ASKED)
def deliver_webhook(*, delivery_id: str) -> None:
    """Make one attempt of an outbound delivery if it is due (idempotent; the row says what to do)."""
    delivery_attempt(delivery_id=delivery_id)
