"""Stripe refunds (docs/adr/0050-stripe.md).

refund: `POST /v1/refunds` with `payment_intent` (the session's intent), `amount` (Stripe's minor units),
`reason` when ours names one of Stripe's (duplicate / fraudulent / requested_by_customer), `metadata[refund_id]` =
our ref_ id and `metadata[payment_id]` (so refund.* events name our payment and refund), `Idempotency-Key` = our
ref_ id (a retried request gets the first answer). Stripe's Refund `status`: succeeded -> SUCCEEDED; failed /
canceled -> FAILED (failure_reason); pending / requires_action -> PENDING (refund.updated or get_refund tell later).
Stripe's card/invalid-request errors (e.g. `charge_already_refunded`, `amount_too_large`) are permanent.

get_refund: `GET /v1/refunds/{re_…}` when we know Stripe's id; else the intent's refunds are listed
(`GET /v1/refunds?payment_intent=…`, paged by `starting_after`) and ours is the one whose `metadata.refund_id` is our
ref_ id. None -> GatewayRefundNotFound.
"""

from __future__ import annotations

from typing import Protocol

from gateways.base import (
    GatewayPaymentNotFound,
    GatewayRefundNotFound,
    PaymentStatusResult,
    RefundRequest,
    RefundResult,
    RefundStatus,
)
from gateways.stripe.amounts import from_stripe, to_stripe
from gateways.stripe.client import StripeApiError, StripeClient
from paytrust.errors import GatewayError

REASONS = frozenset({"duplicate", "fraudulent", "requested_by_customer"})
_MAX_PAGES = 20


class StripeGateway(Protocol):
    client: StripeClient

    def get_status(self, *, payment_id: str, gateway_reference: str | None = None) -> PaymentStatusResult: ...


def _bad_response(message: str) -> GatewayError:
    return GatewayError(message, code="gateway_bad_response", retryable=True)


def stripe_reason(reason: str) -> str | None:
    key = reason.strip().lower().replace(" ", "_").replace("-", "_")
    return key if key in REASONS else None


def _intent_id(gateway: StripeGateway, *, payment_id: str, gateway_reference: str) -> str:
    status = gateway.get_status(payment_id=payment_id, gateway_reference=gateway_reference or None)
    intent = status.raw.get("payment_intent")
    intent_id = intent.get("id") if isinstance(intent, dict) else intent
    if not isinstance(intent_id, str) or not intent_id:
        raise GatewayError(
            "Stripe's session has no PaymentIntent: nothing was paid to refund.",
            code="gateway_refund_not_allowed",
            retryable=False,
        )
    return intent_id


def refund(gateway: StripeGateway, request: RefundRequest) -> RefundResult:
    intent_id = _intent_id(
        gateway, payment_id=request.payment_id, gateway_reference=request.gateway_reference
    )
    params = {
        "payment_intent": intent_id,
        "amount": to_stripe(request.amount_minor, request.currency),
        "reason": stripe_reason(request.reason),
        "metadata": {"refund_id": request.refund_id, "payment_id": request.payment_id},
    }
    try:
        data = gateway.client.create_refund(params, idempotency_key=request.refund_id)
    except StripeApiError as exc:
        code = (
            "gateway_refund_amount_invalid"
            if exc.error_code == "amount_too_large"
            else "gateway_refund_not_allowed"
        )
        if exc.retryable:
            raise
        raise GatewayError(exc.message, code=code, retryable=False) from exc
    return refund_result(data, refund_id=request.refund_id, currency=request.currency)


def refund_result(data: dict, *, refund_id: str, currency: str = "") -> RefundResult:
    refund_xid = data.get("id")
    if not isinstance(refund_xid, str) or not refund_xid.startswith("re_"):
        raise _bad_response("Stripe's refund lacks id.")
    metadata = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
    if metadata.get("refund_id") not in (None, "", refund_id):
        raise _bad_response(f"Stripe's refund {refund_xid} belongs to {metadata.get('refund_id')!r}.")
    stripe_currency = str(data.get("currency") or "").upper()
    if currency and stripe_currency != currency:
        raise _bad_response(f"Stripe's refund {refund_xid} is in {stripe_currency}, not {currency}.")
    amount = from_stripe(data.get("amount"), stripe_currency, field="amount", error=_bad_response)
    state = data.get("status")
    if state == "succeeded":
        status = RefundStatus.SUCCEEDED
    elif state in ("failed", "canceled"):
        status = RefundStatus.FAILED
    else:
        status = RefundStatus.PENDING
    return RefundResult(
        gateway_refund_reference=refund_xid,
        status=status,
        amount_minor=amount,
        failure_message=str(data.get("failure_reason") or state) if status == RefundStatus.FAILED else "",
        raw=data,
    )


def get_refund(
    gateway: StripeGateway,
    *,
    refund_id: str,
    payment_id: str,
    gateway_reference: str,
    gateway_refund_reference: str = "",
) -> RefundResult:
    if gateway_refund_reference:
        try:
            return refund_result(gateway.client.get_refund(gateway_refund_reference), refund_id=refund_id)
        except GatewayPaymentNotFound as exc:
            raise GatewayRefundNotFound(f"Stripe has no refund {gateway_refund_reference}.") from exc
    try:
        intent_id = _intent_id(gateway, payment_id=payment_id, gateway_reference=gateway_reference)
    except GatewayPaymentNotFound as exc:
        raise GatewayRefundNotFound(f"Stripe has no payment for {payment_id}.") from exc
    after = ""
    for _ in range(_MAX_PAGES):
        page = gateway.client.list_refunds(payment_intent=intent_id, starting_after=after)
        for item in page["data"]:
            metadata = item.get("metadata") if isinstance(item.get("metadata"), dict) else {}
            if metadata.get("refund_id") == refund_id:
                return refund_result(item, refund_id=refund_id)
        if not page.get("has_more") or not page["data"]:
            break
        after = str(page["data"][-1].get("id") or "")
    raise GatewayRefundNotFound(f"Stripe lists no refund with metadata.refund_id {refund_id}.")
