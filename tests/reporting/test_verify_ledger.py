"""`manage.py verify_ledger` (reporting/ledger_check.py) over a ledger posted by the real services: payments made
through initiation + the gateway's success (tests.reporting.conftest `payments`: two currencies, two gateways,
installments, an overpayment, a refund), plus a chargeback. Breaks are made by hand the only way they can arise:
with the ledger's append-only triggers bypassed (`session_replication_role = replica`, restored after), or facts
written around the services.
"""

from __future__ import annotations

import io
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from invoices.models import PaymentApplication
from ledger.models import Entry, Movement
from ledger.services import movement_post
from payments.models import Payment, Refund
from reporting.ledger_check import ledger_check
from tests.reporting.helpers import END, START, invoice, pay, record_refund
from tests.webhooks.inbound_support import process_all

pytestmark = pytest.mark.django_db


def verify(*args) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("verify_ledger", *args, stdout=out, stderr=err)
    except SystemExit as exit_:
        return exit_.code, out.getvalue()
    return 0, out.getvalue()


@contextmanager
def ledger_triggers_bypassed():
    """What only a superuser at the database can do: write around the append-only triggers. The balance checks
    still pending from the fixture's postings run first (they pass), so the test's teardown does not trip over
    the corruption."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        cursor.execute("SET session_replication_role = replica")
        try:
            yield cursor
        finally:
            cursor.execute("SET session_replication_role = origin")


@pytest.fixture
def ledger(payments, merchant, xendit_account):
    """The scenario's payments and refund, and a chargeback on a USD payment."""
    usd = Payment.objects.filter(merchant=merchant, currency="USD").order_by("succeeded_at").first()
    record_refund(usd, 500, at=START + timedelta(days=5), chargeback=True)
    return payments


def _payment_movement(payment_id: str) -> Movement:
    return Movement.objects.get(source_type="payment", source_id=payment_id, type="payment")


def test_a_clean_ledger_exits_0_with_a_summary(ledger):
    code, out = verify()

    assert code == 0, out
    movements, entries = Movement.objects.count(), Entry.objects.count()
    assert movements >= 12 and entries >= 3 * movements - 12  # real postings: several lines each
    assert f"ledger OK: {movements} movements, {entries} entries, 2 merchants, 2 currencies checked in" in out
    assert Movement.objects.filter(type="chargeback").count() == 1


def test_a_hand_corrupted_entry_exits_1_naming_the_movement_and_its_payment(ledger, merchant):
    payment = Payment.objects.filter(merchant=merchant, currency="IDR", gateway="xendit").first()
    movement = _payment_movement(payment.pk)
    fee_line = Entry.objects.get(movement=movement, account__code="service_fees")
    with ledger_triggers_bypassed() as cursor:
        cursor.execute("UPDATE ledger_entry SET amount_minor = amount_minor - 1 WHERE id = %s", [fee_line.pk])

    code, out = verify()

    assert code == 1
    lines = out.splitlines()
    assert f"movement_unbalanced {movement.pk}: entries sum to -1" in lines
    assert any(line.startswith(f"payment_posting {payment.pk}: service_fees") for line in lines), out
    assert any(line.startswith(f"tenant_unbalanced {merchant.pk}/test/IDR") for line in lines), out
    assert any(line.startswith(f"report_mismatch {merchant.pk}/test/IDR: fees ledger") for line in lines), out
    assert "ledger OK" not in out


def test_a_succeeded_payment_without_its_movement_is_named(ledger, merchant):
    payment = Payment.objects.filter(merchant=merchant, currency="USD").order_by("-succeeded_at").first()
    movement = _payment_movement(payment.pk)
    with ledger_triggers_bypassed() as cursor:
        cursor.execute("DELETE FROM ledger_entry WHERE movement_id = %s", [movement.pk])
        cursor.execute("DELETE FROM ledger_movement WHERE id = %s", [movement.pk])

    code, out = verify()

    assert code == 1
    assert f"payment_posting {payment.pk}: no payment movement" in out.splitlines()
    assert f"report_mismatch {merchant.pk}/test/USD: payments ledger" in out


def test_a_movement_of_a_payment_that_does_not_exist_is_named(ledger, merchant):
    with ledger_triggers_bypassed():
        movement, _ = movement_post(
            merchant_id=merchant.pk,
            mode="test",
            currency="IDR",
            type="payment",
            source_type="payment",
            source_id="pay_ghost",
            occurred_at=START - timedelta(days=400),
            lines={"gateway_clearing": 100, "merchant_payable": -100},
        )

    code, out = verify()

    assert code == 1
    assert f"payment_movement_orphan {movement.pk}: its payment pay_ghost does not exist" in out.splitlines()


