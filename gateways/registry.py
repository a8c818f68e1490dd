"""Gateway name -> adapter class, and the one way to get a ready adapter for an account."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateways.base import Gateway
from paytrust.errors import ValidationError

if TYPE_CHECKING:
    from gateways.models import GatewayAccount

_GATEWAYS: dict[str, type[Gateway]] = {}
_loaded = False


def register(cls: type[Gateway]) -> type[Gateway]:
    """Class decorator: make an adapter available under `cls.name`."""
    _GATEWAYS[cls.name] = cls
    return cls


def _load() -> None:
    # A flag, not "is the dict empty": importing one adapter module first registers that one class only.
    global _loaded
    if _loaded:
        return
    # Imported lazily (they import Django models); each module registers its class.
    import gateways.midtrans.gateway  # noqa: F401
    import gateways.sandbox.gateway  # noqa: F401
    import gateways.xendit.gateway  # noqa: F401

    _loaded = True


def gateway_names() -> list[str]:
    _load()
    return sorted(_GATEWAYS)


def gateway_class(name: str, *, param: str = "gateway") -> type[Gateway]:
    """The adapter class for a gateway name; 400 (param `gateway`) for an unknown one."""
    _load()
    try:
        return _GATEWAYS[name]
    except (KeyError, TypeError):
        raise ValidationError(
            f"Unknown gateway {name!r}; supported: {', '.join(sorted(_GATEWAYS))}.",
            code="gateway_invalid",
            param=param,
        )


def gateway_for_account(account: GatewayAccount) -> Gateway:
    """A ready adapter for `account`, with its credentials decrypted (in memory only, never logged).

    Accounts whose credentials PayTrust generates (sandbox signing secret) get them created here on first use
    if missing, e.g. for rows made by fixtures.
    """
    from gateways.selectors import gateway_account_credentials
    from gateways.services import gateway_account_ensure_generated_credentials

    cls = gateway_class(account.gateway)
    credentials = gateway_account_credentials(account=account)
    if not credentials and cls.generated_credentials():
        account = gateway_account_ensure_generated_credentials(account=account)
        credentials = gateway_account_credentials(account=account)
    return cls(account=account, credentials=credentials)
