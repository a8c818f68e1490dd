"""The sandbox gateway's settlement export (reconciliation, docs/adr/0054): what it says it moved on a UTC day,
built from its own rows, so the whole reconciliation loop runs on `make run` without a real gateway.

- a PAYMENT line per checkout paid (or captured) that day: the amount collected, the sandbox's fee
  (FEE_RATE of it, rounded half up: deterministic), reference `sbxtxn_<checkout id>`;
- a REFUND line per refund that succeeded that day, reference `sbxref_<n>` (what its refund API answers), with our
  ref_ id; refunds cost no fee;
- a PAYOUT line per currency at the end of the day: the day's payments less fees and refunds, paid to the
  merchant's bank (none when that is not positive). Like Stripe's balance: fees are taken from the balance, the
  payout empties it.

Discrepancies for a demo or a test are injected per day (`sandbox_settlement_inject`, `manage.py
sandbox_settlement --inject …`), stored as SandboxSettlementAdjustment rows: a settled payment PayTrust never heard
of, a payment settled for another amount, a payment left out. The payout follows what the export shows.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.db import IntegrityError, transaction

from gateways.base import SettlementKind, SettlementLine
from gateways.models import (
    GatewayAccount,
    SandboxCheckoutSession,
    SandboxCheckoutStatus,
    SandboxRefund,
    SandboxRefundStatus,
    SandboxSettlementAdjustment,
)
from gateways.models import SandboxSettlementAdjustmentKind as Kind
from paytrust import money
from paytrust.errors import ValidationError
from paytrust.ids import new_id

FEE_RATE = Decimal("0.029")  # 2.9 % of each payment collected


def sandbox_fee(amount_minor: int) -> int:
    return money.apply_rate(amount_minor, FEE_RATE)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return start, start + timedelta(days=1)


def sandbox_settlement_lines(*, account: GatewayAccount, day: date) -> list[SettlementLine]:
    """The export for `day`: payments, refunds, then one payout per currency (ordered, deterministic)."""
    start, end = day_bounds(day)
    adjustments = list(SandboxSettlementAdjustment.objects.filter(account=account, day=day))
    dropped = {a.payment_id for a in adjustments if a.kind == Kind.DROP}
    altered = {a.payment_id: a.amount_minor for a in adjustments if a.kind == Kind.ALTER_AMOUNT}
    lines: list[SettlementLine] = []
    sessions = SandboxCheckoutSession.objects.filter(
        account=account,
        status=SandboxCheckoutStatus.SUCCEEDED,
        completed_at__gte=start,
        completed_at__lt=end,
        amount_paid_minor__gt=0,
    ).order_by("completed_at", "id")
    for session in sessions:
        if session.payment_id in dropped:
            continue
        amount = altered.get(session.payment_id) or session.amount_paid_minor
        lines.append(
            SettlementLine(
                kind=SettlementKind.PAYMENT,
                reference=f"sbxtxn_{session.pk}",
                amount_minor=amount,
                currency=session.currency,
                occurred_at=session.completed_at,
                payment_id=session.payment_id,
                gateway_reference=session.pk,
                fee_minor=sandbox_fee(amount),
            )
        )
    for adjustment in adjustments:
        if adjustment.kind == Kind.UNKNOWN_PAYMENT:
            lines.append(
                SettlementLine(
                    kind=SettlementKind.PAYMENT,
                    reference=f"sbxtxn_adj{adjustment.pk}",
                    amount_minor=adjustment.amount_minor,
                    currency=adjustment.currency,
                    occurred_at=end - timedelta(minutes=1),
                    payment_id=adjustment.payment_id,
                    fee_minor=sandbox_fee(adjustment.amount_minor),
                )
            )
    refunds = (
        SandboxRefund.objects.filter(
            session__account=account,
            status=SandboxRefundStatus.SUCCEEDED,
            completed_at__gte=start,
            completed_at__lt=end,
        )
        .select_related("session")
        .order_by("completed_at", "id")
    )
    for refund in refunds:
        lines.append(
            SettlementLine(
                kind=SettlementKind.REFUND,
                reference=f"sbxref_{refund.pk}",
                amount_minor=refund.amount_minor,
                currency=refund.session.currency,
                occurred_at=refund.completed_at,
                payment_id=refund.session.payment_id,
                gateway_reference=refund.session_id,
                refund_id=refund.refund_id,
            )
        )
    return lines + _payouts(account, day, lines, at=end - timedelta(seconds=1))


def _payouts(account: GatewayAccount, day: date, lines: list[SettlementLine], *, at: datetime):
    net: dict[str, int] = defaultdict(int)
    for line in lines:
        sign = 1 if line.kind == SettlementKind.PAYMENT else -1
        net[line.currency] += sign * line.amount_minor - line.fee_minor
    return [
        SettlementLine(
            kind=SettlementKind.PAYOUT,
            reference=f"sbxpo_{account.pk}_{day:%Y%m%d}_{currency}",
            amount_minor=amount,
            currency=currency,
            occurred_at=at,
        )
        for currency, amount in sorted(net.items())
        if amount > 0
    ]


def sandbox_settlement_inject(
    *,
    account: GatewayAccount,
    day: date,
    kind: str,
    payment_id: str = "",
    amount_minor: int | None = None,
    currency: str = "",
) -> SandboxSettlementAdjustment:
    """Make the sandbox's export for `day` differ from its own rows (idempotent per account, day, kind, payment).

    - `unknown_payment`: a settled payment of `amount_minor` `currency` under a payment id PayTrust does not know
      (`payment_id`, default a fresh pay_ id);
    - `alter_amount`: the payment `payment_id`, settled that day, shown for `amount_minor` instead;
    - `drop`: the payment `payment_id`, settled that day, left out of the export.
    Raises ValidationError (400) for a kind or payment that does not fit."""
    if account.gateway != "sandbox":
        raise ValidationError("Only a sandbox account's settlement can be altered.", param="account")
    if kind not in Kind.values:
        raise ValidationError(f"kind must be one of {', '.join(Kind.values)}.", param="kind")
    if kind == Kind.UNKNOWN_PAYMENT:
        currency = currency or (account.currencies[0] if account.currencies else "IDR")
        money.get_currency(currency)
        if not amount_minor or amount_minor <= 0:
            raise ValidationError("An unknown payment needs a positive amount.", param="amount")
        payment_id = payment_id or new_id("pay")
    else:
        start, end = day_bounds(day)
        session = SandboxCheckoutSession.objects.filter(
            account=account,
            payment_id=payment_id,
            status=SandboxCheckoutStatus.SUCCEEDED,
            completed_at__gte=start,
            completed_at__lt=end,
        ).first()
        if session is None:
            raise ValidationError(
                f"The sandbox settled no payment {payment_id or '(none given)'} on {day}.", param="payment"
            )
        currency = session.currency
        if kind == Kind.ALTER_AMOUNT and (not amount_minor or amount_minor <= 0):
            raise ValidationError("An altered amount must be positive.", param="amount")
        if kind == Kind.DROP:
            amount_minor = None
    try:
        with transaction.atomic():
            adjustment, _ = SandboxSettlementAdjustment.objects.get_or_create(
                account=account,
                day=day,
                kind=kind,
                payment_id=payment_id,
                defaults={"amount_minor": amount_minor, "currency": currency},
            )
    except IntegrityError:  # a concurrent identical injection won
        adjustment = SandboxSettlementAdjustment.objects.get(
            account=account, day=day, kind=kind, payment_id=payment_id
        )
    return adjustment
