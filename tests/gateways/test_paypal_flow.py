"""PayPal through PayTrust's pipeline: initiation, the signed notifications at /v1/webhooks/paypal/{gwa_id}
(verified by the fake's verify-webhook-signature), the one capture after approval, refunds, a reversal, manual
capture, the customer's return, timeouts. The fake PayPal is tests/fakes/paypal.py."""

# ruff: noqa: F811
from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from payments.models import GatewayCall, HoldOperation, Payment, Refund
from payments.services import payment_complete_approved, payment_reconcile
from paytrust.errors import Conflict
from tests.gateways.conftest import fast_timeout  # noqa: F401 - fixture
from tests.gateways.paypal_support import deliver, paypal_account, paypal_fake  # noqa: F401 - fixtures
from tests.payments.factories import make_invoice
from tests.webhooks.inbound_support import initiate, merchant, process_all  # noqa: F401 - fixtures
from webhooks.inbound.models import InboundNotification


def _payment(api, merchant, *, amount: str = "100.00", **initiation) -> Payment:
    invoice = make_invoice(merchant, gateway="paypal", currency="USD", amount=amount)
    response = api.post(f"/v1/invoices/{invoice.id}/payments", initiation, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["payment_url"].startswith("https://www.sandbox.paypal.com/checkoutnow?token=")
    return Payment.objects.get(pk=body["id"])


def _approved(api, merchant, fake, account, **kwargs) -> Payment:
    payment = _payment(api, merchant, **kwargs)
    fake.approve(payment.gateway_reference)
    assert deliver(fake, account.pk, fake.approved_event(payment.gateway_reference)).status_code == 200
    return payment


def _captures(fake, payment: Payment) -> int:
    return fake.count("POST", f"/v2/checkout/orders/{payment.gateway_reference}/capture")


@pytest.mark.django_db
def test_approval_is_captured_exactly_once_despite_duplicate_notifications(
    api, merchant, paypal_account, paypal_fake
):
    payment = _payment(api, merchant)
    paypal_fake.approve(payment.gateway_reference)
    event = paypal_fake.approved_event(payment.gateway_reference)
    first = deliver(paypal_fake, paypal_account.pk, event)
    repeat = deliver(paypal_fake, paypal_account.pk, event)  # PayPal's retry of the same WH- event
    other = deliver(paypal_fake, paypal_account.pk, paypal_fake.approved_event(payment.gateway_reference))
    assert (first.status_code, repeat.status_code, other.status_code) == (200, 200, 200)
    assert repeat.json()["duplicate"] is True
    assert paypal_fake.count("POST", "/v1/notifications/verify-webhook-signature") == 3

    assert process_all() == ["processed", "processed"]
    payment.refresh_from_db()
    assert (payment.status, payment.amount_received_minor, payment.hold_operation) == ("succeeded", 10000, "")
    assert payment.invoice.status == "paid" or payment.invoice.amount_paid_minor == 10000
    assert _captures(paypal_fake, payment) == 1
    assert GatewayCall.objects.filter(payment=payment, operation="complete_payment").count() == 1

    # PayPal then says the capture completed: applied already, nothing changes.
    capture_id = paypal_fake.only_capture(payment.gateway_reference)["id"]
    assert deliver(paypal_fake, paypal_account.pk, paypal_fake.capture_event(capture_id)).status_code == 200
    assert process_all()[-1] == "processed"
    assert InboundNotification.objects.order_by("-created_at").first().outcome.startswith("already succeeded")


@pytest.mark.django_db(transaction=True)
def test_notification_and_customer_return_at_once_make_one_capture(
    api, merchant, paypal_account, paypal_fake
):
    payment = _approved(api, merchant, paypal_fake, paypal_account)
    event_id = InboundNotification.objects.get().pk
    barrier = threading.Barrier(4)
    results: list = []

    def notification():
        from webhooks.inbound.services import inbound_event_process

        barrier.wait()
        try:
            results.append(inbound_event_process(event_id=event_id))
        except Exception as exc:  # noqa: BLE001 - RetryLater when the return got there first
            results.append(type(exc).__name__)
        finally:
            connection.close()

    def customer_return():
        barrier.wait()
        try:
            response = APIClient().get(
                f"/v1/webhooks/paypal/{paypal_account.pk}/return",
                {"token": payment.gateway_reference, "PayerID": "QYR5Z8XDVJNXQ"},
            )
            results.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=notification)] + [
        threading.Thread(target=customer_return) for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(map(str, results)).count("200") == 3, results
    payment.refresh_from_db()
    assert payment.status == "succeeded"
    assert _captures(paypal_fake, payment) == 1
    assert len(paypal_fake.captures) == 1


@pytest.mark.django_db
def test_concurrent_completion_is_refused_while_one_is_under_way(api, merchant, paypal_account, paypal_fake):
    payment = _approved(api, merchant, paypal_fake, paypal_account)
    Payment.objects.filter(pk=payment.pk).update(
        hold_operation=HoldOperation.COMPLETE, hold_operation_at=timezone.now()
    )
    with pytest.raises(Conflict) as exc:
        payment_complete_approved(payment_id=payment.id, gateway_account_id=paypal_account.pk, source="test")
    assert exc.value.code == "payment_completion_in_progress"
    assert _captures(paypal_fake, payment) == 0


@pytest.mark.django_db
def test_customer_return_completes_the_payment_and_shows_the_outcome(
    api, merchant, paypal_account, paypal_fake
):
    payment = _payment(api, merchant)
    paypal_fake.approve(payment.gateway_reference)
    page = APIClient().get(
        f"/v1/webhooks/paypal/{paypal_account.pk}/return", {"token": payment.gateway_reference}
    )
    assert page.status_code == 200 and b"Payment received" in page.content
    payment.refresh_from_db()
    assert payment.status == "succeeded"
    unknown = APIClient().get(f"/v1/webhooks/paypal/{paypal_account.pk}/return", {"token": "NOSUCHORDER1"})
    assert unknown.status_code == 404


@pytest.mark.django_db
def test_a_declined_capture_fails_the_payment(api, merchant, paypal_account, paypal_fake):
    paypal_fake.decline_next_capture = True
    payment = _approved(api, merchant, paypal_fake, paypal_account)
    assert process_all() == ["processed"]
    payment.refresh_from_db()
    assert (payment.status, payment.amount_received_minor) == ("failed", 0)
    capture_id = paypal_fake.only_capture(payment.gateway_reference)["id"]
    denied = paypal_fake.capture_event(capture_id, "PAYMENT.CAPTURE.DENIED")
    assert deliver(paypal_fake, paypal_account.pk, denied).status_code == 200
    assert process_all()[-1] == "processed"
    payment.refresh_from_db()
    assert payment.status == "failed"


@pytest.mark.django_db
def test_forged_notification_is_refused_with_401_and_nothing_is_stored(
    paypal_account, paypal_fake, api, merchant
):
    payment = _payment(api, merchant)
    paypal_fake.approve(payment.gateway_reference)
    body, headers = paypal_fake.deliver(paypal_fake.approved_event(payment.gateway_reference))
    forged = body.replace(b'"value": "100.00"', b'"value": "1.00"')
    assert forged != body
    meta = {"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items() if k != "Content-Type"}
    response = APIClient().post(
        f"/v1/webhooks/paypal/{paypal_account.pk}", data=forged, content_type="application/json", **meta
    )
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"
    missing = APIClient().post(
        f"/v1/webhooks/paypal/{paypal_account.pk}", data=body, content_type="application/json"
    )
    assert missing.status_code == 401
    assert InboundNotification.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("behaviour", ["error500", "timeout"])
def test_paypal_unreachable_during_verification_is_503_with_retry_after(
    paypal_account, paypal_fake, fast_timeout, behaviour
):
    from tests.fakes.samples import sample

    event = sample("paypal_capture_completed_event.json")
    from gateways.registry import gateway_for_account

    gateway_for_account(paypal_account).client._token()
    paypal_fake.behaviour = behaviour
    response = deliver(paypal_fake, paypal_account.pk, event)
    assert response.status_code == 503
    assert response["Retry-After"] == "60"
    assert response.json()["error"]["code"] == "webhook_verification_unavailable"
    assert InboundNotification.objects.count() == 0


@pytest.mark.django_db
def test_a_flood_of_deliveries_paypal_cannot_verify_never_opens_the_payments_breaker(
    paypal_account, paypal_fake, settings
):
    """Anyone may POST to the public webhook URL, and each delivery costs a verification call: when PayPal fails them
    the verification breaker opens (503 at once, nothing sent), the one guarding payments stays closed."""
    from gateways.breaker import breaker_for
    from gateways.registry import gateway_for_account
    from tests.fakes.samples import sample

    settings.GATEWAY_CIRCUIT_FAILURE_THRESHOLD = 3
    gateway_for_account(paypal_account).client._token()
    paypal_fake.behaviour = "error500"
    event = sample("paypal_capture_completed_event.json")
    statuses = {deliver(paypal_fake, paypal_account.pk, event).status_code for _ in range(5)}
    assert statuses == {503}
    assert breaker_for("paypal", f"{paypal_account.pk}:webhook-verification").state == "open"
    assert breaker_for("paypal", paypal_account.pk).state == "closed"
    assert InboundNotification.objects.count() == 0


@pytest.mark.django_db
def test_refund_through_the_api_and_its_notification_refund_once(api, merchant, paypal_account, paypal_fake):
    payment = _approved(api, merchant, paypal_fake, paypal_account)
    process_all()
    response = api.post(
        f"/v1/payments/{payment.id}/refunds", {"amount": "30.00", "reason": "damaged"}, format="json"
    )
    assert response.status_code in (200, 201), response.content
    assert response.json()["status"] == "succeeded"
    refund = Refund.objects.get(payment=payment)
    assert refund.gateway_refund_reference in paypal_fake.refunds
    event = paypal_fake.refund_event(refund.gateway_refund_reference)
    assert event["resource"]["invoice_id"] == refund.id  # PayPal echoes our ref_ id
    assert deliver(paypal_fake, paypal_account.pk, event).status_code == 200
    assert process_all()[-1] == "processed"
    payment.refresh_from_db()
    assert (payment.status, payment.amount_refunded_minor) == ("partially_refunded", 3000)
    assert Refund.objects.filter(payment=payment).count() == 1


@pytest.mark.django_db
def test_a_reversal_is_recorded_as_a_chargeback(api, merchant, paypal_account, paypal_fake):
    payment = _approved(api, merchant, paypal_fake, paypal_account)
    process_all()
    capture_id = paypal_fake.only_capture(payment.gateway_reference)["id"]
    event = paypal_fake.reversal_event(capture_id)
    assert deliver(paypal_fake, paypal_account.pk, event).status_code == 200
    assert process_all()[-1] == "processed"
    assert (
        paypal_fake.count("GET", f"/v2/payments/captures/{capture_id}") == 1
    )  # the order is learned from it
    payment.refresh_from_db()
    assert (payment.status, payment.amount_refunded_minor) == ("refunded", 10000)
    chargeback = Refund.objects.get(payment=payment)
    assert (chargeback.chargeback, chargeback.origin, chargeback.amount_minor) == (True, "gateway", 10000)
    deliver(paypal_fake, paypal_account.pk, event)  # a duplicate delivery: one state change
    process_all()
    assert Refund.objects.filter(payment=payment).count() == 1


@pytest.mark.django_db
def test_manual_capture_partial_capture_and_void(api, merchant, paypal_account, paypal_fake):
    held = _approved(api, merchant, paypal_fake, paypal_account, capture_method="manual")
    assert process_all() == ["processed"]
    held.refresh_from_db()
    assert (held.status, held.amount_capturable_minor) == ("authorized", 10000)
    response = api.post(f"/v1/payments/{held.id}/capture", {"amount": "60.00"}, format="json")
    assert response.status_code == 200, response.content
    held.refresh_from_db()
    assert (held.status, held.amount_received_minor, held.amount_capturable_minor) == ("succeeded", 6000, 0)
    capture = paypal_fake.requests[-1]
    assert capture.json["final_capture"] is True and capture.json["amount"]["value"] == "60.00"

    other = _approved(api, merchant, paypal_fake, paypal_account, capture_method="manual")
    process_all()
    response = api.post(f"/v1/payments/{other.id}/void", format="json")
    assert response.status_code == 200, response.content
    other.refresh_from_db()
    assert other.status == "canceled"


@pytest.mark.django_db
def test_a_capture_whose_answer_is_lost_is_completed_later_without_a_second_capture(
    api, merchant, paypal_account, paypal_fake, fast_timeout
):
    payment = _approved(api, merchant, paypal_fake, paypal_account)
    path = f"/v2/checkout/orders/{payment.gateway_reference}/capture"
    paypal_fake.late_requests.add(("POST", path))
    assert process_all() == ["retry_scheduled"]
    payment.refresh_from_db()
    assert (payment.status, payment.hold_operation) == (
        "pending",
        "complete",
    )  # the mark stays: outcome unknown
    assert len(paypal_fake.captures) == 1  # PayPal did capture

    paypal_fake.late_requests.clear()
    earlier = timezone.now() - timedelta(minutes=10)
    Payment.objects.filter(pk=payment.pk).update(hold_operation_at=earlier)  # the mark is stale
    InboundNotification.objects.update(next_attempt_at=earlier)  # the retry is due
    assert process_all() == ["processed"]
    payment.refresh_from_db()
    assert (payment.status, payment.amount_received_minor) == ("succeeded", 10000)
    assert _captures(paypal_fake, payment) == 2  # asked twice, with one PayPal-Request-Id
    assert len(paypal_fake.captures) == 1


@pytest.mark.django_db
def test_create_timeout_leaves_the_payment_unknown_and_reconciliation_settles_it(
    api, merchant, paypal_account, paypal_fake, fast_timeout
):
    invoice = make_invoice(merchant, gateway="paypal", currency="USD", amount="100.00")
    paypal_fake.late_requests.add(("POST", "/v2/checkout/orders"))
    from gateways.registry import gateway_for_account

    gateway_for_account(paypal_account).client._token()
    response = api.post(f"/v1/invoices/{invoice.id}/payments", {}, format="json")
    assert response.status_code == 504
    payment = Payment.objects.get(invoice=invoice)
    assert payment.status == "unknown"
    # Nobody got the approve link, so the order (created or not) can never be paid: the payment fails and the
    # installment can be initiated again.
    payment_reconcile(payment_id=payment.id)
    payment.refresh_from_db()
    assert (payment.status, payment.failure_code) == ("failed", "gateway_payment_not_found")
    assert paypal_fake.count("POST", "/capture") == 0


@pytest.mark.django_db
def test_an_approval_after_the_payment_deadline_collects_nothing(api, merchant, paypal_account, paypal_fake):
    payment = _payment(api, merchant)
    api.post(f"/v1/invoices/{payment.invoice_id}/void", format="json")  # brings the payment's deadline to now
    paypal_fake.approve(payment.gateway_reference)
    assert (
        deliver(
            paypal_fake, paypal_account.pk, paypal_fake.approved_event(payment.gateway_reference)
        ).status_code
        == 200
    )
    process_all()
    assert _captures(paypal_fake, payment) == 0
    payment.refresh_from_db()
    assert payment.status in ("pending", "expired")
