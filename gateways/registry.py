"""Gateway name -> adapter class (an explicit list), and the one way to get a ready adapter for an account.

Adding a gateway: write its package (client.py, gateway.py, webhooks.py) and add its class to `GATEWAYS`. The
adapters import nothing of this module (no registration decorator, no import-time side effects).
"""

from __future__ import annotations

from gateways.base import Gateway
from gateways.midtrans.gateway import MidtransGateway
from gateways.models import GatewayAccount
from gateways.paypal.gateway import PayPalGateway
from gateways.sandbox.gateway import SandboxGateway
from gateways.selectors import gateway_account_credentials
from gateways.stripe.gateway import StripeGateway
from gateways.xendit.gateway import XenditGateway
from paytrust import crypto
from paytrust.errors import ValidationError

GATEWAYS: dict[str, type[Gateway]] = {
    cls.name: cls for cls in (MidtransGateway, PayPalGateway, SandboxGateway, StripeGateway, XenditGateway)
}


def gateway_names() -> list[str]:
    return sorted(GATEWAYS)


def gateway_class(name: str, *, param: str = "gateway") -> type[Gateway]:
    """The adapter class for a gateway name; 400 (param `gateway`) for an unknown one."""
    try:
        return GATEWAYS[name]
    except (KeyError, TypeError):
        raise ValidationError(
            f"Unknown gateway {name!r}; supported: {', '.join(sorted(GATEWAYS))}.",
            code="gateway_invalid",
            param=param,
        )


def gateway_for_account(account: GatewayAccount) -> Gateway:
    """A ready adapter for `account`, with its credentials decrypted (in memory only, never logged).

    Accounts whose credentials PayTrust generates (sandbox signing secret) get them created here on first use
    if missing, e.g. for rows made by fixtures.
    """
    cls = gateway_class(account.gateway)
    credentials = gateway_account_credentials(account=account)
    if not credentials and cls.generated_credentials():
        account = _ensure_generated_credentials(account, cls)
        credentials = gateway_account_credentials(account=account)
    return cls(account=account, credentials=credentials)


def gateway_account_mode_mismatch(account: GatewayAccount) -> str | None:
    """The message when the account's stored credentials belong to the other mode (accounts configured before
    that was checked: a live account with a test key would take test money as live), else None."""
    cls = gateway_class(account.gateway)
    if not cls.credential_mode_prefixes:
        return None
    try:
        cls._check_credential_modes(
            gateway_account_credentials(account=account), mode=account.mode, param="credentials"
        )
    except ValidationError as exc:
        return exc.message
    return None


def _ensure_generated_credentials(account: GatewayAccount, cls: type[Gateway]) -> GatewayAccount:
    """Give an account lacking them the credentials PayTrust generates (sandbox signing secret). Race-safe: a
    conditional UPDATE, so concurrent callers agree on one secret."""
    generated = cls.generated_credentials()
    if generated:
        GatewayAccount.objects.filter(pk=account.pk, credentials_encrypted="").update(
            credentials_encrypted=crypto.encrypt_json(generated)
        )
    account.refresh_from_db(fields=["credentials_encrypted", "credentials_hint"])
    return account
