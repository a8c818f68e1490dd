"""Two captures of one authorized payment at the same moment, on real concurrent connections: one reaches the
gateway and is applied; the other is refused (409) without calling the gateway. Also a capture racing a void."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from gateways.models import SandboxCheckoutSession
from gateways.sandbox.services import sandbox_checkout_submit
from invoices.models import PaymentApplication
from ledger.models import Movement
from payments.models import GatewayCall, Payment
from payments.services import payment_initiate
from payments.services.capture import payment_capture, payment_void
from paytrust.errors import Conflict
from tests.payments.factories import make_invoice
from tests.webhooks.inbound_support import process_all
from webhooks.inbound.services import sandbox_notification_receive

pytestmark = pytest.mark.django_db(transaction=True)


def _authorized(merchant) -> Payment:
    """A manual sandbox payment the customer authorized on the checkout (its notification processed)."""
    invoice = make_invoice(merchant, amount="150000")
    payment = payment_initiate(
        merchant=merchant, mode="test", invoice_id=invoice.id, capture_method="manual"
    ).payment
    session = SandboxCheckoutSession.objects.get(payment_id=payment.id)
    outcome = sandbox_checkout_submit(
        token=session.token,
        nonce=session.form_nonce,
        action="authorize",
        receiver=sandbox_notification_receive,
    )
    assert outcome.delivered
    assert process_all() == ["processed"]
    payment.refresh_from_db()
    assert payment.status == "authorized"
    return payment


def _race(*calls) -> list[object]:
    """Run the calls at once, each on its own thread and database connection; their results or exceptions."""
    barrier = threading.Barrier(len(calls))
    results: list[object] = [None] * len(calls)

    def run(index, call):
        try:
            barrier.wait(timeout=10)
            results[index] = call()
        except Exception as exc:  # noqa: BLE001 - collected for the assertions
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


@pytest.mark.parametrize("round_", range(3))
def test_two_concurrent_captures_reach_the_gateway_once_and_apply_once(merchant, round_):
    payment = _authorized(merchant)

    results = _race(
        lambda: payment_capture(merchant=merchant, mode="test", payment_id=payment.id, amount="100000"),
        lambda: payment_capture(merchant=merchant, mode="test", payment_id=payment.id, amount="50000"),
    )

    captured = [r for r in results if isinstance(r, Payment)]
    refused = [r for r in results if isinstance(r, Conflict)]
    assert len(captured) == 1 and len(refused) == 1, results
    assert refused[0].code in ("capture_in_progress", "payment_not_capturable")
    stored = Payment.objects.get(pk=payment.id)
    assert stored.status == "succeeded"
    assert stored.amount_received_minor == captured[0].amount_received_minor
    assert GatewayCall.objects.filter(payment_id=payment.id, operation="capture").count() == 1
    session = SandboxCheckoutSession.objects.get(payment_id=payment.id)
    assert session.amount_paid_minor == stored.amount_received_minor
    assert PaymentApplication.objects.filter(payment_id=payment.id).count() == 1
    assert sorted(Movement.objects.filter(source_id=payment.id).values_list("type", flat=True)) == [
        "authorization",
        "capture",
        "payment",
    ]


def test_capture_racing_a_void_ends_in_exactly_one_of_them(merchant):
    payment = _authorized(merchant)

    results = _race(
        lambda: payment_capture(merchant=merchant, mode="test", payment_id=payment.id),
        lambda: payment_void(merchant=merchant, mode="test", payment_id=payment.id),
    )

    done = [r for r in results if isinstance(r, Payment)]
    assert len(done) == 1 and isinstance([r for r in results if r not in done][0], Conflict), results
    stored = Payment.objects.get(pk=payment.id)
    assert stored.status == done[0].status
    assert stored.status in ("succeeded", "canceled")
    calls = GatewayCall.objects.filter(payment_id=payment.id, operation__in=["capture", "void_authorization"])
    assert calls.count() == 1
    expected = "capture" if stored.status == "succeeded" else "authorization_release"
    assert expected in Movement.objects.filter(source_id=payment.id).values_list("type", flat=True)
