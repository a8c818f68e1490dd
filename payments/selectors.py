"""Reads of payments. Merchant-facing reads are scoped to (merchant, mode): another tenant's payment is a 404."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from django.db.models import QuerySet, Sum

from payments.models import GatewayCall, Payment, PaymentStatus, Refund, RefundStatus
from paytrust.errors import NotFound, ValidationError
from paytrust.money import format_amount


def _rfc3339(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def payment_representation(payment: Payment) -> dict:
    """The API object (also the `data` of payment.* outbound events). Needs no query."""
    cur = payment.currency
    return {
        "id": payment.id,
        "object": "payment",
        "mode": payment.mode,
        "status": payment.status,
        "invoice": payment.invoice_id,
        "installment": payment.installment_number,
        "currency": cur,
        "amount": format_amount(payment.amount_minor, cur),
        "amount_received": format_amount(payment.amount_received_minor, cur),
        "amount_refunded": format_amount(payment.amount_refunded_minor, cur),
        "received_on_closed_invoice": payment.received_on_closed_invoice,
        "capture_method": payment.capture_method,
        "amount_capturable": format_amount(payment.amount_capturable_minor, cur),
        "capture_before": _rfc3339(payment.capture_before),
        "authorized_at": _rfc3339(payment.authorized_at),
        "captured_at": _rfc3339(payment.captured_at),
        "canceled_at": _rfc3339(payment.canceled_at),
        "gateway": payment.gateway,
        "gateway_account": payment.gateway_account_id,
        "gateway_reference": payment.gateway_reference or None,
        "payment_url": payment.payment_url or None,
        "expires_at": _rfc3339(payment.expires_at),
        "paid_at": _rfc3339(payment.succeeded_at),
        "failure_code": payment.failure_code or None,
        "failure_message": payment.failure_message or None,
        "iso20022_status": payment.pain002_status or None,
        "iso20022_reason": payment.pain002_reason or None,
        "risk_score": payment.risk_score,
        "risk_reasons": payment.risk_reasons or [],
        "review": None
        if payment.review_status == "none"
        else {"status": payment.review_status, "reviewed_at": _rfc3339(payment.reviewed_at)},
        "created_at": _rfc3339(payment.created_at),
        "updated_at": _rfc3339(payment.updated_at),
    }


def refund_representation(refund: Refund, payment: Payment) -> dict:
    """The refund object (the API's, and the `data` of `refund.succeeded` / `refund.failed`). `payment` is the
    refund's payment (for its invoice id). Needs no query."""
    cur = refund.currency
    return {
        "id": refund.id,
        "object": "refund",
        "mode": refund.mode,
        "status": refund.status,
        "amount": format_amount(refund.amount_minor, cur),
        "currency": cur,
        "payment": refund.payment_id,
        "invoice": payment.invoice_id,
        "reason": refund.reason or None,
        "metadata": refund.metadata or {},
        "origin": refund.origin,
        "dispute": refund.chargeback,
        "gateway_reference": refund.gateway_refund_reference or None,
        "failure_code": refund.failure_code or None,
        "failure_message": refund.failure_message or None,
        "created_at": _rfc3339(refund.created_at),
        "updated_at": _rfc3339(refund.updated_at),
        "succeeded_at": _rfc3339(refund.succeeded_at),
    }


def refunds_render(refunds: Iterable[Refund]) -> list[dict]:
    """Refunds fetched with `select_related("payment")` (refund_list does)."""
    return [refund_representation(refund, refund.payment) for refund in refunds]


def refund_get(*, merchant, mode: str, refund_id: str) -> Refund:
    refund = (
        Refund.objects.select_related("payment").filter(merchant=merchant, mode=mode, pk=refund_id).first()
    )
    if refund is None:
        raise NotFound(f"No such refund: {refund_id!r}.", param="id")
    return refund


def refund_list(*, merchant, mode: str, payment: str | None = None, status: str | None = None) -> QuerySet:
    qs = Refund.objects.select_related("payment").filter(merchant=merchant, mode=mode)
    if payment:
        qs = qs.filter(payment_id=payment)
    if status:
        qs = qs.filter(status=status)
    return qs


def payment_refundable_minor(payment: Payment) -> int:
    """What may still be refunded: received minus the succeeded refunds (`amount_refunded_minor`) and the pending
    ones (never below 0). Exact only under the payment's row lock (refund_create holds it)."""
    pending = Refund.objects.filter(payment_id=payment.pk, status=RefundStatus.PENDING).aggregate(
        total=Sum("amount_minor")
    )["total"]
    return max(0, payment.amount_received_minor - payment.amount_refunded_minor - (pending or 0))


def payments_render(payments: Iterable[Payment]) -> list[dict]:
    return [payment_representation(payment) for payment in payments]


def payment_get(*, merchant, mode: str, payment_id: str) -> Payment:
    payment = Payment.objects.filter(merchant=merchant, mode=mode, pk=payment_id).first()
    if payment is None:
        raise NotFound(f"No such payment: {payment_id!r}.", param="id")
    return payment


def payment_list(*, merchant, mode: str, status: str | None = None, invoice: str | None = None) -> QuerySet:
    qs = Payment.objects.filter(merchant=merchant, mode=mode)
    if status:
        if status not in PaymentStatus.values:
            raise ValidationError(f"status must be one of {', '.join(PaymentStatus.values)}.", param="status")
        qs = qs.filter(status=status)
    if invoice:
        qs = qs.filter(invoice_id=invoice)
    return qs


def payments_for_invoices(invoices: Sequence) -> dict[str, list[dict]]:
    """{invoice id: [its payment objects, oldest first]} for every invoice given, in ONE query: the `payments`
    list of the invoice representation (`invoices.selectors.invoices_render(..., payments=...)`)."""
    result: dict[str, list[dict]] = {invoice.id: [] for invoice in invoices}
    if not result:
        return result
    rows = Payment.objects.filter(invoice_id__in=list(result)).order_by("created_at", "id")
    for payment in rows:
        result[payment.invoice_id].append(payment_representation(payment))
    return result


def invoice_payments(*, invoice_id: str) -> list[dict]:
    """One invoice's payment objects, oldest first (the `payments` list of its representation and events)."""
    rows = Payment.objects.filter(invoice_id=invoice_id).order_by("created_at", "id")
    return [payment_representation(payment) for payment in rows]


def payment_gateway_calls(*, payment_id: str) -> list[GatewayCall]:
    return list(GatewayCall.objects.filter(payment_id=payment_id).order_by("started_at", "id"))
