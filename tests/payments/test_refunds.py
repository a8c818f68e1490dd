"""payments.services.refund_create and the life of our refunds on the sandbox gateway (docs/adr/0046): full and
partial refunds, the refundable amount (pending refunds count), the sandbox's outcome rule (…13 fails, …42 stays
pending), the ledger and the events of each outcome, idempotent application of a gateway answer, reconciliation
of pending refunds (get_refund, and a resend when the gateway never got the request), and gateway reports that
cover our refunds (settled, never counted twice)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from gateways import base as gw
from gateways.models import SandboxCheckoutSession, SandboxRefund
from gateways.sandbox import refunds as sandbox_refunds
from payments.models import Payment, Refund
from payments.services import (
    GatewayStatusUpdate,
    payment_apply_gateway_status,
    payment_initiate,
    refund_apply_result,
    refund_create,
    refunds_reconcile,
    refunds_to_reconcile,
)
from payments.services import refunds as refund_services
from payments.services.refund_reconciliation import refund_reconcile
from paytrust.errors import Conflict, NotFound, Unprocessable, ValidationError
from tests.payments.factories import make_invoice
from tests.payments.refund_support import balance, paid_sandbox_payment, refund_events, refund_movements

pytestmark = pytest.mark.django_db


def _refund(payment: Payment, amount_minor: int | None = None, **kwargs) -> Refund:
    return refund_create(
        merchant=payment.merchant,
        mode=payment.mode,
        payment_id=payment.id,
        amount_minor=amount_minor,
        **kwargs,
    )


def _state(payment: Payment) -> tuple[str, int]:
    payment.refresh_from_db()
    return payment.status, payment.amount_refunded_minor


def _settle_at_sandbox(refund: Refund, action: str = "refund_succeed") -> None:
    session = SandboxCheckoutSession.objects.get(payment_id=refund.payment_id)
    sandbox_refunds.sandbox_refund_settle(
        token=session.token, nonce=session.form_nonce, refund_id=refund.id, action=action
    )


def test_a_refund_without_amount_refunds_everything_and_succeeds_at_once(merchant):
    payment = paid_sandbox_payment(merchant)
    merchant_before = balance(merchant, "merchant_payable")

    refund = _refund(payment, reason="Order cancelled", metadata={"ticket": "T-1"})

    assert (refund.status, refund.amount_minor, refund.origin) == ("succeeded", 150000, "api")
    assert refund.succeeded_at is not None and refund.gateway_refund_reference.startswith("sbxref_")
    assert (refund.reason, refund.metadata) == ("Order cancelled", {"ticket": "T-1"})
    assert _state(payment) == ("refunded", 150000)
    assert refund_movements(refund.id) == ["refund", "refund_succeeded"]
    assert balance(merchant, "merchant_payable") == merchant_before - 150000
    assert balance(merchant, "refunds_payable") == 0
    [event] = refund_events()
    assert (event["id"], event["status"], event["amount"], event["payment"]) == (
        refund.id,
        "succeeded",
        "150000",
        payment.id,
    )
    assert SandboxCheckoutSession.objects.get(payment_id=payment.id).amount_refunded_minor == 150000


def test_partial_refunds_until_the_money_is_used_up_then_422(merchant):
    payment = paid_sandbox_payment(merchant)

    first = _refund(payment, 45000)
    assert first.status == "succeeded" and _state(payment) == ("partially_refunded", 45000)
    with pytest.raises(Unprocessable) as exc:
        _refund(payment, 105001)
    assert (exc.value.code, exc.value.param) == ("refund_exceeds_available", "amount")

    second = _refund(payment, 105000)

    assert second.status == "succeeded" and _state(payment) == ("refunded", 150000)
    for amount in (1, None):  # fully refunded: more is 422 (SPEC §13)
        with pytest.raises(Unprocessable) as exc:
            _refund(payment, amount)
        assert exc.value.code == "refund_exceeds_available"
    assert Refund.objects.filter(payment=payment).count() == 2


def test_sandbox_amount_ending_in_13_fails_and_gives_the_money_back_to_the_merchant(merchant):
    payment = paid_sandbox_payment(merchant)
    merchant_before = balance(merchant, "merchant_payable")

    refund = _refund(payment, 10013)

    assert (refund.status, refund.failure_message) == ("failed", "insufficient balance")
    assert refund.failed_at is not None and refund.succeeded_at is None
    assert _state(payment) == ("succeeded", 0)
    assert refund_movements(refund.id) == ["refund", "refund_failed"]
    assert balance(merchant, "merchant_payable") == merchant_before
    assert balance(merchant, "refunds_payable") == 0
    assert [e["status"] for e in refund_events("refund.failed")] == ["failed"]
    assert _refund(payment).amount_minor == 150000  # a failed refund holds nothing back


def test_a_pending_refund_holds_its_amount_back_until_the_gateway_completes_it(merchant, settings):
    settings.REFUND_RECONCILE_AFTER_SECONDS = 300
    payment = paid_sandbox_payment(merchant)

    pending = _refund(payment, 10042)
    assert pending.status == "pending" and pending.gateway_refund_reference.startswith("sbxref_")
    assert _state(payment) == ("succeeded", 0)
    assert balance(merchant, "refunds_payable") == 10042
    with pytest.raises(Unprocessable):
        _refund(payment, 150000 - 10042 + 1)
    rest = _refund(payment)
    assert (rest.status, rest.amount_minor) == ("succeeded", 150000 - 10042)
    assert _state(payment) == ("partially_refunded", 150000 - 10042)

    _settle_at_sandbox(pending)
    now = timezone.now()
    assert pending.id not in refunds_to_reconcile(now=now)  # younger than REFUND_RECONCILE_AFTER_SECONDS
    later = now + timedelta(seconds=301)
    assert refunds_to_reconcile(now=later) == [pending.id]
    summary = refunds_reconcile(now=later)

    assert (summary.checked, summary.changed) == (1, 1)
    pending.refresh_from_db()
    assert pending.status == "succeeded"
    assert _state(payment) == ("refunded", 150000)
    assert balance(merchant, "refunds_payable") == 0
    assert refunds_to_reconcile(now=later + timedelta(hours=2)) == []


def test_a_pending_refund_failed_at_the_gateway_is_failed_by_reconciliation(merchant, settings):
    settings.REFUND_RECONCILE_AFTER_SECONDS = 0
    payment = paid_sandbox_payment(merchant)
    pending = _refund(payment, 10042)

    _settle_at_sandbox(pending, "refund_fail")
    refunds_reconcile()

    pending.refresh_from_db()
    assert (pending.status, pending.failure_message) == ("failed", "declined in the sandbox checkout")
    assert _state(payment) == ("succeeded", 0)
    assert refund_movements(pending.id) == ["refund", "refund_failed"]


def test_a_still_pending_refund_is_asked_again_only_after_a_backoff(merchant, settings):
    settings.REFUND_RECONCILE_AFTER_SECONDS = 0
    payment = paid_sandbox_payment(merchant)
    pending = _refund(payment, 10042)
    now = timezone.now()

    assert refunds_reconcile(now=now).unchanged == 1
    assert refunds_to_reconcile(now=now + timedelta(seconds=30)) == []
    assert refunds_to_reconcile(now=now + timedelta(minutes=3)) == [pending.id]
    pending.refresh_from_db()
    assert (pending.status, pending.reconcile_attempts) == ("pending", 1)


def test_a_refund_the_gateway_never_received_is_sent_again_with_the_same_id(merchant, settings):
    """Phase 1 committed, then the process died before the gateway call: get_refund says not found, the refund
    is sent again under its own id and the answer applied."""
    settings.REFUND_RECONCILE_AFTER_SECONDS = 0
    payment = paid_sandbox_payment(merchant)
    refund = refund_services._phase1_record(
        merchant=merchant,
        mode="test",
        payment_id=payment.id,
        amount_minor=20000,
        reason="",
        metadata={},
        origin="api",
    )
    assert not SandboxRefund.objects.filter(refund_id=refund.id).exists()

    assert refunds_reconcile().changed == 1

    refund.refresh_from_db()
    assert refund.status == "succeeded"
    assert SandboxRefund.objects.get(refund_id=refund.id).amount_minor == 20000
    assert _state(payment) == ("partially_refunded", 20000)
    operations = list(payment.gateway_calls.values_list("operation", "outcome"))
    assert ("get_refund", "gateway_refund_not_found") in operations and ("refund", "ok") in operations


def test_applying_the_same_answer_twice_changes_nothing_the_second_time(merchant):
    payment = paid_sandbox_payment(merchant)
    pending = _refund(payment, 10042)
    answer = gw.RefundResult(
        gateway_refund_reference="sbxref_x", status=gw.RefundStatus.SUCCEEDED, amount_minor=10042
    )

    assert refund_apply_result(refund_id=pending.id, result=answer)[1]
    assert not refund_apply_result(refund_id=pending.id, result=answer)[1]
    failed_late = gw.RefundResult(
        gateway_refund_reference="", status=gw.RefundStatus.FAILED, amount_minor=10042
    )
    assert not refund_apply_result(refund_id=pending.id, result=failed_late)[1]

    assert _state(payment) == ("partially_refunded", 10042)
    assert refund_movements(pending.id) == ["refund", "refund_succeeded"]
    assert len(refund_events("refund.succeeded")) == 1


def test_a_timeout_or_retryable_error_leaves_the_refund_pending_a_permanent_one_fails_it(merchant):
    payment = paid_sandbox_payment(merchant)
    first, second = _refund(payment, 10042), _refund(payment, 20042)

    refund_apply_result(refund_id=first.id, error=gw.GatewayTimeout("slow"))
    refund_apply_result(refund_id=first.id, error=gw.GatewayError("busy", code="gateway_server_error"))
    refund_apply_result(refund_id=second.id, error=gw.GatewayError("no", code="gateway_rejected"))

    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == "pending"
    assert (second.status, second.failure_code, second.failure_message) == (
        "failed",
        "gateway_rejected",
        "no",
    )


def test_only_a_succeeded_payment_of_the_callers_tenant_and_mode_can_be_refunded(merchant, other_merchant):
    invoice = make_invoice(merchant)
    unpaid = payment_initiate(merchant=merchant, mode="test", invoice_id=invoice.id).payment
    with pytest.raises(Conflict) as exc:
        _refund(unpaid)
    assert exc.value.code == "payment_not_refundable"

    paid = paid_sandbox_payment(merchant)
    with pytest.raises(NotFound):
        refund_create(merchant=other_merchant, mode="test", payment_id=paid.id, amount_minor=None)
    with pytest.raises(NotFound):
        refund_create(merchant=merchant, mode="live", payment_id=paid.id, amount_minor=None)
    assert not Refund.objects.exists()


def test_bad_input_is_refused_before_anything_is_written(merchant):
    payment = paid_sandbox_payment(merchant)
    for kwargs, param in [
        ({"amount_minor": 0}, "amount"),
        ({"amount_minor": -5}, "amount"),
        ({"reason": "x" * 501}, "reason"),
        ({"metadata": {"k": 1}}, "metadata"),
        ({"metadata": {"": "v"}}, "metadata"),
    ]:
        with pytest.raises(ValidationError) as exc:
            _refund(payment, **kwargs)
        assert exc.value.param == param
    assert not Refund.objects.exists()


# ---- gateway reports that cover our refunds ---------------------------------------------------------------


def _report(payment: Payment, status, refund: gw.RefundReport):
    return payment_apply_gateway_status(
        payment_id=payment.id,
        gateway_account_id=payment.gateway_account_id,
        update=GatewayStatusUpdate(
            status=status,
            amount_minor=payment.amount_received_minor,
            currency=payment.currency,
            occurred_at=timezone.now(),
            refund=refund,
        ),
        source="test",
    )


def test_a_cumulative_increment_settles_our_pending_refund_only_when_it_is_exactly_ours(merchant):
    payment = paid_sandbox_payment(merchant)
    older, newer = _refund(payment, 10042), _refund(payment, 30042)

    outcome = _report(payment, gw.GatewayOutcome.PARTIALLY_REFUNDED, gw.RefundReport(total_minor=30042))

    assert outcome.changed
    older.refresh_from_db()
    newer.refresh_from_db()
    assert (older.status, newer.status) == ("pending", "succeeded")  # the increment is exactly the newer one
    assert not Refund.objects.filter(origin="gateway").exists()
    assert _state(payment) == ("partially_refunded", 30042)


def test_an_ambiguous_cumulative_increment_waits_until_our_refunds_are_settled_by_id(merchant):
    """A total names no refund: 15042 more with pending refunds of 10042 and 30042 cannot say which the gateway
    paid (crediting the older one blindly counted refunds the gateway never made). 409, nothing written; once
    reconciliation has settled ours by id, the same report records only the rest as a gateway refund."""
    payment = paid_sandbox_payment(merchant)
    older, newer = _refund(payment, 10042), _refund(payment, 30042)
    report = gw.RefundReport(total_minor=10042 + 5000)

    with pytest.raises(Conflict) as ambiguous:
        _report(payment, gw.GatewayOutcome.PARTIALLY_REFUNDED, report)

    assert ambiguous.value.code == "refund_report_ambiguous"
    assert _state(payment) == ("succeeded", 0) and Refund.objects.count() == 2
    _settle_at_sandbox(older)
    _settle_at_sandbox(newer, "refund_fail")
    refund_reconcile(refund_id=older.id)
    refund_reconcile(refund_id=newer.id)
    assert _report(payment, gw.GatewayOutcome.PARTIALLY_REFUNDED, report).changed
    [gateway_refund] = Refund.objects.filter(origin="gateway")
    assert gateway_refund.amount_minor == 5000
    assert _state(payment) == ("partially_refunded", 15042)
    assert not _report(payment, gw.GatewayOutcome.PARTIALLY_REFUNDED, report).changed  # a replay


def test_a_single_refund_report_naming_our_refund_settles_it_instead_of_adding_one(merchant):
    payment = paid_sandbox_payment(merchant)
    pending = _refund(payment, 10042)

    _report(
        payment,
        gw.GatewayOutcome.PARTIALLY_REFUNDED,
        gw.RefundReport(reference=pending.id, amount_minor=10042),
    )
    again = _report(
        payment,
        gw.GatewayOutcome.PARTIALLY_REFUNDED,
        gw.RefundReport(reference=pending.gateway_refund_reference, amount_minor=10042),
    )

    pending.refresh_from_db()
    assert pending.status == "succeeded" and not again.changed
    assert Refund.objects.count() == 1
    assert _state(payment) == ("partially_refunded", 10042)


def test_a_chargeback_never_settles_our_pending_refund(merchant):
    payment = paid_sandbox_payment(merchant)
    pending = _refund(payment, 10042)

    _report(
        payment, gw.GatewayOutcome.PARTIALLY_REFUNDED, gw.RefundReport(total_minor=10042, chargeback=True)
    )

    pending.refresh_from_db()
    assert pending.status == "pending"
    chargeback = Refund.objects.get(origin="gateway")
    assert (chargeback.chargeback, chargeback.amount_minor) == (True, 10042)
    assert refund_movements(chargeback.id) == ["chargeback"]


def test_a_refund_the_gateway_reported_first_is_not_counted_twice(merchant):
    """Our call timed out (no gateway id known), the gateway's single-refund report arrived and was recorded as a
    `gateway` refund; its later SUCCEEDED answer for our refund names the same gateway id: ours is closed as
    failed (`refund_recorded_by_gateway`), the money counted once."""
    payment = paid_sandbox_payment(merchant)
    ours = refund_services._phase1_record(
        merchant=merchant,
        mode="test",
        payment_id=payment.id,
        amount_minor=20000,
        reason="",
        metadata={},
        origin="api",
    )
    _report(
        payment, gw.GatewayOutcome.PARTIALLY_REFUNDED, gw.RefundReport(reference="rfd-1", amount_minor=20000)
    )

    answer = gw.RefundResult(
        gateway_refund_reference="rfd-1", status=gw.RefundStatus.SUCCEEDED, amount_minor=20000
    )
    refund_apply_result(refund_id=ours.id, result=answer)

    ours.refresh_from_db()
    twin = Refund.objects.get(origin="gateway")
    assert (ours.status, ours.failure_code) == ("failed", "refund_recorded_by_gateway")
    assert twin.id in ours.failure_message
    assert _state(payment) == ("partially_refunded", 20000)
    assert balance(merchant, "refunds_payable") == 0


def test_a_payout_above_what_is_left_after_a_chargeback_is_held_for_review_not_recorded(merchant, settings):
    """A chargeback takes money back while our refund is in flight; the gateway then says our refund was paid out
    too. Together they exceed what the payment received, which it cannot record: the refund stays pending, marked
    for finance (`refund_exceeds_received`), nothing is posted, and reconciliation stops asking (this was an
    IntegrityError, a 500, found by the ledger property test)."""
    payment = paid_sandbox_payment(merchant)
    pending = _refund(payment, payment.amount_received_minor - 10000 + 42)
    _report(
        payment, gw.GatewayOutcome.PARTIALLY_REFUNDED, gw.RefundReport(total_minor=20000, chargeback=True)
    )
    movements_before = refund_movements(pending.id)
    _settle_at_sandbox(pending)

    assert refund_reconcile(refund_id=pending.id)

    pending.refresh_from_db()
    assert (pending.status, pending.failure_code) == ("pending", "refund_exceeds_received")
    assert refund_movements(pending.id) == movements_before == ["refund"]
    assert _state(payment) == ("partially_refunded", 20000)
    settings.REFUND_RECONCILE_AFTER_SECONDS = 0
    assert pending.id not in refunds_to_reconcile(now=timezone.now() + timedelta(days=1))


def test_a_single_refund_report_echoing_our_refund_id_settles_it_without_knowing_the_gateway_id(merchant):
    """Our call's answer was lost (no gateway id on the refund), then the gateway's callback arrives with its own
    id and our ref_ id as Xendit's `reference_id`: it is our refund that succeeded, not a new gateway refund."""
    payment = paid_sandbox_payment(merchant)
    pending = _refund(payment, 10042)
    assert not pending.gateway_refund_reference or pending.gateway_refund_reference.startswith("sbxref_")
    Refund.objects.filter(pk=pending.pk).update(gateway_refund_reference="")

    _report(
        payment,
        gw.GatewayOutcome.PARTIALLY_REFUNDED,
        gw.RefundReport(reference="rfd-lost-answer", amount_minor=10042, our_refund_id=pending.id),
    )

    pending.refresh_from_db()
    assert (pending.status, pending.gateway_refund_reference) == ("succeeded", "rfd-lost-answer")
    assert not Refund.objects.filter(origin="gateway").exists()
    assert _state(payment) == ("partially_refunded", 10042)


def test_xendit_refund_callback_carries_our_refund_id_from_its_reference_id():
    from gateways.xendit.webhooks import parse_callback

    def callback(reference_id):
        return json.dumps(
            {
                "event": "refund.succeeded",
                "business_id": "5f27a14a9bf05c73dd040bc8",
                "created": "2026-11-30T10:00:00.000Z",
                "data": {
                    "id": "rfd-6f4a377d-a201-437f-9119-f8b00cbbe857",
                    "invoice_id": "inv-xendit-1",
                    "amount": 50000,
                    "currency": "IDR",
                    "status": "SUCCEEDED",
                    "reference_id": reference_id,
                    "created": "2026-11-30T10:00:00.000Z",
                    "updated": "2026-11-30T10:00:00.000Z",
                },
            }
        ).encode()

    ours = parse_callback(callback("ref_0VcTrvpPmwI7UJ29uDZFjWrt")).refund
    theirs = parse_callback(callback("b2756a1e-e6cd-4352-9a68-0483aa2b6a2")).refund
    assert ours.our_refund_id == "ref_0VcTrvpPmwI7UJ29uDZFjWrt" and ours.reference.startswith("rfd-")
    assert theirs.our_refund_id == ""
