"""Invoice arithmetic: parsing API values into minor units, line taxes, totals, service fee and installment
splits. Pure functions (no database); all conversion and rounding is delegated to `paytrust.money`.

Formulas (SPEC §4, §5):
    line subtotal = quantity × unit_price
    line tax      = round_half_up(line subtotal × tax_rate)
    subtotal      = Σ line subtotals;  tax_total = Σ line taxes
    service_fee   = round_half_up(subtotal × fee_percent) + fee_fixed
    total         = subtotal + tax_total + service_fee
    installments  = equal split (last takes the remainder) or custom amounts summing exactly to total
    tax/fee share = floor(figure × amount / total) for all but the last; the last takes the rest
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from django.utils import timezone

from invoices.models import MAX_INSTALLMENTS, MAX_LINE_ITEMS, MIN_INSTALLMENTS
from paytrust import money
from paytrust.errors import ValidationError

# Installment due dates may lie at most this far ahead (an unbounded date such as 9999-12-31 overflows the
# plan's lapse time, and no instalment plan runs for decades).
MAX_DUE_DATE_DAYS = 5 * 365

DEFAULT_INSTALLMENT_INTERVAL = timedelta(days=30)
LINE_NAME_MAX = 255
MAX_QUANTITY = 10**9


# ---- inputs (what callers pass to the services; API values are major-unit strings, ints or Decimals) ----


@dataclass(frozen=True)
class LineItemIn:
    name: str
    quantity: int
    unit_price: object
    tax_rate: object = "0"


@dataclass(frozen=True)
class InstallmentsIn:
    count: int
    amounts: Sequence[object] | None = None
    due_dates: Sequence[date] | None = None


@dataclass(frozen=True)
class CustomerIn:
    name: str = ""
    email: str = ""
    phone: str = ""


# ---- computed values ----


@dataclass(frozen=True)
class LineCalc:
    position: int
    name: str
    quantity: int
    unit_price_minor: int
    tax_rate: Decimal
    subtotal_minor: int
    tax_minor: int


@dataclass(frozen=True)
class Totals:
    subtotal_minor: int
    tax_total_minor: int
    service_fee_minor: int
    total_minor: int


@dataclass(frozen=True)
class InstallmentPlan:
    """A validated plan in minor units: `amounts`/`due_dates` are None when the defaults apply."""

    count: int
    amounts: tuple[int, ...] | None = None
    due_dates: tuple[date, ...] | None = None

    def as_json(self) -> dict:
        return {
            "count": self.count,
            "amounts": list(self.amounts) if self.amounts is not None else None,
            "due_dates": [d.isoformat() for d in self.due_dates] if self.due_dates is not None else None,
        }

    @classmethod
    def from_json(cls, data: dict | None) -> InstallmentPlan | None:
        if not data:
            return None
        return cls(
            count=data["count"],
            amounts=tuple(data["amounts"]) if data.get("amounts") is not None else None,
            due_dates=tuple(date.fromisoformat(d) for d in data["due_dates"])
            if data.get("due_dates") is not None
            else None,
        )


@dataclass(frozen=True)
class InstallmentCalc:
    number: int
    amount_minor: int
    tax_share_minor: int
    fee_share_minor: int
    due_date: date


@dataclass(frozen=True)
class InvoiceCalc:
    lines: list[LineCalc]
    totals: Totals
    installments: list[InstallmentCalc] = field(default_factory=list)


# ---- parsing (400 with the exact `param` on bad input) ----


def parse_line_items(items: Sequence[LineItemIn], currency: str) -> list[LineCalc]:
    if not isinstance(items, list | tuple) or not items:
        raise ValidationError(
            "At least one line item is required.", code="parameter_missing", param="line_items"
        )
    if len(items) > MAX_LINE_ITEMS:
        raise ValidationError(
            f"At most {MAX_LINE_ITEMS} line items are allowed.",
            code="too_many_line_items",
            param="line_items",
        )
    lines = []
    for position, item in enumerate(items):
        param = f"line_items.{position}"
        name = (item.name or "").strip() if isinstance(item.name, str) else ""
        if not name or len(name) > LINE_NAME_MAX:
            raise ValidationError(
                f"name must be 1–{LINE_NAME_MAX} characters.", code="parameter_invalid", param=f"{param}.name"
            )
        quantity = item.quantity
        if isinstance(quantity, bool) or not isinstance(quantity, int) or not 1 <= quantity <= MAX_QUANTITY:
            raise ValidationError(
                f"quantity must be an integer from 1 to {MAX_QUANTITY}.",
                code="quantity_invalid",
                param=f"{param}.quantity",
            )
        unit_price = money.to_minor(item.unit_price, currency, param=f"{param}.unit_price")
        tax_rate = money.parse_rate(item.tax_rate, param=f"{param}.tax_rate")
        subtotal = quantity * unit_price
        if subtotal > money.MAX_MINOR:
            raise ValidationError(
                "quantity × unit_price is too large.", code="amount_too_large", param=f"{param}.quantity"
            )
        lines.append(
            LineCalc(
                position=position,
                name=name,
                quantity=quantity,
                unit_price_minor=unit_price,
                tax_rate=tax_rate,
                subtotal_minor=subtotal,
                tax_minor=money.apply_rate(subtotal, tax_rate),
            )
        )
    return lines


def parse_installment_plan(spec: InstallmentsIn | None, currency: str) -> InstallmentPlan | None:
    """Shape and per-value checks of the installments object (sums are checked against the total later)."""
    if spec is None:
        return None
    count = spec.count
    if (
        isinstance(count, bool)
        or not isinstance(count, int)
        or not MIN_INSTALLMENTS <= count <= MAX_INSTALLMENTS
    ):
        raise ValidationError(
            f"installments.count must be an integer from {MIN_INSTALLMENTS} to {MAX_INSTALLMENTS}.",
            code="installments_invalid",
            param="installments.count",
        )
    amounts = None
    if spec.amounts is not None:
        if len(spec.amounts) != count:
            raise ValidationError(
                f"installments.amounts must have exactly {count} entries.",
                code="installments_invalid",
                param="installments.amounts",
            )
        amounts = tuple(
            money.to_minor(value, currency, param=f"installments.amounts.{index}", allow_zero=False)
            for index, value in enumerate(spec.amounts)
        )
    due_dates = None
    if spec.due_dates is not None:
        if len(spec.due_dates) != count:
            raise ValidationError(
                f"installments.due_dates must have exactly {count} entries.",
                code="installments_invalid",
                param="installments.due_dates",
            )
        for index in range(1, count):
            if spec.due_dates[index] <= spec.due_dates[index - 1]:
                raise ValidationError(
                    "installments.due_dates must be strictly increasing.",
                    code="installments_invalid",
                    param=f"installments.due_dates.{index}",
                )
        latest = timezone.now().date() + timedelta(days=MAX_DUE_DATE_DAYS)
        for index, due in enumerate(spec.due_dates):
            if due > latest:
                raise ValidationError(
                    f"installments.due_dates must lie within {MAX_DUE_DATE_DAYS // 365} years from today.",
                    code="installments_invalid",
                    param=f"installments.due_dates.{index}",
                )
        due_dates = tuple(spec.due_dates)
    return InstallmentPlan(count=count, amounts=amounts, due_dates=due_dates)


# ---- arithmetic ----


def compute_totals(lines: Sequence[LineCalc], *, fee_percent: Decimal, fee_fixed_minor: int) -> Totals:
    subtotal = sum(line.subtotal_minor for line in lines)
    tax_total = sum(line.tax_minor for line in lines)
    service_fee = money.apply_rate(subtotal, fee_percent) + fee_fixed_minor
    return Totals(
        subtotal_minor=subtotal,
        tax_total_minor=tax_total,
        service_fee_minor=service_fee,
        total_minor=subtotal + tax_total + service_fee,
    )


def default_due_dates(first: date, count: int) -> list[date]:
    return [first + DEFAULT_INSTALLMENT_INTERVAL * index for index in range(count)]


def compute_installments(
    totals: Totals, plan: InstallmentPlan | None, *, first_due: date
) -> list[InstallmentCalc]:
    """The installment rows for an invoice. No plan -> one installment carrying the whole invoice."""
    total = totals.total_minor
    if plan is None:
        return [
            InstallmentCalc(
                number=1,
                amount_minor=total,
                tax_share_minor=totals.tax_total_minor,
                fee_share_minor=totals.service_fee_minor,
                due_date=first_due,
            )
        ]
    if plan.amounts is None:
        if total < plan.count:
            raise ValidationError(
                f"A total of {total} minor units cannot be split into {plan.count} installments of at least one "
                "minor unit each.",
                code="installments_invalid",
                param="installments.count",
            )
        amounts = money.split_equal(total, plan.count)
    else:
        amounts = list(plan.amounts)
        if sum(amounts) != total:
            raise ValidationError(
                "installments.amounts must sum exactly to the invoice total.",
                code="installments_sum_mismatch",
                param="installments.amounts",
            )
    due_dates = (
        list(plan.due_dates) if plan.due_dates is not None else default_due_dates(first_due, plan.count)
    )
    tax_shares = money.proportional_shares(totals.tax_total_minor, amounts)
    fee_shares = money.proportional_shares(totals.service_fee_minor, amounts)
    return [
        InstallmentCalc(
            number=index + 1,
            amount_minor=amounts[index],
            tax_share_minor=tax_shares[index],
            fee_share_minor=fee_shares[index],
            due_date=due_dates[index],
        )
        for index in range(plan.count)
    ]


# ---- what one payment carries (reporting facts, SPEC §10) ----


@dataclass(frozen=True)
class RateBase:
    """The invoice's lines at one tax rate: Σ line subtotals and Σ line taxes."""

    tax_rate: Decimal
    subtotal_minor: int
    tax_minor: int


