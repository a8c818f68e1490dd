import pytest

from gateways import services
from gateways.breaker import reset_breakers
from gateways.registry import gateway_for_account
from tests.fakes.midtrans import FakeMidtrans
from tests.fakes.xendit import FakeXendit

XENDIT_SECRET = "xnd_development_P4qDfOss0OCpl8RtKrROHjaQYNCk9dN5lSfk+R1l9Wbe+rSiCwZ3jw=="
XENDIT_CALLBACK_TOKEN = "cbtok_8d3f0e6a5b9c4e21a7f1c2d3e4f5a6b7"
MIDTRANS_SERVER_KEY = "SB-Mid-server-TESTKEY0123456789abcdef"
MIDTRANS_CLIENT_KEY = "SB-Mid-client-TESTKEY0123456789abcdef"


@pytest.fixture(autouse=True)
def _fresh_breakers():
    reset_breakers()
    yield
    reset_breakers()


@pytest.fixture
def fast_timeout(settings):
    settings.GATEWAY_TIMEOUT_SECONDS = 0.5
    return settings


@pytest.fixture
def xendit_fake(settings):
    with FakeXendit(secret_key=XENDIT_SECRET) as fake:
        settings.XENDIT_API_BASE = fake.base_url
        yield fake


@pytest.fixture
def midtrans_fake(settings):
    with FakeMidtrans(server_key=MIDTRANS_SERVER_KEY) as fake:
        settings.MIDTRANS_API_BASE = fake.base_url
        settings.MIDTRANS_SNAP_BASE = fake.snap_base
        yield fake


@pytest.fixture
def xendit_account(merchant):
    return services.gateway_account_create(
        merchant=merchant,
        mode="test",
        gateway="xendit",
        credentials={"secret_key": XENDIT_SECRET, "callback_token": XENDIT_CALLBACK_TOKEN},
        currencies=["IDR", "USD"],
    )


@pytest.fixture
def midtrans_account(merchant):
    return services.gateway_account_create(
        merchant=merchant,
        mode="test",
        gateway="midtrans",
        credentials={"server_key": MIDTRANS_SERVER_KEY, "client_key": MIDTRANS_CLIENT_KEY},
        currencies=["IDR"],
    )


@pytest.fixture
def sandbox_account(merchant):
    return services.gateway_account_ensure_sandbox(merchant=merchant)


@pytest.fixture
def xendit(xendit_account, xendit_fake):
    return gateway_for_account(xendit_account)


@pytest.fixture
def midtrans(midtrans_account, midtrans_fake):
    return gateway_for_account(midtrans_account)
