"""Classify a gateway account's day: the gateway's PAYMENT / REFUND / CHARGEBACK lines against PayTrust's payments
and refunds (docs/adr/0054). Reads only; `reconciliation.services` writes the result.

A gateway line finds its PayTrust object by the id the gateway echoes (our pay_ / ref_ id), else by the gateway's
own reference, among the account's payments of ANY day (a payment paid at 23:59:59 that the gateway books at
00:00:01 still matches). PayTrust's side of the day: the account's payments whose money arrived that UTC day
(`succeeded_at`) and its refunds that succeeded that day; what no gateway line claimed is missing at the gateway.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from django.db.models import Q

from gateways.base import SettlementKind, SettlementLine
from gateways.models import GatewayAccount
from payments.models import Payment, PaymentStatus, Refund, RefundStatus
from paytrust.errors import ValidationError
from reconciliation.models import LineClass, ReconciliationLine

COLLECTED = (PaymentStatus.SUCCEEDED, PaymentStatus.REFUNDED, PaymentStatus.PARTIALLY_REFUNDED)
MATCHED_KINDS = (SettlementKind.PAYMENT, SettlementKind.REFUND, SettlementKind.CHARGEBACK)


@dataclass
class Classified:
    key: str
    line_class: str
    kind: str
    currency: str
    payment_id: str = ""
    refund_id: str = ""
    gateway_reference: str = ""
    gateway_amount_minor: int | None = None
    paytrust_currency: str = ""
    paytrust_amount_minor: int | None = None
    fee_minor: int = 0
    occurred_at: datetime | None = None
    source: SettlementLine | None = None  # the gateway's line (None: missing at the gateway)


@dataclass
class DayResult:
    lines: list[Classified] = field(default_factory=list)
    other: list[SettlementLine] = field(default_factory=list)  # fees, payouts, adjustments

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(LineClass.values, 0)
        for line in self.lines:
            counts[line.line_class] += 1
        return counts


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The UTC day as [start, end)."""
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return start, start + timedelta(days=1)


def posting_key(account_id: str, line_key: str) -> str:
    """A ledger source id (≤ 32 chars) for one settlement line of an account: stable across re-runs."""
    return "stl_" + hashlib.sha256(f"{account_id}|{line_key}".encode()).hexdigest()[:28]


def check_unique(lines: Iterable[SettlementLine]) -> None:
    seen: set[tuple[str, str]] = set()
    for line in lines:
        ident = (str(line.kind), line.reference)
        if ident in seen:
            raise ValidationError(
                f"The settlement lists {line.kind} {line.reference!r} twice.",
                code="settlement_duplicate_line",
            )
        seen.add(ident)


def classify_day(*, account: GatewayAccount, day: date, lines: list[SettlementLine]) -> DayResult:
    check_unique(lines)
    result = DayResult()
    payment_lines = [line for line in lines if line.kind == SettlementKind.PAYMENT]
    refund_lines = [line for line in lines if line.kind in (SettlementKind.REFUND, SettlementKind.CHARGEBACK)]
    result.other = [line for line in lines if line.kind not in MATCHED_KINDS]
    claimed_payments = _classify_payments(account, day, payment_lines, result)
    claimed_refunds = _classify_refunds(account, refund_lines, result)
    _missing_at_gateway(account, day, claimed_payments, claimed_refunds, result)
    return result


def _compare(line: SettlementLine, *, currency: str, amount: int) -> str:
    if line.currency != currency:
        return LineClass.CURRENCY_MISMATCH
    if line.amount_minor != amount:
        return LineClass.AMOUNT_MISMATCH
    return LineClass.MATCHED


def _classify_payments(account, day: date, lines: list[SettlementLine], result: DayResult) -> set[str]:
    ids = {line.payment_id for line in lines if line.payment_id}
    refs = {line.gateway_reference for line in lines if line.gateway_reference}
    found = Payment.objects.filter(gateway_account=account).filter(
        Q(pk__in=ids) | Q(gateway_reference__in=refs)
    )
    by_id, by_ref = {}, {}
    for payment in found.only("id", "gateway_reference", "status", "currency", "amount_received_minor"):
        by_id[payment.pk] = payment
        if payment.gateway_reference:
            by_ref[payment.gateway_reference] = payment
    claimed: set[str] = set()
    # A payment already settled by a matched line of another day (the gateway listing it again under a new
    # transaction id) is not matched a second time: the money would be booked twice.
    settled_elsewhere = set(
        ReconciliationLine.objects.filter(
            run__account=account,
            kind=SettlementKind.PAYMENT,
            line_class=LineClass.MATCHED,
            payment_id__in=list(by_id),
        )
        .exclude(run__day=day)
        .values_list("payment_id", flat=True)
    )
    for line in lines:
        payment = by_id.get(line.payment_id) or by_ref.get(line.gateway_reference)
        item = Classified(
            key=f"payment:{line.reference}",
            line_class=LineClass.MISSING_IN_PAYTRUST,
            kind=SettlementKind.PAYMENT,
            currency=line.currency,
            payment_id=payment.pk if payment else line.payment_id,
            gateway_reference=line.reference,
            gateway_amount_minor=line.amount_minor,
            fee_minor=line.fee_minor,
            occurred_at=line.occurred_at,
            source=line,
        )
        if payment is not None and (payment.pk in claimed or payment.pk in settled_elsewhere):
            # A second settlement line for one collection: nothing of PayTrust's is left for it to match.
            item.paytrust_currency = payment.currency
            item.paytrust_amount_minor = 0
            item.line_class = LineClass.AMOUNT_MISMATCH
        elif payment is not None:
            claimed.add(payment.pk)
            item.paytrust_currency = payment.currency
            if payment.status in COLLECTED:
                item.paytrust_amount_minor = payment.amount_received_minor
                item.line_class = _compare(
                    line, currency=payment.currency, amount=payment.amount_received_minor
                )
        result.lines.append(item)
    return claimed


