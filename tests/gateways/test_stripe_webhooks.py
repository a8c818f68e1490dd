"""Stripe through PayTrust: API initiation -> fake Stripe -> signed events at /v1/webhooks/stripe/{gwa} -> the
inbound pipeline -> payment state; capture, void, refunds through the API; reconciliation after a timeout."""

# Fixtures are imported from tests/gateways/stripe_support.py.
# ruff: noqa: F811

import pytest

from payments.models import Payment, Refund
from payments.services import payments_reconcile
from tests.fakes.stripe import stripe_event
from tests.gateways.stripe_support import deliver, post_stripe, stripe_account, stripe_fake  # noqa: F401
from tests.payments.factories import make_invoice
from tests.webhooks.inbound_support import process_all
from webhooks.inbound.models import InboundNotification

pytestmark = pytest.mark.django_db


def _payment(api, merchant, amount="19.99", **body) -> Payment:
    invoice = make_invoice(merchant, gateway="stripe", currency="USD", amount=amount)
    response = api.post(f"/v1/invoices/{invoice.id}/payments", body, format="json")
    assert response.status_code == 201, response.content
    return Payment.objects.get(pk=response.json()["id"])


def _status(api, payment: Payment) -> dict:
    return api.get(f"/v1/payments/{payment.id}").json()


def test_pay_through_a_signed_checkout_session_completed(api, merchant, stripe_account, stripe_fake):
    payment = _payment(api, merchant)
    assert payment.status == "pending" and payment.gateway_reference.startswith("cs_test_")
    assert payment.payment_url.startswith("https://checkout.stripe.com/")
    session = stripe_fake.pay(payment.gateway_reference)
    body = stripe_event("checkout.session.completed", session)
    for _ in range(3):  # Stripe retries: the same evt_ id is one event
        assert post_stripe(stripe_account.id, body).status_code == 200
    deliver(stripe_account.id, "payment_intent.succeeded", stripe_fake.intent_of(payment.gateway_reference))
    assert InboundNotification.objects.count() == 2
    assert process_all() == ["processed", "processed"]
    got = _status(api, payment)
    assert (got["status"], got["amount_received"]) == ("succeeded", "19.99")
    assert api.get(f"/v1/invoices/{payment.invoice_id}").json()["status"] == "paid"
    assert Payment.objects.get(pk=payment.pk).succeeded_at is not None


def test_forged_and_expired_signatures_are_401_and_store_nothing(api, merchant, stripe_account, stripe_fake):
    payment = _payment(api, merchant)
    body = stripe_event("checkout.session.completed", stripe_fake.pay(payment.gateway_reference))
    assert post_stripe(stripe_account.id, body, secret="whsec_forged").status_code == 401
    import time

    assert post_stripe(stripe_account.id, body, timestamp=int(time.time()) - 600).status_code == 401
    assert post_stripe(stripe_account.id, body, header="").status_code == 401
    assert InboundNotification.objects.count() == 0
    assert Payment.objects.get(pk=payment.pk).status == "pending"


def test_declined_card_fails_and_expired_session_expires(api, merchant, stripe_account, stripe_fake):
    failed = _payment(api, merchant)
    deliver(stripe_account.id, "payment_intent.payment_failed", stripe_fake.decline(failed.gateway_reference))
    expired = _payment(api, merchant, amount="5.00")
    stripe_fake.requests.clear()
    session = {**stripe_fake.session(expired.gateway_reference), "status": "expired", "url": None}
    deliver(stripe_account.id, "checkout.session.expired", session)
    process_all()
    failed.refresh_from_db()
    assert (failed.status, failed.failure_code) == ("failed", "generic_decline")
    assert "declined" in failed.failure_message
    assert Payment.objects.get(pk=expired.pk).status == "expired"


