"""Midtrans refunds, cancel-before-settlement, authorize / capture / void against the local fake Midtrans."""

from contextlib import contextmanager
from datetime import datetime, timedelta
from datetime import timezone as timezone_module

import pytest
from django.utils import timezone

from gateways.base import (
    CaptureRequest,
    CreatePaymentRequest,
    GatewayOutcome,
    GatewayRefundNotFound,
    RefundRequest,
    RefundStatus,
)
from paytrust.errors import GatewayError, GatewayTimeout

pytestmark = pytest.mark.django_db

ORDER = "pay_MidRefund001"
GROSS = 250000


def start(midtrans, fake, status: str, *, capture_method: str = "automatic", amount: int = GROSS) -> dict:
    midtrans.create_payment(
        CreatePaymentRequest(
            payment_id=ORDER,
            amount_minor=amount,
            currency="IDR",
            description="Invoice inv_9",
            expires_at=timezone.now() + timedelta(hours=1),
            capture_method=capture_method,
        )
    )
    return fake.customer_starts(ORDER, status=status)


def refund_request(refund_id: str, amount: int, reason: str = "damaged") -> RefundRequest:
    return RefundRequest(
        refund_id=refund_id,
        payment_id=ORDER,
        gateway_reference=ORDER,
        amount_minor=amount,
        currency="IDR",
        reason=reason,
    )


@contextmanager
def answer_lost(fake, method: str, path: str):
    """Within: the fake applies `method path` but never answers it (the other calls are answered)."""
    fake.late_requests = {(method, path)}
    try:
        yield
    finally:
        fake.late_requests = set()


def paths(fake) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in fake.requests]


# ----- refunds of settled transactions ---------------------------------------------------------------------------
def test_settled_refund_posts_refund_key_amount_and_reason_and_succeeds(midtrans, midtrans_fake):
    start(midtrans, midtrans_fake, "settlement")

    result = midtrans.refund(refund_request("ref_A1", GROSS))

    sent = midtrans_fake.requests[-1]
    assert (sent.method, sent.path) == ("POST", f"/v2/{ORDER}/refund")
    assert sent.json == {"refund_key": "ref_A1", "amount": GROSS, "reason": "damaged"}
    assert sent.header("Idempotency-Key") == "ref_A1"
    assert result.status == RefundStatus.SUCCEEDED
    assert result.amount_minor == GROSS
    assert result.gateway_refund_reference == "1"  # Midtrans' refund_chargeback_id
    assert midtrans_fake.transactions[ORDER]["transaction_status"] == "refund"


def test_get_refund_finds_our_refund_key_in_the_status_refunds_list(midtrans, midtrans_fake):
    start(midtrans, midtrans_fake, "settlement")
    midtrans.refund(refund_request("ref_B1", 50000))
    midtrans.refund(refund_request("ref_B2", 70000))

    second = midtrans.get_refund(refund_id="ref_B2", payment_id=ORDER, gateway_reference=ORDER)

    assert midtrans_fake.requests[-1].path == f"/v2/{ORDER}/status"
    assert (second.status, second.amount_minor, second.gateway_refund_reference) == (
        RefundStatus.SUCCEEDED,
        70000,
        "2",
    )
    with pytest.raises(GatewayRefundNotFound):
        midtrans.get_refund(refund_id="ref_never_sent", payment_id=ORDER, gateway_reference=ORDER)
    with pytest.raises(GatewayRefundNotFound):
        midtrans.get_refund(refund_id="ref_B1", payment_id="pay_unknown", gateway_reference="pay_unknown")


@pytest.mark.parametrize("http_errors", [False, True], ids=["code-in-body", "http-status"])
def test_duplicate_refund_key_406_returns_the_existing_refund(midtrans, midtrans_fake, http_errors):
    start(midtrans, midtrans_fake, "settlement")
    first = midtrans.refund(refund_request("ref_C1", 40000))
    midtrans_fake.http_errors = http_errors

    again = midtrans.refund(refund_request("ref_C1", 40000))

    assert [p for p in paths(midtrans_fake)[-2:]] == [
        ("POST", f"/v2/{ORDER}/refund"),
        ("GET", f"/v2/{ORDER}/status"),
    ]
    assert (again.status, again.amount_minor) == (RefundStatus.SUCCEEDED, 40000)
    assert again.gateway_refund_reference == first.gateway_refund_reference
    assert len(midtrans_fake.transactions[ORDER]["refunds"]) == 1  # refunded once


