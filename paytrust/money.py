"""Money: the only module that converts between API decimal strings and integer minor units, and the only one
that rounds. Amounts are `int` minor units everywhere else; rates are `Decimal`. No float ever touches money.

Rounding is ROUND_HALF_UP to the minor unit, done once per computed amount.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, InvalidOperation

from paytrust.errors import ValidationError


@dataclass(frozen=True)
class Currency:
    code: str
    exponent: int
    name: str

    @property
    def quantum(self) -> Decimal:
        return Decimal(1).scaleb(-self.exponent)


# ISO 4217 minor-unit exponents. Launch currencies first; the rest are ready to enable.
CURRENCIES: dict[str, Currency] = {
    c.code: c
    for c in (
        Currency("IDR", 0, "Indonesian rupiah"),
        Currency("MYR", 2, "Malaysian ringgit"),
        Currency("USD", 2, "US dollar"),
        Currency("SGD", 2, "Singapore dollar"),
        Currency("THB", 2, "Thai baht"),
        Currency("PHP", 2, "Philippine peso"),
        Currency("VND", 0, "Vietnamese dong"),
        Currency("EUR", 2, "Euro"),
        Currency("JPY", 0, "Japanese yen"),
        Currency("KWD", 3, "Kuwaiti dinar"),
    )
}
# Currencies merchants can invoice in today. Adding one is a row above plus its code here.
ENABLED_CURRENCIES: tuple[str, ...] = ("IDR", "MYR", "USD")
CURRENCY_CHOICES = [(code, code) for code in ENABLED_CURRENCIES]

# Largest amount we accept in minor units (fits BIGINT with head-room for sums of 100 lines).
MAX_MINOR = 10**15
RATE_MAX_DECIMALS = 4


def get_currency(code: object, *, param: str = "currency") -> Currency:
    if not isinstance(code, str) or code not in ENABLED_CURRENCIES:
        raise ValidationError(
            f"Unknown or unsupported currency {code!r}; supported: {', '.join(ENABLED_CURRENCIES)}.",
            code="currency_invalid",
            param=param,
        )
    return CURRENCIES[code]


def _to_decimal(value: object, *, param: str | None) -> Decimal:
    if isinstance(value, bool) or value is None:
        raise ValidationError("Expected a decimal string.", code="amount_invalid", param=param)
    if isinstance(value, float):
        # The API's JSON parser turns numbers into Decimal (paytrust.parsers); a float here is a programming error.
        raise TypeError("floats are not accepted for money; pass a str, int or Decimal")
    if isinstance(value, int | Decimal):
        dec = Decimal(value)
    elif isinstance(value, str):
        text = value.strip()
        if not text or len(text) > 40:
            raise ValidationError("Expected a decimal string.", code="amount_invalid", param=param)
        try:
            dec = Decimal(text)
        except InvalidOperation:
            raise ValidationError(f"{value!r} is not a decimal number.", code="amount_invalid", param=param)
    else:
        raise ValidationError("Expected a decimal string.", code="amount_invalid", param=param)
    if not dec.is_finite():
        raise ValidationError("Amount must be a finite number.", code="amount_invalid", param=param)
    return dec


def to_minor(
    value: object, currency: str | Currency, *, param: str | None = None, allow_zero: bool = True
) -> int:
    """Parse an API amount (decimal string, int, or Decimal) in major units into integer minor units.

    Rejects negatives, more decimals than the currency allows, and absurdly large values.
    """
    cur = currency if isinstance(currency, Currency) else CURRENCIES[currency]
    dec = _to_decimal(value, param=param)
    if dec < 0:
        raise ValidationError("Amount must not be negative.", code="amount_invalid", param=param)
    scaled = dec.scaleb(cur.exponent)
    if scaled != scaled.to_integral_value():
        raise ValidationError(
            f"{cur.code} amounts allow at most {cur.exponent} decimal places.",
            code="amount_precision",
            param=param,
        )
    minor = int(scaled)
    if minor > MAX_MINOR:
        raise ValidationError("Amount is too large.", code="amount_too_large", param=param)
    if not allow_zero and minor == 0:
        raise ValidationError("Amount must be greater than zero.", code="amount_invalid", param=param)
    return minor


def to_major(minor: int, currency: str | Currency) -> Decimal:
    """Exact Decimal in major units (e.g. for XML or gateway payloads)."""
    cur = currency if isinstance(currency, Currency) else CURRENCIES[currency]
    return Decimal(int(minor)).scaleb(-cur.exponent).quantize(cur.quantum)


def format_amount(minor: int, currency: str | Currency) -> str:
    """The API representation: a decimal string with exactly the currency's decimals ("150000", "16.99")."""
    return str(to_major(minor, currency))


def format_display(minor: int, currency: str | Currency) -> str:
    """Human display for the admin: thousands separators and the code, e.g. "IDR 446,599" or "USD 16.99"."""
    cur = currency if isinstance(currency, Currency) else CURRENCIES[currency]
    return f"{cur.code} {to_major(minor, cur):,}"


def parse_rate(value: object, *, param: str | None = None, max_value: Decimal = Decimal(1)) -> Decimal:
    """A fraction such as a tax rate or fee percent ("0.11" = 11 %): 0..max_value with at most 4 decimals."""
    dec = _to_decimal(value, param=param)
    if dec < 0 or dec > max_value:
        raise ValidationError(f"Rate must be between 0 and {max_value}.", code="rate_invalid", param=param)
    if dec != dec.quantize(Decimal(1).scaleb(-RATE_MAX_DECIMALS), rounding=ROUND_DOWN):
        raise ValidationError(
            f"Rate allows at most {RATE_MAX_DECIMALS} decimal places.", code="rate_invalid", param=param
        )
    return dec.quantize(Decimal(1).scaleb(-RATE_MAX_DECIMALS))


def format_rate(rate: Decimal) -> str:
    """Canonical rate string: trailing zeros stripped but at least one decimal ("0.11", "0.0", "1.0")."""
    text = format(rate.normalize(), "f")
    return text if "." in text else f"{text}.0"


def round_half_up(value: Decimal) -> int:
    """Round a Decimal amount of minor units to an int, half up. The one rounding primitive."""
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def apply_rate(minor: int, rate: Decimal) -> int:
    """round(minor × rate), half up: line tax, percentage fee."""
    return round_half_up(Decimal(minor) * rate)


def split_equal(total: int, parts: int) -> list[int]:
    """Split into `parts` equal minor-unit amounts; the last takes the remainder."""
    if parts < 1:
        raise ValueError("parts must be >= 1")
    base = total // parts
    return [base] * (parts - 1) + [total - base * (parts - 1)]


def proportional_shares(amount_total: int, weights: list[int]) -> list[int]:
    """Shares of `amount_total` proportional to `weights`: floor for all but the last, the last takes the rest.

    Sum of the result == amount_total exactly. With non-negative inputs no share is negative.
    """
    weight_sum = sum(weights)
    if not weights:
        return []
    if weight_sum == 0:
        return [0] * (len(weights) - 1) + [amount_total]
    shares = [amount_total * w // weight_sum for w in weights[:-1]]
    shares.append(amount_total - sum(shares))
    return shares
