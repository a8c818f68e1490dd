"""Midtrans adapter against a local fake Midtrans and the recorded notifications (re-signed with a test key)."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from gateways.base import (
    CreatePaymentRequest,
    Customer,
    GatewayOutcome,
    GatewayPaymentNotFound,
    RefundRequest,
    RefundStatus,
)
from gateways.midtrans import client as midtrans_client
from gateways.registry import gateway_for_account
from paytrust.errors import GatewayError, GatewayTimeout, WebhookAuthError, WebhookPayloadError
from tests.fakes.samples import midtrans_resign, sample, to_body
from tests.gateways.conftest import MIDTRANS_SERVER_KEY

pytestmark = pytest.mark.django_db


def make_request(**overrides) -> CreatePaymentRequest:
    values = dict(
        payment_id="pay_TestMidtrans001",
        amount_minor=446599,
        currency="IDR",
        description="Invoice inv_2",
        expires_at=timezone.now() + timedelta(hours=3),
        customer=Customer(name="Siti", email="siti@example.com", phone="+628111"),
        invoice_id="inv_2",
        installment_number=2,
        success_redirect_url="https://shop.example.com/thanks",
    )
    values.update(overrides)
    return CreatePaymentRequest(**values)


def test_snap_create_sends_order_id_integer_gross_amount_and_basic_auth(midtrans, midtrans_fake, settings):
    result = midtrans.create_payment(make_request())

    request = midtrans_fake.requests[-1]
    assert (request.method, request.path) == ("POST", "/snap/v1/transactions")
    assert request.basic_auth == (MIDTRANS_SERVER_KEY, "")
    assert b'"gross_amount":446599}' in request.body
    assert request.json["transaction_details"]["order_id"] == "pay_TestMidtrans001"
    assert request.json["customer_details"] == {
        "first_name": "Siti",
        "email": "siti@example.com",
        "phone": "+628111",
    }
    assert request.json["expiry"]["unit"] == "minute" and 170 < request.json["expiry"]["duration"] <= 180
    assert request.json["expiry"]["start_time"].endswith("+0700")
    assert request.json["callbacks"] == {"finish": "https://shop.example.com/thanks"}
    assert request.header("X-Override-Notification") == (
        f"{settings.PUBLIC_BASE_URL}/v1/webhooks/midtrans/{midtrans.account.pk}"
    )
    snap = midtrans_fake.snaps["pay_TestMidtrans001"]
    assert result.payment_url == snap["redirect_url"]
    assert result.gateway_reference == "pay_TestMidtrans001"
    assert result.status == GatewayOutcome.PENDING


def test_non_idr_payment_is_refused_without_calling_midtrans(midtrans, midtrans_fake):
    with pytest.raises(GatewayError) as exc:
        midtrans.create_payment(make_request(currency="USD", amount_minor=1000))
    assert exc.value.retryable is False
    assert midtrans_fake.requests == []


def test_reused_order_id_is_a_permanent_rejection(midtrans, midtrans_fake):
    midtrans.create_payment(make_request())
    midtrans_fake._idempotency.clear()  # Idempotency-Key forgotten (Midtrans keeps them 5 minutes)
    with pytest.raises(GatewayError) as exc:
        midtrans.create_payment(make_request())
    assert exc.value.code == "gateway_rejected"
    assert "sudah digunakan" in exc.value.message


def test_status_before_the_customer_pays_is_not_found(midtrans):
    midtrans.create_payment(make_request())
    with pytest.raises(GatewayPaymentNotFound):
        midtrans.get_status(payment_id="pay_TestMidtrans001")


def test_status_after_settlement_is_succeeded(midtrans, midtrans_fake):
    midtrans.create_payment(make_request())
    midtrans_fake.customer_starts("pay_TestMidtrans001", status="settlement")
    result = midtrans.get_status(payment_id="pay_TestMidtrans001")
    assert midtrans_fake.requests[-1].path == "/v2/pay_TestMidtrans001/status"
    assert result.status == GatewayOutcome.SUCCEEDED
    assert result.amount_minor == 446599
    assert result.paid_at is not None


def test_expire_pending_transaction(midtrans, midtrans_fake):
    midtrans.create_payment(make_request())
    midtrans_fake.customer_starts("pay_TestMidtrans001", status="pending")
    result = midtrans.expire_payment(payment_id="pay_TestMidtrans001")
    assert result.status == GatewayOutcome.EXPIRED


def test_expiring_a_settled_transaction_reports_it_succeeded(midtrans, midtrans_fake):
    midtrans.create_payment(make_request())
    midtrans_fake.customer_starts("pay_TestMidtrans001", status="settlement")
    assert midtrans.expire_payment(payment_id="pay_TestMidtrans001").status == GatewayOutcome.SUCCEEDED


def test_refund_partial_then_rest_then_too_much(midtrans, midtrans_fake):
    midtrans.create_payment(make_request())
    midtrans_fake.customer_starts("pay_TestMidtrans001", status="settlement")

    def refund(refund_id, amount):
        return midtrans.refund(
            RefundRequest(
                refund_id=refund_id,
                payment_id="pay_TestMidtrans001",
                gateway_reference="pay_TestMidtrans001",
                amount_minor=amount,
                currency="IDR",
                reason="customer asked",
            )
        )

    first = refund("ref_1", 100000)
    assert first.status == RefundStatus.SUCCEEDED
    assert midtrans_fake.requests[-1].json == {
        "refund_key": "ref_1",
        "amount": 100000,
        "reason": "customer asked",
    }
    assert midtrans_fake.transactions["pay_TestMidtrans001"]["transaction_status"] == "partial_refund"
    replay = refund("ref_1", 100000)  # the same refund key again: Midtrans says 406, the refund is looked up
    assert (replay.status, replay.amount_minor) == (RefundStatus.SUCCEEDED, 100000)
    assert replay.gateway_refund_reference == first.gateway_refund_reference
    with pytest.raises(GatewayError) as exc:
        refund("ref_3", 400000)  # more than what is left
    assert exc.value.retryable is False and exc.value.code == "gateway_refund_amount_invalid"
    refund("ref_2", 346599)
    assert midtrans_fake.transactions["pay_TestMidtrans001"]["transaction_status"] == "refund"


def test_sandbox_and_production_base_urls_follow_the_account_mode(settings):
    settings.MIDTRANS_API_BASE = ""
    settings.MIDTRANS_SNAP_BASE = ""
    assert midtrans_client.api_base(production=False) == "https://api.sandbox.midtrans.com"
    assert midtrans_client.snap_base(production=False) == "https://app.sandbox.midtrans.com/snap/v1"
    assert midtrans_client.api_base(production=True) == "https://api.midtrans.com"
    assert midtrans_client.snap_base(production=True) == "https://app.midtrans.com/snap/v1"
    settings.MIDTRANS_API_BASE = "http://fake"
    assert midtrans_client.api_base(production=True) == "http://fake"


def test_timeout_500_garbage_and_401(midtrans, midtrans_fake, midtrans_account, fast_timeout):
    gateway = gateway_for_account(midtrans_account)
    midtrans_fake.behaviour = "timeout"
    with pytest.raises(GatewayTimeout):
        gateway.create_payment(make_request(payment_id="pay_a"))
    midtrans_fake.behaviour = "error500"
    with pytest.raises(GatewayError) as exc:
        gateway.get_status(payment_id="pay_a")
    assert exc.value.retryable and exc.value.code == "gateway_server_error"
    midtrans_fake.behaviour = "garbage"
    with pytest.raises(GatewayError) as exc:
        gateway.create_payment(make_request(payment_id="pay_b"))
    assert exc.value.retryable and exc.value.code == "gateway_bad_response"
    midtrans_fake.behaviour = "normal"
    midtrans_fake.server_key = "SB-Mid-server-somebodyelse"
    with pytest.raises(GatewayError) as exc:
        gateway.create_payment(make_request(payment_id="pay_c"))
    assert not exc.value.retryable and exc.value.code == "gateway_authentication_failed"
    assert "Access denied" in exc.value.message


# ----- notifications -----------------------------------------------------------------------------------------


def resigned(name: str, **changes) -> bytes:
    return to_body(midtrans_resign(sample(name), server_key=MIDTRANS_SERVER_KEY, **changes))


@pytest.mark.parametrize(
    "name, status, amount",
    [
        ("midtrans_settlement.json", GatewayOutcome.SUCCEEDED, 154600),
        ("midtrans_card_capture.json", GatewayOutcome.SUCCEEDED, 10000),
        ("midtrans_bca_va_settlement.json", GatewayOutcome.SUCCEEDED, 100000),
        ("midtrans_indomaret_settlement_no_fraud_status.json", GatewayOutcome.SUCCEEDED, 336000),
    ],
)
def test_recorded_notifications_resigned_verify_and_map(midtrans, name, status, amount):
    body = resigned(name)
    midtrans.verify_webhook({}, body)
    note = midtrans.parse_webhook({}, body)
    raw = sample(name)
    assert note.status == status
    assert note.amount_minor == amount
    assert note.payment_id == raw["order_id"] == note.gateway_reference
    assert note.event_id.startswith(f"{raw['transaction_id']}:{raw['transaction_status']}:")
    assert note.occurred_at.tzinfo is not None


def test_settlement_time_is_converted_from_jakarta_time_to_utc(midtrans):
    note = midtrans.parse_webhook({}, resigned("midtrans_settlement.json"))
    assert note.occurred_at.isoformat() == "2021-06-15T11:45:28+00:00"  # 18:45:28 WIB
    assert note.event_id == "513f1f01-c9da-474c-9fc9-d5c64364b709:settlement:2021-06-15 18:45:28"


@pytest.mark.parametrize(
    "changes, status",
    [
        ({"transaction_status": "deny", "status_code": "202"}, GatewayOutcome.FAILED),
        ({"transaction_status": "cancel"}, GatewayOutcome.FAILED),
        ({"transaction_status": "failure", "status_code": "202"}, GatewayOutcome.FAILED),
        ({"transaction_status": "expire", "status_code": "407"}, GatewayOutcome.EXPIRED),
        ({"transaction_status": "pending", "status_code": "201"}, GatewayOutcome.PENDING),
        ({"transaction_status": "PENDING", "status_code": "201"}, GatewayOutcome.PENDING),
        (
            {"transaction_status": "capture", "fraud_status": "challenge", "status_code": "201"},
            GatewayOutcome.PENDING,
        ),
        (
            {"transaction_status": "capture", "fraud_status": "deny", "status_code": "202"},
            GatewayOutcome.FAILED,
        ),
        ({"transaction_status": "SETTLEMENT"}, GatewayOutcome.SUCCEEDED),
        ({"transaction_status": "authorize"}, GatewayOutcome.AUTHORIZED),
        (
            {"transaction_status": "partial_refund", "refund_amount": "4000.00"},
            GatewayOutcome.PARTIALLY_REFUNDED,
        ),
        ({"transaction_status": "something_new"}, GatewayOutcome.UNKNOWN),
    ],
)
def test_status_mapping(midtrans, changes, status):
    body = resigned("midtrans_card_capture.json", **changes)
    midtrans.verify_webhook({}, body)
    assert midtrans.parse_webhook({}, body).status == status


def test_two_partial_refunds_are_distinct_events(midtrans):
    first = midtrans.parse_webhook(
        {},
        resigned("midtrans_card_capture.json", transaction_status="partial_refund", refund_amount="3000.00"),
    )
    second = midtrans.parse_webhook(
        {},
        resigned("midtrans_card_capture.json", transaction_status="partial_refund", refund_amount="5000.00"),
    )
    assert first.event_id != second.event_id
    assert second.refunded_amount_minor == 5000


def test_partial_refunds_reported_only_by_their_refunds_list_are_distinct_events(midtrans):
    """Found by review: without `refund_amount`, two partial refunds had the same event id (the second was dropped
    as a duplicate)."""
    first = midtrans.parse_webhook(
        {},
        resigned(
            "midtrans_card_capture.json",
            transaction_status="partial_refund",
            refunds=[{"refund_amount": "3000.00"}],
        ),
    )
    second = midtrans.parse_webhook(
        {},
        resigned(
            "midtrans_card_capture.json",
            transaction_status="partial_refund",
            refunds=[{"refund_amount": "3000.00"}, {"refund_amount": "2000.00"}],
        ),
    )
    assert first.event_id != second.event_id
    assert (first.refund.total_minor, second.refund.total_minor) == (3000, 5000)


def test_a_chargeback_after_a_partial_refund_takes_back_the_whole_payment(midtrans):
    """Found by review: a full chargeback listing only the earlier 3,000 refund recorded nothing more."""
    notification = midtrans.parse_webhook(
        {},
        resigned(
            "midtrans_card_capture.json",
            transaction_status="chargeback",
            refunds=[{"refund_amount": "3000.00"}],
        ),
    )
    assert notification.refund.chargeback is True
    assert notification.refund.total_minor == notification.amount_minor  # the gross, not the list's 3,000


def test_published_signature_with_unknown_key_is_rejected(midtrans):
    with pytest.raises(WebhookAuthError):
        midtrans.verify_webhook({}, to_body(sample("midtrans_settlement.json")))


def test_forged_amount_breaks_the_signature(midtrans):
    data = midtrans_resign(sample("midtrans_settlement.json"), server_key=MIDTRANS_SERVER_KEY)
    data["gross_amount"] = "1546000.00"
    with pytest.raises(WebhookAuthError):
        midtrans.verify_webhook({}, to_body(data))


def test_gross_amount_must_be_used_exactly_as_received(midtrans):
    data = midtrans_resign(sample("midtrans_settlement.json"), server_key=MIDTRANS_SERVER_KEY)
    data["gross_amount"] = "154600"  # same money, different text: the signature no longer matches
    with pytest.raises(WebhookAuthError):
        midtrans.verify_webhook({}, to_body(data))


def test_missing_signature_is_rejected(midtrans):
    data = sample("midtrans_settlement.json")
    del data["signature_key"]
    with pytest.raises(WebhookAuthError) as exc:
        midtrans.verify_webhook({}, to_body(data))
    assert exc.value.code == "webhook_signature_missing"


@pytest.mark.parametrize("body", [b"{not json", b'"a string"', json.dumps({"order_id": "x"}).encode()])
def test_malformed_notifications(midtrans, body):
    with pytest.raises((WebhookPayloadError, WebhookAuthError)):
        midtrans.verify_webhook({}, body)
    with pytest.raises(WebhookPayloadError):
        midtrans.parse_webhook({}, body)
