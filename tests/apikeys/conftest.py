import pytest

from tests.apikeys.servers import redis_url  # noqa: F401 - fixture
from tests.factories import MerchantFactory, make_api_key


@pytest.fixture
def admin_key(merchant):
    """(ApiKey, plaintext): test-mode admin-scope key of `merchant`."""
    return make_api_key(merchant, scopes=["admin"], name="admin key")


@pytest.fixture
def live_admin_key(merchant):
    return make_api_key(merchant, mode="live", scopes=["admin"], name="live admin key")


@pytest.fixture
def other_merchant(db):
    return MerchantFactory(name="Other")
