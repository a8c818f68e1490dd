"""Settling our pending refunds with the gateway (docs/adr/0046-refunds.md).

A refund of ours (origin api/admin) stays `pending` when the gateway answered PENDING, timed out or failed in a
way after which it may have acted. `refunds_reconcile` (the periodic job payments.reconcile_payments, right after
the payments) takes those pending longer than settings.REFUND_RECONCILE_AFTER_SECONDS and, for each, outside any
transaction:

- asks `gateway.get_refund(refund_id=…)` and applies the answer through `refund_apply_result` (the code of the
  refund's phase 3): succeeded, failed, or still pending;
- `GatewayRefundNotFound` (the request never reached the gateway): sends the refund again with the SAME refund id
  (the gateway's idempotency key, so it cannot be paid twice) and applies that answer;
- any other error: left pending; asked again after a backoff of 1, 2, 4 … minutes, at most hourly.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from gateways import base as gw
from gateways.registry import gateway_for_account
from payments.models import GatewayCallOperation, Refund, RefundStatus
from payments.services._support import gateway_call
from payments.services.reconciliation import ReconcileSummary, _backoff, reconcile_each
from payments.services.refunds import OUR_ORIGINS, refund_apply_result, refund_send

logger = logging.getLogger("paytrust.payments")


def refunds_to_reconcile(*, now: datetime | None = None, limit: int = 500) -> list[str]:
    """Ids of our refunds pending longer than REFUND_RECONCILE_AFTER_SECONDS, each at most once per backoff."""
    now = now or timezone.now()
    after = timedelta(seconds=settings.REFUND_RECONCILE_AFTER_SECONDS)
    candidates = (
        Refund.objects.filter(
            status=RefundStatus.PENDING, origin__in=OUR_ORIGINS, created_at__lte=now - after
        )
        .exclude(failure_code="refund_exceeds_received")
        .order_by("created_at", "id")
    )  # held for finance review
    due: list[str] = []
    for pk, reconciled_at, attempts in candidates.values_list("pk", "reconciled_at", "reconcile_attempts")[
        : limit * 4
    ]:
        if reconciled_at is None or reconciled_at + _backoff(attempts) <= now:
            due.append(pk)
        if len(due) >= limit:
            break
    return due


def refund_reconcile(*, refund_id: str, now: datetime | None = None) -> bool:
    """Ask the gateway about one pending refund of ours and apply its answer; True when the refund changed.
    Never inside a transaction. The sandbox checkout page calls it when a pending sandbox refund is settled
    there (as a real gateway's notification would make us ask)."""
    now = now or timezone.now()
    refund = (
        Refund.objects.select_related("payment", "payment__gateway_account")
        .filter(pk=refund_id, status=RefundStatus.PENDING, origin__in=OUR_ORIGINS)
        .first()
    )
    if refund is None:
        return False
    Refund.objects.filter(pk=refund.pk).update(
        reconciled_at=now, reconcile_attempts=F("reconcile_attempts") + 1
    )
    payment = refund.payment
    adapter = gateway_for_account(payment.gateway_account)
    query = {
        "refund_id": refund.id,
        "payment_id": payment.id,
        "gateway_reference": payment.gateway_reference,
        "gateway_refund_reference": refund.gateway_refund_reference,
    }
    result, error = gateway_call(
        payment, GatewayCallOperation.GET_REFUND, lambda: adapter.get_refund(**query), request=query
    )
    if isinstance(error, gw.GatewayRefundNotFound):
        logger.info("refund unknown to the gateway: sending it again", extra={"refund": refund.id})
        result, error = refund_send(refund, payment)
    elif error is not None:
        logger.warning(
            "refund reconciliation: gateway could not answer", extra={"refund": refund.id, "code": error.code}
        )
        return False
    _, changed = refund_apply_result(refund_id=refund.id, result=result, error=error, now=now)
    return changed


def refunds_reconcile(
    *, now: datetime | None = None, limit: int = 500, refund_ids: list[str] | None = None
) -> ReconcileSummary:
    """Reconcile every pending refund due (or the given ids). One failure does not stop the others."""
    ids = refund_ids if refund_ids is not None else refunds_to_reconcile(now=now, limit=limit)
    return reconcile_each(ids, lambda pk: refund_reconcile(refund_id=pk, now=now), what="refund")
