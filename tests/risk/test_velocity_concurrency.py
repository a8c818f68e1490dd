"""Velocity limits hold under real concurrency: 20 initiations at once by one customer e-mail (20 invoices, 20
threads, each with its own database connection) against a limit of 5 per hour -> exactly 5 reach the gateway
(counted at the fake Xendit server), 15 are blocked with 402. Once on each backend: PostgreSQL (advisory lock per
key) and Redis (one Lua script)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from payments.models import Payment
from payments.services import payment_initiate
from paytrust.errors import ApplicationError
from tests.apikeys.servers import redis_url  # noqa: F401 - fixture
from tests.payments.factories import make_invoice

N, LIMIT = 20, 5


def _concurrently(fns) -> list:
    barrier = threading.Barrier(len(fns))
    results: list = [None] * len(fns)

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[index] = fns[index]()
        except Exception as exc:  # noqa: BLE001 - reported by the assertions
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(fns))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


@pytest.fixture(params=["postgresql", "redis"])
def backend(request, settings):
    if request.param == "redis":
        # A shared Redis is never flushed: the keys carry the test's own (new) merchant id.
        settings.REDIS_URL = request.getfixturevalue("redis_url")
    else:
        settings.REDIS_URL = ""
    return request.param


@pytest.mark.django_db(transaction=True)
def test_twenty_parallel_initiations_by_one_email_let_five_reach_the_gateway(
    backend, merchant, set_rules, xendit_account, xendit_fake
):
    set_rules(merchant, velocity_email_hour=LIMIT)
    xendit_fake.create_delay = 0.05  # a real gateway takes a while: the attempts overlap
    invoices = [make_invoice(merchant, gateway="xendit") for _ in range(N)]  # all for budi@example.com

    def initiate(invoice_id):
        return lambda: payment_initiate(merchant=merchant, mode="test", invoice_id=invoice_id).payment.status

    results = _concurrently([initiate(invoice.id) for invoice in invoices])

    errors = [r for r in results if isinstance(r, Exception)]
    assert all(isinstance(e, ApplicationError) and e.code == "payment_blocked" for e in errors), errors
    assert len(xendit_fake.create_requests()) == LIMIT
    assert [r for r in results if not isinstance(r, Exception)] == ["pending"] * LIMIT
    assert len(errors) == N - LIMIT
    blocked = Payment.objects.filter(merchant=merchant, failure_code="payment_blocked")
    assert blocked.count() == N - LIMIT
    assert {tuple(r["code"] for r in p.risk_reasons) for p in blocked} == {("velocity_email_hour",)}
