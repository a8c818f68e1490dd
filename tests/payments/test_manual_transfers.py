"""Recording received bank transfers for manual payments (docs/adr/0052): through the admin as the finance role
(refused for support) and `manage.py record_bank_transfer`, applied through the inbound pipeline like any gateway's
notification: full, partial and over-payment, ledger balanced (verify_ledger), a duplicate recording changes
nothing, wrong references refused, audited; refunds of manual payments stay pending until paid out by hand."""

from __future__ import annotations

import io
from datetime import date, timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.core.management import CommandError, call_command
from django.utils import timezone

from apikeys.models import AuditLog
from gateways.models import BankTransferReceipt, ManualRefund
from invoices.models import Invoice, PaymentApplication
from ledger.models import Movement
from payments.models import Payment, Refund
from tests.gateways.manual_support import manual_payment
from tests.reporting.test_roles import login
from webhooks.inbound.models import InboundNotification
from webhooks.outbound.models import Event

pytestmark = pytest.mark.django_db

RECORD_URL = "/admin/gateways/banktransferreceipt/add/"
TODAY = date.today


def record(**options) -> str:
    out = io.StringIO()
    args = []
    for name, value in options.items():
        args += [f"--{name.replace('_', '-')}", str(value)]
    call_command("record_bank_transfer", *args, stdout=out)
    return out.getvalue()


def verify_ledger_ok() -> str:
    out = io.StringIO()
    call_command("verify_ledger", stdout=out)  # exits 1 (SystemExit) on any break
    return out.getvalue()


def _state(payment: Payment) -> tuple:
    payment.refresh_from_db()
    invoice = Invoice.objects.get(pk=payment.invoice_id)
    return payment.status, payment.amount_received_minor, invoice.status


# ---- the admin, as the roles --------------------------------------------------------------------------------------


def test_finance_records_a_full_transfer_in_the_admin_and_it_is_applied_and_audited(merchant):
    payment, transfer = manual_payment(merchant)
    client = login("finance")

    form = client.get(RECORD_URL)
    assert form.status_code == 200 and 'name="bank_reference"' in form.content.decode()
    # "150.000" (150,000 rupiah as written in Indonesia) is refused on the form, not read as 150 IDR.
    typed = {
        "reference": transfer.reference.lower(),
        "amount": "150.000",
        "received_on": TODAY().isoformat(),
        "bank_reference": "bca-20261130-0001",
    }
    refused = client.post(RECORD_URL, typed)
    assert refused.status_code == 200 and "without thousands separators" in refused.content.decode()
    assert not BankTransferReceipt.objects.exists()
    done = client.post(
        RECORD_URL,
        {
            "reference": transfer.reference.lower(),  # as typed from a bank statement
            "amount": "150000",
            "received_on": TODAY().isoformat(),
            "bank_reference": "bca-20261130-0001",
        },
    )

    assert done.status_code == 302, done.content.decode()[:2000]
    assert _state(payment) == ("succeeded", 150000, "paid")
    receipt = BankTransferReceipt.objects.get()
    assert (receipt.bank_reference, receipt.amount_minor, receipt.recorded_by) == (
        "BCA-20261130-0001",
        150000,
        "user:finance-user",
    )
    event = InboundNotification.objects.get(gateway="manual")
    assert (event.status, event.gateway_event_id, event.payment_id) == (
        "processed",
        "bank_transfer:BCA-20261130-0001",
        payment.id,
    )
    audit = AuditLog.objects.get(details__action_name="payments.bank_transfer_recorded")
    assert audit.actor == "user:finance-user" and audit.merchant_id == merchant.id
    assert audit.details["reference"] == transfer.reference and audit.details["amount"] == "150000"
    assert LogEntry.objects.filter(object_id=str(receipt.pk), user__username="finance-user").exists()
    assert Event.objects.filter(type="payment.succeeded", data__id=payment.id).count() == 1
    assert "ledger OK" in verify_ledger_ok()


