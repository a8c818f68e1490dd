"""The risk check inside payment initiation (POST /v1/invoices/{id}/payments): a block answers 402
`payment_blocked` with the reasons, records the failed attempt and `payment.blocked`, and sends nothing to the
gateway (counted at the fake Xendit server); a flagged payment proceeds with its review pending; the engine's
failure lets the payment proceed flagged with score 50; bad `risk` input is a 400."""

from __future__ import annotations

import pytest

from payments.models import GatewayCall, Payment
from tests.payments.factories import make_invoice
from webhooks.outbound.models import Event

pytestmark = pytest.mark.django_db


def _initiate(api, invoice_id, body=None):
    return api.post(f"/v1/invoices/{invoice_id}/payments", body or {}, format="json")


def test_a_blocked_attempt_gets_402_an_event_and_never_reaches_the_gateway(
    merchant, api, set_rules, xendit_account, xendit_fake
):
    set_rules(merchant, blocked_ips=["203.0.113.0/24"], blocked_device_ids=["dev-bad"])
    invoice = make_invoice(merchant, gateway="xendit")

    response = _initiate(api, invoice.id, {"risk": {"customer_ip": "203.0.113.50", "device_id": "dev-bad"}})

    assert response.status_code == 402, response.content
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["code"] == "payment_blocked"
    assert [r["code"] for r in error["risk_reasons"]] == ["ip_blocked", "device_blocked"]
    assert "203.0.113" not in response.content.decode()  # the block list's entries are not echoed
    assert xendit_fake.create_requests() == []
    payment = Payment.objects.get(pk=error["payment"])
    assert (payment.status, payment.failure_code, payment.risk_score) == ("failed", "payment_blocked", 100)
    assert payment.customer_ip == "203.0.113.50" and payment.device_id == "dev-bad"
    assert not GatewayCall.objects.filter(payment=payment).exists()
    event = Event.objects.get(merchant=merchant, type="payment.blocked")
    assert event.data["id"] == payment.id and event.data["risk_score"] == 100
    assert not Event.objects.filter(merchant=merchant, type="payment.failed").exists()
    # The attempt is visible to the merchant, with its reasons.
    shown = api.get(f"/v1/payments/{payment.id}").json()
    assert shown["status"] == "failed" and shown["risk_score"] == 100 and shown["review"] is None
    assert [r["code"] for r in shown["risk_reasons"]] == ["ip_blocked", "device_blocked"]


def test_the_invoice_can_be_retried_once_the_rule_is_lifted(
    merchant, api, set_rules, xendit_account, xendit_fake
):
    set_rules(merchant, blocked_emails=["budi@example.com"])
    invoice = make_invoice(merchant, gateway="xendit")
    assert _initiate(api, invoice.id).status_code == 402
    set_rules(merchant, blocked_emails=[])
    retried = _initiate(api, invoice.id)
    assert retried.status_code == 201, retried.content
    assert retried.json()["risk_score"] == 0 and retried.json()["risk_reasons"] == []
    assert len(xendit_fake.create_requests()) == 1


def test_a_flagged_payment_proceeds_with_its_review_pending(
    merchant, api, set_rules, xendit_account, xendit_fake
):
    set_rules(merchant, amount_thresholds={"IDR": "100000"})
    invoice = make_invoice(merchant, gateway="xendit", amount="150000")
    response = _initiate(api, invoice.id)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "pending" and body["payment_url"]
    assert body["risk_score"] == 60 and body["review"] == {"status": "pending", "reviewed_at": None}
    assert len(xendit_fake.create_requests()) == 1


def test_a_flagged_manual_payment_cannot_be_captured_before_review(merchant, api, set_rules):
    from tests.payments.test_capture import _authorize_on_checkout_page

    set_rules(merchant, amount_thresholds={"IDR": "100000"})
    invoice = make_invoice(merchant, amount="150000")
    created = _initiate(api, invoice.id, {"capture_method": "manual"})
    assert created.status_code == 201, created.content
    _authorize_on_checkout_page(created.json())
    capture = api.post(f"/v1/payments/{created.json()['id']}/capture", {}, format="json")
    assert capture.status_code == 409 and capture.json()["error"]["code"] == "payment_under_review"
    assert Payment.objects.get(pk=created.json()["id"]).status == "authorized"


