"""Xendit refunds through the Refund API (docs/adr/0048-midtrans-xendit-refunds-and-capture.md has the sources).

refund (`XenditGateway.refund`):
- `POST /refunds`, header `idempotency-key: <our ref_ id>`, body `{"invoice_id": <the payment's gateway_reference>,
  "reference_id": <our ref_ id>, "amount": <exact JSON number, major units>, "currency", "reason": <Xendit's enum>,
  "metadata": {"paytrust_refund_id", "paytrust_payment_id", "reason_text"}}`. Xendit's reasons are FRAUDULENT,
  DUPLICATE, REQUESTED_BY_CUSTOMER, CANCELLATION, OTHERS: ours (free text) maps to the one it names, else OTHERS,
  and the text goes in metadata.
- The answer is a Refund object, normally PENDING ("Refund is pending. Check the final status of the refund via
  webhook"): SUCCEEDED -> SUCCEEDED, FAILED / CANCELLED -> FAILED (failure_message = Xendit's failure_code, e.g.
  INSUFFICIENT_BALANCE), anything else -> PENDING. The refund's `id` (rfd-…) is the gateway_refund_reference (the
  refund callbacks name the same id).
- Errors (error_code): 409 DUPLICATE_ERROR (the idempotency key was used: our earlier request, whose answer was
  lost, reached Xendit) -> the refund is looked up and returned (not listed yet -> retryable
  `gateway_refund_unconfirmed`); 400 MAXIMUM_REFUND_AMOUNT_REACHED -> permanent `gateway_refund_amount_invalid`;
  400 REFUND_NOT_SUPPORTED / PARTIAL_REFUND_NOT_SUPPORTED, 403 INELIGIBLE_TRANSACTION -> permanent
  `gateway_refund_not_allowed`; 400 REFUND_IN_PROGRESS -> retryable `gateway_refund_in_progress`;
  INSUFFICIENT_BALANCE as an API error -> permanent `gateway_refund_insufficient_balance`; 403 UNAUTHORIZED ->
  `gateway_authentication_failed`; 404 (no such invoice) -> GatewayPaymentNotFound; other 4xx -> `gateway_rejected`;
  5xx / timeouts as gateways/http.py classifies them.

get_refund: `GET /refunds/{id}` when we know Xendit's id; otherwise the API cannot filter by reference_id, so the
invoice's refunds are listed (`GET /refunds?invoice_id=…`, pages by `after_id` while `has_more`) and ours is found
by `reference_id`. None -> GatewayRefundNotFound.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from gateways.base import (
    GatewayPaymentNotFound,
    GatewayRefundNotFound,
    PaymentStatusResult,
    RefundRequest,
    RefundResult,
    RefundStatus,
    gateway_amount_to_minor,
)
from gateways.xendit.client import XenditApiError, XenditClient
from paytrust import money
from paytrust.errors import GatewayError


class XenditGateway(Protocol):
    """What these functions use of gateways.xendit.gateway.XenditGateway (not imported: no import circle)."""

    client: XenditClient

    def get_status(self, *, payment_id: str, gateway_reference: str | None = None) -> PaymentStatusResult: ...


REASONS = frozenset({"FRAUDULENT", "DUPLICATE", "REQUESTED_BY_CUSTOMER", "CANCELLATION", "OTHERS"})
_REASON_ALIASES = {
    "FRAUD": "FRAUDULENT",
    "CANCELLED": "CANCELLATION",
    "CANCELED": "CANCELLATION",
    "CUSTOMER_REQUEST": "REQUESTED_BY_CUSTOMER",
}
_FAILED = frozenset({"FAILED", "CANCELLED"})
_MAX_PAGES = 50  # 50 x 100 refunds on one invoice is far beyond what a payment can have
# error_code -> (our code, retryable)
_ERRORS = {
    "MAXIMUM_REFUND_AMOUNT_REACHED": ("gateway_refund_amount_invalid", False),
    "REFUND_NOT_SUPPORTED": ("gateway_refund_not_allowed", False),
    "PARTIAL_REFUND_NOT_SUPPORTED": ("gateway_refund_not_allowed", False),
    "INELIGIBLE_TRANSACTION": ("gateway_refund_not_allowed", False),
    "REFUND_IN_PROGRESS": ("gateway_refund_in_progress", True),
    "INSUFFICIENT_BALANCE": ("gateway_refund_insufficient_balance", False),
    "UNAUTHORIZED": ("gateway_authentication_failed", False),
    "INVALID_API_KEY": ("gateway_authentication_failed", False),
}


def _bad_response(message: str) -> GatewayError:
    return GatewayError(message, code="gateway_bad_response", retryable=True)


def xendit_reason(reason: str) -> str:
    """Our free-text reason -> Xendit's enum (the one it names, else OTHERS)."""
    key = reason.strip().upper().replace(" ", "_").replace("-", "_")
    key = _REASON_ALIASES.get(key, key)
    return key if key in REASONS else "OTHERS"