def test_a_refund_without_its_payout_movement_is_named(ledger, merchant):
    refund = Refund.objects.get(chargeback=False)
    paid_out = Movement.objects.get(source_type="refund", source_id=refund.pk, type="refund_succeeded")
    with ledger_triggers_bypassed() as cursor:
        cursor.execute("DELETE FROM ledger_entry WHERE movement_id = %s", [paid_out.pk])
        cursor.execute("DELETE FROM ledger_movement WHERE id = %s", [paid_out.pk])

    code, out = verify()

    assert code == 1
    assert f"refund_posting {refund.pk}: 0 refund_succeeded movements (status succeeded)" in out.splitlines()


def test_a_chargeback_with_a_wrong_amount_is_named(ledger):
    chargeback = Refund.objects.get(chargeback=True)
    Refund.objects.filter(pk=chargeback.pk).update(amount_minor=499)  # written around the services

    code, out = verify()

    assert code == 1
    assert f"refund_posting {chargeback.pk}: chargeback took 500 <> 499" in out


def test_report_and_ledger_disagreeing_over_a_period_is_caught(ledger, merchant):
    """The refund's payout time moved out of the period in the report's facts only: every posting still
    matches its object, but the period's refunds differ between the ledger and the report."""
    refund = Refund.objects.get(chargeback=False)
    since = START + timedelta(days=1)
    assert refund.succeeded_at >= since
    assert verify("--since", since.isoformat())[0] == 0
    Refund.objects.filter(pk=refund.pk).update(succeeded_at=since - timedelta(hours=1))

    code, out = verify("--since", since.isoformat())

    assert code == 1
    assert out.splitlines() == [
        f"report_mismatch {merchant.pk}/test/IDR: refunds ledger 46599 <> report 0; net ledger "
        f"{_net(merchant, since) - 46599} <> report {_net(merchant, since)}"
    ]
    assert verify()[0] == 0  # over all time they agree again


def _net(merchant, since) -> int:
    facts = PaymentApplication.objects.filter(merchant=merchant, currency="IDR", paid_at__gte=since)
    return sum(f.amount_minor - f.fee_minor for f in facts)


def test_an_application_whose_figures_changed_is_named_with_its_payment(ledger, merchant):
    payment = Payment.objects.filter(merchant=merchant, currency="IDR", gateway="sandbox").first()
    with ledger_triggers_bypassed() as cursor:  # the facts are guarded too
        cursor.execute(
            "UPDATE invoices_paymentapplication SET tax_minor = tax_minor + 1, taxable_minor = taxable_minor - 1 "
            "WHERE payment_id = %s",
            [payment.pk],
        )

    code, out = verify()

    assert code == 1
    assert any(line.startswith(f"payment_posting {payment.pk}: tax_payable") for line in out.splitlines()), (
        out
    )


def test_merchant_and_since_narrow_what_is_checked(ledger, merchant, other_merchant):
    theirs = Payment.objects.get(merchant=other_merchant)
    movement = _payment_movement(theirs.pk)
    with ledger_triggers_bypassed() as cursor:
        cursor.execute(
            "UPDATE ledger_entry SET amount_minor = amount_minor + 7 WHERE movement_id = %s "
            "AND account_id = (SELECT id FROM ledger_account WHERE code = 'gateway_clearing' AND merchant_id = %s "
            "AND currency = 'IDR' AND mode = 'test')",
            [movement.pk, other_merchant.pk],
        )

    assert verify("--merchant", merchant.pk)[0] == 0
    code, out = verify("--merchant", other_merchant.pk)
    assert code == 1 and f"movement_unbalanced {movement.pk}" in out
    # --since: the movements that occurred since, and those of the payments created or paid since (theirs was
    # created today, paid in the period): a --since after both leaves it out, one before catches it.
    assert verify("--since", (timezone.now() + timedelta(minutes=1)).isoformat())[0] == 0
    assert verify("--since", (END + timedelta(days=1)).date().isoformat())[0] == 1
    assert verify("--since", START.date().isoformat())[0] == 1


def test_bad_arguments_are_usage_errors_not_breaks(db):
    with pytest.raises(CommandError, match="--since must be"):
        call_command("verify_ledger", "--since", "yesterday")
    with pytest.raises(CommandError, match="No merchant"):
        call_command("verify_ledger", "--merchant", "mer_nobody")


