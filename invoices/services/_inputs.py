"""Validation of what a caller asks for and the amounts computed from it (before anything is written)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from django.db import IntegrityError

from gateways.selectors import gateway_account_resolve, gateway_fee_for
from invoices import calc
from invoices.calc import CustomerIn, InstallmentPlan, LineItemIn
from invoices.models import Installment, Invoice
from merchants.models import Merchant
from paytrust.errors import ValidationError
from paytrust.models import Mode

DEFAULT_EXPIRY = timedelta(hours=24)
MIN_EXPIRY = timedelta(hours=1)
MAX_EXPIRY = timedelta(days=30)
# A client that sends "now + 1 hour" computed a moment before we read the clock must not be refused.
EXPIRY_CLOCK_TOLERANCE = timedelta(seconds=30)
MAX_TOTAL_MINOR = 10**18
DESCRIPTION_MAX = 5000
EXTERNAL_ID_MAX = 255
CUSTOMER_LIMITS = {"name": 255, "email": 254, "phone": 40}


def validate_expiry(expires_at: datetime | None, now: datetime) -> datetime:
    if expires_at is None:
        return now + DEFAULT_EXPIRY
    if not isinstance(expires_at, datetime) or expires_at.tzinfo is None:
        raise ValidationError(
            "expires_at must be an RFC 3339 date-time with a timezone.",
            code="expiry_invalid",
            param="expires_at",
        )
    if expires_at <= now:
        raise ValidationError("expires_at is in the past.", code="expiry_invalid", param="expires_at")
    if expires_at < now + MIN_EXPIRY - EXPIRY_CLOCK_TOLERANCE:
        raise ValidationError(
            "expires_at must be at least 1 hour from now.", code="expiry_invalid", param="expires_at"
        )
    if expires_at > now + MAX_EXPIRY:
        raise ValidationError(
            "expires_at must be at most 30 days from now.", code="expiry_invalid", param="expires_at"
        )
    return expires_at.astimezone(UTC)


def validate_customer(customer: CustomerIn | None) -> CustomerIn:
    customer = customer or CustomerIn()
    for name, limit in CUSTOMER_LIMITS.items():
        value = getattr(customer, name) or ""
        if not isinstance(value, str) or len(value) > limit:
            raise ValidationError(
                f"customer.{name} must be a string of at most {limit} characters.", param=f"customer.{name}"
            )
    return customer


def validate_external_id(external_id: str | None) -> str | None:
    if external_id is None:
        return None
    if not isinstance(external_id, str) or not external_id.strip() or len(external_id) > EXTERNAL_ID_MAX:
        raise ValidationError(f"external_id must be 1–{EXTERNAL_ID_MAX} characters.", param="external_id")
    return external_id


def validate_description(description: str | None) -> str:
    description = description or ""
    if not isinstance(description, str) or len(description) > DESCRIPTION_MAX:
        raise ValidationError(
            f"description allows at most {DESCRIPTION_MAX} characters.", param="description"
        )
    return description


def gateway_ref(mode: str, gateway: str | None) -> str:
    if gateway is None:
        if mode != Mode.TEST:
            raise ValidationError("gateway is required.", code="parameter_missing", param="gateway")
        return "sandbox"  # every merchant has a test-mode sandbox account
    return gateway


def resolve_account(*, merchant: Merchant, mode: str, gateway: str | None, currency: str):
    return gateway_account_resolve(
        merchant=merchant, mode=mode, ref=gateway_ref(mode, gateway), currency=currency
    )


def external_id_conflict(exc: IntegrityError) -> bool:
    return "invoice_external_id_unique" in str(exc)


@dataclass(frozen=True)
class Computed:
    lines: list[calc.LineCalc]
    totals: calc.Totals
    installments: list[calc.InstallmentCalc]
    plan: InstallmentPlan | None
    fee_percent: object
    fee_fixed_minor: int


def compute(
    *,
    account,
    currency: str,
    line_items: Sequence[LineItemIn],
    plan: InstallmentPlan | None,
    expires_at: datetime,
    fee: tuple | None = None,
) -> Computed:
    """`fee`: (percent, fixed minor units) when the caller already read it with the account."""
    lines = calc.parse_line_items(line_items, currency)
    fee_percent, fee_fixed = fee or gateway_fee_for(account=account, currency=currency)
    totals = calc.compute_totals(lines, fee_percent=fee_percent, fee_fixed_minor=fee_fixed)
    if totals.total_minor <= 0:
        raise ValidationError(
            "The invoice total must be greater than zero.", code="amount_invalid", param="line_items"
        )
    if totals.total_minor > MAX_TOTAL_MINOR:
        raise ValidationError("The invoice total is too large.", code="amount_too_large", param="line_items")
    installments = calc.compute_installments(totals, plan, first_due=expires_at.astimezone(UTC).date())
    return Computed(lines, totals, installments, plan, fee_percent, fee_fixed)


def apply_totals(invoice: Invoice, computed: Computed) -> None:
    totals = computed.totals
    invoice.subtotal_minor = totals.subtotal_minor
    invoice.tax_total_minor = totals.tax_total_minor
    invoice.service_fee_minor = totals.service_fee_minor
    invoice.total_minor = totals.total_minor
    invoice.fee_percent = computed.fee_percent
    invoice.fee_fixed_minor = computed.fee_fixed_minor
    invoice.installment_plan = computed.plan.as_json() if computed.plan else None


def lapse_time(expires_at: datetime, installments: Sequence[Installment], *, received: bool) -> datetime:
    """expires_at; for an installment plan that has received money, the end of the last due date if later."""
    if not received or len(installments) < 2:
        return expires_at
    last_due = max(inst.due_date for inst in installments)
    end_of_last_due = datetime.combine(last_due + timedelta(days=1), time.min, tzinfo=UTC)
    return max(expires_at, end_of_last_due)
