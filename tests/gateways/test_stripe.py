"""Stripe adapter against the local fake Stripe (form-encoded HTTP on 127.0.0.1) and the recorded payloads."""

# Fixtures are imported from tests/gateways/stripe_support.py.
# ruff: noqa: F811

from datetime import timedelta

import pytest
from django.utils import timezone

from gateways.base import (
    CaptureRequest,
    CreatePaymentRequest,
    Customer,
    GatewayOutcome,
    GatewayPaymentNotFound,
    GatewayRefundNotFound,
    RefundRequest,
    RefundStatus,
    outcome_unknown,
)
from gateways.registry import gateway_class, gateway_for_account
from gateways.stripe.amounts import from_stripe, to_stripe
from gateways.stripe.client import encode_form
from paytrust.errors import (
    GatewayError,
    GatewayTimeout,
    ValidationError,
    WebhookAuthError,
    WebhookPayloadError,
)
from tests.fakes.stripe import fixture, signature_header, stripe_event
from tests.gateways.stripe_support import STRIPE_SECRET, STRIPE_WEBHOOK_SECRET, stripe_account, stripe_fake  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture
def stripe(stripe_account, stripe_fake):
    return gateway_for_account(stripe_account)


def make_request(**overrides) -> CreatePaymentRequest:
    values = dict(
        payment_id="pay_TestStripe0001",
        amount_minor=1999,
        currency="USD",
        description="Invoice inv_1 installment 1",
        expires_at=timezone.now() + timedelta(hours=2),
        customer=Customer(name="Budi", email="budi@example.com"),
        invoice_id="inv_1",
        installment_number=1,
        success_redirect_url="https://shop.example/ok",
    )
    values.update(overrides)
    return CreatePaymentRequest(**values)


# ----- configuration, amounts ----------------------------------------------------------------------------------


def test_credentials_take_only_the_modes_keys_and_a_whsec_secret():
    cls = gateway_class("stripe")
    ok = {"secret_key": "sk_test_abc", "webhook_secret": "whsec_abc"}
    assert cls.validate_credentials(ok, mode="test") == ok
    with pytest.raises(ValidationError) as exc:
        cls.validate_credentials(ok, mode="live")
    assert exc.value.param == "credentials.secret_key"
    with pytest.raises(ValidationError) as exc:
        cls.validate_credentials({**ok, "webhook_secret": "abc"}, mode="test")
    assert exc.value.param == "credentials.webhook_secret"
    assert cls.supports_manual_capture and cls.supports_refunds and cls.supports_partial_refunds
    assert {"USD", "IDR", "MYR"} <= cls.supported_currencies


def test_amounts_follow_stripes_exponents_and_never_round():
    assert to_stripe(150000, "IDR") == 15000000  # IDR is two-decimal at Stripe, exponent 0 here
    assert to_stripe(1999, "USD") == 1999
    assert to_stripe(5000, "JPY") == 5000
    assert to_stripe(5120, "KWD") == 5120
    with pytest.raises(GatewayError) as exc:
        to_stripe(5124, "KWD")  # Stripe takes three-decimal amounts ending in 0 only
    assert exc.value.code == "gateway_amount_unsupported"
    assert from_stripe(15000000, "idr", field="amount", error=ValueError) == 150000
    assert from_stripe(-5000000, "IDR", field="amount", error=ValueError) == -50000
    with pytest.raises(ValueError):
        from_stripe(15000050, "IDR", field="amount", error=ValueError)  # 150000.50 IDR: no IDR cents here
    with pytest.raises(ValueError):
        from_stripe("1999", "USD", field="amount", error=ValueError)


def test_form_encoding_is_stripes():
    pairs = list(encode_form({"a": {"b": [{"c": 1}], "d": True}, "e": None, "f": ["x"]}))
    assert pairs == [("a[b][0][c]", "1"), ("a[d]", "true"), ("f[0]", "x")]


# ----- create / status / expire --------------------------------------------------------------------------------


