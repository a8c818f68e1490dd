"""Sandbox gateway: checkout sessions, the hosted page, each action's signed webhook through the inbound hook."""

import json
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from gateways.base import (
    CreatePaymentRequest,
    Customer,
    GatewayOutcome,
    GatewayPaymentNotFound,
    RefundRequest,
)
from gateways.models import SandboxCheckoutSession
from gateways.registry import gateway_for_account
from gateways.sandbox import webhooks as sandbox_webhooks
from paytrust.errors import GatewayError, WebhookAuthError, WebhookPayloadError
from webhooks.inbound import sandbox_checkout

pytestmark = pytest.mark.django_db


def make_request(**overrides) -> CreatePaymentRequest:
    values = dict(
        payment_id="pay_Sandbox0000000000001",
        amount_minor=150000,
        currency="IDR",
        description="Two widgets",
        expires_at=timezone.now() + timedelta(hours=1),
        customer=Customer(name="Budi", email="budi@example.com"),
        invoice_id="inv_Sandbox000000000001",
        installment_number=2,
        success_redirect_url="https://shop.example.com/ok",
        failure_redirect_url="javascript:alert(1)",
    )
    values.update(overrides)
    return CreatePaymentRequest(**values)


class Inbound:
    """A test receiver in place of the inbound pipeline: verifies every delivery the way the real ingestion will, and records it."""

    def __init__(self, fail_times: int = 0) -> None:
        self.deliveries = []
        self.fail_times = fail_times
        self.lock = threading.Lock()

    def __call__(self, account, headers, body):
        gateway = gateway_for_account(account)
        gateway.verify_webhook(headers, body)
        with self.lock:
            if self.fail_times:
                self.fail_times -= 1
                raise RuntimeError("database unavailable")
            self.deliveries.append((account.pk, headers, body, gateway.parse_webhook(headers, body)))


@pytest.fixture
def inbound(monkeypatch):
    handler = Inbound()
    monkeypatch.setattr(sandbox_checkout, "sandbox_notification_receive", handler)
    return handler


@pytest.fixture
def sandbox(sandbox_account):
    return gateway_for_account(sandbox_account)


@pytest.fixture
def checkout(sandbox):
    result = sandbox.create_payment(make_request())
    token = result.payment_url.rsplit("/", 1)[1]
    return result, token


def page(client, token):
    return client.get(f"/sandbox/checkout/{token}")


def submit(token, action, amount=None, nonce=None):
    client = Client(enforce_csrf_checks=True)  # no session, no CSRF cookie: the token-bound nonce suffices
    session = SandboxCheckoutSession.objects.get(token=token)
    data = {"action": action, "nonce": session.form_nonce if nonce is None else nonce}
    if amount is not None:
        data["amount"] = amount
    return client.post(f"/sandbox/checkout/{token}", data)


def test_create_payment_opens_a_checkout_session(sandbox, sandbox_account, settings):
    result = sandbox.create_payment(make_request())
    session = SandboxCheckoutSession.objects.get(pk=result.gateway_reference)
    assert result.payment_url == f"{settings.PUBLIC_BASE_URL}/sandbox/checkout/{session.token}"
    assert len(session.token) >= 43
    assert (session.amount_minor, session.currency, session.merchant_name) == (150000, "IDR", "Acme")
    assert result.status == GatewayOutcome.PENDING
    again = sandbox.create_payment(make_request())
    assert again.gateway_reference == result.gateway_reference
    assert SandboxCheckoutSession.objects.filter(account=sandbox_account).count() == 1


def test_sandbox_refuses_a_currency_the_account_lacks(sandbox, sandbox_account):
    sandbox_account.currencies = ["IDR"]
    with pytest.raises(GatewayError):
        sandbox.create_payment(make_request(currency="USD", amount_minor=100))