@pytest.mark.parametrize("http_errors", [False, True], ids=["code-in-body", "http-status"])
def test_invalid_amount_414_is_a_permanent_error(midtrans, midtrans_fake, http_errors):
    start(midtrans, midtrans_fake, "settlement")
    midtrans_fake.http_errors = http_errors

    with pytest.raises(GatewayError) as exc:
        midtrans.refund(refund_request("ref_D1", GROSS + 1))

    assert (exc.value.code, exc.value.retryable) == ("gateway_refund_amount_invalid", False)
    assert (
        "refunds" not in midtrans_fake.transactions[ORDER] or not midtrans_fake.transactions[ORDER]["refunds"]
    )


@pytest.mark.parametrize("state", ["expire", "deny"])
def test_412_on_a_transaction_that_cannot_be_refunded_is_refund_not_allowed(midtrans, midtrans_fake, state):
    start(midtrans, midtrans_fake, "pending")
    midtrans_fake.set_status(ORDER, state)
    midtrans_fake.http_errors = True

    with pytest.raises(GatewayError) as exc:
        midtrans.refund(refund_request("ref_E1", GROSS))

    assert (exc.value.code, exc.value.retryable) == ("gateway_refund_not_allowed", False)
    assert ("POST", f"/v2/{ORDER}/cancel") not in paths(midtrans_fake)


# ----- before settlement: cancel ---------------------------------------------------------------------------------
def test_full_refund_of_a_captured_not_settled_card_payment_is_a_cancel(midtrans, midtrans_fake):
    tx = start(midtrans, midtrans_fake, "capture")

    result = midtrans.refund(refund_request("ref_F1", GROSS))

    assert paths(midtrans_fake)[-3:] == [
        ("POST", f"/v2/{ORDER}/refund"),  # 412: refunds are for settlement only
        ("GET", f"/v2/{ORDER}/status"),
        ("POST", f"/v2/{ORDER}/cancel"),
    ]
    assert midtrans_fake.requests[-1].header("Idempotency-Key") == "cancel-ref_F1"
    assert result.status == RefundStatus.SUCCEEDED
    assert result.amount_minor == GROSS
    assert result.gateway_refund_reference == f"cancel:{tx['transaction_id']}"
    assert midtrans_fake.transactions[ORDER]["transaction_status"] == "cancel"
    # get_refund (after a lost answer) reports the cancel as the refund.
    looked_up = midtrans.get_refund(refund_id="ref_F1", payment_id=ORDER, gateway_reference=ORDER)
    assert (looked_up.status, looked_up.amount_minor) == (RefundStatus.SUCCEEDED, GROSS)


def test_partial_refund_before_settlement_is_refused_without_cancelling(midtrans, midtrans_fake):
    start(midtrans, midtrans_fake, "capture")

    with pytest.raises(GatewayError) as exc:
        midtrans.refund(refund_request("ref_G1", 1000))

    assert (exc.value.code, exc.value.retryable) == ("gateway_refund_not_allowed", False)
    assert ("POST", f"/v2/{ORDER}/cancel") not in paths(midtrans_fake)
    assert midtrans_fake.transactions[ORDER]["transaction_status"] == "capture"


def test_refund_retried_after_a_lost_cancel_answer_is_a_replay(fast_timeout, midtrans, midtrans_fake):
    start(midtrans, midtrans_fake, "capture")
    with answer_lost(midtrans_fake, "POST", f"/v2/{ORDER}/cancel"), pytest.raises(GatewayTimeout):
        midtrans.refund(refund_request("ref_H1", GROSS))
    assert midtrans_fake.transactions[ORDER]["transaction_status"] == "cancel"

    again = midtrans.refund(refund_request("ref_H1", GROSS))

    assert (again.status, again.amount_minor) == (RefundStatus.SUCCEEDED, GROSS)
    assert paths(midtrans_fake)[-1] == ("GET", f"/v2/{ORDER}/status")  # no second cancel


def settles_after(fake, method: str, path: str):
    """Route wrapper: right after answering `method path`, Midtrans settles the transaction (the D+1 batch)."""
    original = fake.route

    def route(request):
        reply = original(request)
        if (request.method, request.path) == (method, path) and fake.route is route:
            fake.route = original
            fake.set_status(ORDER, "settlement")
        return reply

    fake.route = route


