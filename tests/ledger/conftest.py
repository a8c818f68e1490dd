"""Ledger fixtures: merchants through the real service (with their sandbox account), API keys with a cheap
Argon2id (keys are not what these tests are about), and money moved the way production moves it."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher
from argon2.low_level import Type

from gateways.services import merchant_onboard
from tests.factories import make_api_key


@pytest.fixture(autouse=True)
def _cheap_key_hashing(monkeypatch):
    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1, type=Type.ID)
    monkeypatch.setattr("apikeys.services.HASHER", cheap)
    monkeypatch.setattr("apikeys.authentication.HASHER", cheap)


@pytest.fixture
def merchant(db):
    return merchant_onboard(name="Toko Buku")


@pytest.fixture
def other_merchant(db):
    return merchant_onboard(name="Other Co")


@pytest.fixture
def api(merchant, client_for):
    return client_for(make_api_key(merchant)[1])