def test_checkout_page_shows_the_invoice_summary(client, checkout):
    _, token = checkout
    response = page(client, token)
    assert response.status_code == 200
    html = response.content.decode()
    assert "IDR 150,000" in html
    assert 'data-amount="150000"' in html
    assert "inv_Sandbox000000000001" in html and "Acme" in html and "Two widgets" in html
    assert 'id="installment">2<' in html
    for action in ("pay", "pay_partial", "overpay", "fail", "expire"):
        assert f'value="{action}"' in html
    assert "<script" not in html and "<link" not in html and "src=" not in html  # no external assets


def test_unknown_token_is_a_404_page(client):
    response = client.get("/sandbox/checkout/nope")
    assert response.status_code == 404
    assert b"Checkout not found" in response.content
    assert submit_raw("nope").status_code == 404


def submit_raw(token):
    return Client(enforce_csrf_checks=True).post(
        f"/sandbox/checkout/{token}", {"action": "pay", "nonce": "x"}
    )


@pytest.mark.parametrize(
    "action, amount, status, paid, notified_amount",
    [
        ("pay", None, GatewayOutcome.SUCCEEDED, 150000, 150000),
        ("pay_partial", "50000", GatewayOutcome.SUCCEEDED, 50000, 50000),
        ("overpay", "200000", GatewayOutcome.SUCCEEDED, 200000, 200000),
        ("fail", None, GatewayOutcome.FAILED, 0, 150000),
        ("expire", None, GatewayOutcome.EXPIRED, 0, 150000),
    ],
)
def test_each_action_delivers_one_correctly_signed_webhook(
    inbound, checkout, sandbox_account, action, amount, status, paid, notified_amount
):
    result, token = checkout
    response = submit(token, action, amount)
    assert response.status_code == 200, response.content
    assert b"PayTrust has received the signed gateway notification" in response.content
    assert len(inbound.deliveries) == 1
    account_id, headers, body, note = inbound.deliveries[0]
    assert account_id == sandbox_account.pk
    assert headers["X-Sandbox-Signature"].startswith("t=")
    payload = json.loads(body)
    assert payload["action"] == action
    assert payload["amount"] == str(paid)
    assert payload["requested_amount"] == "150000"
    assert (note.status, note.amount_minor, note.currency) == (status, notified_amount, "IDR")
    assert note.payment_id == "pay_Sandbox0000000000001"
    assert note.gateway_reference == result.gateway_reference
    assert note.event_id.startswith("sbxevt_")
    session = SandboxCheckoutSession.objects.get(token=token)
    assert session.amount_paid_minor == paid and session.webhook_delivered_at is not None


def test_signature_is_hmac_sha256_over_timestamp_and_body(inbound, checkout, sandbox):
    import hashlib
    import hmac

    _, token = checkout
    submit(token, "pay")
    _, headers, body, _ = inbound.deliveries[0]
    t, v1 = (part.split("=", 1)[1] for part in headers["X-Sandbox-Signature"].split(","))
    secret = sandbox.credentials["signing_secret"]
    assert v1 == hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    with pytest.raises(WebhookAuthError):
        sandbox.verify_webhook(headers, body.replace(b"150000", b"1500000"))
    with pytest.raises(WebhookAuthError):
        sandbox.verify_webhook({}, body)
    old = sandbox_webhooks.sign(secret, body, timestamp=int(time.time()) - 3600)
    with pytest.raises(WebhookAuthError):
        sandbox.verify_webhook(old, body)
    other = sandbox_webhooks.sign("sbxsec_someone_else", body)
    with pytest.raises(WebhookAuthError):
        sandbox.verify_webhook(other, body)


def test_usd_partial_payment_with_cents(inbound, sandbox):
    result = sandbox.create_payment(make_request(payment_id="pay_usd", currency="USD", amount_minor=1699))
    token = result.payment_url.rsplit("/", 1)[1]
    assert submit(token, "pay_partial", "10.50").status_code == 200
    note = inbound.deliveries[0][3]
    assert note.amount_minor == 1050 and note.currency == "USD"
    assert json.loads(inbound.deliveries[0][2])["amount"] == "10.50"