def test_support_cannot_record_a_transfer(merchant):
    payment, transfer = manual_payment(merchant)
    client = login("support")

    assert client.get(RECORD_URL).status_code == 403
    forged = client.post(
        RECORD_URL,
        {
            "reference": transfer.reference,
            "amount": "150000",
            "received_on": TODAY().isoformat(),
            "bank_reference": "X1",
        },
    )
    assert forged.status_code == 403
    assert _state(payment)[0] == "pending"
    assert not BankTransferReceipt.objects.exists() and not InboundNotification.objects.exists()
    # Support still reads the recorded transfers (read-only).
    assert client.get("/admin/gateways/banktransferreceipt/").status_code == 200


def test_a_mistyped_or_unknown_reference_is_refused_on_the_form_and_nothing_is_written(merchant):
    payment, transfer = manual_payment(merchant)
    client = login("finance")
    body = transfer.reference[3:7] + transfer.reference[8:]
    typo = body[:-1] + ("X" if body[-1] != "X" else "Y")
    wrong = client.post(
        RECORD_URL,
        {"reference": typo, "amount": "150000", "received_on": TODAY().isoformat(), "bank_reference": "B1"},
    )
    assert wrong.status_code == 200 and "typing mistake" in wrong.content.decode()
    assert (
        not BankTransferReceipt.objects.exists()
        and not AuditLog.objects.filter(details__action_name="payments.bank_transfer_recorded").exists()
    )
    with pytest.raises(CommandError, match="transfer_reference_unknown"):
        record(reference="PT-0000-0000", amount="150000", received_on=TODAY(), bank_reference="B1")
    assert _state(payment)[0] == "pending"


# ---- the command: partial, over-payment, duplicates, refusals ----------------------------------------------------


def test_a_partial_transfer_pays_part_of_the_invoice(merchant):
    payment, transfer = manual_payment(merchant, amount="150000")
    out = record(reference=transfer.reference, amount="100000", received_on=TODAY(), bank_reference="P-1")

    assert "recorded IDR 100,000" in out and "processed" in out
    assert _state(payment) == ("succeeded", 100000, "partially_paid")
    assert PaymentApplication.objects.get(payment_id=payment.id).applied_minor == 100000
    assert "ledger OK" in verify_ledger_ok()


def test_an_overpayment_is_recorded_as_overpaid(merchant):
    payment, transfer = manual_payment(merchant, amount="150000")
    record(
        reference=transfer.reference,
        amount="175000",
        received_on=TODAY(),
        bank_reference="O-1",
        currency="IDR",
    )

    assert _state(payment) == ("succeeded", 175000, "paid")
    application = PaymentApplication.objects.get(payment_id=payment.id)
    assert (application.applied_minor, application.overpaid_minor) == (150000, 25000)
    assert "ledger OK" in verify_ledger_ok()


def test_the_same_bank_transfer_recorded_twice_changes_the_payment_once(merchant):
    payment, transfer = manual_payment(merchant)
    options = {
        "reference": transfer.reference,
        "amount": "150000",
        "received_on": TODAY(),
        "bank_reference": "D-1",
    }
    record(**options)
    movements = Movement.objects.count()

    again = record(**options)

    assert "already recorded" in again and "nothing changed" in again
    assert BankTransferReceipt.objects.count() == 1 and InboundNotification.objects.count() == 1
    assert Event.objects.filter(type="payment.succeeded").count() == 1
    assert Movement.objects.count() == movements
    assert AuditLog.objects.filter(details__action_name="payments.bank_transfer_recorded").count() == 2
    # The same bank reference with other details is a mistake, not a repeat.
    with pytest.raises(CommandError, match="bank_reference_already_recorded"):
        record(**{**options, "amount": "1000"})
    # A second transfer on a payment that already received one is refused (it would be ignored by the payment).
    with pytest.raises(CommandError, match="bank_transfer_already_recorded"):
        record(**{**options, "bank_reference": "D-2"})
    assert _state(payment) == ("succeeded", 150000, "paid")


