"""Money: the only module that converts between API decimal strings and integer minor units, and the only one
that rounds. Amounts are `int` minor units everywhere else; rates are `Decimal`. No float ever touches money.

Rounding is ROUND_HALF_UP to the minor unit, done once per computed amount.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, localcontext

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
# Decimal precision for intermediate products (amount × rate): far above any amount's digits, so exact.
_WIDE_PRECISION = 60


_AMOUNT_RE = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
# Above this many integer digits a value cannot be a valid amount or rate; refuse before any arithmetic.
_MAX_INTEGER_DIGITS = 19


def get_currency(code: object, *, param: str = "currency") -> Currency:
    """The enabled currency with ISO code `code`, else a 400 (`currency_invalid`, `param`)."""
    if not isinstance(code, str) or code not in ENABLED_CURRENCIES:
        raise ValidationError(
            f"Unknown or unsupported currency {code!r}; supported: {', '.join(ENABLED_CURRENCIES)}.",
            code="currency_invalid",
            param=param,
        )
    return CURRENCIES[code]


def _currency(currency: str | Currency) -> Currency:
    if isinstance(currency, Currency):
        return currency
    try:
        return CURRENCIES[currency]
    except (KeyError, TypeError):
        raise ValidationError(f"Unknown currency {currency!r}.", code="currency_invalid", param="currency")


def _to_decimal(value: object, *, param: str | None) -> Decimal:
    """Exact Decimal from an API value: a plain decimal string ("150000", "16.99", "-1"), an int or a Decimal.

    Strings are strict: no exponent, no underscores, no "+", no leading/trailing dot, no NaN/Infinity.
    Decimal values (JSON numbers) are taken exactly; nothing here rounds.
    """
    if isinstance(value, bool) or value is None:
        raise ValidationError("Expected a decimal string.", code="amount_invalid", param=param)
    if isinstance(value, float):
        # The API's JSON parser turns numbers into Decimal (paytrust.parsers); a float here is a programming error.
        raise TypeError("floats are not accepted for money; pass a str, int or Decimal")
    if isinstance(value, int):
        dec = Decimal(value)
    elif isinstance(value, Decimal):
        dec = value
    elif isinstance(value, str):
        text = value.strip()
        if len(text) > 40 or not _AMOUNT_RE.fullmatch(text):
            raise ValidationError(
                f"{value[:40]!r} is not a decimal number.", code="amount_invalid", param=param
            )
        dec = Decimal(text)
    else:
        raise ValidationError("Expected a decimal string.", code="amount_invalid", param=param)
    if not dec.is_finite():
        raise ValidationError("Amount must be a finite number.", code="amount_invalid", param=param)
    if dec and dec.adjusted() >= _MAX_INTEGER_DIGITS:
        raise ValidationError("Amount is too large.", code="amount_too_large", param=param)
    return dec


def _scaled_exact(dec: Decimal, places: int) -> int | None:
    """dec × 10**places as an exact int, or None when that is not an integer. Pure integer arithmetic, so no
    Decimal context precision can round a long input into a "valid" one. `dec` is finite, |dec| < 10**19."""
    _sign, digits, exponent = dec.as_tuple()
    coefficient = int("".join(map(str, digits)) or "0")
    if coefficient == 0:
        return 0
    shift = int(exponent) + places
    if shift >= 0:
        value = coefficient * 10**shift
    else:
        if -shift > len(digits):
            return None  # a non-zero coefficient below the smallest unit
        value, remainder = divmod(coefficient, 10**-shift)
        if remainder:
            return None
    return -value if dec < 0 else value


def to_minor(
    value: object, currency: str | Currency, *, param: str | None = None, allow_zero: bool = True
) -> int:
    """Parse an API amount (decimal string, int, or Decimal) in major units into integer minor units, exactly.

    Rejects (400, `param`): non-numbers, negatives, more significant decimals than the currency allows
    (IDR "10.5", USD "1.234"; trailing zeros such as USD "1.50" or IDR "10.0" are exact and accepted), values
    above MAX_MINOR, and zero when `allow_zero` is False.
    """
    cur = _currency(currency)
    dec = _to_decimal(value, param=param)
    if dec < 0:
        raise ValidationError("Amount must not be negative.", code="amount_invalid", param=param)
    minor = _scaled_exact(dec, cur.exponent)
    if minor is None:
        raise ValidationError(
            f"{cur.code} amounts allow at most {cur.exponent} decimal places.",
            code="amount_precision",
            param=param,
        )
    if minor > MAX_MINOR:
        raise ValidationError("Amount is too large.", code="amount_too_large", param=param)
    if not allow_zero and minor == 0:
        raise ValidationError("Amount must be greater than zero.", code="amount_invalid", param=param)
    return minor


def format_amount(minor: int, currency: str | Currency) -> str:
    """The API representation: a decimal string with exactly the currency's decimals ("150000", "16.99").

    Integer arithmetic only, so it is exact for any int (including sums and negative adjustments)."""
    cur = _currency(currency)
    minor = int(minor)
    sign = "-" if minor < 0 else ""
    if cur.exponent == 0:
        return f"{sign}{abs(minor)}"
    major, fraction = divmod(abs(minor), 10**cur.exponent)
    return f"{sign}{major}.{fraction:0{cur.exponent}d}"


def to_major(minor: int, currency: str | Currency) -> Decimal:
    """Exact Decimal in major units with the currency's decimals (e.g. for XML or gateway payloads)."""
    return Decimal(format_amount(minor, currency))


