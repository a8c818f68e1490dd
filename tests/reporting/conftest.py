"""Reporting fixtures: merchants through the real service, a Xendit account (fees for IDR and USD) talking to the
local fake Xendit of tests/fakes, and the merchant's sandbox account with an IDR fee."""

from __future__ import annotations

from datetime import timedelta

import pytest
from argon2 import PasswordHasher
from argon2.low_level import Type

from gateways import services as gateway_services
from gateways.models import GatewayAccount
from gateways.services import merchant_onboard
from tests.factories import make_api_key
from tests.payments.conftest import (  # noqa: F401 - fixtures re-exported
    XENDIT_CALLBACK_TOKEN,
    XENDIT_SECRET,
    _fresh_breakers,
    xendit_fake,
)
from tests.reporting.helpers import END, START, invoice, pay, record_refund


@pytest.fixture(autouse=True)
def _cheap_key_hashing(monkeypatch):
    """API keys are not what these tests are about: a cheap Argon2id keeps key creation fast on a shared machine
    (the hashing/verification code path is unchanged)."""
    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1, type=Type.ID)
    monkeypatch.setattr("apikeys.services.HASHER", cheap)
    monkeypatch.setattr("apikeys.authentication.HASHER", cheap)


@pytest.fixture
def merchant(db):
    return merchant_onboard(name="Acme")


@pytest.fixture
def other_merchant(db):
    return merchant_onboard(name="Other Co")


XENDIT_KEY_ENVIRONMENT = {"test": "development", "live": "production"}  # a key must be of the account's mode


def xendit_account_for(merchant, mode: str = "test") -> GatewayAccount:
    """xendit, IDR 2.9 % + 2000, USD 3 % + 0.30."""
    return gateway_services.gateway_account_create(
        merchant=merchant,
        mode=mode,
        gateway="xendit",
        credentials={
            "secret_key": XENDIT_SECRET.replace("xnd_development_", f"xnd_{XENDIT_KEY_ENVIRONMENT[mode]}_"),
            "callback_token": XENDIT_CALLBACK_TOKEN,
        },
        currencies=["IDR", "USD"],
        fees=[
            {"currency": "IDR", "percent": "0.029", "fixed": "2000"},
            {"currency": "USD", "percent": "0.03", "fixed": "0.30"},
        ],
    )


@pytest.fixture
def xendit_account(merchant, xendit_fake):  # noqa: F811
    return xendit_account_for(merchant)


@pytest.fixture
def sandbox_account(merchant):
    """The merchant's test-mode sandbox account, IDR fee 1 % + 500."""
    account = GatewayAccount.objects.get(merchant=merchant, mode="test", gateway="sandbox")
    return gateway_services.gateway_account_update(
        account=account, fees=[{"currency": "IDR", "percent": "0.01", "fixed": "500"}]
    )


@pytest.fixture
def api(merchant, client_for):
    return client_for(make_api_key(merchant)[1])


@pytest.fixture
def payments(merchant, xendit_account, sandbox_account, other_merchant):
    """The period's payments (and a few just outside it, and another merchant's).

    IDR, xendit (2.9 % + 2000):
      A  2 × 150000 @ 11 % + 99999 @ 0 %: subtotal 399999, tax 33000, fee round(11599.971) + 2000 = 13600,
         total 446599, paid in full; 46599 refunded (paid out) the next day, inside the period.
      B  1000000 @ 11 %: tax 110000, fee 29000 + 2000 = 31000, total 1141000 in 2 installments of 570500, each
         tax share 55000 and fee share 15500.
         B1 pays 200000 of installment 1: tax floor(55000 × 200000 / 570500) = 19281,
            fee floor(15500 × 200000 / 570500) = 5433, taxable 200000 − 19281 − 5433 = 175286.
         B2 pays 1041000: completes installment 1 (370500: tax 55000 − 19281 = 35719, fee 15500 − 5433 = 10067),
            all of installment 2 (570500: 55000, 15500), 100000 overpaid (carries nothing):
            tax 90719, fee 25567, taxable 941000 − 90719 − 25567 = 824714.
    IDR, sandbox (1 % + 500):
      C  50000 @ 11 %: tax 5500, fee 500 + 500 = 1000, total 56500, paid in full at exactly `start`.
    USD, xendit (3 % + 0.30):
      D  100.00 @ 10 % + 20.00 @ 0 %: subtotal 12000 cents, tax 1000, fee 360 + 30 = 390, total 13390; paid.
      E  50.00 @ 10 %: tax 500, fee 150 + 30 = 180, total 5680; E1 pays 2000 one second before `end`:
         tax floor(500 × 2000 / 5680) = 176, fee floor(180 × 2000 / 5680) = 63, taxable 1761.
    Outside: F (IDR sandbox) one second before `start`, G (IDR xendit) at exactly `end`, and another merchant's
    IDR sandbox payment inside the period.
    """
    a = invoice(
        merchant,
        xendit_account,
        currency="IDR",
        lines=[("Widget", 2, "150000", "0.11"), ("Gadget", 1, "99999", "0")],
    )
    assert a.total_minor == 446599
    paid_a = pay(a, amount_minor=None, at=START + timedelta(days=1, hours=10))
    record_refund(paid_a, 46599, at=START + timedelta(days=2, hours=9))

    b = invoice(
        merchant, xendit_account, currency="IDR", lines=[("Course", 1, "1000000", "0.11")], installments=2
    )
    assert b.total_minor == 1141000
    pay(b, amount_minor=200000, at=START + timedelta(days=2))
    pay(b, amount_minor=1041000, at=START + timedelta(days=3))

    c = invoice(merchant, sandbox_account, currency="IDR", lines=[("Tea", 1, "50000", "0.11")])
    assert c.total_minor == 56500
    pay(c, amount_minor=None, at=START)

    d = invoice(
        merchant,
        xendit_account,
        currency="USD",
        lines=[("Book", 1, "100.00", "0.1"), ("Map", 1, "20.00", "0")],
    )
    assert d.total_minor == 13390
    pay(d, amount_minor=None, at=START + timedelta(days=4))

    e = invoice(merchant, xendit_account, currency="USD", lines=[("Pen", 1, "50.00", "0.1")])
    assert e.total_minor == 5680
    pay(e, amount_minor=2000, at=END - timedelta(seconds=1))

    f = invoice(merchant, sandbox_account, currency="IDR", lines=[("Early", 1, "7000", "0")])
    pay(f, amount_minor=None, at=START - timedelta(seconds=1))
    g = invoice(merchant, xendit_account, currency="IDR", lines=[("Late", 1, "9000", "0")])
    pay(g, amount_minor=None, at=END)

    other_sandbox = GatewayAccount.objects.get(merchant=other_merchant, mode="test", gateway="sandbox")
    h = invoice(other_merchant, other_sandbox, currency="IDR", lines=[("Theirs", 1, "123456", "0.11")])
    pay(h, amount_minor=None, at=START + timedelta(days=1))