def test_manual_capture_partial_then_refunds_and_dispute(api, merchant, stripe_account, stripe_fake):
    payment = _payment(api, merchant, amount="20.00", capture_method="manual")
    stripe_fake.pay(payment.gateway_reference)
    deliver(
        stripe_account.id,
        "payment_intent.amount_capturable_updated",
        stripe_fake.intent_of(payment.gateway_reference),
    )
    process_all()
    got = _status(api, payment)
    assert (got["status"], got["amount_capturable"]) == ("authorized", "20.00")

    captured = api.post(f"/v1/payments/{payment.id}/capture", {"amount": "15.00"}, format="json")
    assert captured.status_code == 200, captured.content
    assert (captured.json()["status"], captured.json()["amount_received"]) == ("succeeded", "15.00")
    # Stripe's own notification of the capture changes nothing more.
    deliver(stripe_account.id, "payment_intent.succeeded", stripe_fake.intent_of(payment.gateway_reference))
    assert process_all()[-1] == "processed"
    assert _status(api, payment)["amount_received"] == "15.00"

    refund = api.post(f"/v1/payments/{payment.id}/refunds", {"amount": "5.00"}, format="json")
    assert refund.status_code == 201, refund.content
    assert refund.json()["status"] == "succeeded"
    ours = Refund.objects.get(pk=refund.json()["id"])
    stripe_refund = stripe_fake.refunds[ours.gateway_refund_reference]
    assert stripe_refund["metadata"] == {"refund_id": ours.id, "payment_id": payment.id}
    # Stripe's refund.updated and charge.refunded for our refund: already recorded, nothing twice.
    deliver(stripe_account.id, "refund.updated", stripe_refund)
    deliver(stripe_account.id, "charge.refunded", stripe_fake.charge_of(payment.gateway_reference))
    assert process_all()[-2:] == ["processed", "processed"]
    assert _status(api, payment)["amount_refunded"] == "5.00"

    # A refund made in Stripe's dashboard: its refund.created (no metadata of ours: resolved through its intent)
    # records it once as a gateway refund, whichever of it and charge.refunded comes first, and a replay of either
    # changes nothing.
    charge, dashboard_refund = stripe_fake.refund_in_dashboard(payment.gateway_reference, 300)
    deliver(stripe_account.id, "charge.refunded", charge)
    deliver(stripe_account.id, "refund.created", dashboard_refund)
    deliver(stripe_account.id, "charge.refunded", charge)
    deliver(stripe_account.id, "refund.updated", dashboard_refund)
    process_all()
    got = _status(api, payment)
    assert (got["status"], got["amount_refunded"]) == ("partially_refunded", "8.00")
    recorded = Refund.objects.filter(payment=payment, origin="gateway")
    assert [(r.amount_minor, r.gateway_refund_reference) for r in recorded] == [(300, dashboard_refund["id"])]

    # A dispute whose intent carries our payment id (expanded) is a chargeback.
    dispute = stripe_fake.dispute(payment.gateway_reference, amount=700)
    dispute["payment_intent"] = stripe_fake.intent_of(payment.gateway_reference)
    deliver(stripe_account.id, "charge.dispute.created", dispute)
    process_all()
    chargeback = Refund.objects.get(payment=payment, chargeback=True)
    assert (chargeback.amount_minor, chargeback.gateway_refund_reference) == (700, dispute["id"])
    assert _status(api, payment)["status"] == "refunded"


def test_void_of_an_authorization(api, merchant, stripe_account, stripe_fake):
    payment = _payment(api, merchant, capture_method="manual")
    stripe_fake.pay(payment.gateway_reference)
    deliver(
        stripe_account.id,
        "payment_intent.amount_capturable_updated",
        stripe_fake.intent_of(payment.gateway_reference),
    )
    process_all()
    voided = api.post(f"/v1/payments/{payment.id}/void", {}, format="json")
    assert voided.status_code == 200, voided.content
    assert voided.json()["status"] == "canceled"
    deliver(stripe_account.id, "payment_intent.canceled", stripe_fake.intent_of(payment.gateway_reference))
    assert process_all()[-1] == "processed"
    assert _status(api, payment)["status"] == "canceled"


