"""Payments fixtures: merchants created through the service (with their sandbox account), gateway accounts
pointing at the local fake Xendit / Midtrans servers of tests/fakes (reused from tests/gateways)."""

from __future__ import annotations

import threading

import pytest

from gateways.services import merchant_onboard
from tests.fakes.xendit import FakeXendit
from tests.gateways.conftest import (  # noqa: F401 - fixtures re-exported
    MIDTRANS_CLIENT_KEY,
    MIDTRANS_SERVER_KEY,
    XENDIT_CALLBACK_TOKEN,
    XENDIT_SECRET,
    _fresh_breakers,
    fast_timeout,
    midtrans_account,
    midtrans_fake,
    xendit_account,
)


class FakeXenditHangingCreate(FakeXendit):
    """The fake Xendit, plus `hang_after_create`: the invoice IS created but the answer never arrives in time
    (what makes a real create's outcome unknown)."""

    hang_after_create = False
    create_delay = 0.0  # seconds a create takes (widens race windows in concurrency tests)
    # When set: a create waits (before Xendit acts on it) until the test sets it; `create_arrived` says it came.
    create_gate: threading.Event | None = None
    create_arrived: threading.Event | None = None

    def _dispatch(self, request):
        if (
            self.create_gate is not None
            and request.method == "POST"
            and request.path.startswith("/v2/invoices")
        ):
            if self.create_arrived is not None:
                self.create_arrived.set()
            self.create_gate.wait(timeout=30)
        if self.create_delay and request.method == "POST" and request.path.startswith("/v2/invoices"):
            self._release.wait(timeout=self.create_delay)
        if self.hang_after_create and request.method == "POST" and request.path.startswith("/v2/invoices"):
            self.route(request)
            self._release.wait(timeout=30)
            return None
        return super()._dispatch(request)

    def create_requests(self) -> list:
        return [r for r in self.requests if r.method == "POST" and r.path.startswith("/v2/invoices")]


@pytest.fixture
def xendit_fake(settings):
    with FakeXenditHangingCreate(secret_key=XENDIT_SECRET) as fake:
        settings.XENDIT_API_BASE = fake.base_url
        yield fake


@pytest.fixture
def merchant(db):
    return merchant_onboard(name="Acme")


@pytest.fixture
def other_merchant(db):
    return merchant_onboard(name="Other Co")
