import os

import pytest
from rest_framework.test import APIClient

from apikeys.authentication import verified_cache
from tests.factories import MerchantFactory, make_api_key
from tests.shared import missing_message


def pytest_sessionstart(session):
    """Stop at once, with the reason, rather than fail hundreds of tests one by one."""
    message = missing_message()
    if message:
        pytest.exit(message, returncode=4)


# Every test starts with an empty key cache, so the whole suite verifies hundreds of keys a minute from 127.0.0.1:
# the per-address verification budget is off here (servers started by tests inherit the environment) and switched
# on by the tests of it (tests/apikeys/test_verification_budget.py).
os.environ["API_KEY_FAILED_VERIFICATIONS_PER_IP_PER_MINUTE"] = "0"


@pytest.fixture(autouse=True)
def _clear_key_cache(settings):
    settings.API_KEY_FAILED_VERIFICATIONS_PER_IP_PER_MINUTE = 0
    verified_cache.clear()
    yield
    verified_cache.clear()


@pytest.fixture
def no_jobs(transactional_db):
    """No procrastinate job before the test and none left behind (a transaction=True test commits its jobs)."""
    from django.db import connection

    def truncate():
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE procrastinate_jobs, procrastinate_events CASCADE")

    truncate()
    yield
    truncate()


@pytest.fixture
def merchant(db):
    return MerchantFactory(name="Acme")


@pytest.fixture
def api_key(merchant):
    """(ApiKey, plaintext) for `merchant`, test mode, no scopes."""
    return make_api_key(merchant)


def _client_for(plaintext: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return client


@pytest.fixture
def client_for():
    return _client_for


@pytest.fixture
def api(api_key):
    """An APIClient authenticated as `merchant` in test mode."""
    return _client_for(api_key[1])


@pytest.fixture
def admin_api(merchant):
    _, plaintext = make_api_key(merchant, scopes=["admin"], name="admin key")
    return _client_for(plaintext)
