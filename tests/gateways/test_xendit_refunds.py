"""Xendit refunds through the Refund API, against the local fake Xendit."""

from datetime import timedelta

import pytest
from django.utils import timezone

from gateways.base import (
    CreatePaymentRequest,
    GatewayPaymentNotFound,
    GatewayRefundNotFound,
    RefundRequest,
    RefundStatus,
)
from gateways.xendit.refunds import xendit_reason
from paytrust.errors import GatewayError, GatewayTimeout
from tests.gateways.conftest import XENDIT_SECRET

pytestmark = pytest.mark.django_db

PAYMENT = "pay_XenRefund001"


def paid_invoice(xendit, fake, amount_minor: int = 200000) -> str:
    created = xendit.create_payment(
        CreatePaymentRequest(
            payment_id=PAYMENT,
            amount_minor=amount_minor,
            currency="IDR",
            description="Invoice inv_7",
            expires_at=timezone.now() + timedelta(hours=1),
        )
    )
    fake.mark_paid(created.gateway_reference)
    return created.gateway_reference


def refund_request(invoice_id: str, refund_id: str, amount: int, reason: str = "requested by customer"):
    return RefundRequest(
        refund_id=refund_id,
        payment_id=PAYMENT,
        gateway_reference=invoice_id,
        amount_minor=amount,
        currency="IDR",
        reason=reason,
    )


def test_refund_posts_the_documented_body_with_the_idempotency_key_and_is_pending(xendit, xendit_fake):
    invoice_id = paid_invoice(xendit, xendit_fake)

    result = xendit.refund(refund_request(invoice_id, "ref_X1", 50000))

    sent = xendit_fake.requests[-1]
    assert (sent.method, sent.path) == ("POST", "/refunds")
    assert sent.basic_auth == (XENDIT_SECRET, "")
    assert sent.header("idempotency-key") == "ref_X1"
    assert b'"amount":50000,' in sent.body  # an exact JSON number in major units
    assert sent.json == {
        "invoice_id": invoice_id,
        "reference_id": "ref_X1",
        "amount": 50000,
        "currency": "IDR",
        "reason": "REQUESTED_BY_CUSTOMER",
        "metadata": {
            "paytrust_refund_id": "ref_X1",
            "paytrust_payment_id": PAYMENT,
            "reason_text": "requested by customer",
        },
    }
    refund_xid = next(iter(xendit_fake.refunds))
    assert result.status == RefundStatus.PENDING
    assert (result.gateway_refund_reference, result.amount_minor) == (refund_xid, 50000)


def test_pending_refund_later_succeeds_by_id_and_by_reference(xendit, xendit_fake):
    invoice_id = paid_invoice(xendit, xendit_fake)
    pending = xendit.refund(refund_request(invoice_id, "ref_X2", 80000))
    xendit_fake.settle_refund(pending.gateway_refund_reference, status="SUCCEEDED")

    by_id = xendit.get_refund(
        refund_id="ref_X2",
        payment_id=PAYMENT,
        gateway_reference=invoice_id,
        gateway_refund_reference=pending.gateway_refund_reference,
    )
    assert xendit_fake.requests[-1].path == f"/refunds/{pending.gateway_refund_reference}"
    by_reference = xendit.get_refund(refund_id="ref_X2", payment_id=PAYMENT, gateway_reference=invoice_id)
    assert xendit_fake.requests[-1].query["invoice_id"] == [invoice_id]

    for result in (by_id, by_reference):
        assert (result.status, result.amount_minor) == (RefundStatus.SUCCEEDED, 80000)
        assert result.gateway_refund_reference == pending.gateway_refund_reference


def test_failed_refund_reports_xendits_failure_code(xendit, xendit_fake):
    invoice_id = paid_invoice(xendit, xendit_fake)
    pending = xendit.refund(refund_request(invoice_id, "ref_X3", 80000))
    xendit_fake.settle_refund(
        pending.gateway_refund_reference, status="FAILED", failure_code="INSUFFICIENT_BALANCE"
    )

    result = xendit.get_refund(refund_id="ref_X3", payment_id=PAYMENT, gateway_reference=invoice_id)

    assert result.status == RefundStatus.FAILED
    assert result.failure_message == "INSUFFICIENT_BALANCE"


