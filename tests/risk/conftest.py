"""Risk fixtures: merchants onboarded with their sandbox account (tests/payments/conftest.py), the fake Xendit
server that counts create calls, and a helper to set a merchant's rules through the service."""

from __future__ import annotations

import pytest

from apikeys.services import Actor
from risk.services import risk_settings_update
from tests.payments.conftest import (  # noqa: F401 - fixtures re-exported
    _fresh_breakers,
    fast_timeout,
    merchant,
    other_merchant,
    xendit_account,
    xendit_fake,
)


@pytest.fixture
def set_rules():
    def apply(target, mode="test", **changes):
        return risk_settings_update(merchant=target, mode=mode, changes=changes, actor=Actor.system())

    return apply
