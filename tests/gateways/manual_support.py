"""Helpers of the manual bank-transfer tests: an account with bank details, a pending manual payment."""

from __future__ import annotations

from gateways import services
from gateways.models import ManualTransfer
from payments.services import payment_initiate
from tests.payments.factories import make_invoice

BANK_DETAILS = {
    "bank_name": "Bank Central Asia",
    "account_name": "PT Acme Indonesia",
    "account_number": "8830123456",
    "swift_code": "CENAIDJA",
    "instructions": {"IDR": "Transfer from any Indonesian bank; BI-FAST arrives within minutes."},
}


def manual_account(merchant, *, currencies=("IDR", "USD"), mode="test"):
    return services.gateway_account_create(
        merchant=merchant, mode=mode, gateway="manual", currencies=list(currencies), bank_details=BANK_DETAILS
    )


def manual_payment(merchant, *, amount="150000", currency="IDR", account=None, **invoice):
    """A pending manual payment and its instructions (ManualTransfer)."""
    account = account or manual_account(merchant)
    inv = make_invoice(merchant, gateway=account.id, amount=amount, currency=currency, **invoice)
    payment = payment_initiate(merchant=merchant, mode=account.mode, invoice_id=inv.id).payment
    assert payment.status == "pending", (payment.status, payment.failure_message)
    return payment, ManualTransfer.objects.get(payment_id=payment.id)
