"""Xendit adapter against a local fake Xendit (HTTP on 127.0.0.1) and the recorded callback payload."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from gateways.base import (
    CreatePaymentRequest,
    Customer,
    GatewayOutcome,
    GatewayPaymentNotFound,
    outcome_unknown,
)
from paytrust.errors import GatewayError, GatewayTimeout, WebhookAuthError, WebhookPayloadError
from tests.fakes.samples import sample_bytes
from tests.gateways.conftest import XENDIT_CALLBACK_TOKEN, XENDIT_SECRET


def make_request(**overrides) -> CreatePaymentRequest:
    values = dict(
        payment_id="pay_TestXendit0001",
        amount_minor=150000,
        currency="IDR",
        description="Invoice inv_1 installment 1",
        expires_at=timezone.now() + timedelta(hours=2),
        customer=Customer(name="Budi", email="budi@example.com", phone="+628123456789"),
        invoice_id="inv_1",
        installment_number=1,
    )
    values.update(overrides)
    return CreatePaymentRequest(**values)


pytestmark = pytest.mark.django_db


def test_create_payment_posts_invoice_with_basic_auth_and_exact_amount(xendit, xendit_fake):
    result = xendit.create_payment(make_request())

    request = xendit_fake.requests[-1]
    assert (request.method, request.path) == ("POST", "/v2/invoices")
    assert request.basic_auth == (XENDIT_SECRET, "")
    assert request.header("X-IDEMPOTENCY-KEY") == "pay_TestXendit0001"
    # amount is a JSON number in major units, written from a Decimal (no float, no quotes).
    assert b'"amount":150000,' in request.body
    assert request.json["external_id"] == "pay_TestXendit0001"
    assert request.json["currency"] == "IDR"
    assert request.json["payer_email"] == "budi@example.com"
    assert request.json["customer"] == {
        "given_names": "Budi",
        "email": "budi@example.com",
        "mobile_number": "+628123456789",
    }
    assert 7000 < request.json["invoice_duration"] <= 7200
    assert result.gateway_reference in xendit_fake.invoices
    assert result.payment_url.endswith(result.gateway_reference)
    assert result.status == GatewayOutcome.PENDING
    assert result.expires_at is not None and result.expires_at.tzinfo is not None


def test_usd_amount_is_sent_with_cents_as_an_exact_number(xendit, xendit_fake):
    xendit.create_payment(make_request(payment_id="pay_usd", amount_minor=1699, currency="USD"))
    assert b'"amount":16.99,' in xendit_fake.requests[-1].body


def test_create_is_idempotent_per_payment_id(xendit, xendit_fake):
    first = xendit.create_payment(make_request())
    second = xendit.create_payment(make_request())
    assert first.gateway_reference == second.gateway_reference
    assert len(xendit_fake.invoices) == 1


def test_get_status_maps_paid_by_reference_and_by_external_id(xendit, xendit_fake):
    created = xendit.create_payment(make_request())
    assert xendit.get_status(
        payment_id="pay_TestXendit0001", gateway_reference=created.gateway_reference
    ).status == (GatewayOutcome.PENDING)
    xendit_fake.mark_paid(created.gateway_reference)

    by_ref = xendit.get_status(payment_id="pay_TestXendit0001", gateway_reference=created.gateway_reference)
    by_id = xendit.get_status(payment_id="pay_TestXendit0001")  # after a create timeout: no reference yet
    for result in (by_ref, by_id):
        assert result.status == GatewayOutcome.SUCCEEDED
        assert result.amount_minor == 150000
        assert result.paid_at is not None
        assert result.gateway_reference == created.gateway_reference


def test_get_status_of_a_payment_xendit_never_saw_is_not_found(xendit):
    with pytest.raises(GatewayPaymentNotFound) as exc:
        xendit.get_status(payment_id="pay_never_created")
    assert exc.value.retryable is False
    with pytest.raises(GatewayPaymentNotFound):
        xendit.get_status(payment_id="pay_x", gateway_reference="000000000000000000000000")


def test_expire_payment_calls_expire_bang_and_reports_expired(xendit, xendit_fake):
    created = xendit.create_payment(make_request())
    result = xendit.expire_payment(
        payment_id="pay_TestXendit0001", gateway_reference=created.gateway_reference
    )
    assert xendit_fake.requests[-1].path == f"/invoices/{created.gateway_reference}/expire!"
    assert result.status == GatewayOutcome.EXPIRED


def test_expiring_a_paid_invoice_reports_it_paid(xendit, xendit_fake):
    created = xendit.create_payment(make_request())
    xendit_fake.mark_paid(created.gateway_reference)
    result = xendit.expire_payment(
        payment_id="pay_TestXendit0001", gateway_reference=created.gateway_reference
    )
    assert result.status == GatewayOutcome.SUCCEEDED


def test_timeout_raises_retryable_gateway_timeout(xendit, xendit_fake, fast_timeout):
    from gateways.registry import gateway_for_account

    gateway = gateway_for_account(xendit.account)  # picks up the short timeout
    xendit_fake.behaviour = "timeout"
    with pytest.raises(GatewayTimeout) as exc:
        gateway.create_payment(make_request())
    assert exc.value.retryable is True
    assert exc.value.status_code == 504
    assert outcome_unknown(exc.value)


def test_http_500_is_a_retryable_gateway_error(xendit, xendit_fake):
    xendit_fake.behaviour = "error500"
    with pytest.raises(GatewayError) as exc:
        xendit.create_payment(make_request())
    assert exc.value.retryable is True
    assert exc.value.code == "gateway_server_error"
    assert exc.value.status_code == 502
    assert "Internal server error" in exc.value.message
    assert outcome_unknown(exc.value)


def test_garbage_answer_is_a_gateway_error(xendit, xendit_fake):
    xendit_fake.behaviour = "garbage"
    with pytest.raises(GatewayError) as exc:
        xendit.create_payment(make_request())
    assert exc.value.code == "gateway_bad_response"
    assert outcome_unknown(exc.value)


def test_wrong_secret_key_is_a_permanent_authentication_error(xendit_account, xendit_fake):
    from gateways import services
    from gateways.registry import gateway_for_account

    services.gateway_account_update(
        account=xendit_account, credentials={"secret_key": "xnd_development_wrongwrongwrongwrong"}
    )
    xendit_account.refresh_from_db()
    with pytest.raises(GatewayError) as exc:
        gateway_for_account(xendit_account).create_payment(make_request())
    assert exc.value.retryable is False
    assert exc.value.code == "gateway_authentication_failed"
    assert "INVALID_API_KEY" in exc.value.message
    assert not outcome_unknown(exc.value)


def test_secret_never_appears_in_error_messages(xendit, xendit_fake):
    xendit_fake.behaviour = "error500"
    with pytest.raises(GatewayError) as exc:
        xendit.create_payment(make_request())
    assert XENDIT_SECRET not in str(exc.value) and XENDIT_SECRET not in repr(xendit)


# ----- callbacks --------------------------------------------------------------------------------------------


def test_paid_callback_with_the_right_token_verifies_and_parses(xendit):
    body = sample_bytes("xendit_invoice_paid.json")
    xendit.verify_webhook({"X-Callback-Token": XENDIT_CALLBACK_TOKEN}, body)
    note = xendit.parse_webhook({}, body)
    assert note.payment_id == "testing-invoice"
    assert note.gateway_reference == "593f4ed1c3d3bb7f39733d83"
    assert note.status == GatewayOutcome.SUCCEEDED
    assert note.amount_minor == 2000000
    assert note.currency == "IDR"
    assert note.occurred_at.isoformat() == "2020-01-14T02:32:50.912000+00:00"
    assert note.event_id == "593f4ed1c3d3bb7f39733d83:PAID:2020-01-14T02:32:50.912Z"


def test_callback_with_a_wrong_token_is_rejected(xendit):
    with pytest.raises(WebhookAuthError) as exc:
        xendit.verify_webhook({"x-callback-token": "not-the-token"}, sample_bytes("xendit_invoice_paid.json"))
    assert exc.value.status_code == 401


def test_callback_without_a_token_is_rejected(xendit):
    with pytest.raises(WebhookAuthError) as exc:
        xendit.verify_webhook({}, sample_bytes("xendit_invoice_paid.json"))
    assert exc.value.code == "webhook_signature_missing"


def test_same_status_change_has_the_same_event_id_and_a_later_one_differs(xendit):
    paid = json.loads(sample_bytes("xendit_invoice_paid.json"))
    settled = {**paid, "status": "SETTLED", "updated": "2020-01-15T00:00:00.000Z"}
    first = xendit.parse_webhook({}, json.dumps(paid).encode())
    again = xendit.parse_webhook({}, json.dumps(paid).encode())
    later = xendit.parse_webhook({}, json.dumps(settled).encode())
    assert first.event_id == again.event_id
    assert later.event_id != first.event_id
    assert later.status == GatewayOutcome.SUCCEEDED


def test_expired_callback_maps_to_expired(xendit):
    paid = json.loads(sample_bytes("xendit_invoice_paid.json"))
    expired = {k: v for k, v in paid.items() if k not in ("paid_amount", "paid_at")}
    expired.update(status="EXPIRED", updated="2020-01-14T05:00:00.000Z")
    note = xendit.parse_webhook({}, json.dumps(expired).encode())
    assert note.status == GatewayOutcome.EXPIRED
    assert note.event_id.endswith(":EXPIRED:2020-01-14T05:00:00.000Z")


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", b'{"id": "x"}', b'{"id":"a","external_id":"b","status":"PAID","currency":"IDR"}'],
)
def test_malformed_callbacks_raise_payload_error(xendit, body):
    with pytest.raises(WebhookPayloadError) as exc:
        xendit.parse_webhook({}, body)
    assert exc.value.status_code == 400