def test_timeout_leaves_unknown_then_reconciliation_finds_the_session(
    api,
    merchant,
    stripe_account,
    stripe_fake,
    settings,
):
    settings.GATEWAY_TIMEOUT_SECONDS = 0.3
    invoice = make_invoice(merchant, gateway="stripe", currency="USD", amount="19.99")
    stripe_fake.behaviour = "late"  # Stripe creates the session, its answer never arrives
    response = api.post(f"/v1/invoices/{invoice.id}/payments", {}, format="json")
    assert response.status_code == 504
    payment = Payment.objects.get(invoice=invoice)
    assert payment.status == "unknown" and payment.gateway_reference == ""
    stripe_fake.behaviour = "normal"
    (session_id,) = stripe_fake.sessions
    stripe_fake.pay(session_id)

    assert payments_reconcile(payment_ids=[payment.id]).checked == 1
    payment.refresh_from_db()
    assert (payment.status, payment.gateway_reference, payment.amount_received_minor) == (
        "succeeded",
        session_id,
        1999,
    )


def test_events_of_other_payments_are_acknowledged_without_harm(api, merchant, stripe_account, stripe_fake):
    payment = _payment(api, merchant)
    response = post_stripe(
        stripe_account.id, stripe_event("customer.created", {"id": "cus_1", "object": "customer"})
    )
    assert response.status_code == 200
    foreign = {**stripe_fake.pay(payment.gateway_reference), "metadata": {}, "client_reference_id": None}
    deliver(stripe_account.id, "checkout.session.completed", {**foreign, "id": "cs_test_not_ours"})
    # A dispute on an intent that is not ours (its metadata names no payment of ours) touches nothing.
    dispute = stripe_fake.dispute(payment.gateway_reference)
    stripe_fake.intents[dispute["payment_intent"]]["metadata"] = {}
    deliver(stripe_account.id, "charge.dispute.created", dispute)
    assert process_all() == ["failed", "failed", "failed"]  # visible in the failed list, no payment touched
    assert Payment.objects.get(pk=payment.pk).status == "pending"


def test_a_dispute_as_stripe_sends_it_is_resolved_through_its_intent(
    api, merchant, stripe_account, stripe_fake
):
    """charge.dispute.created names the PaymentIntent by id only: the intent's metadata (read from Stripe before the
    notification is applied) names our payment, and the chargeback is recorded on it."""
    payment = _payment(api, merchant)
    deliver(stripe_account.id, "checkout.session.completed", stripe_fake.pay(payment.gateway_reference))
    assert process_all() == ["processed"]
    dispute = stripe_fake.dispute(payment.gateway_reference, amount=500)
    assert isinstance(dispute["payment_intent"], str) and not dispute["metadata"]
    deliver(stripe_account.id, "charge.dispute.created", dispute)
    assert process_all() == ["already_processed", "processed"]
    chargeback = payment.refunds.get()
    assert (chargeback.amount_minor, chargeback.gateway_refund_reference) == (500, dispute["id"])
    payment.refresh_from_db()
    assert payment.status == "partially_refunded"


def test_account_api_refuses_a_live_key_on_a_test_account(api, merchant):
    body = {
        "gateway": "stripe",
        "credentials": {"secret_key": "sk_live_abc", "webhook_secret": "whsec_abc"},
        "currencies": ["USD"],
    }
    response = api.post("/v1/gateway-accounts", body, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "credentials.secret_key"
    body["credentials"]["secret_key"] = "sk_test_abc"
    created = api.post("/v1/gateway-accounts", body, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["webhook_url"].endswith(f"/v1/webhooks/stripe/{created.json()['id']}")
    assert "sk_test_abc" not in created.content.decode()
