"""Reads of gateway accounts for other apps (invoices resolve an invoice's gateway and its fee here)."""

from __future__ import annotations

from decimal import Decimal

from gateways.models import GatewayAccount, GatewayFee
from merchants.models import Merchant
from paytrust.errors import ValidationError


def gateway_account_resolve(
    *, merchant: Merchant, mode: str, ref: str, currency: str, param: str = "gateway"
):
    """The merchant's enabled gateway account for `ref` (a gateway name or a `gwa_` id) that takes `currency`.

    Raises a 400 ValidationError (param=`gateway`) when there is none, it is disabled, or it lacks the currency.
    """
    if not isinstance(ref, str) or not ref:
        raise ValidationError("gateway is required.", code="parameter_missing", param=param)
    qs = GatewayAccount.objects.filter(merchant=merchant, mode=mode, enabled=True)
    account = qs.filter(pk=ref).first() if ref.startswith("gwa_") else qs.filter(gateway=ref).first()
    if account is None:
        raise ValidationError(
            f"No enabled gateway account {ref!r} for this merchant in {mode} mode.",
            code="gateway_unavailable",
            param=param,
        )
    if currency not in account.currencies:
        raise ValidationError(
            f"Gateway {account.gateway} does not accept {currency} for this merchant.",
            code="gateway_currency_unsupported",
            param=param,
        )
    return account


def gateway_fee_for(*, account: GatewayAccount, currency: str) -> tuple[Decimal, int]:
    """(percent, fixed minor units) for the account and currency; no fee configured means no fee."""
    fee = GatewayFee.objects.filter(account=account, currency=currency).first()
    if fee is None:
        return Decimal(0), 0
    return fee.percent, fee.fixed_minor
