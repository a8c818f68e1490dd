"""The manual bank-transfer gateway's own records (docs/adr/0052-manual-bank-transfer.md): the instructions of each
payment (ManualTransfer), the transfers finance recorded (BankTransferReceipt) and the refunds paid out by hand
(ManualRefund). Payments never read these tables: they learn outcomes through the adapter and the inbound
notification a recording stores (webhooks/inbound/manual_transfers.py)."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, time

from django.db import IntegrityError, transaction
from django.utils import timezone

from gateways.base import CreatePaymentRequest, GatewayPaymentNotFound, GatewayRefundNotFound, RefundRequest
from gateways.manual import reference as refs
from gateways.models import (
    BankTransferReceipt,
    GatewayAccount,
    GatewayName,
    ManualRefund,
    ManualRefundStatus,
    ManualTransfer,
    ManualTransferStatus,
)
from paytrust import money
from paytrust.errors import Conflict, NotFound, Unprocessable, ValidationError

BANK_REFERENCE_MAX = 64
_REFERENCE_ATTEMPTS = 5


def new_token() -> str:
    return secrets.token_urlsafe(32)


def transfer_create(*, account: GatewayAccount, request: CreatePaymentRequest) -> ManualTransfer:
    """The instructions for `request.payment_id`, with a fresh unique transfer reference; a retry with the same
    payment id returns the same ones."""
    existing = ManualTransfer.objects.filter(account=account, payment_id=request.payment_id).first()
    if existing is not None:
        return existing
    for _ in range(_REFERENCE_ATTEMPTS):
        try:
            with transaction.atomic():
                return ManualTransfer.objects.create(
                    account=account,
                    payment_id=request.payment_id,
                    reference=refs.generate(),
                    token=new_token(),
                    merchant_name=account.merchant.name,
                    invoice_id=request.invoice_id,
                    installment_number=request.installment_number,
                    description=request.description,
                    amount_minor=request.amount_minor,
                    currency=request.currency,
                    expires_at=request.expires_at,
                )
        except IntegrityError as exc:
            if "one_manual_transfer_per_payment" in str(exc):  # a concurrent create for this payment won
                return ManualTransfer.objects.get(account=account, payment_id=request.payment_id)
            # A reference (or token) collision: draw again.
    raise RuntimeError("could not draw a unique transfer reference")


def transfer_get(
    *, account: GatewayAccount, payment_id: str, gateway_reference: str | None = None
) -> ManualTransfer:
    qs = ManualTransfer.objects.filter(account=account)
    transfer = (
        qs.filter(pk=gateway_reference) if gateway_reference else qs.filter(payment_id=payment_id)
    ).first()
    if transfer is None:
        raise GatewayPaymentNotFound(f"No bank-transfer instructions for {gateway_reference or payment_id}.")
    return transfer


def transfer_expire(
    *, account: GatewayAccount, payment_id: str, gateway_reference: str | None = None
) -> ManualTransfer:
    """Close open instructions as expired (the page then says so). A transfer that arrives later is still
    recorded: money is never refused (the payment path decides what it means)."""
    transfer = transfer_get(account=account, payment_id=payment_id, gateway_reference=gateway_reference)
    with transaction.atomic():
        transfer = ManualTransfer.objects.select_for_update().get(pk=transfer.pk)
        if transfer.status == ManualTransferStatus.OPEN:
            transfer.status = ManualTransferStatus.EXPIRED
            transfer.save(update_fields=["status", "updated_at"])
    return transfer


def transfer_for_reference(*, reference: str, merchant_id: str | None = None) -> ManualTransfer:
    """The instructions a payer's reference names; 400 for a mistyped reference, 404 when no payment (of
    `merchant_id`, when given) has it."""
    try:
        canonical = refs.normalize(reference)
    except refs.InvalidReference as exc:
        raise ValidationError(str(exc), code="transfer_reference_invalid", param="reference")
    qs = ManualTransfer.objects.select_related("account").filter(
        reference=canonical, account__gateway=GatewayName.MANUAL
    )
    if merchant_id is not None:
        qs = qs.filter(account__merchant_id=merchant_id)
    transfer = qs.first()
    if transfer is None:
        raise NotFound(
            f"No payment has the transfer reference {canonical}.",
            code="transfer_reference_unknown",
            param="reference",
        )
    return transfer


def clean_bank_reference(value: object) -> str:
    text = " ".join(str(value or "").split()).upper()
    if not text or len(text) > BANK_REFERENCE_MAX or not re.fullmatch(r"[A-Z0-9 ./_:#-]+", text):
        raise ValidationError(
            f"bank_reference: the bank's id of the transfer, 1-{BANK_REFERENCE_MAX} letters, digits, spaces or "
            "./_:#-",
            param="bank_reference",
        )
    return text


@dataclass(frozen=True)
class Receipt:
    receipt: BankTransferReceipt
    transfer: ManualTransfer
    created: bool  # False: this bank transfer was recorded before (same details): nothing new
    occurred_at: datetime  # the paid time the payment gets


def _paid_time(transfer: ManualTransfer, received_on: date, now: datetime) -> datetime:
    """The start of the day received (UTC), never before the instructions were issued nor after now."""
    start = datetime.combine(received_on, time.min, tzinfo=UTC)
    return min(max(start, transfer.created_at), now)


def _check_date(transfer: ManualTransfer, received_on: object, now: datetime) -> date:
    if not isinstance(received_on, date) or isinstance(received_on, datetime):
        raise ValidationError("received_on must be a date (YYYY-MM-DD).", param="received_on")
    if received_on > now.date():
        raise ValidationError("received_on is in the future.", param="received_on")
    if received_on < transfer.created_at.astimezone(UTC).date():
        raise ValidationError(
            f"received_on is before the payment's instructions were issued "
            f"({transfer.created_at.astimezone(UTC).date()}): that transfer cannot quote this reference.",
            param="received_on",
        )
    return received_on


def receipt_record(
    *,
    reference: str,
    amount: object,
    received_on: date,
    bank_reference: str,
    recorded_by: str,
    currency: str | None = None,
    merchant_id: str | None = None,
) -> Receipt:
    """Record a received bank transfer against the payment whose instructions carry `reference`, once per bank
    reference. Call inside the caller's transaction (it stores the notification in the same one)."""
    now = timezone.now()
    transfer = transfer_for_reference(reference=reference, merchant_id=merchant_id)
    if currency is not None and currency != transfer.currency:
        raise Unprocessable(
            f"Payment {transfer.payment_id} ({transfer.reference}) is in {transfer.currency}, not {currency}.",
            code="currency_mismatch",
            param="currency",
        )
    _check_keyed_amount(amount, transfer.currency)
    amount_minor = money.to_minor(amount, transfer.currency, param="amount", allow_zero=False)
    bank_ref = clean_bank_reference(bank_reference)
    received_on = _check_date(transfer, received_on, now)
    transfer = ManualTransfer.objects.select_for_update().get(pk=transfer.pk)
    same = BankTransferReceipt.objects.filter(account_id=transfer.account_id, bank_reference=bank_ref).first()
    if same is not None:
        if (same.transfer_id, same.amount_minor, same.received_on) != (
            transfer.pk,
            amount_minor,
            received_on,
        ):
            raise Conflict(
                f"Bank transfer {bank_ref} is already recorded ({money.format_display(same.amount_minor, same.currency)}"
                f" on {same.received_on} for {same.transfer.reference}).",
                code="bank_reference_already_recorded",
                param="bank_reference",
            )
        return Receipt(same, transfer, False, _paid_time(transfer, same.received_on, now))
    earlier = transfer.receipts.first()
    if earlier is not None:
        raise Conflict(
            f"Payment {transfer.payment_id} ({transfer.reference}) already received bank transfer "
            f"{earlier.bank_reference}. A payment takes one transfer: start a new payment for the invoice's balance "
            "and record this transfer under its reference (or return the money).",
            code="bank_transfer_already_recorded",
            param="reference",
        )
    try:
        with transaction.atomic():  # the unique index decides between concurrent recordings on two payments
            receipt = BankTransferReceipt.objects.create(
                transfer=transfer,
                account_id=transfer.account_id,
                bank_reference=bank_ref,
                amount_minor=amount_minor,
                currency=transfer.currency,
                received_on=received_on,
                recorded_by=recorded_by[:200],
            )
    except IntegrityError:
        raise Conflict(
            f"Bank transfer {bank_ref} was recorded for another payment just now.",
            code="bank_reference_already_recorded",
            param="bank_reference",
        )
    transfer.status = ManualTransferStatus.RECEIVED
    transfer.amount_received_minor = amount_minor
    transfer.received_at = _paid_time(transfer, received_on, now)
    transfer.save(update_fields=["status", "amount_received_minor", "received_at", "updated_at"])
    return Receipt(receipt, transfer, True, transfer.received_at)