@dataclass(frozen=True)
class InstallmentShares:
    number: int
    amount_minor: int
    tax_share_minor: int
    fee_share_minor: int


@dataclass(frozen=True)
class RateCarried:
    tax_rate: Decimal
    taxable_minor: int
    tax_minor: int


@dataclass(frozen=True)
class Carried:
    """The tax, service fee and taxable base (the rest of the applied money) one payment carries, and the split
    of its taxable base and tax across the invoice's tax rates (rows where both are zero are left out)."""

    tax_minor: int
    fee_minor: int
    taxable_minor: int
    by_rate: tuple[RateCarried, ...]


def rate_bases(lines: Sequence[tuple[Decimal, int, int]]) -> list[RateBase]:
    """(tax_rate, subtotal, tax) per line -> one RateBase per distinct rate, lowest rate first."""
    grouped: dict[Decimal, list[int]] = {}
    for rate, subtotal, tax in lines:
        sums = grouped.setdefault(Decimal(rate), [0, 0])
        sums[0] += subtotal
        sums[1] += tax
    return [RateBase(rate, sums[0], sums[1]) for rate, sums in sorted(grouped.items())]


def _piece_share(share: int, amount: int, earlier_takes: Sequence[int], take: int) -> int:
    """What a piece `take` of an installment carries of one of its shares (tax or fee): the proportional floor,
    except the piece that completes the installment, which takes what earlier pieces left."""
    if sum(earlier_takes) + take == amount:
        return share - sum(share * earlier // amount for earlier in earlier_takes)
    return share * take // amount


def carried_by_payment(
    *,
    installments: Sequence[InstallmentShares],
    rates: Sequence[RateBase],
    earlier_allocations: Sequence[Sequence[dict]],
    allocations: Sequence[dict],
    earlier_tax_minor: int,
    earlier_taxable_minor: int,
) -> Carried:
    """The figures a payment carries (SPEC §5, §10), from its allocation per installment.

    Per piece allocated to an installment: a piece that completes the installment carries what remains of the
    installment's tax and fee shares after the earlier pieces; any other piece floor(share × piece / amount).
    Overpaid money carries nothing. The taxable base is the rest: applied − tax − fee. So, once an invoice is
    fully paid, its payments' tax add up to its tax_total, their fees to its service_fee and their taxable bases
    to its subtotal, exactly.

    Per rate, cumulatively over the invoice's payments in order: after this payment the invoice's carried tax c
    is split over the rates by `proportional_shares(c, line taxes per rate)` (floor, the last rate takes the
    rest), and this payment's part is the difference from the split before it (the same for the taxable base
    with the line subtotals per rate). A payment's rows therefore add up exactly to its tax / taxable base, and a
    fully paid invoice's rows per rate equal its line taxes and subtotals at that rate. (The split is not
    monotone: a rate may get -1 minor unit on a payment when the floors of the others step up together.)

    `earlier_allocations`: the allocation lists of the invoice's payments applied before this one.
    """
    by_number = {inst.number: inst for inst in installments}
    earlier_takes: dict[int, list[int]] = {}
    for allocation_list in earlier_allocations:
        for piece in allocation_list:
            earlier_takes.setdefault(piece["number"], []).append(piece["amount"])
    tax = fee = applied = 0
    for piece in allocations:
        inst = by_number[piece["number"]]
        before = earlier_takes.get(inst.number, [])
        take = piece["amount"]
        tax += _piece_share(inst.tax_share_minor, inst.amount_minor, before, take)
        fee += _piece_share(inst.fee_share_minor, inst.amount_minor, before, take)
        applied += take
        earlier_takes.setdefault(inst.number, []).append(take)
    taxable = applied - tax - fee

    def split(before: int, after: int, weights: list[int]) -> list[int]:
        if not weights:
            return []
        return [
            a - b
            for a, b in zip(
                money.proportional_shares(after, weights),
                money.proportional_shares(before, weights),
                strict=True,
            )
        ]

    tax_parts = split(earlier_tax_minor, earlier_tax_minor + tax, [r.tax_minor for r in rates])
    taxable_parts = split(
        earlier_taxable_minor, earlier_taxable_minor + taxable, [r.subtotal_minor for r in rates]
    )
    by_rate = tuple(
        RateCarried(rate.tax_rate, taxable_part, tax_part)
        for rate, taxable_part, tax_part in zip(rates, taxable_parts, tax_parts, strict=True)
        if taxable_part or tax_part
    )
    return Carried(tax_minor=tax, fee_minor=fee, taxable_minor=taxable, by_rate=by_rate)