def test_create_payment_posts_a_checkout_session(stripe, stripe_fake):
    result = stripe.create_payment(make_request(currency="IDR", amount_minor=150000))

    request = stripe_fake.requests[-1]
    assert (request.method, request.path) == ("POST", "/v1/checkout/sessions")
    assert request.basic_auth == (STRIPE_SECRET, "")
    assert request.header("Idempotency-Key") == "pay_TestStripe0001"
    assert request.header("Content-Type") == "application/x-www-form-urlencoded"
    body = request.body.decode()
    assert "line_items%5B0%5D%5Bprice_data%5D%5Bunit_amount%5D=15000000" in body  # 150000 IDR, two decimals
    assert "line_items%5B0%5D%5Bprice_data%5D%5Bcurrency%5D=idr" in body
    assert "metadata%5Bpayment_id%5D=pay_TestStripe0001" in body
    assert "payment_intent_data%5Bmetadata%5D%5Bpayment_id%5D=pay_TestStripe0001" in body
    assert "client_reference_id=pay_TestStripe0001" in body and "mode=payment" in body
    assert "capture_method" not in body
    assert result.gateway_reference.startswith("cs_test_")
    assert result.payment_url == stripe_fake.session(result.gateway_reference)["url"]
    assert result.status == GatewayOutcome.PENDING
    # Idempotent per payment id: the same key replays the first answer.
    assert stripe.create_payment(make_request(currency="IDR", amount_minor=150000)).gateway_reference == (
        result.gateway_reference
    )
    assert len(stripe_fake.sessions) == 1


def test_expiry_is_clamped_into_stripes_window(stripe, stripe_fake):
    now = timezone.now()
    short = stripe.create_payment(make_request(payment_id="pay_short", expires_at=now + timedelta(minutes=5)))
    long = stripe.create_payment(make_request(payment_id="pay_long", expires_at=now + timedelta(days=5)))
    assert timedelta(minutes=30) <= short.expires_at - now <= timedelta(minutes=32)
    assert timedelta(hours=23, minutes=59) <= long.expires_at - now <= timedelta(hours=24)


def test_status_by_reference_and_by_payment_id_after_pay(stripe, stripe_fake):
    created = stripe.create_payment(make_request())
    assert stripe.get_status(payment_id="pay_TestStripe0001").status == GatewayOutcome.PENDING
    stripe_fake.pay(created.gateway_reference)
    for result in (
        stripe.get_status(payment_id="pay_TestStripe0001", gateway_reference=created.gateway_reference),
        stripe.get_status(payment_id="pay_TestStripe0001"),  # after a create timeout: listed and found
    ):
        assert (result.status, result.amount_minor, result.currency) == (
            GatewayOutcome.SUCCEEDED,
            1999,
            "USD",
        )
        assert result.paid_at is not None and result.payment_id == "pay_TestStripe0001"
        assert result.gateway_reference == created.gateway_reference
    with pytest.raises(GatewayPaymentNotFound):
        stripe.get_status(payment_id="pay_never_sent")


def test_expire_payment_expires_the_open_session(stripe, stripe_fake):
    created = stripe.create_payment(make_request())
    result = stripe.expire_payment(
        payment_id="pay_TestStripe0001", gateway_reference=created.gateway_reference
    )
    assert stripe_fake.requests[-2].path == f"/v1/checkout/sessions/{created.gateway_reference}/expire"
    assert result.status == GatewayOutcome.EXPIRED


def test_expiring_a_paid_session_reports_it_paid(stripe, stripe_fake):
    created = stripe.create_payment(make_request())
    stripe_fake.pay(created.gateway_reference)
    result = stripe.expire_payment(
        payment_id="pay_TestStripe0001", gateway_reference=created.gateway_reference
    )
    assert result.status == GatewayOutcome.SUCCEEDED
    assert not any(r.path.endswith("/expire") for r in stripe_fake.requests)


# ----- manual capture ------------------------------------------------------------------------------------------


def test_manual_capture_partial_capture_and_void(stripe, stripe_fake):
    created = stripe.create_payment(make_request(capture_method="manual"))
    assert "payment_intent_data%5Bcapture_method%5D=manual" in stripe_fake.requests[-1].body.decode()
    stripe_fake.pay(created.gateway_reference)
    held = stripe.get_status(payment_id="pay_TestStripe0001", gateway_reference=created.gateway_reference)
    assert (held.status, held.amount_minor) == (GatewayOutcome.AUTHORIZED, 1999)

    captured = stripe.capture(
        CaptureRequest(
            payment_id="pay_TestStripe0001",
            gateway_reference=created.gateway_reference,
            amount_minor=1500,
            currency="USD",
        )
    )
    intent_id = stripe_fake.intent_of(created.gateway_reference)["id"]
    capture_call = stripe_fake.requests[-1]
    assert capture_call.path == f"/v1/payment_intents/{intent_id}/capture"
    assert "amount_to_capture=1500" in capture_call.body.decode()
    assert (captured.status, captured.amount_minor) == (GatewayOutcome.SUCCEEDED, 1500)

    other = stripe.create_payment(make_request(payment_id="pay_TestStripe0002", capture_method="manual"))
    stripe_fake.pay(other.gateway_reference)
    voided = stripe.void_authorization(
        payment_id="pay_TestStripe0002", gateway_reference=other.gateway_reference
    )
    assert voided.status == GatewayOutcome.CANCELED
    assert stripe_fake.intent_of(other.gateway_reference)["status"] == "canceled"


