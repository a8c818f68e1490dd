"""Refunds a merchant asks for (SPEC §13; docs/adr/0046-refunds.md): `POST /v1/payments/{id}/refunds` (origin
`api`) and the payment admin's "Refund" action (origin `admin`), in three phases like initiation.py, so that the
gateway is never called inside a transaction:

1. One transaction: the payment row locked (FOR UPDATE: concurrent refunds of one payment wait for each other, so
   the refundable amount each one sees is exact); checks (404 another tenant's/mode's payment, 409
   `payment_not_refundable` unless it collected money: succeeded/partially_refunded/refunded, 400 `refund_unsupported` /
   `partial_refund_unsupported` by the adapter's capabilities, 422 `refund_exceeds_available`); the Refund
   `pending`; ledger `post_refund_requested` (the money leaves the merchant's balance for refunds_payable).
2. No transaction: `gateway.refund(RefundRequest(refund_id=refund.id, …))`, the refund id being the gateway's
   idempotency key (a resend never refunds twice); the call is recorded (GatewayCall `refund`).
3. One transaction, payment then refund locked: `refund_apply_result` applies the answer: SUCCEEDED -> succeeded
   (payment's refunded amount raised, refund.succeeded); FAILED or a permanent gateway error -> failed
   (ledger reversed, refund.failed); PENDING, a timeout or any error after which the gateway may have acted ->
   stays pending (the API answers 201 with status `pending`); refund_reconciliation.py asks the gateway later.

`refund_apply_result` is the one code path for a gateway's word about one of our refunds (phase 3 and
reconciliation); it changes only a pending refund, so applying the same answer twice changes nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from gateways import base as gw
from gateways.registry import gateway_class, gateway_for_account
from payments.models import GatewayCallOperation, Payment, Refund, RefundOrigin, RefundStatus
from payments.selectors import payment_refundable_minor
from payments.services import bookkeeping
from payments.services._support import gateway_call
from payments.services.refund_settlement import (
    REFUNDABLE_STATUSES,
    refund_mark_failed,
    refund_mark_succeeded,
    refund_note_reference,
)
from paytrust.errors import Conflict, GatewayError, NotFound, Unprocessable, ValidationError
from paytrust.money import format_amount
from paytrust.serializers import METADATA_KEY_MAX, METADATA_MAX_KEYS, METADATA_VALUE_MAX

logger = logging.getLogger("paytrust.payments")

REASON_MAX = 500
OUR_ORIGINS = (RefundOrigin.API, RefundOrigin.ADMIN)


def _check_metadata(metadata: object) -> dict:
    """SPEC §2 metadata (the API's MetadataField checks it first; the admin and other callers come here)."""
    if metadata is None:
        return {}
    ok = isinstance(metadata, dict) and len(metadata) <= METADATA_MAX_KEYS
    ok = ok and all(
        isinstance(k, str)
        and 0 < len(k) <= METADATA_KEY_MAX
        and isinstance(v, str)
        and len(v) <= METADATA_VALUE_MAX
        for k, v in metadata.items()
    )
    if not ok:
        raise ValidationError(
            f"metadata: up to {METADATA_MAX_KEYS} string keys (1-{METADATA_KEY_MAX} characters) with string "
            f"values of at most {METADATA_VALUE_MAX} characters.",
            param="metadata",
        )
    return metadata


def _check_capabilities(payment: Payment, amount_minor: int) -> None:
    """400 when the payment's adapter cannot refund, or cannot refund less than the whole payment."""
    adapter = gateway_class(payment.gateway)
    if not adapter.supports_refunds:
        raise ValidationError(
            f"The {payment.gateway} gateway does not support refunds.",
            code="refund_unsupported",
            param="amount",
        )
    partial = 0 < amount_minor != payment.amount_received_minor
    if partial and not adapter.supports_partial_refunds:
        raise ValidationError(
            f"The {payment.gateway} gateway refunds only the whole payment "
            f"({format_amount(payment.amount_received_minor, payment.currency)}).",
            code="partial_refund_unsupported",
            param="amount",
        )


def _phase1_record(
    *,
    merchant,
    mode: str,
    payment_id: str,
    amount_minor: int | None,
    reason: str,
    metadata: dict,
    origin: str,
) -> Refund:
    with transaction.atomic():
        payment = (
            Payment.objects.select_for_update(of=("self",))
            .select_related("merchant")
            .filter(merchant=merchant, mode=mode, pk=payment_id)
            .first()
        )
        if payment is None:
            raise NotFound(f"No such payment: {payment_id!r}.", param="id")
        if payment.status not in REFUNDABLE_STATUSES:
            raise Conflict(
                f"Payment {payment.id} is {payment.status}; only a payment that collected money (succeeded) can be "
                "refunded.",
                code="payment_not_refundable",
            )
        refundable = payment_refundable_minor(payment)
        amount = refundable if amount_minor is None else amount_minor
        _check_capabilities(payment, amount)
        if amount <= 0 or amount > refundable:
            raise Unprocessable(
                f"The refund ({format_amount(max(amount, 0), payment.currency)} {payment.currency}) exceeds what "
                f"is still refundable on payment {payment.id}: {format_amount(refundable, payment.currency)} "
                "(received minus succeeded and pending refunds).",
                code="refund_exceeds_available",
                param="amount",
            )
        refund = Refund.objects.create(
            payment=payment,
            merchant_id=payment.merchant_id,
            mode=payment.mode,
            currency=payment.currency,
            amount_minor=amount,
            status=RefundStatus.PENDING,
            origin=origin,
            reason=reason,
            metadata=metadata,
        )
        bookkeeping.post_refund_requested(refund=refund)
    return refund


def refund_request(refund: Refund, payment: Payment) -> gw.RefundRequest:
    return gw.RefundRequest(
        refund_id=refund.id,
        payment_id=payment.id,
        gateway_reference=payment.gateway_reference,
        amount_minor=refund.amount_minor,
        currency=refund.currency,
        reason=refund.reason,
    )


def refund_send(refund: Refund, payment: Payment) -> tuple[gw.RefundResult | None, GatewayError | None]:
    """Phase 2 (also reconciliation's resend): the refund at the gateway, keyed by the refund id."""
    request = refund_request(refund, payment)
    adapter = gateway_for_account(payment.gateway_account)
    return gateway_call(
        payment, GatewayCallOperation.REFUND, lambda: adapter.refund(request), request=request
    )


def _is_final_failure(error: GatewayError) -> bool:
    """A refusal after which the gateway has certainly not refunded (not a timeout, not retryable, not a 5xx)."""
    return not (error.retryable or gw.outcome_unknown(error) or isinstance(error, gw.GatewayRefundNotFound))


def _recorded_by_gateway(refund: Refund, reference: str) -> Refund | None:
    """A `gateway` refund already holding the gateway's id of this refund (its report arrived first)."""
    if not reference:
        return None
    return (
        Refund.objects.filter(
            payment_id=refund.payment_id, gateway_refund_reference=reference, origin=RefundOrigin.GATEWAY
        )
        .exclude(pk=refund.pk)
        .first()
    )


NEEDS_REVIEW = "refund_exceeds_received"


def _above_received(payment: Payment, refund: Refund) -> bool:
    return payment.amount_refunded_minor + refund.amount_minor > payment.amount_received_minor


def _hold_for_review(payment: Payment, refund: Refund) -> bool:
    """The gateway paid our refund out, but the gateway took money back on its own meanwhile (a chargeback while
    the refund was in flight): together they exceed what the payment received, which the payment cannot record.
    The refund stays `pending`, marked for finance staff (failure_code `refund_exceeds_received`, shown in the
    admin; reconciliation stops asking); its amount stays in `refunds_in_flight` until they settle it with the
    gateway (docs/adr/0046)."""
    if refund.failure_code == NEEDS_REVIEW:
        return False
    refund.failure_code = NEEDS_REVIEW
    refund.failure_message = (
        f"The gateway paid this refund out, but payment {payment.pk} already has {payment.amount_refunded_minor} of "
        f"{payment.amount_received_minor} refunded (a chargeback while it was in flight): finance must review it."
    )[:500]
    refund.save(update_fields=["failure_code", "failure_message", "updated_at"])
    logger.error(
        "refund paid out above what the payment received", extra={"refund": refund.pk, "payment": payment.pk}
    )
    return True


def refund_apply_result(
    *,
    refund_id: str,
    result: gw.RefundResult | None = None,
    error: GatewayError | None = None,
    now: datetime | None = None,
) -> tuple[Refund, bool]:
    """Apply the gateway's answer about one of our refunds (payment, then refund locked): (refund, changed)."""
    now = now or timezone.now()
    with transaction.atomic():
        payment_id = Refund.objects.filter(pk=refund_id).values_list("payment_id", flat=True).get()
        payment = (
            Payment.objects.select_for_update(of=("self",)).select_related("merchant").get(pk=payment_id)
        )
        refund = Refund.objects.select_for_update().get(pk=refund_id)
        if refund.status != RefundStatus.PENDING:
            return refund, False  # settled already (an earlier answer, a gateway report): nothing to change
        reference = result.gateway_refund_reference if result is not None else ""
        twin = _recorded_by_gateway(refund, reference)
        if result is not None and result.status == gw.RefundStatus.SUCCEEDED and twin is not None:
            # The gateway's own report of this very refund got here first (e.g. a Xendit callback after our call
            # timed out) and was recorded as a `gateway` refund: the money is counted there, never twice.
            changed = refund_mark_failed(
                payment=payment,
                refund=refund,
                failure_code="refund_recorded_by_gateway",
                failure_message=f"The gateway reported this refund first; it is recorded as {twin.pk}.",
                now=now,
            )
        elif (
            result is not None
            and result.status == gw.RefundStatus.SUCCEEDED
            and _above_received(payment, refund)
        ):
            changed = _hold_for_review(payment, refund)
        elif result is not None and result.status == gw.RefundStatus.SUCCEEDED:
            changed = refund_mark_succeeded(
                payment=payment, refund=refund, succeeded_at=now, gateway_refund_reference=reference
            )
        elif result is not None and result.status == gw.RefundStatus.FAILED:
            changed = refund_mark_failed(
                payment=payment,
                refund=refund,
                failure_code="refund_failed",
                failure_message=result.failure_message,
                now=now,
                gateway_refund_reference=reference,
            )
        elif error is not None and _is_final_failure(error):
            changed = refund_mark_failed(
                payment=payment,
                refund=refund,
                failure_code=error.code,
                failure_message=error.message,
                now=now,
            )
        else:  # PENDING, a timeout, a retryable error: still pending; keep the gateway's id when it gave one
            changed = refund_note_reference(refund, reference)
            if changed:
                refund.save(update_fields=["gateway_refund_reference", "updated_at"])
    return refund, changed


def refund_create(
    *,
    merchant,
    mode: str,
    payment_id: str,
    amount_minor: int | None = None,
    reason: str = "",
    metadata: dict | None = None,
    origin: str = RefundOrigin.API,
) -> Refund:
    """Refund (part of) a payment: all that is still refundable when `amount_minor` is None. Returns the refund
    as the gateway left it: succeeded, failed, or pending (its outcome is learned later)."""
    if origin not in OUR_ORIGINS:
        raise ValueError(f"refund_create records our own refunds (api/admin), not {origin!r}")
    reason = (reason or "").strip()
    if len(reason) > REASON_MAX:
        raise ValidationError(f"reason allows at most {REASON_MAX} characters.", param="reason")
    if amount_minor is not None and (isinstance(amount_minor, bool) or amount_minor <= 0):
        raise ValidationError("amount must be greater than zero.", code="amount_invalid", param="amount")
    refund = _phase1_record(
        merchant=merchant,
        mode=mode,
        payment_id=payment_id,
        amount_minor=amount_minor,
        reason=reason,
        metadata=_check_metadata(metadata),
        origin=origin,
    )
    payment = Payment.objects.select_related("gateway_account").get(pk=refund.payment_id)
    result, error = refund_send(refund, payment)
    if error is not None:
        logger.warning(
            "refund: the gateway did not accept it (yet)",
            extra={"refund": refund.id, "payment": payment.id, "code": error.code},
        )
    refund, _ = refund_apply_result(refund_id=refund.id, result=result, error=error)
    return Refund.objects.select_related("payment").get(pk=refund.pk)
