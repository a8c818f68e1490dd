"""payments.services.payment_apply_gateway_status with refund reports (gateways.base.RefundReport): cumulative
totals (Midtrans, the sandbox) and single refunds by gateway id (Xendit), the guards (never more than received,
currency, a refund ahead of the payment's success), concurrent deliveries, and the admin's refunded column, filter
and refunds inline."""

from __future__ import annotations

import threading

import pytest
from django.contrib.admin.utils import quote
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.utils import timezone

from gateways import base as gw
from payments.models import Payment, Refund
from payments.services import (
    GatewayStatusUpdate,
    PaymentNotFoundForGateway,
    payment_apply_gateway_status,
    payment_initiate,
)
from paytrust.errors import Conflict, Unprocessable, ValidationError
from tests.payments.factories import make_invoice
from webhooks.outbound.models import Event

pytestmark = pytest.mark.django_db

REFUNDED = gw.GatewayOutcome.REFUNDED
PARTIAL = gw.GatewayOutcome.PARTIALLY_REFUNDED


def _payment(merchant) -> Payment:
    invoice = make_invoice(merchant, amount="150000")
    return payment_initiate(merchant=merchant, mode="test", invoice_id=invoice.id).payment


def _apply(
    payment: Payment, status, *, amount=150000, refund=None, currency="IDR", reference=None, pay_id=None
):
    return payment_apply_gateway_status(
        payment_id=payment.id if pay_id is None else pay_id,
        gateway_account_id=payment.gateway_account_id,
        update=GatewayStatusUpdate(
            status=status,
            amount_minor=amount,
            currency=currency,
            occurred_at=timezone.now(),
            gateway_reference=reference or "",
            refund=refund,
        ),
        source="test",
    )


def _paid(merchant) -> Payment:
    payment = _payment(merchant)
    assert _apply(payment, gw.GatewayOutcome.SUCCEEDED).changed
    return payment


def _state(payment: Payment) -> tuple[str, int]:
    payment.refresh_from_db()
    return payment.status, payment.amount_refunded_minor


def test_cumulative_totals_record_the_increments_and_ignore_replays_and_older_totals(merchant):
    payment = _paid(merchant)

    assert _apply(payment, PARTIAL, refund=gw.RefundReport(total_minor=30000)).changed
    assert not _apply(payment, PARTIAL, refund=gw.RefundReport(total_minor=30000)).changed
    assert _apply(payment, PARTIAL, refund=gw.RefundReport(total_minor=100000)).changed
    older = _apply(payment, PARTIAL, refund=gw.RefundReport(total_minor=30000))

    assert not older.changed and "ignored" in older.note
    assert _state(payment) == ("partially_refunded", 100000)
    assert list(Refund.objects.values_list("amount_minor", "gateway_refund_reference")) == [
        (30000, ""),
        (70000, ""),
    ]
    assert Event.objects.filter(type="refund.succeeded").count() == 2
    payment.refresh_from_db()
    assert payment.pain002_status == "ACSC"


def test_refunded_without_an_amount_refunds_all_that_was_received(merchant):
    payment = _paid(merchant)

    _apply(payment, REFUNDED)

    assert _state(payment) == ("refunded", 150000)


def test_partial_refund_without_an_amount_is_refused_and_changes_nothing(merchant):
    payment = _paid(merchant)

    with pytest.raises(ValidationError) as err:
        _apply(payment, PARTIAL)

    assert err.value.code == "refund_amount_missing"
    assert _state(payment) == ("succeeded", 0) and not Refund.objects.exists()


def test_more_than_received_is_refused_and_changes_nothing(merchant):
    payment = _paid(merchant)
    _apply(payment, PARTIAL, refund=gw.RefundReport(reference="rfd-a", amount_minor=100000))

    with pytest.raises(Unprocessable) as err:
        _apply(payment, PARTIAL, refund=gw.RefundReport(reference="rfd-b", amount_minor=50001))
    with pytest.raises(Unprocessable):
        _apply(payment, REFUNDED, refund=gw.RefundReport(total_minor=150001))

    assert err.value.code == "refund_exceeds_received"
    assert _state(payment) == ("partially_refunded", 100000)
    assert Refund.objects.count() == 1


def test_refund_in_another_currency_is_refused(merchant):
    payment = _paid(merchant)

    with pytest.raises(Unprocessable) as err:
        _apply(payment, PARTIAL, currency="USD", refund=gw.RefundReport(reference="rfd-x", amount_minor=100))

    assert err.value.code == "currency_mismatch"
    assert _state(payment) == ("succeeded", 0)


def test_single_refund_ahead_of_the_payments_success_is_a_conflict_to_retry(merchant):
    payment = _payment(merchant)

    with pytest.raises(Conflict) as err:
        _apply(payment, PARTIAL, refund=gw.RefundReport(reference="rfd-early", amount_minor=1000))

    assert err.value.code == "refund_before_success"
    assert _state(payment) == ("pending", 0)


def test_a_payment_is_found_by_its_gateway_reference_when_the_report_has_no_payment_id(merchant):
    payment = _paid(merchant)

    outcome = _apply(
        payment,
        PARTIAL,
        pay_id="",
        reference=payment.gateway_reference,
        refund=gw.RefundReport(reference="rfd-1", amount_minor=5000),
    )

    assert outcome.payment.pk == payment.pk and _state(payment) == ("partially_refunded", 5000)
    with pytest.raises(PaymentNotFoundForGateway):
        _apply(payment, PARTIAL, pay_id="", reference="ckt_not-ours", refund=gw.RefundReport(reference="r"))


@pytest.mark.django_db(transaction=True)
def test_concurrent_deliveries_of_one_refund_record_it_once(merchant):
    payment = _paid(merchant)
    barrier = threading.Barrier(6)
    errors: list[Exception] = []

    def deliver():
        try:
            barrier.wait(timeout=10)
            _apply(payment, PARTIAL, refund=gw.RefundReport(reference="rfd-same", amount_minor=40000))
        except Exception as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert _state(payment) == ("partially_refunded", 40000)
    assert Refund.objects.count() == 1
    assert Event.objects.filter(type="refund.succeeded").count() == 1


# ---- admin -------------------------------------------------------------------------------------------------------


@pytest.fixture
def staff():
    user = get_user_model().objects.create_superuser("finance", "finance@example.com", "pw-123456789")
    client = Client()
    client.force_login(user)
    return client


def test_admin_shows_the_refunded_amount_filters_by_refunds_and_lists_chargebacks(merchant, staff):
    charged_back = _paid(merchant)
    _apply(charged_back, PARTIAL, refund=gw.RefundReport(total_minor=40000, chargeback=True))
    refunded = _paid(merchant)
    _apply(refunded, REFUNDED, refund=gw.RefundReport(total_minor=150000))
    untouched = _paid(merchant)

    def listed(**params) -> set[str]:
        html = staff.get("/admin/payments/payment/", params).content.decode()
        return {p.pk for p in (charged_back, refunded, untouched) if p.pk in html}

    assert "IDR 40,000" in staff.get("/admin/payments/payment/").content.decode()  # money a person can read
    assert listed(refunds="any") == {charged_back.pk, refunded.pk}
    assert listed(refunds="partial") == {charged_back.pk}
    assert listed(refunds="full") == {refunded.pk}
    assert listed(refunds="chargeback") == {charged_back.pk}
    assert listed(refunds="none") == {untouched.pk}
    page = staff.get(f"/admin/payments/payment/{quote(charged_back.pk)}/change/").content.decode()
    refund = Refund.objects.get(payment=charged_back)
    assert refund.pk in page and "IDR 40,000" in page