# ----- refunds -------------------------------------------------------------------------------------------------


def test_refund_and_partial_refund_and_lookup(stripe, stripe_fake):
    created = stripe.create_payment(make_request())
    stripe_fake.pay(created.gateway_reference)
    refund = stripe.refund(
        RefundRequest(
            refund_id="ref_One",
            payment_id="pay_TestStripe0001",
            gateway_reference=created.gateway_reference,
            amount_minor=500,
            currency="USD",
            reason="requested_by_customer",
        )
    )
    call = stripe_fake.requests[-1]
    assert (call.path, call.header("Idempotency-Key")) == ("/v1/refunds", "ref_One")
    assert "metadata%5Brefund_id%5D=ref_One" in call.body.decode() and "amount=500" in call.body.decode()
    assert (refund.status, refund.amount_minor) == (RefundStatus.SUCCEEDED, 500)
    status = stripe.get_status(payment_id="pay_TestStripe0001", gateway_reference=created.gateway_reference)
    assert status.status == GatewayOutcome.PARTIALLY_REFUNDED and status.refund.total_minor == 500

    found = stripe.get_refund(
        refund_id="ref_One", payment_id="pay_TestStripe0001", gateway_reference=created.gateway_reference
    )
    assert found.gateway_refund_reference == refund.gateway_refund_reference
    with pytest.raises(GatewayRefundNotFound):
        stripe.get_refund(
            refund_id="ref_Never",
            payment_id="pay_TestStripe0001",
            gateway_reference=created.gateway_reference,
        )

    with pytest.raises(GatewayError) as exc:  # more than what is left: Stripe's amount_too_large
        stripe.refund(
            RefundRequest(
                refund_id="ref_Two",
                payment_id="pay_TestStripe0001",
                gateway_reference=created.gateway_reference,
                amount_minor=1600,
                currency="USD",
            )
        )
    assert (exc.value.code, exc.value.retryable) == ("gateway_refund_amount_invalid", False)


# ----- failures ------------------------------------------------------------------------------------------------


def test_timeout_5xx_and_garbage_are_classified(stripe_account, stripe_fake, settings):
    settings.GATEWAY_TIMEOUT_SECONDS = 0.3
    stripe = gateway_for_account(stripe_account)
    stripe_fake.behaviour = "error500"
    with pytest.raises(GatewayError) as exc:
        stripe.create_payment(make_request())
    assert exc.value.code == "gateway_server_error" and outcome_unknown(exc.value)
    stripe_fake.behaviour = "garbage"
    with pytest.raises(GatewayError) as exc:
        stripe.create_payment(make_request())
    assert exc.value.code == "gateway_bad_response" and outcome_unknown(exc.value)
    stripe_fake.behaviour = "late"
    with pytest.raises(GatewayTimeout) as exc:
        stripe.create_payment(make_request())
    assert outcome_unknown(exc.value)


def test_stripe_error_envelope_is_kept(stripe, stripe_fake):
    with pytest.raises(GatewayError) as exc:
        stripe.create_payment(make_request(expires_at=timezone.now() - timedelta(seconds=1)))
    assert exc.value.retryable is False
    stripe_fake.secret_key = "sk_test_other"
    with pytest.raises(GatewayError) as exc:
        stripe.create_payment(make_request())
    assert exc.value.code == "gateway_authentication_failed" and "Invalid API Key" in exc.value.message


# ----- webhooks (adapter level) --------------------------------------------------------------------------------


def test_signature_with_rotated_secrets_forged_and_expired(stripe):
    body = stripe_event("payment_intent.succeeded", {**fixture("refund"), "object": "x"})
    stripe.verify_webhook({"Stripe-Signature": signature_header(body, STRIPE_WEBHOOK_SECRET)}, body)
    rotated = signature_header(body, STRIPE_WEBHOOK_SECRET, extra=("0" * 64,))  # old secret's v1 first
    stripe.verify_webhook({"stripe-signature": rotated}, body)
    for bad in (
        signature_header(body, "whsec_forged"),
        signature_header(body, STRIPE_WEBHOOK_SECRET, timestamp=int(timezone.now().timestamp()) - 301),
        signature_header(body + b" ", STRIPE_WEBHOOK_SECRET),  # signed over another body
        "garbage",
    ):
        with pytest.raises(WebhookAuthError):
            stripe.verify_webhook({"Stripe-Signature": bad}, body)
    with pytest.raises(WebhookAuthError):
        stripe.verify_webhook({}, body)


