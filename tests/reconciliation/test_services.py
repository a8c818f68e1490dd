"""Reconciliation services' edges: another merchant's payment echoed by a gateway is never matched nor applied
(tenant isolation), a currency mismatch, refusals of resolve/apply, a future day."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest

from gateways.models import SandboxSettlementAdjustmentKind as Inject
from gateways.sandbox.settlement import sandbox_settlement_inject
from gateways.services import merchant_onboard
from paytrust.errors import Conflict, ValidationError
from reconciliation.models import LineClass, ReconciliationLine, Resolution
from reconciliation.services import line_apply, line_resolve, reconcile_day, reconcile_file
from tests.reconciliation.support import paid_payments, sandbox_account, today

pytestmark = pytest.mark.django_db


def test_another_merchants_payment_named_by_the_gateway_is_missing_and_cannot_be_applied(
    merchant, django_user_model
):
    other = merchant_onboard(name="Another shop")
    (theirs,) = paid_payments(other, [130_000])
    account = sandbox_account(merchant)
    sandbox_settlement_inject(
        account=account, day=today(), kind=Inject.UNKNOWN_PAYMENT, payment_id=theirs.pk, amount_minor=130_000
    )

    run = reconcile_day(account=account, day=today())

    line = ReconciliationLine.objects.get(run=run)
    assert (line.line_class, line.payment_id, line.paytrust_amount_minor) == (
        LineClass.MISSING_IN_PAYTRUST,
        theirs.pk,
        None,
    )
    staff = django_user_model.objects.create(username="fin")
    with pytest.raises(Conflict) as refused:
        line_apply(line_id=line.pk, user=staff)
    assert refused.value.code == "reconciliation_payment_unknown"
    line.refresh_from_db()
    assert line.resolution == Resolution.OPEN
    theirs.refresh_from_db()
    assert theirs.amount_received_minor == 130_000  # untouched


def test_a_line_in_another_currency_than_its_payment_is_a_currency_mismatch(merchant):
    account = sandbox_account(merchant)
    (payment,) = paid_payments(merchant, [150_000])
    csv = (
        "type,reference,payment_id,amount,currency,occurred_at\n"
        f"payment,t-1,{payment.pk},10.00,USD,{today().isoformat()}T10:00:00Z\n"
    ).encode()

    run = reconcile_file(
        account=account, day=today(), stream=io.BytesIO(csv), filename="f.csv", started_by="t"
    )

    line = ReconciliationLine.objects.get(run=run, payment_id=payment.pk)
    assert line.line_class == LineClass.CURRENCY_MISMATCH
    assert (line.currency, line.gateway_amount_minor, line.paytrust_currency) == ("USD", 1000, "IDR")
    assert run.counts[LineClass.CURRENCY_MISMATCH] == 1 and run.open_discrepancies == 1


def test_resolve_needs_a_note_and_an_open_discrepancy(merchant, django_user_model):
    account = sandbox_account(merchant)
    paid_payments(merchant, [150_000])
    sandbox_settlement_inject(account=account, day=today(), kind=Inject.UNKNOWN_PAYMENT, amount_minor=1_000)
    run = reconcile_day(account=account, day=today())
    staff = django_user_model.objects.create(username="fin")
    matched = ReconciliationLine.objects.get(run=run, line_class=LineClass.MATCHED)
    missing = ReconciliationLine.objects.get(run=run, line_class=LineClass.MISSING_IN_PAYTRUST)

    with pytest.raises(ValidationError):
        line_resolve(line_id=missing.pk, note="   ", user=staff)
    with pytest.raises(Conflict):
        line_resolve(line_id=matched.pk, note="fine", user=staff)
    line_resolve(
        line_id=missing.pk, note="Test payment in the gateway's dashboard; refunded there", user=staff
    )
    with pytest.raises(Conflict):
        line_resolve(line_id=missing.pk, note="again", user=staff)
    with pytest.raises(Conflict):
        line_apply(line_id=missing.pk, user=staff)
    run.refresh_from_db()
    assert (run.open_discrepancies, run.status) == (0, "completed")


def test_a_future_day_is_refused(merchant):
    with pytest.raises(ValidationError):
        reconcile_day(account=sandbox_account(merchant), day=today() + timedelta(days=1))


def test_a_gateway_without_a_list_api_needs_a_file(merchant):
    from gateways import services
    from tests.gateways.conftest import MIDTRANS_CLIENT_KEY, MIDTRANS_SERVER_KEY

    account = services.gateway_account_create(
        merchant=merchant,
        mode="test",
        gateway="midtrans",
        credentials={"server_key": MIDTRANS_SERVER_KEY, "client_key": MIDTRANS_CLIENT_KEY},
        currencies=["IDR"],
    )
    with pytest.raises(ValidationError) as refused:
        reconcile_day(account=account, day=today())
    assert refused.value.code == "settlement_file_required"


def test_a_file_whose_gateway_settles_each_transaction_to_the_bank_posts_the_net_to_bank(merchant):
    from ledger.models import Movement
    from reconciliation.models import SettlementFileMapping
    from tests.reconciliation.support import balance, refund

    account = sandbox_account(merchant)
    paid = paid_payments(merchant, [150_000, 90_000])
    ref = refund(paid[0], 40_000)
    SettlementFileMapping.objects.create(account=account, preset="midtrans")
    day = today().isoformat()
    rows = [
        f"{paid[0].pk},mt-1,150000.00,IDR,settlement,{day} 07:00:00",  # WIB: 00:00 UTC
        f"{paid[1].pk},mt-2,90000.00,IDR,capture,{day} 07:00:01",
        f"{paid[0].pk},{ref.gateway_refund_reference},40000.00,IDR,partial_refund,{day} 07:00:02",
    ]
    csv = (
        "order_id,transaction_id,gross_amount,currency,transaction_status,settlement_time\n" + "\n".join(rows)
    ).encode()

    run = reconcile_file(
        account=account, day=today(), stream=io.BytesIO(csv), filename="mt.csv", started_by="t"
    )

    assert run.counts[LineClass.MATCHED] == 3 and run.open_discrepancies == 0
    assert Movement.objects.filter(type="settlement", merchant=merchant).count() == 3
    assert balance(merchant, "bank") == 150_000 + 90_000 - 40_000
    assert balance(merchant, "gateway_clearing") == 0  # everything collected is in the bank


def _generic_file(rows: list[str]):
    import io

    head = "type,reference,payment_id,amount,currency,occurred_at,fee\n"
    return io.BytesIO((head + "".join(rows)).encode())


def test_one_payment_settled_twice_is_matched_once_and_its_fee_posted_once(merchant):
    """Two settlement lines (two gateway transaction ids) for one collection: the second finds nothing of PayTrust's
    left to match (amount_mismatch, PayTrust 0), so no second fee or settlement is booked — also when the gateway
    lists it again on another day (found by an attacker/finance review)."""
    from datetime import timedelta

    from reconciliation.models import LineClass, ReconciliationLine
    from reconciliation.services import reconcile_file
    from tests.reconciliation.support import balance, paid_payments, sandbox_account, today

    account = sandbox_account(merchant)
    (payment,) = paid_payments(merchant, [150_000])
    day = today()
    fees_before = balance(merchant, "gateway_fees")
    rows = [
        f"payment,t-1,{payment.pk},150000,IDR,{day.isoformat()}T10:00:00Z,1000\n",
        f"payment,t-2,{payment.pk},150000,IDR,{day.isoformat()}T11:00:00Z,1000\n",
    ]
    run = reconcile_file(
        account=account, day=day, stream=_generic_file(rows), filename="f.csv", started_by="t"
    )
    lines = ReconciliationLine.objects.filter(run=run, kind="payment").order_by("gateway_reference")
    assert [(line.line_class, line.paytrust_amount_minor) for line in lines] == [
        (LineClass.MATCHED, 150_000),
        (LineClass.AMOUNT_MISMATCH, 0),
    ]
    assert balance(merchant, "gateway_fees") - fees_before == 1000

    other_day = day - timedelta(days=1)
    again = [f"payment,t-3,{payment.pk},150000,IDR,{other_day.isoformat()}T09:00:00Z,1000\n"]
    run2 = reconcile_file(
        account=account, day=other_day, stream=_generic_file(again), filename="g.csv", started_by="t"
    )
    assert list(
        ReconciliationLine.objects.filter(run=run2, kind="payment").values_list("line_class", flat=True)
    ) == [LineClass.AMOUNT_MISMATCH]
    assert balance(merchant, "gateway_fees") - fees_before == 1000