def _classify_refunds(account, lines: list[SettlementLine], result: DayResult) -> set[str]:
    ids = {line.refund_id for line in lines if line.refund_id}
    refs = {line.reference for line in lines} | {
        line.gateway_reference for line in lines if line.gateway_reference
    }
    found = Refund.objects.filter(payment__gateway_account=account).filter(
        Q(pk__in=ids) | Q(gateway_refund_reference__in=refs)
    )
    by_id, by_ref = {}, {}
    for refund in found:
        by_id[refund.pk] = refund
        if refund.gateway_refund_reference:
            by_ref[refund.gateway_refund_reference] = refund
    claimed: set[str] = set()
    for line in lines:
        refund = (
            by_id.get(line.refund_id)
            or by_ref.get(line.reference)
            or by_ref.get(line.gateway_reference or "-")
        )
        item = Classified(
            key=f"{line.kind}:{line.reference}",
            line_class=LineClass.MISSING_IN_PAYTRUST,
            kind=str(line.kind),
            currency=line.currency,
            payment_id=refund.payment_id if refund else line.payment_id,
            refund_id=refund.pk if refund else line.refund_id,
            gateway_reference=line.reference,
            gateway_amount_minor=line.amount_minor,
            fee_minor=line.fee_minor,
            occurred_at=line.occurred_at,
            source=line,
        )
        if refund is not None:
            claimed.add(refund.pk)
            item.paytrust_currency = refund.currency
            if refund.status == RefundStatus.SUCCEEDED:
                item.paytrust_amount_minor = refund.amount_minor
                item.line_class = _compare(line, currency=refund.currency, amount=refund.amount_minor)
        result.lines.append(item)
    return claimed


def _missing_at_gateway(account, day: date, payments: set[str], refunds: set[str], result: DayResult) -> None:
    start, end = day_bounds(day)
    ours = (
        Payment.objects.filter(
            gateway_account=account, status__in=COLLECTED, succeeded_at__gte=start, succeeded_at__lt=end
        )
        .exclude(pk__in=payments)
        .order_by("succeeded_at", "id")
    )
    for payment in ours.only("id", "currency", "amount_received_minor", "succeeded_at", "gateway_reference"):
        result.lines.append(
            Classified(
                key=f"payment:{payment.pk}",
                line_class=LineClass.MISSING_AT_GATEWAY,
                kind=SettlementKind.PAYMENT,
                currency=payment.currency,
                payment_id=payment.pk,
                paytrust_currency=payment.currency,
                paytrust_amount_minor=payment.amount_received_minor,
                occurred_at=payment.succeeded_at,
            )
        )
    our_refunds = (
        Refund.objects.filter(
            payment__gateway_account=account,
            status=RefundStatus.SUCCEEDED,
            succeeded_at__gte=start,
            succeeded_at__lt=end,
        )
        .exclude(pk__in=refunds)
        .order_by("succeeded_at", "id")
    )
    for refund in our_refunds:
        kind = SettlementKind.CHARGEBACK if refund.chargeback else SettlementKind.REFUND
        result.lines.append(
            Classified(
                key=f"{kind}:{refund.pk}",
                line_class=LineClass.MISSING_AT_GATEWAY,
                kind=str(kind),
                currency=refund.currency,
                payment_id=refund.payment_id,
                refund_id=refund.pk,
                paytrust_currency=refund.currency,
                paytrust_amount_minor=refund.amount_minor,
                occurred_at=refund.succeeded_at,
            )
        )


def totals_by_currency(result: DayResult) -> dict[str, dict[str, int]]:
    """Per currency: the matched lines' gross, refunds and fees, the other lines' fees, payouts and adjustments,
    and the net settled for the matched lines (gross − refunds − fees)."""
    totals: dict[str, dict[str, int]] = defaultdict(
        lambda: dict.fromkeys(("gross", "refunds", "fees", "payouts", "adjustments", "net"), 0)
    )
    for line in result.lines:
        if line.line_class != LineClass.MATCHED:
            continue
        figures = totals[line.currency]
        if line.kind == SettlementKind.PAYMENT:
            figures["gross"] += line.gateway_amount_minor
        else:
            figures["refunds"] += line.gateway_amount_minor
        figures["fees"] += line.fee_minor
    for line in result.other:
        figures = totals[line.currency]
        if line.kind == SettlementKind.FEE:
            figures["fees"] += line.amount_minor
        elif line.kind == SettlementKind.PAYOUT:
            figures["payouts"] += line.amount_minor
        else:
            figures["adjustments"] += line.amount_minor
    for figures in totals.values():
        figures["net"] = figures["gross"] - figures["refunds"] - figures["fees"]
    return {currency: dict(figures) for currency, figures in sorted(totals.items())}