def test_parse_maps_events(stripe):
    session = {**fixture("checkout_session"), "amount_total": 15000000, "currency": "idr"}
    session.update(metadata={"payment_id": "pay_A"}, status="complete", payment_status="paid")
    note = stripe.parse_webhook({}, stripe_event("checkout.session.completed", session, event_id="evt_1"))
    assert (note.event_id, note.status, note.amount_minor, note.currency) == (
        "evt_1",
        "succeeded",
        150000,
        "IDR",
    )
    assert (note.payment_id, note.gateway_reference) == ("pay_A", session["id"])

    held = {**session, "metadata": {"payment_id": "pay_A", "capture_method": "manual"}}
    note = stripe.parse_webhook({}, stripe_event("checkout.session.completed", held))
    assert note.status == GatewayOutcome.PENDING  # money only held: the intent's events say AUTHORIZED

    refund = {**fixture("refund"), "metadata": {"payment_id": "pay_A", "refund_id": "ref_A"}, "amount": 300}
    note = stripe.parse_webhook({}, stripe_event("refund.updated", refund))
    assert note.status == "partially_refunded" and note.refund.our_refund_id == "ref_A"
    assert (note.refund.reference, note.refund.amount_minor) == (refund["id"], 300)

    charge = {
        **fixture("charge"),
        "metadata": {"payment_id": "pay_A"},
        "amount_captured": 100,
        "amount_refunded": 100,
    }
    note = stripe.parse_webhook({}, stripe_event("charge.refunded", {**charge, "refunded": True}))
    assert (note.status, note.refund) == (GatewayOutcome.UNKNOWN, None)  # refunds come from refund.* events

    dispute = stripe.parse_webhook({}, stripe_event("charge.dispute.created", fixture("dispute")))
    assert dispute.refund.chargeback and dispute.refund.reference.startswith("dp_")

    other = stripe.parse_webhook({}, stripe_event("customer.created", {"id": "cus_1", "object": "customer"}))
    assert other.status == GatewayOutcome.UNKNOWN and other.payment_id == ""
    bad = {**session, "amount_total": 15000050}  # 150000.50 IDR: never rounded
    with pytest.raises(WebhookPayloadError):
        stripe.parse_webhook({}, stripe_event("checkout.session.completed", bad))
    with pytest.raises(WebhookPayloadError):
        stripe.parse_webhook({}, b"not json")


# ----- settlement (balance transactions) -----------------------------------------------------------------------


def test_settlement_lines_of_a_day_from_balance_transactions(stripe, stripe_fake):
    stripe_fake.fee_minor = 290000  # 2900 IDR (Stripe's IDR has two decimals)
    created = stripe.create_payment(make_request(currency="IDR", amount_minor=150000))
    stripe_fake.pay(created.gateway_reference)
    stripe.refund(
        RefundRequest(
            refund_id="ref_Settle",
            payment_id="pay_TestStripe0001",
            gateway_reference=created.gateway_reference,
            amount_minor=50000,
            currency="IDR",
        )
    )
    stripe_fake.record_dispute(stripe_fake.dispute(created.gateway_reference, amount=2000000), fee=1500000)
    stripe_fake.record_payout(5000000, "idr")

    lines = stripe.settlement_lines(day=timezone.now().date())

    call = next(r for r in stripe_fake.requests if r.path == "/v1/balance_transactions")
    assert {"expand[0]", "expand[1]", "created[gte]", "created[lt]"} <= set(call.query)
    by_kind = {line.kind: line for line in lines}
    assert [line.kind for line in lines] == ["payment", "refund", "chargeback", "payout"]
    payment, refund = by_kind["payment"], by_kind["refund"]
    # Stripe's IDR is two-decimal: 15000000 at Stripe is 150000 IDR here, its 59 fee is not a whole rupiah.
    assert (payment.amount_minor, payment.currency, payment.payment_id) == (
        150000,
        "IDR",
        "pay_TestStripe0001",
    )
    assert (refund.amount_minor, refund.refund_id, refund.payment_id) == (
        50000,
        "ref_Settle",
        "pay_TestStripe0001",
    )
    assert (by_kind["chargeback"].amount_minor, by_kind["chargeback"].fee_minor) == (20000, 15000)
    assert by_kind["chargeback"].payment_id == "pay_TestStripe0001"
    assert by_kind["payout"].amount_minor == 50000
    assert stripe.supports_settlement_report
    assert stripe.settlement_lines(day=timezone.now().date() - timedelta(days=1)) == []
    stripe_fake.balance_transactions[0]["txn"]["fee"] = 59  # 0.59 IDR: not an amount PayTrust can hold
    with pytest.raises(GatewayError) as exc:
        stripe.settlement_lines(day=timezone.now().date())
    assert exc.value.code == "gateway_bad_response"
