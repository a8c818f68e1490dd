"""gateway_account_with_fee: the account and its fee for one currency in one pre-built query, with the same
answers and errors as gateway_account_resolve + gateway_fee_for."""

from decimal import Decimal

import pytest

from gateways.selectors import gateway_account_resolve, gateway_account_with_fee, gateway_fee_for
from paytrust.errors import ValidationError
from tests.factories import GatewayAccountFactory, GatewayFeeFactory, MerchantFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def merchant():
    return MerchantFactory()


def _both(merchant, ref, currency="IDR", mode="test"):
    fused = gateway_account_with_fee(merchant=merchant, mode=mode, ref=ref, currency=currency)
    account = gateway_account_resolve(merchant=merchant, mode=mode, ref=ref, currency=currency)
    return fused, account, gateway_fee_for(account=account, currency=currency)


def test_returns_the_account_and_the_fee_of_the_asked_currency(merchant):
    account = GatewayAccountFactory(merchant=merchant, gateway="xendit", currencies=["IDR", "USD"])
    GatewayFeeFactory(account=account, currency="IDR", percent="0.029", fixed_minor=2000)
    GatewayFeeFactory(account=account, currency="USD", percent="0.0350", fixed_minor=30)
    for ref in ("xendit", account.id):
        fused, resolved, fee = _both(merchant, ref)
        assert fused.account == resolved == account
        assert (fused.fee_percent, fused.fee_fixed_minor) == fee == (Decimal("0.0290"), 2000)
    fused = gateway_account_with_fee(merchant=merchant, mode="test", ref="xendit", currency="USD")
    assert (fused.fee_percent, fused.fee_fixed_minor) == (Decimal("0.0350"), 30)
    # Loaded like an ORM instance: converters ran (array, JSON), and it is a saved row.
    assert fused.account.currencies == ["IDR", "USD"] and fused.account._state.adding is False
    assert fused.account.merchant_id == merchant.id


def test_no_fee_for_the_currency_means_no_fee(merchant):
    account = GatewayAccountFactory(merchant=merchant, gateway="xendit", currencies=["IDR", "USD"])
    GatewayFeeFactory(account=account, currency="USD", percent="0.0350", fixed_minor=30)
    fused, _, fee = _both(merchant, "xendit")
    assert (fused.fee_percent, fused.fee_fixed_minor) == fee == (Decimal(0), 0)


@pytest.mark.parametrize(
    ("setup", "ref", "currency", "code"),
    [
        ("disabled", "xendit", "IDR", "gateway_unavailable"),
        ("other_mode", "xendit", "IDR", "gateway_unavailable"),
        ("other_merchant", "xendit", "IDR", "gateway_unavailable"),
        ("enabled", "midtrans", "IDR", "gateway_unavailable"),
        ("enabled", "gwa_doesnotexist", "IDR", "gateway_unavailable"),
        ("enabled", "xendit", "USD", "gateway_currency_unsupported"),
        ("enabled", "", "IDR", "parameter_missing"),
    ],
)
def test_refusals_match_gateway_account_resolve(merchant, setup, ref, currency, code):
    owner = MerchantFactory() if setup == "other_merchant" else merchant
    GatewayAccountFactory(
        merchant=owner,
        gateway="xendit",
        currencies=["IDR"],
        enabled=setup != "disabled",
        mode="live" if setup == "other_mode" else "test",
    )
    for call in (gateway_account_with_fee, gateway_account_resolve):
        with pytest.raises(ValidationError) as raised:
            call(merchant=merchant, mode="test", ref=ref, currency=currency)
        assert (raised.value.code, raised.value.param) == (code, "gateway")


def test_one_query(merchant, django_assert_num_queries):
    account = GatewayAccountFactory(merchant=merchant, gateway="xendit", currencies=["IDR"])
    GatewayFeeFactory(account=account, currency="IDR", percent="0.029", fixed_minor=2000)
    with django_assert_num_queries(1):
        gateway_account_with_fee(merchant=merchant, mode="test", ref="xendit", currency="IDR")