def test_settled_between_the_refused_refund_and_the_status_query_is_refunded(midtrans, midtrans_fake):
    start(midtrans, midtrans_fake, "capture")
    settles_after(midtrans_fake, "POST", f"/v2/{ORDER}/refund")

    result = midtrans.refund(refund_request("ref_S1", 1000))  # partial: fine once settled

    assert paths(midtrans_fake)[-3:] == [
        ("POST", f"/v2/{ORDER}/refund"),
        ("GET", f"/v2/{ORDER}/status"),
        ("POST", f"/v2/{ORDER}/refund"),
    ]
    assert (result.status, result.amount_minor) == (RefundStatus.SUCCEEDED, 1000)
    assert midtrans_fake.transactions[ORDER]["transaction_status"] == "partial_refund"


def test_settled_before_the_cancel_is_refunded_instead(midtrans, midtrans_fake):
    start(midtrans, midtrans_fake, "capture")
    settles_after(midtrans_fake, "GET", f"/v2/{ORDER}/status")

    result = midtrans.refund(refund_request("ref_S2", GROSS))

    assert paths(midtrans_fake)[-5:] == [
        ("POST", f"/v2/{ORDER}/refund"),
        ("GET", f"/v2/{ORDER}/status"),
        ("POST", f"/v2/{ORDER}/cancel"),  # 412: settled meanwhile
        ("GET", f"/v2/{ORDER}/status"),
        ("POST", f"/v2/{ORDER}/refund"),
    ]
    assert (result.status, result.amount_minor) == (RefundStatus.SUCCEEDED, GROSS)
    assert midtrans_fake.transactions[ORDER]["transaction_status"] == "refund"


# ----- timeouts --------------------------------------------------------------------------------------------------
def test_refund_that_timed_out_but_happened_is_found_by_get_refund_and_a_retry_replays(
    fast_timeout, midtrans, midtrans_fake
):
    start(midtrans, midtrans_fake, "settlement")
    midtrans_fake.behaviour = "late"  # Midtrans refunds, its answer never arrives

    with pytest.raises(GatewayTimeout) as exc:
        midtrans.refund(refund_request("ref_I1", 30000))
    assert exc.value.retryable

    midtrans_fake.behaviour = "normal"
    found = midtrans.get_refund(refund_id="ref_I1", payment_id=ORDER, gateway_reference=ORDER)
    assert (found.status, found.amount_minor) == (RefundStatus.SUCCEEDED, 30000)
    retried = midtrans.refund(refund_request("ref_I1", 30000))  # 406 -> the same refund
    assert (retried.status, retried.amount_minor) == (RefundStatus.SUCCEEDED, 30000)
    assert len(midtrans_fake.transactions[ORDER]["refunds"]) == 1


def test_refund_that_never_arrived_is_not_found(fast_timeout, midtrans, midtrans_fake):
    start(midtrans, midtrans_fake, "settlement")
    midtrans_fake.behaviour = "timeout"  # nothing processed
    with pytest.raises(GatewayTimeout):
        midtrans.refund(refund_request("ref_J1", 30000))
    midtrans_fake.behaviour = "normal"
    with pytest.raises(GatewayRefundNotFound):
        midtrans.get_refund(refund_id="ref_J1", payment_id=ORDER, gateway_reference=ORDER)


# ----- authorize / capture / void --------------------------------------------------------------------------------
def test_manual_capture_creates_a_card_only_authorize_transaction(midtrans, midtrans_fake):
    start(midtrans, midtrans_fake, "authorize", capture_method="manual")

    snap = midtrans_fake.snaps[ORDER]["body"]
    assert snap["credit_card"] == {"type": "authorize", "secure": True}
    assert snap["enabled_payments"] == ["credit_card"]
    status = midtrans.get_status(payment_id=ORDER)
    assert (status.status, status.amount_minor) == (GatewayOutcome.AUTHORIZED, GROSS)
    assert status.paid_at is None
    authorized_at = datetime.strptime(
        midtrans_fake.transactions[ORDER]["transaction_time"], "%Y-%m-%d %H:%M:%S"
    )
    expected = authorized_at.replace(tzinfo=timezone_module(timedelta(hours=7))) + timedelta(days=7)
    assert status.capture_before == expected


def test_automatic_capture_sends_no_authorize_type(midtrans, midtrans_fake):
    start(midtrans, midtrans_fake, "pending")
    body = midtrans_fake.snaps[ORDER]["body"]
    assert "credit_card" not in body and "enabled_payments" not in body