def test_a_refund_reported_succeeded_at_once_is_succeeded(xendit, xendit_fake):
    invoice_id = paid_invoice(xendit, xendit_fake)
    xendit_fake.refund_initial_status = "SUCCEEDED"
    assert xendit.refund(refund_request(invoice_id, "ref_X4", 1000)).status == RefundStatus.SUCCEEDED


def test_reused_idempotency_key_409_returns_the_existing_refund(xendit, xendit_fake):
    invoice_id = paid_invoice(xendit, xendit_fake)
    first = xendit.refund(refund_request(invoice_id, "ref_X5", 60000))

    again = xendit.refund(refund_request(invoice_id, "ref_X5", 60000))

    assert [(r.method, r.path) for r in xendit_fake.requests[-2:]] == [
        ("POST", "/refunds"),
        ("GET", "/refunds"),
    ]
    assert again.gateway_refund_reference == first.gateway_refund_reference
    assert (again.status, again.amount_minor) == (RefundStatus.PENDING, 60000)
    assert len(xendit_fake.refunds) == 1


def test_refund_that_timed_out_but_happened_is_found_and_a_retry_replays(fast_timeout, xendit, xendit_fake):
    invoice_id = paid_invoice(xendit, xendit_fake)
    xendit_fake.behaviour = "late"
    with pytest.raises(GatewayTimeout):
        xendit.refund(refund_request(invoice_id, "ref_X6", 70000))
    xendit_fake.behaviour = "normal"

    found = xendit.get_refund(refund_id="ref_X6", payment_id=PAYMENT, gateway_reference=invoice_id)
    retried = xendit.refund(refund_request(invoice_id, "ref_X6", 70000))

    assert found.gateway_refund_reference == retried.gateway_refund_reference
    assert (retried.status, retried.amount_minor) == (RefundStatus.PENDING, 70000)
    assert len(xendit_fake.refunds) == 1


def test_refund_that_never_arrived_is_not_found(fast_timeout, xendit, xendit_fake):
    invoice_id = paid_invoice(xendit, xendit_fake)
    xendit_fake.behaviour = "timeout"
    with pytest.raises(GatewayTimeout):
        xendit.refund(refund_request(invoice_id, "ref_X7", 70000))
    xendit_fake.behaviour = "normal"

    with pytest.raises(GatewayRefundNotFound):
        xendit.get_refund(refund_id="ref_X7", payment_id=PAYMENT, gateway_reference=invoice_id)
    with pytest.raises(GatewayRefundNotFound):
        xendit.get_refund(
            refund_id="ref_X7",
            payment_id=PAYMENT,
            gateway_reference=invoice_id,
            gateway_refund_reference="rfd-00000000-0000-0000-0000-000000000000",
        )


def test_lookup_by_reference_pages_through_the_invoices_refunds(xendit, xendit_fake):
    invoice_id = paid_invoice(xendit, xendit_fake, amount_minor=500000)
    for n in range(105):
        xendit.refund(refund_request(invoice_id, f"ref_P{n:03d}", 1000))

    last = xendit.get_refund(refund_id="ref_P104", payment_id=PAYMENT, gateway_reference=invoice_id)

    assert last.amount_minor == 1000 and last.raw["reference_id"] == "ref_P104"
    listing = [r for r in xendit_fake.requests if (r.method, r.path) == ("GET", "/refunds")]
    assert len(listing) == 2 and listing[1].query["after_id"] == [listing_last_id(xendit_fake, 99)]


def listing_last_id(fake, index: int) -> str:
    return list(fake.refunds)[index]


