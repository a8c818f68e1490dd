"""Helpers and fixtures for the inbound gateway webhook tests (import the fixtures into the test module).

Payloads are the recorded ones in ../shared/gateway_samples with the ids/amounts of our payment substituted;
Midtrans notifications are re-signed with the test server key (the published signatures used Midtrans' keys).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from django.db import connection
from rest_framework.test import APIClient

from gateways.services import merchant_onboard
from payments.models import Payment
from paytrust.jobs import RetryLater
from tests.fakes.samples import midtrans_resign, sample
from tests.gateways.conftest import (  # noqa: F401 - fixtures re-exported
    MIDTRANS_SERVER_KEY,
    XENDIT_CALLBACK_TOKEN,
    _fresh_breakers,
    midtrans_fake,
)
from tests.payments.conftest import midtrans_account, xendit_account, xendit_fake  # noqa: F401
from tests.payments.factories import make_invoice
from webhooks.inbound.models import InboundNotification

WIB = timezone(timedelta(hours=7))


@pytest.fixture
def merchant(db):
    """Created through the service, so it has its test-mode sandbox account."""
    return merchant_onboard(name="Acme")


def iso_ms(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def wib(dt: datetime) -> str:
    return dt.astimezone(WIB).strftime("%Y-%m-%d %H:%M:%S")


# ---- payments -------------------------------------------------------------------------------------------------


def initiate(api, invoice_id: str, installment: int | None = None) -> dict:
    body = {} if installment is None else {"installment": installment}
    response = api.post(f"/v1/invoices/{invoice_id}/payments", body, format="json")
    assert response.status_code in (200, 201), response.content
    return response.json()


def new_payment(api, merchant, *, gateway: str, amount: str = "150000", **invoice_kwargs) -> Payment:
    invoice = make_invoice(merchant, gateway=gateway, amount=amount, **invoice_kwargs)
    return Payment.objects.get(pk=initiate(api, invoice.id)["id"])


# ---- payloads -------------------------------------------------------------------------------------------------


def xendit_callback(
    payment: Payment, *, status: str = "PAID", paid_amount: int | None = None, at=None
) -> bytes:
    """The recorded Xendit invoice callback (PAID sample) for our payment; EXPIRED drops the paid_* fields."""
    at = at or datetime.now(UTC)
    data = sample("xendit_invoice_paid.json")
    data.update(
        id=payment.gateway_reference,
        external_id=payment.id,
        amount=payment.amount_minor,
        currency=payment.currency,
        status=status,
        updated=iso_ms(at),
        created=iso_ms(payment.created_at),
    )
    if status in ("PAID", "SETTLED"):
        data.update(
            paid_amount=payment.amount_minor if paid_amount is None else paid_amount, paid_at=iso_ms(at)
        )
    else:
        for key in ("paid_amount", "paid_at", "payment_method", "payment_channel", "payment_destination"):
            data.pop(key, None)
    return json.dumps(data, default=str).encode()


def xendit_headers(token: str = XENDIT_CALLBACK_TOKEN) -> dict:
    return {"HTTP_X_CALLBACK_TOKEN": token} if token else {}


_MIDTRANS_CODES = {
    "settlement": "200",
    "capture": "200",
    "pending": "201",
    "deny": "202",
    "cancel": "202",
    "failure": "202",
    "expire": "407",
}


def midtrans_notification(
    payment: Payment,
    *,
    transaction_status: str = "settlement",
    gross_amount: str | None = None,
    transaction_id: str = "513f1f01-c9da-474c-9fc9-d5c64364b709",
    at=None,
    server_key: str = MIDTRANS_SERVER_KEY,
    **changes,
) -> bytes:
    """The recorded Midtrans settlement notification (GoPay) for our payment, re-signed with `server_key`."""
    at = at or datetime.now(UTC)
    data = sample("midtrans_settlement.json")
    data.update(
        order_id=payment.id,
        transaction_id=transaction_id,
        transaction_status=transaction_status,
        status_code=_MIDTRANS_CODES[transaction_status],
        gross_amount=gross_amount or f"{payment.amount_minor}.00",
        transaction_time=wib(at - timedelta(seconds=20)),
    )
    if transaction_status == "settlement":
        data["settlement_time"] = wib(at)
    else:
        data.pop("settlement_time", None)
    if transaction_status in ("deny",):
        data["fraud_status"] = "deny"
    data.update(changes)
    return json.dumps(midtrans_resign(data, server_key=server_key)).encode()


def post_webhook(gateway: str, account_id: str, body: bytes, **headers):
    return APIClient().post(
        f"/v1/webhooks/{gateway}/{account_id}", data=body, content_type="application/json", **headers
    )


def process_all() -> list[str]:
    """Process every stored event that is due, in the test's own transaction (what the worker's job does);
    "retry_scheduled" (or "not_due") where the job would be retried later (`RetryLater`)."""
    from webhooks.inbound.services import inbound_event_process

    outcomes = []
    for pk in InboundNotification.objects.order_by("created_at").values_list("pk", flat=True):
        try:
            outcomes.append(inbound_event_process(event_id=pk))
        except RetryLater as retry:
            outcomes.append("not_due" if retry.reason == "not due yet" else "retry_scheduled")
    return outcomes


# ---- faults -----------------------------------------------------------------------------------------------------


class DatabaseFault:
    """Makes processing attempts fail inside their processing transaction, in the database itself: a trigger on
    the inbound table raises when a notification is marked processed (so the payment change rolls back with it).
    A sequence counts the failures (sequences ignore rollbacks). `fail(n)`: the next n attempts; -1: every one."""

    def __init__(self) -> None:
        self.fail(0)

    def fail(self, n: int) -> None:
        with connection.cursor() as cursor:
            cursor.execute("CREATE SEQUENCE IF NOT EXISTS test_fault_seq")
            cursor.execute("SELECT nextval('test_fault_seq')")
            until = cursor.fetchone()[0] + (10**12 if n < 0 else n)
            cursor.execute(
                "CREATE OR REPLACE FUNCTION test_fault() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                f"IF nextval('test_fault_seq') <= {int(until)} THEN "
                "RAISE EXCEPTION 'injected fault: database hiccup'; END IF; RETURN NEW; END $$"
            )
            cursor.execute(
                "CREATE OR REPLACE TRIGGER test_fault BEFORE UPDATE ON inbound_notification FOR EACH ROW "
                "WHEN (NEW.status = 'processed') EXECUTE FUNCTION test_fault()"
            )

    def remove(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER IF EXISTS test_fault ON inbound_notification")
            cursor.execute("DROP FUNCTION IF EXISTS test_fault()")
            cursor.execute("DROP SEQUENCE IF EXISTS test_fault_seq")


@pytest.fixture
def fault(db):
    """A DatabaseFault, removed after the test (it outlives a transaction=True test otherwise)."""
    injected = DatabaseFault()
    yield injected
    injected.remove()


# ---- a real (in-process) procrastinate worker -------------------------------------------------------------------


@pytest.fixture
def clean_jobs(transactional_db):
    """Empty procrastinate's tables (they are not flushed between transaction=True tests)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE procrastinate_jobs, procrastinate_events, procrastinate_periodic_defers CASCADE"
        )


def run_inbound_worker(
    until=None, timeout: float = 60.0, queues: list[str] | None = None, concurrency: int = 1
) -> None:
    """Run procrastinate's worker in this process on the inbound queue (or `queues`) until no job is ready (and
    `until()` holds). Needs a transaction=True test: the worker uses its own connections."""
    import time as _time

    from paytrust.jobs import app
    from webhooks.inbound.tasks import INBOUND_QUEUE

    deadline = _time.monotonic() + timeout
    while True:
        with app.replace_connector(app.connector.get_worker_connector()):
            app.run_worker(
                queues=queues or [INBOUND_QUEUE],
                wait=False,
                concurrency=concurrency,
                install_signal_handlers=False,
                listen_notify=False,
            )
        if until is None or until():
            return
        if _time.monotonic() > deadline:
            raise AssertionError("the inbound worker did not reach the expected state in time")
        _time.sleep(0.2)