def test_capture_posts_the_transaction_id_and_amount_and_reports_succeeded(midtrans, midtrans_fake):
    tx = start(midtrans, midtrans_fake, "authorize", capture_method="manual")

    result = midtrans.capture(
        CaptureRequest(payment_id=ORDER, gateway_reference=ORDER, amount_minor=200000, currency="IDR")
    )

    sent = midtrans_fake.requests[-1]
    assert paths(midtrans_fake)[-2:] == [("GET", f"/v2/{ORDER}/status"), ("POST", "/v2/capture")]
    assert sent.json == {"transaction_id": tx["transaction_id"], "gross_amount": 200000}
    assert (result.status, result.amount_minor) == (GatewayOutcome.SUCCEEDED, 200000)
    assert result.paid_at is not None
    assert midtrans.get_status(payment_id=ORDER).status == GatewayOutcome.SUCCEEDED

    again = midtrans.capture(
        CaptureRequest(payment_id=ORDER, gateway_reference=ORDER, amount_minor=200000, currency="IDR")
    )
    assert (again.status, again.amount_minor) == (GatewayOutcome.SUCCEEDED, 200000)
    assert paths(midtrans_fake)[-1] == ("GET", f"/v2/{ORDER}/status")  # no second capture


def test_capture_that_timed_out_is_replayed_from_the_status(fast_timeout, midtrans, midtrans_fake):
    start(midtrans, midtrans_fake, "authorize", capture_method="manual")
    with answer_lost(midtrans_fake, "POST", "/v2/capture"), pytest.raises(GatewayTimeout):
        midtrans.capture(
            CaptureRequest(payment_id=ORDER, gateway_reference=ORDER, amount_minor=GROSS, currency="IDR")
        )

    result = midtrans.capture(
        CaptureRequest(payment_id=ORDER, gateway_reference=ORDER, amount_minor=GROSS, currency="IDR")
    )
    assert (result.status, result.amount_minor) == (GatewayOutcome.SUCCEEDED, GROSS)
    assert [p for p in paths(midtrans_fake) if p == ("POST", "/v2/capture")] == [("POST", "/v2/capture")]


def test_capture_errors(midtrans, midtrans_fake):
    start(midtrans, midtrans_fake, "authorize", capture_method="manual")
    with pytest.raises(GatewayError) as exc:
        midtrans.capture(
            CaptureRequest(payment_id=ORDER, gateway_reference=ORDER, amount_minor=GROSS + 1, currency="IDR")
        )
    assert (exc.value.code, exc.value.retryable) == ("gateway_capture_amount_invalid", False)

    midtrans_fake.set_status(ORDER, "pending")
    with pytest.raises(GatewayError) as exc:
        midtrans.capture(
            CaptureRequest(payment_id=ORDER, gateway_reference=ORDER, amount_minor=GROSS, currency="IDR")
        )
    assert (exc.value.code, exc.value.retryable) == ("gateway_capture_not_allowed", False)
    assert [p for p in paths(midtrans_fake) if p == ("POST", "/v2/capture")] == [("POST", "/v2/capture")]


def test_void_cancels_an_authorization_and_a_second_void_is_a_replay(midtrans, midtrans_fake):
    start(midtrans, midtrans_fake, "authorize", capture_method="manual")

    result = midtrans.void_authorization(payment_id=ORDER, gateway_reference=ORDER)

    assert paths(midtrans_fake)[-2:] == [("GET", f"/v2/{ORDER}/status"), ("POST", f"/v2/{ORDER}/cancel")]
    assert (result.status, result.amount_minor) == (GatewayOutcome.CANCELED, GROSS)
    assert midtrans_fake.transactions[ORDER]["transaction_status"] == "cancel"
    again = midtrans.void_authorization(payment_id=ORDER, gateway_reference=ORDER)
    assert again.status == GatewayOutcome.CANCELED
    assert paths(midtrans_fake)[-1] == ("GET", f"/v2/{ORDER}/status")


def test_void_never_cancels_a_captured_transaction(midtrans, midtrans_fake):
    start(midtrans, midtrans_fake, "capture")

    with pytest.raises(GatewayError) as exc:
        midtrans.void_authorization(payment_id=ORDER, gateway_reference=ORDER)

    assert (exc.value.code, exc.value.retryable) == ("gateway_void_not_allowed", False)
    assert ("POST", f"/v2/{ORDER}/cancel") not in paths(midtrans_fake)
    assert midtrans_fake.transactions[ORDER]["transaction_status"] == "capture"
