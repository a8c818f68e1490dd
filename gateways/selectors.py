"""Reads of gateway accounts for other apps (invoices resolve an invoice's gateway and its fee here)."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db.models import QuerySet

from gateways.models import GatewayAccount, GatewayFee
from merchants.models import Merchant
from paytrust import crypto
from paytrust.errors import NotFound, ValidationError


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


def gateway_account_list(
    *, merchant: Merchant, mode: str, gateway: str | None = None, enabled: bool | None = None
) -> QuerySet[GatewayAccount]:
    qs = GatewayAccount.objects.filter(merchant=merchant, mode=mode).prefetch_related("fees")
    if gateway:
        qs = qs.filter(gateway=gateway)
    if enabled is not None:
        qs = qs.filter(enabled=enabled)
    return qs


def gateway_account_get(*, merchant: Merchant, mode: str, account_id: str) -> GatewayAccount:
    """One of the merchant's accounts in this mode; another tenant's or mode's account is a 404."""
    account = (
        GatewayAccount.objects.filter(merchant=merchant, mode=mode, pk=account_id)
        .prefetch_related("fees")
        .first()
    )
    if account is None:
        raise NotFound("No such gateway account.", param="id")
    return account


def gateway_account_for_webhook(*, gateway: str, account_id: str) -> GatewayAccount:
    """The account addressed by an inbound webhook URL /v1/webhooks/{gateway}/{account_id} (no tenant: public URL).

    404 when the id is unknown or belongs to another gateway. Disabled accounts still resolve: late
    notifications for payments made while they were enabled must not be lost.
    """
    account = GatewayAccount.objects.select_related("merchant").filter(pk=account_id, gateway=gateway).first()
    if account is None:
        raise NotFound("No such gateway account.")
    return account


def gateway_account_credentials(*, account: GatewayAccount) -> dict[str, str]:
    """Decrypted credentials (in memory only; never log or render them)."""
    return crypto.decrypt_json(account.credentials_encrypted)


def gateway_account_webhook_url(account: GatewayAccount) -> str:
    return f"{settings.PUBLIC_BASE_URL}/v1/webhooks/{account.gateway}/{account.pk}"
