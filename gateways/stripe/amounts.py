"""Amounts in Stripe's minor units, per Stripe's own currency rules (docs/adr/0050-stripe.md).

Stripe's exponent is not always ISO 4217's: IDR is TWO-decimal at Stripe (`amount=100` is 1 IDR) while PayTrust's
IDR has exponent 0; zero-decimal currencies (JPY, VND, …) have none; three-decimal ones (KWD, …) take amounts
ending in 0. Conversions go through `paytrust.money` (Decimal, exact): an amount that does not convert exactly
is refused, never rounded.
"""

from __future__ import annotations

from decimal import Decimal

from paytrust import money
from paytrust.errors import GatewayError, ValidationError

# https://docs.stripe.com/currencies (archived copy cited in shared/reference/gateways-global.md §1).
ZERO_DECIMAL = frozenset(
    {
        "BIF",
        "CLP",
        "DJF",
        "GNF",
        "JPY",
        "KMF",
        "KRW",
        "MGA",
        "PYG",
        "RWF",
        "UGX",
        "VND",
        "VUV",
        "XAF",
        "XOF",
        "XPF",
    }
)
THREE_DECIMAL = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})


def stripe_exponent(currency: str) -> int:
    """How many decimals Stripe's `amount` has for `currency` (IDR: 2, unlike ISO's 0 in PayTrust)."""
    if currency in ZERO_DECIMAL:
        return 0
    if currency in THREE_DECIMAL:
        return 3
    return 2


def to_stripe(amount_minor: int, currency: str) -> int:
    """Our minor units -> Stripe's `amount` (an int). Raises a permanent GatewayError when Stripe cannot take the
    exact amount (a three-decimal amount not ending in 0)."""
    major = money.to_major(amount_minor, currency)
    scaled = major.scaleb(stripe_exponent(currency))
    if scaled != scaled.to_integral_value():
        raise GatewayError(
            f"{money.format_amount(amount_minor, currency)} {currency} cannot be charged exactly through Stripe.",
            code="gateway_amount_unsupported",
            retryable=False,
        )
    if currency in THREE_DECIMAL and int(scaled) % 10:
        raise GatewayError(
            f"Stripe takes {currency} amounts in whole hundredths only (the last decimal must be 0).",
            code="gateway_amount_unsupported",
            retryable=False,
        )
    return int(scaled)


def from_stripe(value: object, currency: str, *, field: str, error: type[Exception]) -> int:
    """A Stripe `amount` (int in Stripe's minor units) -> our minor units, exactly; raises `error` when it is not an
    integer or does not convert exactly (e.g. 150050 IDR at Stripe = 1500.50 IDR: PayTrust has no IDR cents)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise error(f"Stripe's {field} is not an integer amount.")
    currency = currency.upper()
    if currency not in money.CURRENCIES:
        raise error(f"Stripe reports an unknown currency {currency!r}.")
    # Balance transactions are signed (a refund is a debit): the magnitude is converted, the sign kept.
    major = Decimal(abs(value)).scaleb(-stripe_exponent(currency))
    try:
        minor = money.to_minor(major, currency, param=field)
    except ValidationError as exc:
        raise error(f"Stripe's {field} {value} {currency} does not convert exactly: {exc.message}")
    return -minor if value < 0 else minor
