"""Midtrans notifications: the unsigned transaction_status/fraud_status must agree with the signed status_code, and
out-of-range times are payload errors (never an OverflowError / 500). Recorded samples re-signed with a test key."""

import pytest

from gateways.base import GatewayOutcome
from gateways.midtrans import webhooks
from paytrust.errors import GatewayError, WebhookPayloadError
from tests.fakes.samples import midtrans_resign, sample, to_body
from tests.gateways.conftest import MIDTRANS_SERVER_KEY
from tests.gateways.test_midtrans import make_request

pytestmark = pytest.mark.django_db


def signed(status_code: str, **changes) -> dict:
    """The recorded card notification signed with `status_code` (changes applied BEFORE signing)."""
    return midtrans_resign(
        sample("midtrans_card_capture.json"),
        server_key=MIDTRANS_SERVER_KEY,
        status_code=status_code,
        **changes,
    )


def relabelled(data: dict, **unsigned) -> bytes:
    """`unsigned` fields rewritten AFTER signing: the signature still verifies."""
    return to_body({**data, **unsigned})


@pytest.mark.parametrize(
    ("status_code", "unsigned"),
    [
        ("201", {"transaction_status": "settlement"}),
        ("201", {"transaction_status": "capture", "fraud_status": "accept"}),
        ("201", {"transaction_status": "capture"}),  # fraud_status left as "accept"
        ("201", {"transaction_status": "refund"}),
        ("201", {"transaction_status": "partial_refund", "refund_amount": "1.00"}),
        ("202", {"transaction_status": "settlement", "fraud_status": "accept"}),
        ("407", {"transaction_status": "settlement"}),
        ("201", {"transaction_status": "SETTLEMENT"}),
        ("200", {"transaction_status": "pending"}),
        ("200", {"transaction_status": "expire"}),
        ("200", {"transaction_status": "deny"}),
        ("200", {"transaction_status": "capture", "fraud_status": "challenge"}),
    ],
)
def test_transaction_status_contradicting_the_signed_status_code_is_refused(midtrans, status_code, unsigned):
    body = relabelled(signed(status_code), **unsigned)
    midtrans.verify_webhook({}, body)  # the signature is genuine …

    with pytest.raises(WebhookPayloadError) as exc:  # … the claim it carries is not
        midtrans.parse_webhook({}, body)

    assert exc.value.code == "webhook_status_mismatch"
    assert exc.value.param == "status_code"
    assert exc.value.status_code == 400


def test_status_code_sent_as_a_json_number_is_checked_too(midtrans):
    data = signed("201", transaction_status="pending")
    data["status_code"] = 201  # field_text("201") == field_text(201): the signature still matches
    body = relabelled(data, transaction_status="settlement")
    midtrans.verify_webhook({}, body)

    with pytest.raises(WebhookPayloadError):
        midtrans.parse_webhook({}, body)


@pytest.mark.parametrize(
    ("status_code", "changes", "status"),
    [
        ("200", {"transaction_status": "settlement"}, GatewayOutcome.SUCCEEDED),
        ("200", {"transaction_status": "capture"}, GatewayOutcome.SUCCEEDED),
        ("200", {"transaction_status": "refund", "refund_amount": "10000.00"}, GatewayOutcome.REFUNDED),
        ("201", {"transaction_status": "pending"}, GatewayOutcome.PENDING),
        ("201", {"transaction_status": "capture", "fraud_status": "challenge"}, GatewayOutcome.PENDING),
        ("200", {"transaction_status": "authorize"}, GatewayOutcome.AUTHORIZED),
        ("201", {"transaction_status": "authorize"}, GatewayOutcome.AUTHORIZED),
        ("202", {"transaction_status": "deny"}, GatewayOutcome.FAILED),
        ("202", {"transaction_status": "capture", "fraud_status": "deny"}, GatewayOutcome.FAILED),
        ("202", {"transaction_status": "failure"}, GatewayOutcome.FAILED),
        ("202", {"transaction_status": "cancel"}, GatewayOutcome.FAILED),  # cancel notification
        ("200", {"transaction_status": "cancel"}, GatewayOutcome.FAILED),  # cancel API answer
        ("407", {"transaction_status": "expire"}, GatewayOutcome.EXPIRED),
        (
            "299",
            {"transaction_status": "something_new"},
            GatewayOutcome.UNKNOWN,
        ),  # never applied: not checked
    ],
)
def test_documented_status_code_combinations_are_accepted(midtrans, status_code, changes, status):
    body = to_body(signed(status_code, **changes))
    midtrans.verify_webhook({}, body)
    assert midtrans.parse_webhook({}, body).status == status


@pytest.mark.parametrize(
    "name",
    [
        "midtrans_settlement.json",
        "midtrans_card_capture.json",
        "midtrans_bca_va_settlement.json",
        "midtrans_indomaret_settlement_no_fraud_status.json",
    ],
)
def test_every_recorded_notification_passes_the_status_code_check(name):
    webhooks.check_status_code(sample(name))


@pytest.mark.parametrize(
    "changes",
    [
        {"settlement_time": "0001-01-01 00:00:00"},
        {"settlement_time": None, "transaction_time": "0001-01-01 00:00:00"},
        {"settlement_time": "9999-12-31T23:59:59-07:00"},
        {"settlement_time": "2021-13-45 99:00:00"},
    ],
)
def test_out_of_range_or_invalid_notification_times_are_payload_errors(midtrans, changes):
    body = to_body(signed("200", transaction_status="settlement", **changes))

    with pytest.raises(WebhookPayloadError) as exc:
        midtrans.parse_webhook({}, body)

    assert "time" in exc.value.message


def test_out_of_range_time_in_a_status_answer_is_a_retryable_bad_response(midtrans, midtrans_fake):
    midtrans.create_payment(make_request())
    midtrans_fake.set_status("pay_TestMidtrans001", "settlement")
    midtrans_fake.transactions["pay_TestMidtrans001"]["settlement_time"] = "0001-01-01 00:00:00"

    with pytest.raises(GatewayError) as exc:
        midtrans.get_status(payment_id="pay_TestMidtrans001")

    assert (exc.value.code, exc.value.retryable) == ("gateway_bad_response", True)


def test_fake_reports_the_state_it_was_moved_to(midtrans, midtrans_fake):
    midtrans.create_payment(make_request())
    midtrans_fake.customer_starts("pay_TestMidtrans001")
    assert midtrans.get_status(payment_id="pay_TestMidtrans001").status == GatewayOutcome.PENDING

    midtrans_fake.set_status("pay_TestMidtrans001", "settlement")
    paid = midtrans.get_status(payment_id="pay_TestMidtrans001")
    notification = midtrans_fake.notification("pay_TestMidtrans001")

    assert (paid.status, paid.amount_minor) == (GatewayOutcome.SUCCEEDED, 446599)
    midtrans.verify_webhook({}, notification)  # signed with the account's server key
    assert midtrans.parse_webhook({}, notification).status == GatewayOutcome.SUCCEEDED
