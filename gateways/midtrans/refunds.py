"""Midtrans refunds, capture and void (docs/adr/0048-midtrans-xendit-refunds-and-capture.md has the sources).

Refund (`MidtransGateway.refund`):
- `POST /v2/{order_id}/refund {"refund_key": <our ref_ id>, "amount": <integer IDR>, "reason"}`. Midtrans refunds
  only `settlement` transactions (MDOCS reference/refund-transactions-card); the answer (`refund` /
  `partial_refund`) means the refund is done: SUCCEEDED, reference = Midtrans' `refund_chargeback_id` (a counter per
  transaction: unique per payment).
- 412 (not allowed in this state) -> we ask the status (so the common settled case costs one call, and the
  decision rests on Midtrans' current truth): `capture` / `authorize` / `pending` (card not settled yet, D+1) and a
  FULL refund -> `POST /v2/{order_id}/cancel` (SUCCEEDED, reference `cancel:<transaction_id>`); a partial refund
  there -> permanent `gateway_refund_not_allowed`. If the cancel is refused because the transaction settled in the
  meantime, the refund is sent once more. A transaction already `cancel` (our earlier cancel whose answer was
  lost) with a full refund -> SUCCEEDED (replay). Any other state -> `gateway_refund_not_allowed`.
- 406 (refund_key already used: our earlier request, whose answer was lost, went through) -> not an error: the
  refund is looked up (`get_refund`) and returned. Not listed yet -> a retryable `gateway_refund_unconfirmed`.
- 414 -> permanent `gateway_refund_amount_invalid`. Timeouts stay GatewayTimeout (the refund may have happened:
  the caller asks get_refund later). The `Idempotency-Key` header (= refund id) also makes Midtrans replay a
  successful answer for five minutes (MDOCS reference/api-headers).

get_refund: `GET /v2/{order_id}/status`, our refund_key in its `refunds` list -> SUCCEEDED with that entry's
`refund_amount`; a `cancel` transaction without refunds (a full refund made by cancel) -> SUCCEEDED for the gross
amount; otherwise GatewayRefundNotFound (also when Midtrans has no such transaction).

Authorize / capture / void (card only, `credit_card.type = "authorize"` at create):
- capture: the status first (it gives the `transaction_id` that `POST /v2/capture` needs; the gateway_reference is
  our order id). `authorize` -> `POST /v2/capture {"transaction_id", "gross_amount"}` -> SUCCEEDED with the captured
  amount; already `capture` / `settlement` (a retry after a lost answer) -> SUCCEEDED as Midtrans reports it; any
  other state -> permanent `gateway_capture_not_allowed`; 414 -> `gateway_capture_amount_invalid`.
- void_authorization: the status first (a cancel of a `capture` would reverse collected money, so only `authorize`
  is cancelled) -> `POST /v2/{order_id}/cancel` -> CANCELED; already `cancel` -> CANCELED (replay); otherwise
  permanent `gateway_void_not_allowed`. (get_status maps a `cancel` transaction to FAILED: Midtrans' status does
  not say whether it was an authorization.)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Protocol

from gateways.base import (
    CaptureRequest,
    GatewayOutcome,
    GatewayPaymentNotFound,
    GatewayRefundNotFound,
    PaymentStatusResult,
    RefundRequest,
    RefundResult,
    RefundStatus,
    gateway_amount_to_minor,
)
from gateways.midtrans import webhooks
from gateways.midtrans.client import (
    DUPLICATE_REFUND_KEY,
    INVALID_AMOUNT,
    NOT_ALLOWED,
    MidtransClient,
    MidtransRejection,
    bad_response,
    gross_amount_int,
)
from paytrust.errors import GatewayError


class MidtransGateway(Protocol):
    """What these functions use of gateways.midtrans.gateway.MidtransGateway (not imported: no import circle)."""

    client: MidtransClient

    def status_result(self, data: dict) -> PaymentStatusResult: ...


# Not settled yet: Midtrans refuses a refund, a cancel reverses the whole transaction.
_BEFORE_SETTLEMENT = frozenset({"capture", "authorize", "pending"})
_REFUNDED = frozenset({"refund", "partial_refund"})
_CAPTURED = frozenset({"capture", "settlement"})
_REASON_MAX = 255  # assumption: Midtrans documents no limit; our reasons are short free text


def _not_allowed(message: str) -> GatewayError:
    return GatewayError(message, code="gateway_refund_not_allowed", retryable=False)


def _transaction_status(data: Mapping) -> str:
    return str(data.get("transaction_status") or "").strip().lower()


# ----- refund ----------------------------------------------------------------------------------------------------
def refund(gateway: MidtransGateway, request: RefundRequest) -> RefundResult:
    order_id = request.gateway_reference or request.payment_id
    body = {
        "refund_key": request.refund_id,
        "amount": gross_amount_int(request.amount_minor, request.currency),
        "reason": (request.reason or "refund")[:_REASON_MAX],
    }
    for attempt in range(2):
        try:
            data = gateway.client.refund(order_id, body, idempotency_key=request.refund_id)
        except MidtransRejection as exc:
            if exc.midtrans_code == DUPLICATE_REFUND_KEY:
                return _replayed(gateway, request, order_id)
            if exc.midtrans_code == INVALID_AMOUNT:
                raise GatewayError(
                    exc.message, code="gateway_refund_amount_invalid", retryable=False
                ) from exc
            if exc.midtrans_code == NOT_ALLOWED and attempt == 0:
                result = _refund_before_settlement(gateway, request, order_id, rejection=exc)
                if result is not None:
                    return result
                continue  # settled meanwhile: refund it after all
            raise _not_allowed(exc.message) from exc
        return _refund_answer(data, request)
    raise AssertionError("unreachable")  # pragma: no cover


def _refund_answer(data: dict, request: RefundRequest) -> RefundResult:
    status = _transaction_status(data)
    if status not in _REFUNDED:
        raise bad_response(f"Midtrans refund answer has transaction_status {status!r}.")
    key = data.get("refund_key")
    if key is not None and str(key) != request.refund_id:
        raise bad_response("Midtrans' refund answer names another refund_key.")
    reference = data.get("refund_chargeback_id")
    return RefundResult(
        gateway_refund_reference=str(reference if reference is not None else request.refund_id),
        status=RefundStatus.SUCCEEDED,
        # Midtrans approves exactly the amount asked (the answer's refund_amount is not documented as this
        # refund's own amount rather than the cumulative one).
        amount_minor=request.amount_minor,
        raw=data,
    )


def _replayed(gateway: MidtransGateway, request: RefundRequest, order_id: str) -> RefundResult:
    try:
        return get_refund(gateway, refund_id=request.refund_id, order_id=order_id)
    except GatewayRefundNotFound as exc:
        raise GatewayError(
            "Midtrans says the refund key was used but does not list the refund yet.",
            code="gateway_refund_unconfirmed",
            retryable=True,
        ) from exc


def _refund_before_settlement(
    gateway: MidtransGateway, request: RefundRequest, order_id: str, *, rejection: MidtransRejection
) -> RefundResult | None:
    """After a 412: cancel a not-yet-settled transaction for a full refund. None = it is settled now (retry)."""
    data = gateway.client.get_status(order_id)
    status = _transaction_status(data)
    gross = gateway.status_result(data).amount_minor
    full = request.amount_minor == gross
    if status == "settlement":
        return None
    if status == "cancel" and full and not data.get("refunds"):
        return _cancel_result(data, gross)  # our earlier cancel; its answer was lost
    if status not in _BEFORE_SETTLEMENT:
        raise _not_allowed(f"{rejection.message} (transaction_status {status!r}).")
    if not full:
        raise _not_allowed(
            f"Midtrans cannot partially refund a transaction that is not settled yet ({status!r}); "
            "only a full refund (a cancel) is possible before settlement."
        )
    try:
        # Not the refund id: Midtrans' Idempotency-Key is global across endpoints (MDOCS reference/api-headers).
        answer = gateway.client.cancel(order_id, idempotency_key=f"cancel-{request.refund_id}")
    except MidtransRejection as exc:
        if exc.midtrans_code == NOT_ALLOWED and _transaction_status(gateway.client.get_status(order_id)) == (
            "settlement"
        ):
            return None
        raise _not_allowed(exc.message) from exc
    if _transaction_status(answer) != "cancel":
        raise bad_response(f"Midtrans cancel answer has transaction_status {_transaction_status(answer)!r}.")
    return _cancel_result({**data, **answer}, gross)


def _cancel_result(data: Mapping, gross_minor: int) -> RefundResult:
    return RefundResult(
        gateway_refund_reference=f"cancel:{data.get('transaction_id') or data.get('order_id')}",
        status=RefundStatus.SUCCEEDED,
        amount_minor=gross_minor,
        raw=dict(data),
    )


def get_refund(
    gateway: MidtransGateway, *, refund_id: str, order_id: str, gateway_refund_reference: str = ""
) -> RefundResult:
    try:
        data = gateway.client.get_status(order_id)
    except GatewayPaymentNotFound as exc:
        raise GatewayRefundNotFound(f"Midtrans has no transaction {order_id}.") from exc
    currency = str(data.get("currency") or "IDR").upper()
    refunds = data.get("refunds") if isinstance(data.get("refunds"), list) else []
    for item in refunds:
        if isinstance(item, Mapping) and str(item.get("refund_key") or "") == refund_id:
            amount = gateway_amount_to_minor(
                webhooks.field_text(item.get("refund_amount")),
                currency,
                param="refunds.refund_amount",
                error=bad_response,
            )
            reference = item.get("refund_chargeback_id")
            return RefundResult(
                gateway_refund_reference=str(reference if reference is not None else refund_id),
                status=RefundStatus.SUCCEEDED,
                amount_minor=amount,
                raw=dict(item),
            )
    if _transaction_status(data) == "cancel" and not refunds:
        return _cancel_result(data, gateway.status_result(data).amount_minor)
    raise GatewayRefundNotFound(f"Midtrans lists no refund {refund_id} on {order_id}.")


# ----- authorize / capture / void ----------------------------------------------------------------------------
def capture(gateway: MidtransGateway, request: CaptureRequest) -> PaymentStatusResult:
    order_id = request.gateway_reference or request.payment_id
    amount = gross_amount_int(request.amount_minor, request.currency)
    data = gateway.client.get_status(order_id)
    status = _transaction_status(data)
    if status in _CAPTURED:
        return _captured(gateway.status_result(data))  # captured already (a retry after a lost answer)
    if status != "authorize":
        raise GatewayError(
            f"Midtrans cannot capture a transaction in status {status!r}.",
            code="gateway_capture_not_allowed",
            retryable=False,
        )
    transaction_id = data.get("transaction_id")
    if not isinstance(transaction_id, str) or not transaction_id:
        raise bad_response("Midtrans' status answer lacks transaction_id.")
    try:
        answer = gateway.client.capture(
            transaction_id=transaction_id, gross_amount=amount, idempotency_key=f"cap-{request.payment_id}"
        )
    except MidtransRejection as exc:
        if exc.midtrans_code == INVALID_AMOUNT:
            raise GatewayError(exc.message, code="gateway_capture_amount_invalid", retryable=False) from exc
        raise GatewayError(exc.message, code="gateway_capture_not_allowed", retryable=False) from exc
    result = _captured(gateway.status_result({**data, **answer}))
    return dataclasses.replace(result, amount_minor=request.amount_minor)


def _captured(result: PaymentStatusResult) -> PaymentStatusResult:
    if result.status != GatewayOutcome.SUCCEEDED:  # e.g. capture + fraud challenge/deny
        raise GatewayError(
            f"Midtrans reports the capture as {result.status}.",
            code="gateway_capture_not_allowed",
            retryable=False,
        )
    return result


def void_authorization(gateway: MidtransGateway, *, order_id: str) -> PaymentStatusResult:
    data = gateway.client.get_status(order_id)
    status = _transaction_status(data)
    if status == "authorize":
        try:
            answer = gateway.client.cancel(order_id, idempotency_key=f"void-{order_id}")
        except MidtransRejection as exc:
            raise GatewayError(exc.message, code="gateway_void_not_allowed", retryable=False) from exc
        status = _transaction_status(answer)
        data = {**data, **answer}
    if status != "cancel":
        raise GatewayError(
            f"Midtrans cannot void a transaction in status {status!r}; only an authorization.",
            code="gateway_void_not_allowed",
            retryable=False,
        )
    return dataclasses.replace(gateway.status_result(data), status=GatewayOutcome.CANCELED)
