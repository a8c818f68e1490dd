"""Reconciliation fixtures: a merchant through the real onboarding service (with its sandbox account), the fake
Xendit of tests/fakes with a Xendit account on it."""

from __future__ import annotations

import pytest

from gateways.services import merchant_onboard
from tests.gateways.conftest import (  # noqa: F401 - fixtures re-exported
    XENDIT_CALLBACK_TOKEN,
    XENDIT_SECRET,
    _fresh_breakers,
    fast_timeout,
)
from tests.payments.conftest import xendit_fake  # noqa: F401 - re-exported: a fake whose create can hang


@pytest.fixture
def merchant(db):
    return merchant_onboard(name="Toko Rekon")


@pytest.fixture
def xendit_account(merchant, xendit_fake):  # noqa: F811
    from gateways import services

    return services.gateway_account_create(
        merchant=merchant,
        mode="test",
        gateway="xendit",
        credentials={"secret_key": XENDIT_SECRET, "callback_token": XENDIT_CALLBACK_TOKEN},
        currencies=["IDR", "USD"],
    )