@pytest.mark.parametrize(
    "action, amount, fragment",
    [
        ("pay_partial", "150000", "less than IDR 150,000"),
        ("pay_partial", "0", "greater than zero"),
        ("pay_partial", "", "Enter an amount"),
        ("pay_partial", "12.5", "decimal places"),
        ("pay_partial", "abc", "not a decimal"),
        ("overpay", "150000", "more than IDR 150,000"),
        ("refund_me", None, "action must be one of"),
    ],
)
def test_bad_amounts_re_render_with_an_error_and_change_nothing(inbound, checkout, action, amount, fragment):
    _, token = checkout
    response = submit(token, action, amount)
    assert response.status_code == 400
    assert fragment in response.content.decode()
    assert inbound.deliveries == []
    assert SandboxCheckoutSession.objects.get(token=token).status == "open"


def test_wrong_nonce_is_refused(inbound, checkout):
    _, token = checkout
    response = submit(token, "pay", nonce="forged")
    assert response.status_code == 403
    assert inbound.deliveries == []
    assert SandboxCheckoutSession.objects.get(token=token).status == "open"


def test_expired_checkout_cannot_be_paid_but_can_expire(inbound, sandbox):
    result = sandbox.create_payment(make_request(payment_id="pay_old"))
    token = result.payment_url.rsplit("/", 1)[1]
    SandboxCheckoutSession.objects.filter(token=token).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )
    assert sandbox.get_status(payment_id="pay_old").status == GatewayOutcome.EXPIRED
    html = Client().get(f"/sandbox/checkout/{token}").content.decode()
    assert "can no longer be paid" in html and 'value="pay"' not in html
    assert submit(token, "pay").status_code == 409
    assert submit(token, "expire").status_code == 200
    assert inbound.deliveries[0][3].status == GatewayOutcome.EXPIRED


def test_undelivered_webhook_is_redelivered_with_the_same_event_on_resubmit(monkeypatch, checkout):
    handler = Inbound(fail_times=1)
    monkeypatch.setattr(sandbox_checkout, "sandbox_notification_receive", handler)
    _, token = checkout
    first = submit(token, "pay")
    assert first.status_code == 200
    assert b"did not reach PayTrust" in first.content
    session = SandboxCheckoutSession.objects.get(token=token)
    assert session.status == "succeeded" and session.webhook_delivered_at is None and session.webhook_error

    second = submit(token, "pay")
    assert b"PayTrust has received the signed gateway notification" in second.content
    assert len(handler.deliveries) == 1
    assert handler.deliveries[0][2].decode() == session.webhook_body  # same body, same event id

    third = submit(token, "fail")  # already delivered: nothing more is sent, the outcome is shown
    assert b"already completed" in third.content
    assert len(handler.deliveries) == 1


def test_outcome_page_links_only_to_safe_redirects(inbound, checkout):
    _, token = checkout
    ok = submit(token, "pay").content.decode()
    assert 'href="https://shop.example.com/ok"' in ok
    result = gateway_for_account(SandboxCheckoutSession.objects.get(token=token).account).create_payment(
        make_request(payment_id="pay_fail")
    )
    failed = submit(result.payment_url.rsplit("/", 1)[1], "fail").content.decode()
    assert "javascript:" not in failed


