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

from invoices.models import MAX_INSTALLMENTS, MAX_LINE_ITEMS, MIN_INSTALLMENTS
from paytrust import money
from paytrust.errors import ValidationError

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
