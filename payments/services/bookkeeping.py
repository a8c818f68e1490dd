"""What each money movement of a payment posts to the ledger (chart and rules: docs/adr/0045).

Every function here runs inside the transaction of the state change that causes the movement (the caller holds the
payment's row lock) and is idempotent per (object, movement): `ledger.services.movement_post` writes a movement
once; a replay returns the one posted before. Signs: debit > 0, credit < 0.

- payment applied: Dr gateway_clearing gross; Cr tax_payable tax, Cr service_fees fee, Cr customer_credit overpaid,
  Cr merchant_payable the rest (= the application's taxable money). The figures are the invoice's
  PaymentApplication's, the same row the financial report sums, so ledger and report agree by construction.
- refund requested (pending; also a gateway-reported refund, posted with its success): Dr customer_credit for what
  is left of the payment's overpayment, Dr merchant_payable the rest; Cr refunds_payable (money in flight).
- refund succeeded: Dr refunds_payable, Cr gateway_clearing (the gateway paid it out).
- refund failed (after being requested): the requested movement's lines reversed: the money is the merchant's again.
- chargeback: Dr customer_credit / merchant_payable as a refund, Cr gateway_clearing at once (never in flight).
- authorization: Dr gateway_authorized, Cr merchant_pending (a hold, not money yet).
- capture / authorization release (void, expiry): the hold's lines reversed; a capture's money then posts as a
  payment movement when it is applied.
"""

from __future__ import annotations

from datetime import datetime

from invoices.models import PaymentApplication
from invoices.selectors import payment_application_get
from ledger.models import AccountCode as A
from ledger.models import MovementType as T
from ledger.selectors import movement_lines, source_account_total
from ledger.services import movement_post
from payments.models import Payment, Refund


def _post(
    obj, *, source_type: str, type: str, occurred_at: datetime, lines: dict[str, int], description: str
):
    movement, _ = movement_post(
        merchant_id=obj.merchant_id,
        mode=obj.mode,
        currency=obj.currency,
        type=type,
        source_type=source_type,
        source_id=obj.pk,
        occurred_at=occurred_at,
        lines=lines,
        description=description,
    )
    return movement


def post_payment_applied(*, payment: Payment, application: PaymentApplication) -> None:
    """The payment's money as the invoice applied it (`application` is that payment's PaymentApplication)."""
    gross = application.amount_minor
    merchant_share = gross - application.tax_minor - application.fee_minor - application.overpaid_minor
    _post(
        payment,
        source_type="payment",
        type=T.PAYMENT,
        occurred_at=application.paid_at,
        lines={
            A.GATEWAY_CLEARING: gross,
            A.TAX_PAYABLE: -application.tax_minor,
            A.SERVICE_FEES: -application.fee_minor,
            A.CUSTOMER_CREDIT: -application.overpaid_minor,
            A.MERCHANT_PAYABLE: -merchant_share,
        },
        description=f"payment {payment.pk} on invoice {payment.invoice_id}",
    )


def _drawn_from(refund: Refund) -> dict[str, int]:
    """Where a refund's money comes from: what is left of its payment's overpayment (customer credit) first, then
    the merchant's balance. Earlier refunds of the payment (requested and not failed) used up their part."""
    application = payment_application_get(payment_id=refund.payment_id)
    overpaid = application.overpaid_minor if application is not None else 0
    others = (
        Refund.objects.filter(payment_id=refund.payment_id).exclude(pk=refund.pk).values_list("pk", flat=True)
    )
    credit_used = source_account_total(source_type="refund", source_ids=others, code=A.CUSTOMER_CREDIT)
    from_credit = max(0, min(refund.amount_minor, overpaid - credit_used))
    return {A.CUSTOMER_CREDIT: from_credit, A.MERCHANT_PAYABLE: refund.amount_minor - from_credit}


def post_refund_requested(*, refund: Refund) -> None:
    drawn = _drawn_from(refund)
    _post(
        refund,
        source_type="refund",
        type=T.REFUND,
        occurred_at=refund.created_at,
        lines={**drawn, A.REFUNDS_PAYABLE: -refund.amount_minor},
        description=f"refund {refund.pk} of payment {refund.payment_id}",
    )


def post_refund_succeeded(*, refund: Refund) -> None:
    """After `post_refund_requested` (same transaction for a refund that succeeds at once)."""
    _post(
        refund,
        source_type="refund",
        type=T.REFUND_SUCCEEDED,
        occurred_at=refund.succeeded_at,
        lines={A.REFUNDS_PAYABLE: refund.amount_minor, A.GATEWAY_CLEARING: -refund.amount_minor},
        description=f"refund {refund.pk} paid out",
    )


def post_refund_failed(*, refund: Refund, occurred_at: datetime) -> None:
    """The requested movement undone: the money goes back where it was drawn from."""
    requested = movement_lines(source_type="refund", source_id=refund.pk, type=T.REFUND)
    if not requested:
        return  # never requested in the ledger: nothing to give back
    _post(
        refund,
        source_type="refund",
        type=T.REFUND_FAILED,
        occurred_at=occurred_at,
        lines={code: -amount for code, amount in requested.items()},
        description=f"refund {refund.pk} failed",
    )


def post_chargeback(*, refund: Refund) -> None:
    drawn = _drawn_from(refund)
    _post(
        refund,
        source_type="refund",
        type=T.CHARGEBACK,
        occurred_at=refund.succeeded_at,
        lines={**drawn, A.GATEWAY_CLEARING: -refund.amount_minor},
        description=f"chargeback {refund.pk} on payment {refund.payment_id}",
    )


def post_authorization(*, payment: Payment, amount_minor: int, occurred_at: datetime) -> None:
    _post(
        payment,
        source_type="payment",
        type=T.AUTHORIZATION,
        occurred_at=occurred_at,
        lines={A.GATEWAY_AUTHORIZED: amount_minor, A.MERCHANT_PENDING: -amount_minor},
        description=f"authorization of payment {payment.pk}",
    )


def _release(payment: Payment, *, type: str, occurred_at: datetime, description: str) -> None:
    held = movement_lines(source_type="payment", source_id=payment.pk, type=T.AUTHORIZATION)
    if not held:
        return
    _post(
        payment,
        source_type="payment",
        type=type,
        occurred_at=occurred_at,
        lines={code: -amount for code, amount in held.items()},
        description=description,
    )


def post_capture(*, payment: Payment, occurred_at: datetime) -> None:
    """The whole hold released because it was captured (a partial capture releases the rest too); the captured
    money posts as the payment movement when `invoice_apply_payment` applies it."""
    _release(payment, type=T.CAPTURE, occurred_at=occurred_at, description=f"capture of payment {payment.pk}")


def post_authorization_release(*, payment: Payment, occurred_at: datetime) -> None:
    """A hold voided or expired uncaptured."""
    _release(
        payment,
        type=T.AUTHORIZATION_RELEASE,
        occurred_at=occurred_at,
        description=f"authorization of payment {payment.pk} released",
    )