def test_a_long_period_is_compared_whatever_the_report_api_s_limit(ledger, merchant, settings):
    settings.REPORT_MAX_DAYS = 1
    early = invoice(merchant, _xendit(merchant), currency="IDR", lines=[("Old", 1, "10000", "0")])
    pay(early, amount_minor=None, at=START - timedelta(days=800))

    result = ledger_check(since=START - timedelta(days=900))

    assert result.ok, result.breaks
    assert result.summary["movements"] == Movement.objects.count()


def _xendit(merchant):
    from gateways.models import GatewayAccount

    return GatewayAccount.objects.get(merchant=merchant, mode="test", gateway="xendit")


def _api_refund(payment: Payment, amount_minor: int, status: str) -> Refund:
    """A refund as the refunds API records it (pending at request), without its HTTP call: the row and the
    postings its service makes (payments/services/bookkeeping.py)."""
    from payments.services import bookkeeping

    refund = Refund.objects.create(
        payment=payment,
        merchant_id=payment.merchant_id,
        mode=payment.mode,
        currency=payment.currency,
        amount_minor=amount_minor,
        status="pending",
        origin="api",
    )
    bookkeeping.post_refund_requested(refund=refund)
    if status == "failed":
        Refund.objects.filter(pk=refund.pk).update(status="failed", failed_at=timezone.now())
        bookkeeping.post_refund_failed(refund=refund, occurred_at=timezone.now())
    return refund


@pytest.mark.skipif(
    "pending" not in __import__("payments.models").models.RefundStatus.values,
    reason="refund statuses pending/failed arrive with the refunds API (issue 13)",
)
def test_pending_and_failed_refunds_hold_and_a_pending_one_paid_out_is_a_break(ledger, merchant):
    payment = Payment.objects.filter(merchant=merchant, currency="IDR", gateway="sandbox").first()
    pending = _api_refund(payment, 1000, "pending")
    _api_refund(payment, 2000, "failed")
    assert verify()[0] == 0

    with ledger_triggers_bypassed():
        movement_post(
            merchant_id=merchant.pk,
            mode="test",
            currency="IDR",
            type="refund_succeeded",
            source_type="refund",
            source_id=pending.pk,
            occurred_at=timezone.now(),
            lines={"refunds_payable": 1000, "gateway_clearing": -1000},
        )

    code, out = verify()
    assert code == 1
    assert f"refund_posting {pending.pk}: 1 refund_succeeded movements (status pending)" in out


def _authorized(api, merchant) -> dict:
    """A manual-capture payment authorized on the sandbox checkout page (its notification not processed yet)."""
    from django.test import Client

    from gateways.models import SandboxCheckoutSession
    from tests.payments.factories import make_invoice

    invoice = make_invoice(merchant, amount="150000", expires_in=timedelta(days=30))
    created = api.post(f"/v1/invoices/{invoice.id}/payments", {"capture_method": "manual"}, format="json")
    assert created.status_code == 201, created.content
    path = "/" + created.json()["payment_url"].split("://", 1)[1].split("/", 1)[1]
    session = SandboxCheckoutSession.objects.get(payment_id=created.json()["id"])
    response = Client().post(path, {"nonce": session.form_nonce, "action": "authorize"})
    assert response.status_code == 200, response.content
    return created.json()


def test_holds_are_checked_a_release_of_a_still_authorized_payment_is_named(merchant, api):
    """Authorize on the sandbox checkout, capture one hold through the API (the real postings: authorization,
    capture, payment), leave the other authorized; then forge a release of the authorized one."""
    held, captured = _authorized(api, merchant), _authorized(api, merchant)
    assert sorted(process_all()) == ["processed", "processed"]
    response = api.post(f"/v1/payments/{captured['id']}/capture", {}, format="json")
    assert response.status_code == 200, response.content
    assert Payment.objects.get(pk=held["id"]).status == "authorized"
    assert list(
        Movement.objects.filter(source_id=captured["id"])
        .order_by("occurred_at")
        .values_list("type", flat=True)
    ) == ["authorization", "capture", "payment"]
    code, out = verify()
    assert code == 0, out

    hold = Entry.objects.get(movement__source_id=held["id"], account__code="gateway_authorized").amount_minor
    with ledger_triggers_bypassed():
        movement_post(
            merchant_id=merchant.pk,
            mode="test",
            currency="IDR",
            type="authorization_release",
            source_type="payment",
            source_id=held["id"],
            occurred_at=timezone.now(),
            lines={"gateway_authorized": -hold, "merchant_pending": hold},
        )

    code, out = verify()
    assert code == 1
    assert (
        f"authorization_posting {held['id']}: still authorized, yet captured or released" in out.splitlines()
    )