def test_status_expire_and_refund(sandbox, inbound):
    result = sandbox.create_payment(make_request())
    token = result.payment_url.rsplit("/", 1)[1]
    assert sandbox.get_status(payment_id="pay_Sandbox0000000000001").status == GatewayOutcome.PENDING
    submit(token, "pay")
    status = sandbox.get_status(payment_id="x", gateway_reference=result.gateway_reference)
    assert (status.status, status.amount_minor) == (GatewayOutcome.SUCCEEDED, 150000)

    def refund(refund_id, amount):
        return sandbox.refund(
            RefundRequest(
                refund_id=refund_id,
                payment_id="pay_Sandbox0000000000001",
                gateway_reference=result.gateway_reference,
                amount_minor=amount,
                currency="IDR",
            )
        )

    assert refund("ref_a", 50000).status == "succeeded"
    assert refund("ref_a", 50000).gateway_refund_reference == refund("ref_a", 50000).gateway_refund_reference
    assert (
        sandbox.get_status(payment_id="pay_Sandbox0000000000001").status == GatewayOutcome.PARTIALLY_REFUNDED
    )
    with pytest.raises(GatewayError):
        refund("ref_b", 100001)
    refund("ref_b", 100000)
    assert sandbox.get_status(payment_id="pay_Sandbox0000000000001").status == GatewayOutcome.REFUNDED

    other = sandbox.create_payment(make_request(payment_id="pay_to_cancel"))
    assert sandbox.expire_payment(payment_id="pay_to_cancel").status == GatewayOutcome.EXPIRED
    assert submit(other.payment_url.rsplit("/", 1)[1], "pay").status_code == 200  # closed: shows outcome
    assert SandboxCheckoutSession.objects.get(payment_id="pay_to_cancel").status == "expired"
    with pytest.raises(GatewayPaymentNotFound):
        sandbox.get_status(payment_id="pay_unknown")


def test_fixture_made_sandbox_account_gets_a_signing_secret_on_first_use(merchant):
    from tests.factories import GatewayAccountFactory

    account = GatewayAccountFactory(merchant=merchant)  # no credentials
    first = gateway_for_account(account)
    second = gateway_for_account(account)
    assert first.credentials["signing_secret"].startswith("sbxsec_")
    assert first.credentials == second.credentials


@pytest.mark.parametrize("body", [b"nope", b"[]", b'{"id": "x"}'])
def test_malformed_sandbox_payloads(sandbox, body):
    with pytest.raises(WebhookPayloadError):
        sandbox.parse_webhook({}, body)