def test_get_refund_without_invoice_id_finds_the_invoice_by_payment_id(xendit, xendit_fake):
    invoice_id = paid_invoice(xendit, xendit_fake)
    xendit.refund(refund_request(invoice_id, "ref_X8", 5000))

    result = xendit.get_refund(refund_id="ref_X8", payment_id=PAYMENT, gateway_reference="")

    assert result.amount_minor == 5000
    with pytest.raises(GatewayRefundNotFound):
        xendit.get_refund(refund_id="ref_X8", payment_id="pay_unknown", gateway_reference="")


def test_more_than_what_is_left_is_refund_amount_invalid(xendit, xendit_fake):
    invoice_id = paid_invoice(xendit, xendit_fake)
    xendit.refund(refund_request(invoice_id, "ref_X9", 150000))
    with pytest.raises(GatewayError) as exc:
        xendit.refund(refund_request(invoice_id, "ref_X10", 50001))
    assert (exc.value.code, exc.value.retryable) == ("gateway_refund_amount_invalid", False)
    assert "MAXIMUM_REFUND_AMOUNT_REACHED" in exc.value.message


def test_unpaid_invoice_is_refund_not_allowed(xendit, xendit_fake):
    created = xendit.create_payment(
        CreatePaymentRequest(
            payment_id=PAYMENT,
            amount_minor=10000,
            currency="IDR",
            description="x",
            expires_at=timezone.now() + timedelta(hours=1),
        )
    )
    with pytest.raises(GatewayError) as exc:
        xendit.refund(refund_request(created.gateway_reference, "ref_X11", 10000))
    assert (exc.value.code, exc.value.retryable) == ("gateway_refund_not_allowed", False)


def test_unknown_invoice_is_payment_not_found(xendit, xendit_fake):
    with pytest.raises(GatewayPaymentNotFound):
        xendit.refund(refund_request("inv_never_created", "ref_X12", 10000))


@pytest.mark.parametrize(
    ("http_status", "error_code", "code", "retryable"),
    [
        (400, "REFUND_NOT_SUPPORTED", "gateway_refund_not_allowed", False),
        (400, "PARTIAL_REFUND_NOT_SUPPORTED", "gateway_refund_not_allowed", False),
        (400, "REFUND_IN_PROGRESS", "gateway_refund_in_progress", True),
        (400, "INSUFFICIENT_BALANCE", "gateway_refund_insufficient_balance", False),
        (403, "UNAUTHORIZED", "gateway_authentication_failed", False),
        (400, "API_VALIDATION_ERROR", "gateway_rejected", False),
        (503, "CHANNEL_UNAVAILABLE", "gateway_server_error", True),
    ],
)
def test_documented_refund_errors(xendit, xendit_fake, http_status, error_code, code, retryable):
    invoice_id = paid_invoice(xendit, xendit_fake)
    xendit_fake.refund_errors = [(http_status, error_code)]

    with pytest.raises(GatewayError) as exc:
        xendit.refund(refund_request(invoice_id, "ref_X13", 10000))

    assert (exc.value.code, exc.value.retryable) == (code, retryable)
    assert xendit_fake.refunds == {}


@pytest.mark.parametrize(
    ("ours", "xendits"),
    [
        ("requested_by_customer", "REQUESTED_BY_CUSTOMER"),
        ("Duplicate", "DUPLICATE"),
        ("fraud", "FRAUDULENT"),
        ("fraudulent", "FRAUDULENT"),
        ("order cancelled", "OTHERS"),
        ("cancellation", "CANCELLATION"),
        ("", "OTHERS"),
        ("the parcel never came", "OTHERS"),
    ],
)
def test_reason_mapping(ours, xendits):
    assert xendit_reason(ours) == xendits


def test_manual_capture_is_refused_for_invoices(xendit, xendit_fake):
    with pytest.raises(GatewayError) as exc:
        xendit.create_payment(
            CreatePaymentRequest(
                payment_id=PAYMENT,
                amount_minor=10000,
                currency="IDR",
                description="x",
                expires_at=timezone.now() + timedelta(hours=1),
                capture_method="manual",
            )
        )
    assert (exc.value.code, exc.value.retryable) == ("gateway_capture_unsupported", False)
    assert xendit_fake.requests == []
    assert type(xendit).supports_manual_capture is False
