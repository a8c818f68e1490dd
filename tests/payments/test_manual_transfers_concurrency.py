"""Real concurrent recordings (threads, each with its own database connection): the same bank transfer recorded
by several people at once is one receipt, one notification and one state change; one bank reference recorded at
once for two payments lands on exactly one (the instructions' row lock, then the unique index, decide)."""

from __future__ import annotations

from datetime import date

import pytest

from apikeys.services import Actor
from gateways.models import BankTransferReceipt
from paytrust.errors import Conflict
from tests.gateways.manual_support import manual_account, manual_payment
from tests.payments.test_initiation_concurrency import _concurrently
from webhooks.inbound.manual_transfers import bank_transfer_record
from webhooks.inbound.models import InboundNotification
from webhooks.outbound.models import Event

N = 6


def _record(reference: str, bank_reference: str):
    return lambda: bank_transfer_record(
        reference=reference,
        amount="150000",
        received_on=date.today(),
        bank_reference=bank_reference,
        actor=Actor.for_cli("test"),
    )


@pytest.mark.django_db(transaction=True)
def test_simultaneous_recordings_change_one_payment_once_and_a_bank_reference_lands_on_one_payment(
    merchant, no_jobs
):
    # One test (one flush of the transactional database): the same transfer recorded by N people at once.
    account = manual_account(merchant)
    payment, transfer = manual_payment(merchant, account=account)

    results = _concurrently(N, _record(transfer.reference, "SAME-1"))

    assert all(not isinstance(r, Exception) for r in results), results
    assert sorted(r.duplicate for r in results) == [False] + [True] * (N - 1)
    assert BankTransferReceipt.objects.count() == 1 and InboundNotification.objects.count() == 1
    assert Event.objects.filter(type="payment.succeeded").count() == 1
    payment.refresh_from_db()
    assert (payment.status, payment.amount_received_minor) == ("succeeded", 150000)

    # One bank reference recorded at once for two other payments: exactly one gets it.
    (_, first), (_, second) = (
        manual_payment(merchant, account=account),
        manual_payment(merchant, account=account),
    )

    fns = [_record(first.reference, "TWICE-1"), _record(second.reference, "TWICE-1")]
    results = _concurrently(2, lambda: fns.pop()())

    assert sorted(type(r).__name__ for r in results) == ["Conflict", "TransferRecorded"], results
    conflict = next(r for r in results if isinstance(r, Conflict))
    assert conflict.code == "bank_reference_already_recorded"
    assert BankTransferReceipt.objects.filter(bank_reference="TWICE-1").count() == 1
    assert InboundNotification.objects.count() == 2