@pytest.mark.django_db(transaction=True)
def test_concurrent_submissions_send_exactly_one_webhook(monkeypatch):
    from gateways.services import gateway_account_ensure_sandbox
    from tests.factories import MerchantFactory

    handler = Inbound()
    monkeypatch.setattr(sandbox_checkout, "sandbox_notification_receive", handler)
    account = gateway_account_ensure_sandbox(merchant=MerchantFactory(name="Concurrent"))
    result = gateway_for_account(account).create_payment(make_request())
    token = result.payment_url.rsplit("/", 1)[1]
    nonce = SandboxCheckoutSession.objects.get(token=token).form_nonce
    barrier = threading.Barrier(6)
    statuses = []

    def worker(action, amount):
        try:
            barrier.wait(10)
            response = Client().post(
                f"/sandbox/checkout/{token}", {"action": action, "amount": amount, "nonce": nonce}
            )
            statuses.append(response.status_code)
        finally:
            connection.close()

    actions = [
        ("pay", ""),
        ("pay_partial", "1000"),
        ("overpay", "999999"),
        ("fail", ""),
        ("pay", ""),
        ("expire", ""),
    ]
    threads = [threading.Thread(target=worker, args=a) for a in actions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert statuses == [200] * 6
    assert len(handler.deliveries) == 1
    session = SandboxCheckoutSession.objects.get(token=token)
    assert json.loads(handler.deliveries[0][2])["id"] == session.webhook_event_id


# ---- authorize and capture (docs/adr/0047) ---------------------------------------------------------------------


@pytest.fixture
def authorized(sandbox, inbound):
    """A manual-capture checkout the customer authorized on the page."""
    result = sandbox.create_payment(make_request(capture_method="manual"))
    token = result.payment_url.rsplit("/", 1)[1]
    html = page(Client(), token).content.decode()
    assert "Authorize IDR 150,000" in html and 'value="pay_partial"' not in html
    response = submit(token, "authorize")
    assert response.status_code == 200, response.content
    assert "held; the merchant captures it" in response.content.decode()
    return result


def _capture(sandbox, result, amount_minor, currency="IDR"):
    from gateways.base import CaptureRequest

    return sandbox.capture(
        CaptureRequest(
            payment_id="pay_Sandbox0000000000001",
            gateway_reference=result.gateway_reference,
            amount_minor=amount_minor,
            currency=currency,
        )
    )


def test_authorize_sends_an_authorized_notification_and_holds_the_amount(sandbox, authorized, inbound):
    (_, _, body, note) = inbound.deliveries[0]
    assert json.loads(body)["status"] == "authorized"
    assert (note.status, note.amount_minor) == (GatewayOutcome.AUTHORIZED, 150000)
    status = sandbox.get_status(payment_id="pay_Sandbox0000000000001")
    assert (status.status, status.amount_minor, status.paid_at) == (GatewayOutcome.AUTHORIZED, 150000, None)
    assert status.capture_before > timezone.now() + timedelta(days=6)


def test_manual_checkout_refuses_paying_actions(sandbox, inbound):
    result = sandbox.create_payment(make_request(capture_method="manual"))
    token = result.payment_url.rsplit("/", 1)[1]
    assert submit(token, "pay").status_code == 400
    assert SandboxCheckoutSession.objects.get(token=token).status == "open"
    assert inbound.deliveries == []


def test_partial_capture_collects_part_and_is_idempotent(sandbox, authorized):
    first = _capture(sandbox, authorized, 100000)
    again = _capture(sandbox, authorized, 100000)  # a retry after a lost answer

    assert (first.status, first.amount_minor) == (GatewayOutcome.SUCCEEDED, 100000)
    assert (again.status, again.amount_minor) == (GatewayOutcome.SUCCEEDED, 100000)
    assert first.paid_at is not None
    session = SandboxCheckoutSession.objects.get(pk=authorized.gateway_reference)
    assert (session.status, session.amount_paid_minor) == ("succeeded", 100000)
    with pytest.raises(GatewayError):
        _capture(sandbox, authorized, 50000)  # another capture of a captured hold
    with pytest.raises(GatewayError):
        sandbox.void_authorization(
            payment_id="pay_Sandbox0000000000001", gateway_reference=authorized.gateway_reference
        )


@pytest.mark.parametrize("amount, currency", [(150001, "IDR"), (100000, "USD")])
def test_capture_beyond_the_hold_or_in_another_currency_is_refused(sandbox, authorized, amount, currency):
    with pytest.raises(GatewayError) as refused:
        _capture(sandbox, authorized, amount, currency)
    assert refused.value.code == "gateway_rejected" and not refused.value.retryable
    assert SandboxCheckoutSession.objects.get(pk=authorized.gateway_reference).status == "authorized"


def test_void_releases_the_hold_and_is_idempotent(sandbox, authorized):
    reference = authorized.gateway_reference
    first = sandbox.void_authorization(payment_id="pay_Sandbox0000000000001", gateway_reference=reference)
    again = sandbox.void_authorization(payment_id="pay_Sandbox0000000000001", gateway_reference=reference)
    assert first.status == again.status == GatewayOutcome.CANCELED
    with pytest.raises(GatewayError):
        _capture(sandbox, authorized, 100000)


def test_hold_past_its_limit_reports_expired_and_cannot_be_captured(sandbox, authorized):
    SandboxCheckoutSession.objects.filter(pk=authorized.gateway_reference).update(
        capture_before=timezone.now() - timedelta(seconds=1)
    )
    assert sandbox.get_status(payment_id="pay_Sandbox0000000000001").status == GatewayOutcome.EXPIRED
    assert _capture(sandbox, authorized, 100000).status == GatewayOutcome.CANCELED
    assert SandboxCheckoutSession.objects.get(pk=authorized.gateway_reference).action == "lapse"


def test_automatic_checkout_cannot_be_captured(sandbox, checkout, inbound):
    result, token = checkout
    with pytest.raises(GatewayError):
        _capture(sandbox, result, 150000)
    assert submit(token, "authorize").status_code == 400
