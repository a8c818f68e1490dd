"""PayPal test fixtures (import them into the test module): the fake PayPal (tests/fakes/paypal.py), a test-mode
PayPal gateway account, its adapter, and helpers to deliver the fake's signed events to our webhook URL."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from gateways import services
from gateways.registry import gateway_for_account
from tests.fakes.paypal import FakePayPal

PAYPAL_CLIENT_ID = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-sandbox-client"
PAYPAL_CLIENT_SECRET = "EFgHiJkLmNoPqRsTuVwXyZ0123456789-sandbox-secret"
PAYPAL_WEBHOOK_ID = "96605875FF6516633"


@pytest.fixture
def paypal_fake(settings):
    cache.clear()  # no token of another test's fake
    with FakePayPal(
        client_id=PAYPAL_CLIENT_ID, client_secret=PAYPAL_CLIENT_SECRET, webhook_id=PAYPAL_WEBHOOK_ID
    ) as fake:
        settings.PAYPAL_API_BASE = fake.base_url
        yield fake
    cache.clear()


@pytest.fixture
def paypal_account(merchant):
    return services.gateway_account_create(
        merchant=merchant,
        mode="test",
        gateway="paypal",
        credentials={
            "client_id": PAYPAL_CLIENT_ID,
            "client_secret": PAYPAL_CLIENT_SECRET,
            "webhook_id": PAYPAL_WEBHOOK_ID,
        },
        currencies=["USD", "MYR"],
    )


@pytest.fixture
def paypal(paypal_account, paypal_fake):
    return gateway_for_account(paypal_account)


def deliver(fake: FakePayPal, account_id: str, event: dict, *, headers: dict | None = None):
    """POST the event to our webhook URL as PayPal would (signed transmission headers)."""
    body, sent = fake.deliver(event)
    sent.update(headers or {})
    meta = {
        "HTTP_" + key.upper().replace("-", "_"): value for key, value in sent.items() if key != "Content-Type"
    }
    return APIClient().post(
        f"/v1/webhooks/paypal/{account_id}", data=body, content_type="application/json", **meta
    )
