# ruff: noqa: F811
"""PayPal adapter against a local fake PayPal (HTTP on 127.0.0.1) fed with the recorded payloads."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from gateways.base import (
    CaptureRequest,
    CreatePaymentRequest,
    GatewayOutcome,
    RefundRequest,
    RefundStatus,
    outcome_unknown,
)
from gateways.registry import gateway_for_account
from gateways.services import gateway_account_create
from paytrust.errors import GatewayError, GatewayTimeout, ValidationError
from tests.gateways.conftest import fast_timeout  # noqa: F401 - fixture
from tests.gateways.paypal_support import (  # noqa: F401 - fixtures
    PAYPAL_CLIENT_ID,
    PAYPAL_CLIENT_SECRET,
    PAYPAL_WEBHOOK_ID,
    paypal,
    paypal_account,
    paypal_fake,
)

pytestmark = pytest.mark.django_db


def make_request(**overrides) -> CreatePaymentRequest:
    values = dict(
        payment_id="pay_TestPayPal0001",
        amount_minor=1699,
        currency="USD",
        description="Invoice inv_1 (installment 1 of 2)",
        expires_at=timezone.now() + timedelta(hours=2),
        invoice_id="inv_1",
        installment_number=1,
    )
    values.update(overrides)
    return CreatePaymentRequest(**values)


def test_create_posts_an_order_with_bearer_token_request_id_and_exact_decimal_amount(paypal, paypal_fake):
    result = paypal.create_payment(make_request())

    create = paypal_fake.requests[-1]
    assert (create.method, create.path) == ("POST", "/v2/checkout/orders")
    assert create.header("Authorization").startswith("Bearer A21AA")
    assert create.header("PayPal-Request-Id") == "pay_TestPayPal0001"
    assert b'"value":"16.99"' in create.body  # a decimal string from minor units
    unit = create.json["purchase_units"][0]
    assert unit["reference_id"] == unit["custom_id"] == unit["invoice_id"] == "pay_TestPayPal0001"
    assert create.json["intent"] == "CAPTURE"
    context = create.json["application_context"]
    assert context["return_url"].endswith(f"/v1/webhooks/paypal/{paypal.account.pk}/return")
    token = paypal_fake.requests[0]
    assert (token.path, token.basic_auth) == ("/v1/oauth2/token", (PAYPAL_CLIENT_ID, PAYPAL_CLIENT_SECRET))
    assert token.body == b"grant_type=client_credentials"
    assert result.gateway_reference in paypal_fake.orders
    assert (
        result.payment_url == f"https://www.sandbox.paypal.com/checkoutnow?token={result.gateway_reference}"
    )
    assert result.status == GatewayOutcome.PENDING


def test_manual_capture_creates_an_authorize_order(paypal, paypal_fake):
    paypal.create_payment(make_request(capture_method="manual"))
    assert paypal_fake.requests[-1].json["intent"] == "AUTHORIZE"


def test_create_is_idempotent_per_payment_id(paypal, paypal_fake):
    first = paypal.create_payment(make_request())
    second = paypal.create_payment(make_request())
    assert first.gateway_reference == second.gateway_reference
    assert len(paypal_fake.orders) == 1


def test_one_token_serves_several_calls_and_a_revoked_token_is_replaced_once(paypal, paypal_fake):
    created = paypal.create_payment(make_request())
    again = gateway_for_account(paypal.account)  # a new adapter instance: the token comes from the cache
    again.get_status(payment_id="pay_TestPayPal0001", gateway_reference=created.gateway_reference)
    again.get_status(payment_id="pay_TestPayPal0001", gateway_reference=created.gateway_reference)
    assert paypal_fake.count("POST", "/v1/oauth2/token") == 1

    paypal_fake.revoke_tokens()  # PayPal drops the token before its expires_in: 401, new token, one retry
    assert again.get_status(payment_id="x", gateway_reference=created.gateway_reference).status == "pending"
    assert paypal_fake.count("POST", "/v1/oauth2/token") == 2
    assert [r.path for r in paypal_fake.requests[-3:]] == [
        f"/v2/checkout/orders/{created.gateway_reference}",
        "/v1/oauth2/token",
        f"/v2/checkout/orders/{created.gateway_reference}",
    ]


def test_a_token_about_to_expire_is_not_reused(paypal, paypal_fake):
    paypal_fake.token_expires_in = 300  # within the renewal margin: asked again for the next call
    created = paypal.create_payment(make_request())
    paypal.get_status(payment_id="p", gateway_reference=created.gateway_reference)
    assert paypal_fake.count("POST", "/v1/oauth2/token") == 2


def test_bad_credentials_are_a_permanent_authentication_failure(paypal_account, paypal_fake):
    paypal_fake.client_secret = "rotated"
    with pytest.raises(GatewayError) as exc:
        gateway_for_account(paypal_account).create_payment(make_request())
    assert exc.value.code == "gateway_authentication_failed"
    assert "invalid_client" in exc.value.message and PAYPAL_CLIENT_SECRET not in exc.value.message


def test_idr_is_refused_when_the_account_is_configured_with_the_reason(merchant):
    with pytest.raises(ValidationError) as exc:
        gateway_account_create(
            merchant=merchant,
            mode="test",
            gateway="paypal",
            credentials={"client_id": "a", "client_secret": "b", "webhook_id": "c"},
            currencies=["USD", "IDR"],
        )
    assert exc.value.param == "currencies.1"
    assert exc.value.code == "gateway_currency_unsupported"
    assert "PayPal does not support IDR" in exc.value.message


def test_status_follows_the_order_approval_and_capture(paypal, paypal_fake):
    created = paypal.create_payment(make_request())
    order_id = created.gateway_reference
    assert paypal.get_status(payment_id="p", gateway_reference=order_id).status == GatewayOutcome.PENDING
    paypal_fake.approve(order_id)
    assert paypal.get_status(payment_id="p", gateway_reference=order_id).status == GatewayOutcome.PENDING

    done = paypal.complete_approved_payment(
        payment_id="pay_TestPayPal0001", gateway_reference=order_id, capture_method="automatic"
    )
    assert (done.status, done.amount_minor, done.currency) == (GatewayOutcome.SUCCEEDED, 1699, "USD")
    assert done.paid_at is not None and done.payment_id == "pay_TestPayPal0001"
    capture = paypal_fake.requests[-1]
    assert capture.path == f"/v2/checkout/orders/{order_id}/capture"
    assert capture.header("PayPal-Request-Id") == "pay_TestPayPal0001:complete"

    # A repeat (a lost answer) is answered by PayPal's idempotency, then by the order: never a second capture.
    again = paypal.complete_approved_payment(
        payment_id="pay_TestPayPal0001", gateway_reference=order_id, capture_method="automatic"
    )
    assert again.status == GatewayOutcome.SUCCEEDED
    assert len(paypal_fake.captures) == 1


def test_completing_an_order_not_approved_yet_leaves_it_pending(paypal, paypal_fake):
    created = paypal.create_payment(make_request())
    result = paypal.complete_approved_payment(
        payment_id="pay_TestPayPal0001",
        gateway_reference=created.gateway_reference,
        capture_method="automatic",
    )
    assert result.status == GatewayOutcome.PENDING
    assert paypal_fake.captures == {}


def test_a_declined_capture_fails(paypal, paypal_fake):
    created = paypal.create_payment(make_request())
    paypal_fake.approve(created.gateway_reference)
    paypal_fake.decline_next_capture = True
    result = paypal.complete_approved_payment(
        payment_id="pay_TestPayPal0001",
        gateway_reference=created.gateway_reference,
        capture_method="automatic",
    )
    assert result.status == GatewayOutcome.FAILED


def test_expire_marks_an_unpaid_order_expired_but_reports_a_captured_one(paypal, paypal_fake):
    unpaid = paypal.create_payment(make_request())
    assert (
        paypal.expire_payment(payment_id="p", gateway_reference=unpaid.gateway_reference).status == "expired"
    )
    paid = paypal.create_payment(make_request(payment_id="pay_TestPayPal0002"))
    paypal_fake.approve(paid.gateway_reference)
    paypal.complete_approved_payment(
        payment_id="pay_TestPayPal0002", gateway_reference=paid.gateway_reference, capture_method="automatic"
    )
    result = paypal.expire_payment(payment_id="p", gateway_reference=paid.gateway_reference)
    assert result.status == GatewayOutcome.SUCCEEDED


def test_authorize_then_partial_capture_releases_the_rest(paypal, paypal_fake):
    created = paypal.create_payment(make_request(capture_method="manual", amount_minor=10000))
    paypal_fake.approve(created.gateway_reference)
    held = paypal.complete_approved_payment(
        payment_id="pay_TestPayPal0001", gateway_reference=created.gateway_reference, capture_method="manual"
    )
    assert (held.status, held.amount_minor) == (GatewayOutcome.AUTHORIZED, 10000)
    assert held.capture_before is not None and held.capture_before > timezone.now() + timedelta(days=28)
    assert paypal_fake.requests[-1].path.endswith("/authorize")

    captured = paypal.capture(
        CaptureRequest(
            payment_id="pay_TestPayPal0001",
            gateway_reference=created.gateway_reference,
            amount_minor=6000,
            currency="USD",
        )
    )
    request = paypal_fake.requests[-1]
    assert request.path.startswith("/v2/payments/authorizations/") and request.path.endswith("/capture")
    assert request.json == {"amount": {"currency_code": "USD", "value": "60.00"}, "final_capture": True}
    assert (captured.status, captured.amount_minor) == (GatewayOutcome.SUCCEEDED, 6000)
    assert next(iter(paypal_fake.authorizations.values()))["status"] == "CAPTURED"


def test_void_releases_an_authorization(paypal, paypal_fake):
    created = paypal.create_payment(make_request(capture_method="manual"))
    paypal_fake.approve(created.gateway_reference)
    paypal.complete_approved_payment(
        payment_id="pay_TestPayPal0001", gateway_reference=created.gateway_reference, capture_method="manual"
    )
    result = paypal.void_authorization(
        payment_id="pay_TestPayPal0001", gateway_reference=created.gateway_reference
    )
    assert result.status == GatewayOutcome.CANCELED
    assert paypal_fake.count("POST", "/void") == 1


def _captured(paypal, paypal_fake, amount_minor: int = 10000) -> str:
    created = paypal.create_payment(make_request(amount_minor=amount_minor))
    paypal_fake.approve(created.gateway_reference)
    paypal.complete_approved_payment(
        payment_id="pay_TestPayPal0001",
        gateway_reference=created.gateway_reference,
        capture_method="automatic",
    )
    return created.gateway_reference


def test_partial_then_full_refund_of_the_capture(paypal, paypal_fake):
    order_id = _captured(paypal, paypal_fake)
    first = paypal.refund(
        RefundRequest(
            refund_id="ref_one",
            payment_id="pay_TestPayPal0001",
            gateway_reference=order_id,
            amount_minor=2500,
            currency="USD",
            reason="damaged",
        )
    )
    request = paypal_fake.requests[-1]
    assert request.path.endswith("/refund") and request.header("PayPal-Request-Id") == "ref_one"
    assert request.json == {
        "amount": {"currency_code": "USD", "value": "25.00"},
        "invoice_id": "ref_one",
        "custom_id": "pay_TestPayPal0001",
        "note_to_payer": "damaged",
    }
    assert (first.status, first.amount_minor) == (RefundStatus.SUCCEEDED, 2500)
    status = paypal.get_status(payment_id="p", gateway_reference=order_id)
    assert status.status == GatewayOutcome.PARTIALLY_REFUNDED and status.refund.total_minor == 2500

    rest = paypal.refund(
        RefundRequest(
            refund_id="ref_two",
            payment_id="pay_TestPayPal0001",
            gateway_reference=order_id,
            amount_minor=7500,
            currency="USD",
        )
    )
    assert rest.status == RefundStatus.SUCCEEDED
    assert paypal.get_status(payment_id="p", gateway_reference=order_id).status == GatewayOutcome.REFUNDED
    with pytest.raises(GatewayError) as exc:
        paypal.refund(
            RefundRequest(
                refund_id="ref_three",
                payment_id="pay_TestPayPal0001",
                gateway_reference=order_id,
                amount_minor=1,
                currency="USD",
            )
        )
    assert exc.value.code == "gateway_refund_not_allowed"

    by_id = paypal.get_refund(
        refund_id="ref_one",
        payment_id="p",
        gateway_reference=order_id,
        gateway_refund_reference=first.gateway_refund_reference,
    )
    by_our_id = paypal.get_refund(refund_id="ref_two", payment_id="p", gateway_reference=order_id)
    assert (by_id.amount_minor, by_our_id.gateway_refund_reference) == (2500, rest.gateway_refund_reference)


def test_refund_above_what_is_left_is_refused_permanently(paypal, paypal_fake):
    order_id = _captured(paypal, paypal_fake, amount_minor=1000)
    with pytest.raises(GatewayError) as exc:
        paypal.refund(
            RefundRequest(
                refund_id="ref_big",
                payment_id="p",
                gateway_reference=order_id,
                amount_minor=1001,
                currency="USD",
            )
        )
    assert (exc.value.code, exc.value.retryable) == ("gateway_refund_amount_invalid", False)
    assert "REFUND_AMOUNT_EXCEEDED" in exc.value.message


@pytest.mark.parametrize("behaviour", ["error500", "garbage"])
def test_5xx_and_garbage_answers_leave_the_outcome_unknown(paypal, paypal_fake, behaviour):
    paypal.client._token()  # the token is fine; the order call misbehaves
    paypal_fake.behaviour = behaviour
    with pytest.raises(GatewayError) as exc:
        paypal.create_payment(make_request())
    assert exc.value.retryable and outcome_unknown(exc.value)


def test_timeout_is_a_retryable_gateway_timeout(paypal_account, paypal_fake, fast_timeout):  # noqa: F811
    gateway = gateway_for_account(paypal_account)
    gateway.client._token()
    paypal_fake.behaviour = "timeout"
    with pytest.raises(GatewayTimeout) as exc:
        gateway.create_payment(make_request())
    assert outcome_unknown(exc.value)


def test_the_token_never_reaches_logs_or_reprs(paypal, paypal_fake, caplog):
    paypal.create_payment(make_request())
    token = paypal.client._token()
    assert token not in repr(paypal) + repr(paypal.client) + caplog.text
    assert PAYPAL_CLIENT_SECRET not in repr(paypal) + repr(paypal.client) + caplog.text


def test_settlement_lines_list_the_days_payments_refunds_and_payouts_across_pages(
    paypal, paypal_fake, monkeypatch
):
    from gateways.base import SettlementKind
    from gateways.paypal import settlement

    monkeypatch.setattr(settlement, "PAGE_SIZE", 2)
    order_id = _captured(paypal, paypal_fake)
    paypal.refund(
        RefundRequest(
            refund_id="ref_one",
            payment_id="pay_TestPayPal0001",
            gateway_reference=order_id,
            amount_minor=2500,
            currency="USD",
        )
    )
    today = timezone.now().date()
    paypal_fake.extra_transactions.append(
        {
            "transaction_id": "2NX79446UA6523213",
            "transaction_event_code": "T0400",
            "transaction_initiation_date": f"{today.isoformat()}T00:00:01Z",
            "transaction_amount": {"currency_code": "USD", "value": "-50.00"},
            "transaction_status": "S",
        }
    )
    lines = paypal.settlement_lines(day=today)
    assert paypal_fake.count("GET", "/v1/reporting/transactions") == 2  # 3 rows, 2 a page
    by_kind = {line.kind: line for line in lines}
    payment = by_kind[SettlementKind.PAYMENT]
    assert (payment.amount_minor, payment.payment_id, payment.currency) == (
        10000,
        "pay_TestPayPal0001",
        "USD",
    )
    assert payment.fee_minor == 398  # 3.49 % + 0.49 of 100.00, as the fake charges
    refund = by_kind[SettlementKind.REFUND]
    assert (refund.amount_minor, refund.refund_id, refund.payment_id) == (
        2500,
        "ref_one",
        "pay_TestPayPal0001",
    )
    assert by_kind[SettlementKind.PAYOUT].amount_minor == 5000
    assert paypal.settlement_lines(day=today - timedelta(days=2)) == []
