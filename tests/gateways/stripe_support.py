"""Fixtures for the Stripe tests: the fake Stripe (tests/fakes/stripe.py), a test-mode Stripe account, helpers."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from gateways import services
from tests.fakes.stripe import FakeStripe, signature_header, stripe_event

STRIPE_SECRET = "sk_test_51PayTrustFakeKey0123456789abcdefABCDEF"
STRIPE_WEBHOOK_SECRET = "whsec_paytrust_test_0123456789abcdef0123456789ab"


@pytest.fixture
def stripe_fake(settings):
    with FakeStripe(secret_key=STRIPE_SECRET) as fake:
        settings.STRIPE_API_BASE = fake.base_url
        yield fake


@pytest.fixture
def stripe_account(merchant):
    return services.gateway_account_create(
        merchant=merchant,
        mode="test",
        gateway="stripe",
        credentials={"secret_key": STRIPE_SECRET, "webhook_secret": STRIPE_WEBHOOK_SECRET},
        currencies=["USD", "IDR", "MYR"],
    )


def post_stripe(
    account_id: str, body: bytes, *, secret: str = STRIPE_WEBHOOK_SECRET, header: str | None = None, **kw
):
    """POST a Stripe event to the account's webhook URL, signed with `secret` (or the given header)."""
    signature = header if header is not None else signature_header(body, secret, **kw)
    return APIClient().post(
        f"/v1/webhooks/stripe/{account_id}",
        data=body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=signature,
    )


def deliver(account_id: str, event_type: str, obj: dict, **kw):
    response = post_stripe(account_id, stripe_event(event_type, obj), **kw)
    assert response.status_code == 200, response.content
    return response