# ----- refunds: paid out by hand ---------------------------------------------------------------------------------


def refund_create(*, account: GatewayAccount, request: RefundRequest) -> ManualRefund:
    """A refund to be paid out by hand, pending until finance marks it paid out; idempotent per refund id."""
    transfer = transfer_get(
        account=account, payment_id=request.payment_id, gateway_reference=request.gateway_reference or None
    )
    refund, _ = ManualRefund.objects.get_or_create(
        transfer=transfer,
        refund_id=request.refund_id,
        defaults={"amount_minor": request.amount_minor, "currency": request.currency},
    )
    return refund


def refund_get(*, account: GatewayAccount, refund_id: str, payment_id: str) -> ManualRefund:
    refund = ManualRefund.objects.filter(
        transfer__account=account, transfer__payment_id=payment_id, refund_id=refund_id
    ).first()
    if refund is None:
        raise GatewayRefundNotFound(f"No manual refund {refund_id}.")
    return refund


def refund_mark_paid_out(
    *, refund_id: str, payout_reference: str, paid_out_by: str
) -> tuple[ManualRefund, bool]:
    """Finance paid the refund out by hand: (refund, changed). Marking it again changes nothing."""
    payout_reference = clean_bank_reference(payout_reference)
    with transaction.atomic():
        refund = ManualRefund.objects.select_for_update().filter(refund_id=refund_id).first()
        if refund is None:
            raise NotFound(f"No manual refund {refund_id!r}.", param="refund")
        if refund.status == ManualRefundStatus.PAID_OUT:
            return refund, False
        refund.status = ManualRefundStatus.PAID_OUT
        refund.payout_reference = payout_reference
        refund.paid_out_by = paid_out_by[:200]
        refund.paid_out_at = timezone.now()
        refund.save(update_fields=["status", "payout_reference", "paid_out_by", "paid_out_at"])
    return refund, True


def _check_keyed_amount(amount: object, currency: str) -> None:
    """A staff-typed amount: digits and at most the currency's decimals after a dot, nothing else. "150.000" for IDR
    (how 150,000 rupiah is written in Indonesia) or "1,50" are refused with the reason rather than read as 150 IDR or
    150 (found by an attacker/finance review); the API's own amounts keep money.to_minor's rules."""
    if not isinstance(amount, str):
        return
    exponent = money.CURRENCIES[currency].exponent
    fraction = rf"(\.\d{{1,{exponent}}})?" if exponent else ""
    if not re.fullmatch(rf"\d+{fraction}", amount.strip()):
        example = money.format_amount(15000000 if exponent == 0 else 15000, currency)
        raise ValidationError(
            f"Type the amount in {currency} with digits only"
            + (f" and at most {exponent} decimals after a dot" if exponent else " (it has no decimals)")
            + f", without thousands separators: e.g. {example}.",
            code="amount_invalid",
            param="amount",
        )
