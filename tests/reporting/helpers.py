"""Succeeded payments made the way production makes them: `payments.services.payment_initiate` (sandbox, or the
local fake Xendit), then the gateway's success applied by `payment_apply_gateway_status` (the webhook/
reconciliation code path), which applies the money to the invoice and writes the reporting facts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.utils import timezone

from gateways import base as gw
from invoices.calc import CustomerIn, InstallmentsIn, LineItemIn
from invoices.services import invoice_create
from payments.models import Payment, Refund
from payments.services import GatewayStatusUpdate, payment_apply_gateway_status, payment_initiate

# The report period of the scenario (tests.reporting.conftest.payments): seven whole UTC days, ten days ago.
TODAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
START = TODAY - timedelta(days=10)
END = START + timedelta(days=7)
URL = "/v1/reports/financial"


def q(start=START, end=END, **extra) -> dict:
    return {"start": start.isoformat(), "end": end.isoformat(), **extra}


def invoice(merchant, account, *, currency: str, lines, installments: int | None = None, mode: str = "test"):
    return invoice_create(
        merchant=merchant,
        mode=mode,
        currency=currency,
        gateway=account.id,
        line_items=[LineItemIn(*line) for line in lines],
        installments=InstallmentsIn(count=installments) if installments else None,
        customer=CustomerIn("Budi", "budi@example.com", "+628123456789"),
        expires_at=timezone.now() + timedelta(days=2),
    )


def pay(inv, *, amount_minor: int | None, at: datetime) -> Payment:
    """Initiate the next payment of `inv` and have the gateway report it succeeded at `at` with `amount_minor`
    received (default: what was asked)."""
    payment = payment_initiate(merchant=inv.merchant, mode=inv.mode, invoice_id=inv.id).payment
    outcome = payment_apply_gateway_status(
        payment_id=payment.id,
        gateway_account_id=payment.gateway_account_id,
        update=GatewayStatusUpdate(
            status=gw.GatewayOutcome.SUCCEEDED,
            amount_minor=payment.amount_minor if amount_minor is None else amount_minor,
            currency=payment.currency,
            occurred_at=at,
        ),
        source="test",
    )
    assert outcome.changed and outcome.payment.status == "succeeded"
    return outcome.payment


def record_refund(
    payment: Payment, amount_minor: int, *, at: datetime, reference: str = "", chargeback: bool = False
) -> Refund:
    """The gateway reports one refund (or chargeback) of `payment`, paid out at `at`: the production code path
    (`payment_apply_gateway_status` -> `gateway_refunds.refund_record`: Refund row, ledger movements)."""
    reference = reference or f"rfd-{payment.pk}-{amount_minor}-{at.timestamp():.0f}"
    payment.refresh_from_db()
    remaining = payment.amount_received_minor - payment.amount_refunded_minor
    outcome = payment_apply_gateway_status(
        payment_id=payment.id,
        gateway_account_id=payment.gateway_account_id,
        update=GatewayStatusUpdate(
            status=gw.GatewayOutcome.REFUNDED
            if amount_minor == remaining
            else gw.GatewayOutcome.PARTIALLY_REFUNDED,
            amount_minor=amount_minor,
            currency=payment.currency,
            occurred_at=at,
            refund=gw.RefundReport(reference=reference, amount_minor=amount_minor, chargeback=chargeback),
        ),
        source="test",
    )
    assert outcome.changed, outcome.note
    return Refund.objects.get(payment=payment, gateway_refund_reference=reference)