def refund(gateway: XenditGateway, request: RefundRequest) -> RefundResult:
    invoice_id = (
        request.gateway_reference or gateway.get_status(payment_id=request.payment_id).gateway_reference
    )
    metadata = {"paytrust_refund_id": request.refund_id, "paytrust_payment_id": request.payment_id}
    if request.reason:
        metadata["reason_text"] = request.reason[:500]  # Xendit: metadata values up to 500 characters
    body = {
        "invoice_id": invoice_id,
        "reference_id": request.refund_id,
        "amount": money.to_major(request.amount_minor, request.currency),
        "currency": request.currency,
        "reason": xendit_reason(request.reason),
        "metadata": metadata,
    }
    try:
        data = gateway.client.create_refund(body, idempotency_key=request.refund_id)
    except XenditApiError as exc:
        if exc.error_code == "DUPLICATE_ERROR":
            try:
                return _find_by_reference(gateway, refund_id=request.refund_id, invoice_id=invoice_id)
            except GatewayRefundNotFound:
                raise GatewayError(
                    "Xendit says the refund's idempotency key was used but does not list the refund yet.",
                    code="gateway_refund_unconfirmed",
                    retryable=True,
                ) from exc
        code, retryable = _ERRORS.get(exc.error_code, (exc.code, False))
        raise GatewayError(exc.message, code=code, retryable=retryable) from exc
    return refund_result(data, refund_id=request.refund_id)


def refund_result(data: Mapping, *, refund_id: str) -> RefundResult:
    """A Xendit Refund object -> RefundResult."""
    refund_xid, currency = data.get("id"), data.get("currency")
    if not isinstance(refund_xid, str) or not refund_xid or not isinstance(currency, str):
        raise _bad_response("Xendit's refund lacks id or currency.")
    reference_id = data.get("reference_id")
    if reference_id not in (None, "", refund_id):
        raise _bad_response(f"Xendit's refund {refund_xid} belongs to reference {reference_id!r}.")
    if "amount" not in data:
        raise _bad_response("Xendit's refund lacks amount.")
    amount = gateway_amount_to_minor(data["amount"], currency.upper(), param="amount", error=_bad_response)
    status = str(data.get("status") or "").upper()
    if status == "SUCCEEDED":
        outcome = RefundStatus.SUCCEEDED
    elif status in _FAILED:
        outcome = RefundStatus.FAILED
    else:  # PENDING and anything Xendit may add: ask again later, never a success
        outcome = RefundStatus.PENDING
    failure = ""
    if outcome == RefundStatus.FAILED:
        failure = str(data.get("failure_code") or status)
    return RefundResult(
        gateway_refund_reference=refund_xid,
        status=outcome,
        amount_minor=amount,
        failure_message=failure,
        raw=dict(data),
    )


def get_refund(
    gateway: XenditGateway,
    *,
    refund_id: str,
    payment_id: str,
    gateway_reference: str,
    gateway_refund_reference: str = "",
) -> RefundResult:
    if gateway_refund_reference:
        try:
            data = gateway.client.get_refund(gateway_refund_reference)
        except GatewayPaymentNotFound as exc:
            raise GatewayRefundNotFound(f"Xendit has no refund {gateway_refund_reference}.") from exc
        return refund_result(data, refund_id=refund_id)
    invoice_id = gateway_reference
    if not invoice_id:
        try:
            invoice_id = gateway.get_status(payment_id=payment_id).gateway_reference
        except GatewayPaymentNotFound as exc:
            raise GatewayRefundNotFound(f"Xendit has no invoice for {payment_id}.") from exc
    return _find_by_reference(gateway, refund_id=refund_id, invoice_id=invoice_id)


def _find_by_reference(gateway: XenditGateway, *, refund_id: str, invoice_id: str) -> RefundResult:
    matches: list[dict] = []
    after_id = ""
    for _ in range(_MAX_PAGES):
        try:
            page = gateway.client.list_refunds(invoice_id=invoice_id, after_id=after_id)
        except GatewayPaymentNotFound as exc:
            raise GatewayRefundNotFound(f"Xendit lists no refunds for invoice {invoice_id}.") from exc
        matches.extend(item for item in page["data"] if item.get("reference_id") == refund_id)
        if not page.get("has_more") or not page["data"]:
            break
        after_id = str(page["data"][-1].get("id") or "")
    if not matches:
        raise GatewayRefundNotFound(f"Xendit lists no refund with reference_id {refund_id}.")
    # One idempotency key -> one refund; should there be several, a live (not failed) one is the truth.
    live = [item for item in matches if str(item.get("status") or "").upper() not in _FAILED]
    return refund_result((live or matches)[0], refund_id=refund_id)