def format_display(minor: int, currency: str | Currency) -> str:
    """Human display for the admin: thousands separators and the code, e.g. "IDR 446,599" or "USD 16.99"."""
    cur = _currency(currency)
    return f"{cur.code} {to_major(minor, cur):,}"


def format_percent(rate: Decimal) -> str:
    """A rate (a fraction, "0.0825") as people read it: "8.25 %", "11 %", "0 %". Exact: no rounding."""
    with localcontext() as ctx:
        ctx.prec = _WIDE_PRECISION
        percent = (Decimal(rate) * 100).normalize()
    return f"{percent:f} %"


def parse_rate(value: object, *, param: str | None = None, max_value: Decimal = Decimal(1)) -> Decimal:
    """A fraction such as a tax rate or fee percent ("0.11" = 11 %): 0..max_value with at most 4 decimals.

    Returns the rate quantized to 4 places (Decimal("0.1100")). 400 `rate_invalid` with `param` otherwise."""
    try:
        dec = _to_decimal(value, param=param)
    except ValidationError as exc:
        raise ValidationError(f"Rate: {exc.message}", code="rate_invalid", param=param)
    if dec < 0 or dec > max_value:
        raise ValidationError(f"Rate must be between 0 and {max_value}.", code="rate_invalid", param=param)
    scaled = _scaled_exact(dec, RATE_MAX_DECIMALS)
    if scaled is None:
        raise ValidationError(
            f"Rate allows at most {RATE_MAX_DECIMALS} decimal places.", code="rate_invalid", param=param
        )
    return Decimal(scaled).scaleb(-RATE_MAX_DECIMALS)


def format_rate(rate: Decimal) -> str:
    """Canonical rate string: trailing zeros stripped but at least one decimal ("0.11", "0.0", "1.0")."""
    text = format(rate.normalize(), "f")
    return text if "." in text else f"{text}.0"


def round_half_up(value: Decimal) -> int:
    """Round a Decimal amount of minor units to an int, half up (ties away from zero). The one rounding
    primitive. Computed with enough precision that the input is never rounded before this step."""
    with localcontext() as ctx:
        ctx.prec = _WIDE_PRECISION
        return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def apply_rate(minor: int, rate: Decimal) -> int:
    """round(minor × rate), half up: line tax, percentage fee. The product is exact before rounding."""
    with localcontext() as ctx:
        ctx.prec = _WIDE_PRECISION
        return round_half_up(Decimal(int(minor)) * rate)


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
