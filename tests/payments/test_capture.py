"""Authorize and capture (SPEC §13, docs/adr/0047) on the sandbox: a manual payment is authorized on the hosted
checkout page (the signed notification goes through the inbound pipeline), then captured (in full or in part) or
voided through the API, or expires uncaptured through the reconciliation job. The ledger gets the hold, its
release and the payment movement, each balanced."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db.models import Sum
from django.test import Client
from django.utils import timezone

from gateways.base import CaptureRequest
from gateways.models import SandboxCheckoutSession
from gateways.registry import gateway_for_account
from ledger.models import AccountCode, Entry, Movement
from payments.models import GatewayCall, Payment
from payments.services import payment_reconcile, payments_reconcile
from tests.payments.factories import make_invoice
from tests.webhooks.inbound_support import process_all
from webhooks.outbound.models import Event

pytestmark = pytest.mark.django_db


def _initiate(api, invoice_id, body=None, **headers):
    return api.post(f"/v1/invoices/{invoice_id}/payments", body or {}, format="json", **headers)


def _checkout_path(payment: dict) -> str:
    return "/" + payment["payment_url"].split("://", 1)[1].split("/", 1)[1]


def _authorize_on_checkout_page(payment: dict) -> str:
    """The customer opens the sandbox checkout of a manual payment and presses Authorize; the notification is
    processed. Returns the page shown after the action."""
    session = SandboxCheckoutSession.objects.get(payment_id=payment["id"])
    browser = Client()
    page = browser.get(_checkout_path(payment)).content.decode()
    assert 'value="authorize"' in page and 'value="pay"' not in page  # a manual checkout only authorizes
    response = browser.post(_checkout_path(payment), {"nonce": session.form_nonce, "action": "authorize"})
    assert response.status_code == 200, response.content
    assert process_all() == ["processed"]
    return response.content.decode()


def _authorized(api, merchant, amount="150000", expires_in=timedelta(days=30)) -> tuple[dict, str]:
    invoice = make_invoice(merchant, amount=amount, expires_in=expires_in)
    created = _initiate(api, invoice.id, {"capture_method": "manual"})
    assert created.status_code == 201, created.content
    assert created.json()["capture_method"] == "manual"
    _authorize_on_checkout_page(created.json())
    return api.get(f"/v1/payments/{created.json()['id']}").json(), invoice.id


def _movements(payment_id: str) -> list[str]:
    return list(
        Movement.objects.filter(source_type="payment", source_id=payment_id)
        .order_by("created_at", "id")
        .values_list("type", flat=True)
    )


def _assert_every_movement_balances(payment_id: str) -> None:
    movements = Movement.objects.filter(source_type="payment", source_id=payment_id)
    assert movements.exists()
    for movement in movements:
        assert Entry.objects.filter(movement=movement).aggregate(s=Sum("amount_minor"))["s"] == 0, movement


def _balance(merchant, code: str) -> int:
    total = Entry.objects.filter(
        account__merchant=merchant, account__mode="test", account__currency="IDR", account__code=code
    ).aggregate(s=Sum("amount_minor"))["s"]
    return total or 0


def _events(payment_id: str) -> list[str]:
    return list(
        Event.objects.filter(data__id=payment_id).order_by("created_at", "id").values_list("type", flat=True)
    )


def test_manual_payment_is_authorized_on_the_sandbox_checkout(api, merchant, settings):
    settings.AUTHORIZATION_HOLD_DAYS = 3
    before = timezone.now()

    payment, invoice_id = _authorized(api, merchant)

    assert payment["status"] == "authorized"
    assert payment["amount_capturable"] == "150000"
    assert payment["amount_received"] == "0"
    assert payment["authorized_at"] is not None and payment["captured_at"] is None
    capture_before = Payment.objects.get(pk=payment["id"]).capture_before
    assert before + timedelta(days=3) <= capture_before <= timezone.now() + timedelta(days=3)
    session = SandboxCheckoutSession.objects.get(payment_id=payment["id"])
    assert (session.status, session.amount_authorized_minor, session.amount_paid_minor) == (
        "authorized",
        150000,
        0,
    )
    # Nothing is paid yet: the invoice still owes everything.
    invoice = api.get(f"/v1/invoices/{invoice_id}").json()
    assert (invoice["status"], invoice["amount_paid"]) == ("pending", "0")
    assert _movements(payment["id"]) == ["authorization"]
    _assert_every_movement_balances(payment["id"])
    assert _balance(merchant, AccountCode.GATEWAY_AUTHORIZED) == 150000
    assert "payment.authorized" in _events(payment["id"])
    # The sandbox's own status answer agrees, with its hold limit.
    account = Payment.objects.get(pk=payment["id"]).gateway_account
    truth = gateway_for_account(account).get_status(payment_id=payment["id"])
    assert (truth.status, truth.amount_minor) == ("authorized", 150000)
    assert truth.capture_before == session.capture_before


def test_checkout_page_of_an_automatic_payment_offers_no_authorize(api, merchant):
    invoice = make_invoice(merchant)
    payment = _initiate(api, invoice.id).json()
    session = SandboxCheckoutSession.objects.get(payment_id=payment["id"])
    page = Client().get(_checkout_path(payment)).content.decode()
    assert 'value="pay"' in page and 'value="authorize"' not in page
    refused = Client().post(_checkout_path(payment), {"nonce": session.form_nonce, "action": "authorize"})
    assert refused.status_code == 400
    session.refresh_from_db()
    assert session.status == "open"


def test_partial_capture_pays_part_of_the_invoice_and_releases_the_hold(api, merchant):
    payment, invoice_id = _authorized(api, merchant)

    response = api.post(f"/v1/payments/{payment['id']}/capture", {"amount": "100000"}, format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["amount_received"], body["amount_capturable"]) == (
        "succeeded",
        "100000",
        "0",
    )
    assert body["captured_at"] is not None and body["paid_at"] is not None
    invoice = api.get(f"/v1/invoices/{invoice_id}").json()
    assert (invoice["status"], invoice["amount_paid"]) == ("partially_paid", "100000")
    session = SandboxCheckoutSession.objects.get(payment_id=payment["id"])
    assert (session.status, session.amount_paid_minor) == ("succeeded", 100000)
    call = GatewayCall.objects.get(payment_id=payment["id"], operation="capture")
    assert call.outcome == "ok" and call.request["amount_minor"] == 100000
    # Ledger: the hold, its release (all of it, also the 50000 not captured), the captured money.
    assert _movements(payment["id"]) == ["authorization", "capture", "payment"]
    _assert_every_movement_balances(payment["id"])
    assert _balance(merchant, AccountCode.GATEWAY_AUTHORIZED) == 0
    assert _balance(merchant, AccountCode.MERCHANT_PENDING) == 0
    assert _balance(merchant, AccountCode.GATEWAY_CLEARING) == 100000
    assert _events(payment["id"])[-1] == "payment.succeeded"
    # Captured once: a second capture is refused without calling the gateway.
    again = api.post(f"/v1/payments/{payment['id']}/capture", {}, format="json")
    assert again.status_code == 409 and again.json()["error"]["code"] == "payment_not_capturable"
    assert GatewayCall.objects.filter(payment_id=payment["id"], operation="capture").count() == 1


def test_full_capture_by_default_pays_the_invoice(api, merchant):
    payment, invoice_id = _authorized(api, merchant)

    response = api.post(f"/v1/payments/{payment['id']}/capture", format="json")

    assert response.status_code == 200, response.content
    assert response.json()["amount_received"] == "150000"
    assert api.get(f"/v1/invoices/{invoice_id}").json()["status"] == "paid"


def test_capture_above_the_hold_is_422_and_changes_nothing(api, merchant):
    payment, _ = _authorized(api, merchant)

    response = api.post(f"/v1/payments/{payment['id']}/capture", {"amount": "150001"}, format="json")

    assert response.status_code == 422
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("capture_exceeds_authorized", "amount")
    stored = Payment.objects.get(pk=payment["id"])
    assert (stored.status, stored.hold_operation, stored.amount_capturable_minor) == (
        "authorized",
        "",
        150000,
    )
    assert not GatewayCall.objects.filter(payment_id=payment["id"], operation="capture").exists()


@pytest.mark.parametrize("amount", ["0", "-5", "12.5", "abc"])
def test_bad_capture_amount_is_400(api, merchant, amount):
    payment, _ = _authorized(api, merchant)
    response = api.post(f"/v1/payments/{payment['id']}/capture", {"amount": amount}, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["param"] == "amount"


def test_capture_and_void_of_a_payment_not_authorized_are_409(api, merchant):
    invoice = make_invoice(merchant)
    payment = _initiate(api, invoice.id).json()  # automatic, pending

    capture = api.post(f"/v1/payments/{payment['id']}/capture", {}, format="json")
    void = api.post(f"/v1/payments/{payment['id']}/void", format="json")

    assert capture.status_code == 409 and capture.json()["error"]["code"] == "payment_not_capturable"
    assert void.status_code == 409 and void.json()["error"]["code"] == "payment_not_voidable"


def test_another_merchants_payment_is_404(api, merchant, other_merchant, client_for):
    from tests.factories import make_api_key

    payment, _ = _authorized(api, merchant)
    _, other_key = make_api_key(other_merchant)
    other = client_for(other_key)
    assert other.post(f"/v1/payments/{payment['id']}/capture", {}, format="json").status_code == 404
    assert other.post(f"/v1/payments/{payment['id']}/void", format="json").status_code == 404


def test_void_cancels_the_authorization_and_releases_the_hold(api, merchant):
    payment, invoice_id = _authorized(api, merchant)

    response = api.post(f"/v1/payments/{payment['id']}/void", format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["amount_capturable"], body["amount_received"]) == ("canceled", "0", "0")
    assert body["canceled_at"] is not None
    assert SandboxCheckoutSession.objects.get(payment_id=payment["id"]).status == "canceled"
    assert GatewayCall.objects.get(payment_id=payment["id"], operation="void_authorization").outcome == "ok"
    assert _movements(payment["id"]) == ["authorization", "authorization_release"]
    _assert_every_movement_balances(payment["id"])
    assert _balance(merchant, AccountCode.GATEWAY_AUTHORIZED) == 0
    assert _events(payment["id"])[-1] == "payment.canceled"
    assert api.get(f"/v1/invoices/{invoice_id}").json()["amount_paid"] == "0"
    # Canceled is final: no capture, no second void.
    assert api.post(f"/v1/payments/{payment['id']}/capture", {}, format="json").status_code == 409
    assert api.post(f"/v1/payments/{payment['id']}/void", format="json").status_code == 409
    # A new payment can be initiated for the installment (canceled is not open).
    again = _initiate(api, invoice_id)
    assert again.status_code == 201 and again.json()["id"] != payment["id"]


def test_authorized_payment_is_the_open_one_for_its_installment(api, merchant):
    payment, invoice_id = _authorized(api, merchant)
    again = _initiate(api, invoice_id)
    assert again.status_code == 200 and again.json()["id"] == payment["id"]


def test_capture_honours_idempotency_key(api, merchant):
    payment, _ = _authorized(api, merchant)
    path = f"/v1/payments/{payment['id']}/capture"

    first = api.post(path, {"amount": "50000"}, format="json", HTTP_IDEMPOTENCY_KEY="cap-1")
    second = api.post(path, {"amount": "50000"}, format="json", HTTP_IDEMPOTENCY_KEY="cap-1")

    assert (first.status_code, second.status_code) == (200, 200)
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.json() == first.json()
    assert GatewayCall.objects.filter(payment_id=payment["id"], operation="capture").count() == 1


def test_hold_not_captured_in_time_expires_through_the_reconciliation_job(api, merchant):
    payment, _ = _authorized(api, merchant)
    Payment.objects.filter(pk=payment["id"]).update(capture_before=timezone.now() - timedelta(minutes=1))

    summary = payments_reconcile()

    assert summary.changed == 1
    stored = Payment.objects.get(pk=payment["id"])
    assert (stored.status, stored.amount_capturable_minor, stored.failure_code) == (
        "expired",
        0,
        "authorization_expired",
    )
    # Voided at the gateway first, so it can no longer be captured there.
    assert SandboxCheckoutSession.objects.get(payment_id=payment["id"]).status == "canceled"
    operations = list(
        GatewayCall.objects.filter(payment_id=payment["id"]).values_list("operation", flat=True)
    )
    assert operations[-2:] == ["get_status", "void_authorization"]
    assert _movements(payment["id"]) == ["authorization", "authorization_release"]
    _assert_every_movement_balances(payment["id"])
    assert _events(payment["id"])[-1] == "payment.expired"
    assert payments_reconcile().checked == 0  # expired is not open: nothing more to ask


def test_authorized_payment_within_its_hold_is_not_reconciled(api, merchant):
    payment, _ = _authorized(api, merchant)
    assert payments_reconcile().checked == 0
    assert Payment.objects.get(pk=payment["id"]).status == "authorized"


def test_capture_made_at_the_gateway_is_applied_as_a_capture(api, merchant):
    """Captured elsewhere (the gateway's dashboard; or our capture whose answer was lost): the status answer says
    SUCCEEDED with the captured amount; applied like our own capture."""
    payment, invoice_id = _authorized(api, merchant)
    stored = Payment.objects.select_related("gateway_account").get(pk=payment["id"])
    gateway_for_account(stored.gateway_account).capture(
        CaptureRequest(
            payment_id=stored.id,
            gateway_reference=stored.gateway_reference,
            amount_minor=120000,
            currency="IDR",
        )
    )

    outcome = payment_reconcile(payment_id=stored.id)

    assert outcome is not None and outcome.changed
    stored.refresh_from_db()
    assert (stored.status, stored.amount_received_minor, stored.amount_capturable_minor) == (
        "succeeded",
        120000,
        0,
    )
    assert _movements(stored.id) == ["authorization", "capture", "payment"]
    _assert_every_movement_balances(stored.id)
    assert api.get(f"/v1/invoices/{invoice_id}").json()["amount_paid"] == "120000"


def test_capture_lost_after_its_first_phase_is_settled_by_reconciliation(api, merchant):
    """A capture that marked the payment and never came back (a crash, a timeout): once the mark is stale the
    reconciliation job asks the gateway. Still authorized there: the mark is cleared and a capture may be sent."""
    payment, _ = _authorized(api, merchant)
    long_ago = timezone.now() - timedelta(minutes=5)
    Payment.objects.filter(pk=payment["id"]).update(hold_operation="capture", hold_operation_at=long_ago)
    assert payments_reconcile().checked == 1
    stored = Payment.objects.get(pk=payment["id"])
    assert (stored.status, stored.hold_operation) == ("authorized", "")
    assert api.post(f"/v1/payments/{payment['id']}/capture", {}, format="json").status_code == 200


def test_capture_while_another_is_in_flight_is_409(api, merchant):
    payment, _ = _authorized(api, merchant)
    Payment.objects.filter(pk=payment["id"]).update(
        hold_operation="capture", hold_operation_at=timezone.now()
    )

    response = api.post(f"/v1/payments/{payment['id']}/capture", {}, format="json")

    assert response.status_code == 409 and response.json()["error"]["code"] == "capture_in_progress"
    assert not GatewayCall.objects.filter(payment_id=payment["id"], operation="capture").exists()


def test_invoice_void_voids_its_authorized_payment(api, merchant):
    payment, invoice_id = _authorized(api, merchant)

    voided = api.post(f"/v1/invoices/{invoice_id}/void", format="json")

    assert voided.status_code == 200, voided.content
    # No capture once the invoice is void.
    capture = api.post(f"/v1/payments/{payment['id']}/capture", {}, format="json")
    assert capture.status_code == 409
    # The job the void deferred (payments.reconcile_payment) releases the hold at the gateway.
    payment_reconcile(payment_id=payment["id"])
    stored = Payment.objects.get(pk=payment["id"])
    assert (stored.status, stored.amount_capturable_minor) == ("canceled", 0)
    assert SandboxCheckoutSession.objects.get(payment_id=payment["id"]).status == "canceled"
    assert _movements(payment["id"]) == ["authorization", "authorization_release"]


def test_manual_capture_on_a_gateway_that_cannot_hold_is_400_and_writes_nothing(
    api, merchant, xendit_account, xendit_fake
):
    invoice = make_invoice(merchant, gateway="xendit")

    response = _initiate(api, invoice.id, {"capture_method": "manual"})

    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("capture_method_unsupported", "capture_method")
    assert not Payment.objects.filter(invoice=invoice).exists()
    assert xendit_fake.create_requests() == []
    assert api.get(f"/v1/invoices/{invoice.id}").json()["status"] == "draft"


def test_unknown_capture_method_is_400(api, merchant):
    invoice = make_invoice(merchant)
    response = _initiate(api, invoice.id, {"capture_method": "later"})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "capture_method"
    assert not Payment.objects.filter(invoice=invoice).exists()


def test_payment_admin_shows_the_hold_to_support_staff(api, merchant):
    from django.contrib.admin.utils import quote

    from apikeys.services import Actor
    from reporting.roles import staff_save

    payment, _ = _authorized(api, merchant)
    user = staff_save(
        username="support", email="support@paytrust.test", role="support", password=None, actor=Actor.system()
    ).user
    staff = Client()
    staff.force_login(user)

    listing = staff.get(
        "/admin/payments/payment/", {"status__exact": "authorized", "capture_method": "manual"}
    )
    page = staff.get(f"/admin/payments/payment/{quote(payment['id'])}/change/")

    assert listing.status_code == 200 and payment["id"] in listing.content.decode()
    assert page.status_code == 200
    html = page.content.decode()
    assert "Authorization" in html and "IDR 150,000" in html and "capturable" in html.lower()


def test_hold_never_outlives_its_invoice(api, merchant):
    invoice = make_invoice(merchant, expires_in=timedelta(hours=2))
    created = _initiate(api, invoice.id, {"capture_method": "manual"}).json()
    _authorize_on_checkout_page(created)

    stored = Payment.objects.get(pk=created["id"])
    invoice.refresh_from_db()
    assert stored.capture_before == invoice.lapses_at


def test_void_refuses_unknown_fields_and_changes_nothing(api, merchant):
    payment, _ = _authorized(api, merchant)

    response = api.post(f"/v1/payments/{payment['id']}/void", {"amount": "1000"}, format="json")

    assert response.status_code == 400 and response.json()["error"]["param"] == "amount"
    assert api.get(f"/v1/payments/{payment['id']}").json()["status"] == "authorized"
