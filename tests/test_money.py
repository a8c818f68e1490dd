"""paytrust.money: exact conversion between API strings and minor units, half-up rounding, splits."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paytrust import money
from paytrust.errors import ValidationError

ALL_CODES = sorted(money.CURRENCIES)


# ---- round trips (every currency in the table, enabled or not) ----


@given(code=st.sampled_from(ALL_CODES), minor=st.integers(min_value=0, max_value=money.MAX_MINOR))
def test_minor_to_api_string_and_back_is_exact(code, minor):
    text = money.format_amount(minor, code)
    assert money.to_minor(text, code) == minor


@given(
    code=st.sampled_from(ALL_CODES),
    major=st.integers(min_value=0, max_value=10**11),  # × 10^3 (KWD) stays within MAX_MINOR
    data=st.data(),
)
def test_api_string_to_minor_and_back_is_exact(code, major, data):
    exponent = money.CURRENCIES[code].exponent
    places = data.draw(st.integers(min_value=0, max_value=exponent))
    fraction = data.draw(st.integers(min_value=0, max_value=10**places - 1)) if places else None
    text = f"{major}.{fraction:0{places}d}" if places else str(major)
    minor = money.to_minor(text, code)
    # The canonical form has exactly the currency's decimals and the same value.
    formatted = money.format_amount(minor, code)
    assert Decimal(formatted) == Decimal(text)
    assert (len(formatted.split(".")[1]) if "." in formatted else 0) == exponent
    assert money.to_minor(formatted, code) == minor


@given(code=st.sampled_from(ALL_CODES), minor=st.integers(min_value=0, max_value=money.MAX_MINOR))
def test_json_number_decimal_parses_like_the_string(code, minor):
    text = money.format_amount(minor, code)
    assert money.to_minor(Decimal(text), code) == minor


@given(
    code=st.sampled_from(ALL_CODES), minor=st.integers(min_value=0, max_value=10**12), extra=st.integers(1, 9)
)
def test_one_decimal_too_many_is_rejected_for_every_currency(code, minor, extra):
    text = money.format_amount(minor, code)
    text = f"{text}{extra}" if "." in text else f"{text}.{extra}"
    with pytest.raises(ValidationError) as err:
        money.to_minor(text, code, param="line_items.0.unit_price")
    assert err.value.code == "amount_precision" and err.value.param == "line_items.0.unit_price"


# ---- worked examples ----


@pytest.mark.parametrize(
    "value,code,expected",
    [
        ("150000", "IDR", 150000),
        ("16.99", "USD", 1699),
        ("16.9", "USD", 1690),
        ("0.01", "MYR", 1),
        ("1.50", "USD", 150),
        ("10.0", "IDR", 10),  # trailing zeros are exact
        ("1.234", "KWD", 1234),
        (5, "USD", 500),
        (Decimal("16.99"), "USD", 1699),
    ],
)
def test_to_minor_examples(value, code, expected):
    assert money.to_minor(value, code) == expected


@pytest.mark.parametrize(
    "value,code,error_code",
    [
        ("10.5", "IDR", "amount_precision"),
        ("1.234", "USD", "amount_precision"),
        ("-1", "USD", "amount_invalid"),
        ("abc", "USD", "amount_invalid"),
        ("1e3", "USD", "amount_invalid"),
        ("1_000", "IDR", "amount_invalid"),
        ("+5", "IDR", "amount_invalid"),
        (".5", "USD", "amount_invalid"),
        ("5.", "USD", "amount_invalid"),
        ("NaN", "USD", "amount_invalid"),
        ("", "USD", "amount_invalid"),
        (None, "USD", "amount_invalid"),
        (True, "USD", "amount_invalid"),
        ("99999999999999999999", "IDR", "amount_too_large"),
        (Decimal("Infinity"), "USD", "amount_invalid"),
        (Decimal("1E+400"), "USD", "amount_too_large"),
    ],
)
def test_to_minor_rejects(value, code, error_code):
    with pytest.raises(ValidationError) as err:
        money.to_minor(value, code, param="amount")
    assert err.value.code == error_code and err.value.param == "amount" and err.value.status_code == 400


def test_long_input_is_not_rounded_into_a_valid_amount():
    # 29 significant digits: a Decimal context with 28 digits of precision would round this to 100 minor units.
    with pytest.raises(ValidationError):
        money.to_minor("1.0000000000000000000000000001", "USD")
    with pytest.raises(ValidationError):
        money.to_minor(Decimal("1E-999999999"), "USD")


def test_floats_are_a_programming_error():
    with pytest.raises(TypeError):
        money.to_minor(1.5, "USD")


def test_unknown_and_disabled_currencies_are_refused_by_get_currency():
    with pytest.raises(ValidationError) as err:
        money.get_currency("XXX")
    assert err.value.param == "currency"
    with pytest.raises(ValidationError):
        money.get_currency("EUR")  # in the table, not enabled yet
    assert money.get_currency("MYR").exponent == 2


def test_format_amount_and_display():
    assert money.format_amount(446599, "IDR") == "446599"
    assert money.format_amount(1699, "USD") == "16.99"
    assert money.format_amount(5, "MYR") == "0.05"
    assert money.format_amount(1234, "KWD") == "1.234"
    assert money.format_amount(-150, "USD") == "-1.50"
    assert money.format_display(446599, "IDR") == "IDR 446,599"
    assert money.format_display(123456789, "USD") == "USD 1,234,567.89"
    assert money.format_display(277500, "IDR") == "IDR 277,500"
    assert money.format_display(20297, "USD") == "USD 202.97"
    assert money.format_display(7, "USD") == "USD 0.07"


@pytest.mark.parametrize(
    "rate,expected",
    [
        ("0.0825", "8.25 %"),
        ("0.1100", "11 %"),
        ("0", "0 %"),
        ("0.0290", "2.9 %"),
        ("1.0000", "100 %"),
        ("0.0001", "0.01 %"),
    ],
)
def test_format_percent_reads_a_rate_as_people_do(rate, expected):
    assert money.format_percent(Decimal(rate)) == expected


# ---- rates and rounding ----


@pytest.mark.parametrize(
    "value,expected", [("0.11", "0.1100"), ("1", "1.0000"), ("0", "0.0000"), ("0.0001", "0.0001")]
)
def test_parse_rate_examples(value, expected):
    assert money.parse_rate(value) == Decimal(expected)


@pytest.mark.parametrize("value", ["1.01", "0.12345", "-0.1", "abc", "1e-2", None])
def test_parse_rate_rejects(value):
    with pytest.raises(ValidationError) as err:
        money.parse_rate(value, param="line_items.0.tax_rate")
    assert err.value.code == "rate_invalid" and err.value.param == "line_items.0.tax_rate"


def test_rate_with_trailing_zeros_beyond_four_places_is_exact_and_accepted():
    assert money.parse_rate("0.110000") == Decimal("0.11")


@pytest.mark.parametrize(
    "minor,rate,expected",
    [
        (300000, "0.11", 33000),
        (399999, "0.029", 11600),  # 11599.971
        (150, "0.05", 8),  # 7.5 -> 8 (half up)
        (250, "0.01", 3),  # 2.5 -> 3
        (249, "0.01", 2),  # 2.49 -> 2
        (1999, "0.0825", 165),  # 164.9175 -> 165
        (0, "0.5", 0),
    ],
)
def test_apply_rate_rounds_half_up(minor, rate, expected):
    assert money.apply_rate(minor, Decimal(rate)) == expected


def test_round_half_up_on_exact_halves():
    assert money.round_half_up(Decimal("0.5")) == 1
    assert money.round_half_up(Decimal("1.5")) == 2
    assert money.round_half_up(Decimal("2.5")) == 3  # not banker's rounding
    assert money.round_half_up(Decimal("2.4999999999999999999999999999999")) == 2


@given(total=st.integers(min_value=0, max_value=10**15), parts=st.integers(min_value=1, max_value=12))
def test_split_equal_sums_exactly_and_only_the_last_differs(total, parts):
    amounts = money.split_equal(total, parts)
    assert sum(amounts) == total and len(amounts) == parts
    assert len(set(amounts[:-1])) <= 1 and amounts[-1] >= amounts[0]


@given(
    amount=st.integers(min_value=0, max_value=10**15),
    weights=st.lists(st.integers(min_value=1, max_value=10**15), min_size=1, max_size=12),
)
def test_proportional_shares_sum_exactly_and_are_never_negative(amount, weights):
    shares = money.proportional_shares(amount, weights)
    assert sum(shares) == amount and all(share >= 0 for share in shares)
