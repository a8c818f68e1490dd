"""Writes for gateway accounts."""

from __future__ import annotations

from gateways.models import GatewayAccount, GatewayName
from merchants.models import Merchant
from paytrust.models import Mode
from paytrust.money import ENABLED_CURRENCIES


def gateway_account_ensure_sandbox(*, merchant: Merchant) -> GatewayAccount:
    """Every merchant has an enabled `sandbox` account in test mode (no credentials). Idempotent."""
    account = GatewayAccount.objects.filter(
        merchant=merchant, mode=Mode.TEST, gateway=GatewayName.SANDBOX, enabled=True
    ).first()
    if account is None:
        account = GatewayAccount.objects.create(
            merchant=merchant,
            mode=Mode.TEST,
            gateway=GatewayName.SANDBOX,
            currencies=list(ENABLED_CURRENCIES),
        )
    return account