def test_if_the_engine_fails_the_payment_proceeds_flagged_with_50(
    merchant, api, settings, xendit_account, xendit_fake, caplog
):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # configured, and down: nothing listens there
    invoice = make_invoice(merchant, gateway="xendit")
    response = _initiate(api, invoice.id, {"risk": {"customer_ip": "198.51.100.4"}})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["risk_score"] == 50 and body["review"]["status"] == "pending"
    assert [r["code"] for r in body["risk_reasons"]] == ["risk_engine_error"]
    assert len(xendit_fake.create_requests()) == 1
    assert "risk engine failed" in caplog.text


def test_corrupt_stored_rules_are_an_engine_failure_not_a_500(
    merchant, api, set_rules, xendit_account, xendit_fake
):
    from risk.models import RiskSettings

    set_rules(merchant, blocked_ips=[])
    RiskSettings.objects.filter(merchant=merchant).update(
        blocked_ips=["not-an-ip"]
    )  # written behind the service
    response = _initiate(api, make_invoice(merchant, gateway="xendit").id)
    assert response.status_code == 201, response.content
    assert response.json()["risk_score"] == 50


def test_a_database_error_while_reading_the_rules_is_an_engine_failure_not_a_500(
    merchant, api, xendit_account, xendit_fake, monkeypatch
):
    """Any database error of the evaluation (here: reading the rules) rolls back to the risk check's savepoint, so
    the payment's own transaction goes on and the payment proceeds flagged."""
    from django.db import connection

    import risk.services

    def failing_rules(*args, **kwargs):
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1/0")

    monkeypatch.setattr(risk.services, "rules_cached", failing_rules)
    response = _initiate(api, make_invoice(merchant, gateway="xendit").id)
    assert response.status_code == 201, response.content
    assert response.json()["risk_score"] == 50
    assert len(xendit_fake.create_requests()) == 1


@pytest.mark.parametrize(
    ("risk", "param"),
    [
        ({"customer_ip": "300.1.1.1"}, "risk.customer_ip"),
        ({"customer_ip": "10.0.0.0/8"}, "risk.customer_ip"),
        ({"customer_ip": "fe80::1%eth0"}, "risk.customer_ip"),
        ({"device_id": "x" * 129}, "risk.device_id"),
        ({"device_id": ""}, "risk.device_id"),
        ({"email": "a@b.c"}, "risk.email"),
        ("198.51.100.1", "risk.non_field_errors"),
    ],
)
def test_bad_risk_input_is_a_400_and_writes_nothing(merchant, api, risk, param):
    invoice = make_invoice(merchant)
    response = _initiate(api, invoice.id, {"risk": risk})
    assert response.status_code == 400, response.content
    assert response.json()["error"]["param"] in (param, "risk")
    assert not Payment.objects.filter(invoice_id=invoice.id).exists()


def test_the_sandbox_checkout_records_the_payers_ip_through_trusted_proxies(merchant, api, settings):
    from django.test import Client

    from gateways.models import SandboxCheckoutSession

    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    invoice = make_invoice(merchant)
    created = api.post(
        f"/v1/invoices/{invoice.id}/payments", {"risk": {"customer_ip": "2001:db8::0:1"}}, format="json"
    ).json()
    assert Payment.objects.get(pk=created["id"]).customer_ip == "2001:db8::1"
    session = SandboxCheckoutSession.objects.get(payment_id=created["id"])
    path = "/" + created["payment_url"].split("://", 1)[1].split("/", 1)[1]
    response = Client().post(
        path,
        {"nonce": session.form_nonce, "action": "pay"},
        REMOTE_ADDR="10.1.2.3",
        HTTP_X_FORWARDED_FOR="192.0.2.1, 198.51.100.23",
    )
    assert response.status_code == 200
    assert Payment.objects.get(pk=created["id"]).checkout_ip == "198.51.100.23"
