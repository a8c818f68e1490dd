import pytest
from argon2 import PasswordHasher
from argon2.low_level import Type

from gateways.services import merchant_onboard
from webhooks.outbound import services as webhook_services


@pytest.fixture(autouse=True)
def _cheap_key_hashing(monkeypatch):
    """API keys are not what these tests are about: hash them with a cheap Argon2id so a test does not pay ~1 s
    of key derivation on a shared 2-core machine. The hashing/verification code path is unchanged."""
    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1, type=Type.ID)
    monkeypatch.setattr("apikeys.services.HASHER", cheap)
    monkeypatch.setattr("apikeys.authentication.HASHER", cheap)


@pytest.fixture
def merchant(db):
    """Like the shared fixture, but created through the service so it has its test-mode sandbox account."""
    return merchant_onboard(name="Acme")


@pytest.fixture
def other_merchant(db):
    return merchant_onboard(name="Other Co")


@pytest.fixture
def events(monkeypatch):
    """Outbound events recorded by the invoices services, in order: [(type, data), ...].

    Wraps (does not replace) `webhooks.outbound.services.event_prepare`, through which every event passes
    (`event_record`, and invoice creation's one-statement insert), so the real implementation still runs."""
    recorded: list[tuple[str, dict]] = []
    real = webhook_services.event_prepare

    def spy(*, merchant, mode, type, data):  # noqa: A002
        recorded.append((type, data))
        return real(merchant=merchant, mode=mode, type=type, data=data)

    monkeypatch.setattr(webhook_services, "event_prepare", spy)
    return recorded
