"""Payment / installment states -> pain.002 status codes (pure mapping)."""

from __future__ import annotations

import pytest

from iso20022.statuses import (
    ACSC,
    ACSP,
    NARR,
    PART,
    PDNG,
    RJCT,
    group_status,
    installment_status_detail,
    payment_status_detail,
    payment_status_to_pain002,
)


@pytest.mark.parametrize(
    ("status", "failure_code", "expected"),
    [
        ("succeeded", None, (ACSC, None)),
        ("refunded", None, (ACSC, None)),
        ("partially_refunded", None, (ACSC, None)),
        ("pending", None, (ACSP, None)),
        ("initiating", None, (PDNG, None)),
        ("unknown", None, (PDNG, None)),
        ("failed", None, (RJCT, NARR)),
        ("failed", "INSUFFICIENT_BALANCE", (RJCT, "AM04")),
        ("failed", "insufficient funds", (RJCT, "AM04")),
        ("failed", "invalid-account-number", (RJCT, "AC01")),
        ("failed", "ACCOUNT_CLOSED", (RJCT, "AC04")),
        ("failed", "deny", (RJCT, "AG01")),
        ("failed", "AC06", (RJCT, "AC06")),  # already an ISO reason code
        ("failed", "some_new_gateway_code", (RJCT, NARR)),
        ("expired", None, (RJCT, NARR)),
        ("SUCCEEDED", None, (ACSC, None)),
    ],
)
def test_payment_status_maps_to_pain002_code(status, failure_code, expected):
    assert payment_status_to_pain002(status, failure_code) == expected


def test_unmapped_failure_code_is_kept_as_narrative():
    detail = payment_status_detail("failed", "some_new_gateway_code")
    assert detail.additional_information == "Payment failed: some_new_gateway_code"
    assert (
        payment_status_detail("expired").additional_information == "Payment expired before it was completed"
    )


def test_unknown_payment_status_is_an_error_not_a_guess():
    with pytest.raises(ValueError):
        payment_status_to_pain002("teleported")


def _installment(amount=1000, paid=0, payments=(), invoice_status="pending"):
    return installment_status_detail(
        amount_minor=amount,
        amount_paid_minor=paid,
        currency="USD",
        payments=payments,
        invoice_status=invoice_status,
    )


def test_paid_installment_is_settled_whatever_its_payments_say():
    assert _installment(paid=1000, payments=[("failed", None), ("succeeded", None)]).code == ACSC


def test_partly_paid_installment_is_in_process_with_the_amounts():
    detail = _installment(paid=250)
    assert detail.code == ACSP
    assert detail.additional_information == "Partially paid: 2.50 of 10.00 USD"


def test_unpaid_installment_without_payments_is_pending():
    assert _installment().code == PDNG


def test_unpaid_installment_takes_its_latest_payment_status():
    assert _installment(payments=[("failed", "insufficient_funds"), ("pending", None)]).code == ACSP
    rejected = _installment(payments=[("pending", None), ("failed", "insufficient_funds")])
    assert (rejected.code, rejected.reason_code) == (RJCT, "AM04")


def test_unpaid_installment_of_a_void_or_expired_invoice_is_rejected():
    assert (_installment(invoice_status="void").code, _installment(invoice_status="void").reason_code) == (
        RJCT,
        NARR,
    )
    assert _installment(invoice_status="expired", payments=[("pending", None)]).code == RJCT
    # ...but money already received stays reported.
    assert _installment(invoice_status="expired", paid=1000).code == ACSC


def test_refunded_payment_without_money_on_the_installment_is_not_reported_settled():
    assert _installment(payments=[("refunded", None)]).code == PDNG


@pytest.mark.parametrize(
    ("codes", "received", "expected"),
    [
        ([ACSC], None, ACSC),
        ([ACSC] * 12, None, ACSC),
        ([RJCT, RJCT], None, RJCT),
        ([PDNG], None, PDNG),
        ([PDNG, PDNG], None, PDNG),
        ([ACSP], [False], ACSP),  # one open payment, nothing received yet
        ([ACSP], [True], PART),  # one partly paid installment: partly settled group
        ([ACSC, PDNG, PDNG], None, PART),
        ([ACSC, RJCT], None, PART),
        ([ACSC, ACSP], [True, False], PART),
        ([ACSP, PDNG], [False, False], PART),  # some accepted, some not yet
        ([PDNG, RJCT], None, PDNG),  # nothing accepted, something still pending
        (["ACCP", RJCT], None, PART),  # codes from other sources: the published sample's outcome
        (["ACCC", ACSC], None, ACSC),
    ],
)
def test_group_status(codes, received, expected):
    assert group_status(codes, money_received=received) == expected


def test_group_status_needs_transactions():
    with pytest.raises(ValueError):
        group_status([])