def test_refusals_currency_date_amount_and_another_merchants_payment(merchant, other_merchant):
    payment, transfer = manual_payment(merchant)
    base = {
        "reference": transfer.reference,
        "amount": "150000",
        "received_on": TODAY(),
        "bank_reference": "R-1",
    }
    with pytest.raises(CommandError, match="currency_mismatch"):
        record(**base, currency="USD")
    with pytest.raises(CommandError, match="in the future"):
        record(**{**base, "received_on": TODAY() + timedelta(days=2)})
    with pytest.raises(CommandError, match="before the payment's instructions"):
        record(**{**base, "received_on": TODAY() - timedelta(days=3)})
    with pytest.raises(CommandError, match="decimal"):
        record(**{**base, "amount": "12.5"})
    # Typed the Indonesian way (a dot between thousands) or with separators: refused, never read as 150 IDR.
    for typed in ("150.000", "150,000", "150 000"):
        with pytest.raises(CommandError, match="without thousands separators"):
            record(**{**base, "amount": typed})
    with pytest.raises(CommandError, match="transfer_reference_unknown"):
        record(**base, merchant=other_merchant.id)
    assert _state(payment)[0] == "pending"
    assert not BankTransferReceipt.objects.exists() and not InboundNotification.objects.exists()


def test_a_transfer_arriving_after_expiry_is_still_applied(merchant):
    from payments.services.reconciliation import payment_close_at_gateway

    payment, transfer = manual_payment(merchant)
    payment_close_at_gateway(payment_id=payment.id)
    assert _state(payment)[0] == "expired"

    record(reference=transfer.reference, amount="150000", received_on=TODAY(), bank_reference="L-1")

    assert _state(payment)[:2] == ("succeeded", 150000)  # money is never refused
    assert "ledger OK" in verify_ledger_ok()


# ---- refunds: paid out by hand -----------------------------------------------------------------------------------


def test_a_manual_refund_stays_pending_until_finance_marks_it_paid_out(merchant, api):
    payment, transfer = manual_payment(merchant)
    record(reference=transfer.reference, amount="150000", received_on=TODAY(), bank_reference="F-1")

    created = api.post(f"/v1/payments/{payment.id}/refunds", {"amount": "50000"}, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["status"] == "pending"
    manual_refund = ManualRefund.objects.get()
    assert (manual_refund.refund_id, manual_refund.amount_minor, manual_refund.status) == (
        created.json()["id"],
        50000,
        "pending",
    )
    assert "ledger OK" in verify_ledger_ok()

    support = login("support")
    url = "/admin/gateways/manualrefund/"
    post = {"action": "mark_paid_out", "_selected_action": [manual_refund.pk], "index": "0"}
    assert support.post(url, {**post, "payout_step": "apply", "payout_reference": "OUT-1"}).status_code == 403
    finance = login("finance")
    form = finance.post(url, post)
    assert form.status_code == 200 and 'name="payout_reference"' in form.content.decode()
    assert finance.post(url, {**post, "payout_step": "apply", "payout_reference": "out-1"}).status_code == 302

    refund = Refund.objects.get(pk=created.json()["id"])
    payment.refresh_from_db()
    assert (refund.status, refund.gateway_refund_reference) == ("succeeded", "OUT-1")
    assert (payment.status, payment.amount_refunded_minor) == ("partially_refunded", 50000)
    audit = AuditLog.objects.get(details__action_name="payments.refund_paid_out_by_hand")
    assert audit.actor == "user:finance-user" and audit.details["refund"] == refund.pk
    assert Event.objects.filter(type="refund.succeeded").count() == 1
    assert "ledger OK" in verify_ledger_ok()
    assert timezone.now() >= refund.succeeded_at
