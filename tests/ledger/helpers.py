"""Money moved the way production moves it: sandbox payments (tests.reporting.helpers.pay) and refunds or
chargebacks reported by the gateway (payment_apply_gateway_status with a cumulative RefundReport)."""

from __future__ import annotations

from django.utils import timezone

from gateways import base as gw
from gateways import services as gateway_services
from gateways.models import GatewayAccount
from payments.models import Payment
from payments.services import GatewayStatusUpdate, payment_apply_gateway_status


def sandbox_with_fee(merchant) -> GatewayAccount:
    """The merchant's test sandbox account with an IDR fee of 1 % of the subtotal + 500."""
    account = GatewayAccount.objects.get(merchant=merchant, mode="test", gateway="sandbox")
    return gateway_services.gateway_account_update(
        account=account, fees=[{"currency": "IDR", "percent": "0.01", "fixed": "500"}]
    )


def refund(payment: Payment, total_minor: int, *, chargeback: bool = False) -> None:
    """The gateway reports `total_minor` refunded on the payment so far (a chargeback when `chargeback`)."""
    payment.refresh_from_db()
    outcome = payment_apply_gateway_status(
        payment_id=payment.id,
        gateway_account_id=payment.gateway_account_id,
        update=GatewayStatusUpdate(
            status=gw.GatewayOutcome.PARTIALLY_REFUNDED,
            amount_minor=payment.amount_received_minor,
            currency=payment.currency,
            occurred_at=timezone.now(),
            refund=gw.RefundReport(total_minor=total_minor, chargeback=chargeback),
        ),
        source="test",
    )
    assert outcome.changed, outcome.note
