"""Settlement files (reconciliation/files.py): the sandbox's export read back through the generic mapping, and
bad files - wrong columns, bad amounts, another currency, 10 MB of garbage - refused with a clear error, nothing
imported (no run, no line, no ledger movement)."""

from __future__ import annotations

import io
import os

import pytest
from django.core.management import call_command

from gateways.models import SandboxSettlementAdjustmentKind as Inject
from gateways.sandbox.settlement import sandbox_settlement_inject
from ledger.models import Movement
from paytrust.errors import ValidationError
from reconciliation.files import parse_settlement_file
from reconciliation.models import ReconciliationLine, ReconciliationRun, SettlementFileMapping
from reconciliation.services import reconcile_file
from tests.reconciliation.support import paid_payments, refund, sandbox_account, today

pytestmark = pytest.mark.django_db

HEADER = "type,reference,payment_id,gateway_reference,refund_id,amount,fee,currency,occurred_at\n"


def export_csv(account) -> bytes:
    out = io.StringIO()
    call_command("sandbox_settlement", account=account.pk, date=today().isoformat(), stdout=out)
    return out.getvalue().encode()


def upload(account, content: bytes):
    return reconcile_file(
        account=account, day=today(), stream=io.BytesIO(content), filename="settlement.csv", started_by="test"
    )


def nothing_imported():
    assert not ReconciliationRun.objects.exists()
    assert not ReconciliationLine.objects.exists()
    assert not Movement.objects.filter(source_type="settlement_line").exists()


def test_the_sandbox_export_uploaded_as_a_file_reconciles_like_the_api(merchant):
    account = sandbox_account(merchant)
    payments = paid_payments(merchant, [150_000, 250_000, 99_000])
    refund(payments[0], 50_000)
    sandbox_settlement_inject(account=account, day=today(), kind=Inject.DROP, payment_id=payments[2].pk)

    run = upload(account, export_csv(account))

    assert run.source == "file" and run.source_name == "settlement.csv"
    assert run.counts["matched"] == 3 and run.counts["missing_at_gateway"] == 1
    assert run.totals["IDR"]["clearing_agrees"] is True
    assert Movement.objects.filter(source_type="settlement_line", type="payout").count() == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            b"reference;amount;currency\nx;1;IDR\n",
            "lacks the column(s) type, reference, amount, currency, occurred_at of its mapping (its header: reference;amount;currency). Columns must be separated by commas.",
        ),
        (HEADER.encode(), None),  # header only: an empty day, fine
        (
            (
                HEADER
                + "payment,t1,pay_x,,,12.5,0,IDR,{d}T10:00:00Z\npayment,t2,pay_y,,,abc,0,IDR,{d}T10:00:00Z\n"
            ).encode(),
            "line 2: amount '12.5' is not an amount in IDR; line 3: amount 'abc' is not an amount in IDR",
        ),
        (
            (HEADER + "payment,t1,pay_x,,,100,0,EUR,{d}T10:00:00Z\n").encode(),
            "line 2: currency 'EUR' is not one this account takes",
        ),
        ((HEADER + "refundish,t1,pay_x,,,100,0,IDR,{d}T10:00:00Z\n").encode(), "line 2: type 'REFUNDISH'"),
        ((HEADER + "payment,t1,pay_x,,,100,0,IDR,yesterday\n").encode(), "time 'yesterday' is not an ISO"),
        (b"\xff\xfe\x00garbage\x81", "not UTF-8 text"),
    ],
    ids=[
        "wrong-columns",
        "header-only",
        "bad-amounts",
        "other-currency",
        "unknown-type",
        "bad-time",
        "binary",
    ],
)
def test_a_bad_file_is_refused_with_its_problems_and_nothing_is_imported(merchant, content, message):
    account = sandbox_account(merchant)
    content = content.replace(b"{d}", today().isoformat().encode())
    if message is None:
        run = upload(account, content)
        assert sum(run.counts.values()) == 0
        return
    with pytest.raises(ValidationError) as refused:
        upload(account, content)
    assert message in refused.value.message
    assert refused.value.code.startswith("settlement_file")
    nothing_imported()


def test_ten_megabytes_of_garbage_are_refused_without_reading_them_whole(merchant, settings):
    account = sandbox_account(merchant)
    binary = (HEADER + "x" * 200 + "\n").encode() + os.urandom(10 * 1024 * 1024)
    no_line_breaks = HEADER.encode() + b"x" * (10 * 1024 * 1024)
    empty_rows = (HEADER + (",,,,,,,,\n" * 1_200_000)).encode()  # ≈ 11 MB of rows with nothing in them

    refusals = []
    for content in (binary, no_line_breaks, empty_rows):
        settings.RECONCILIATION_MAX_UPLOAD_BYTES = 1024 * 1024 if content is empty_rows else 5 * 1024 * 1024
        with pytest.raises(ValidationError) as refused:
            upload(account, content)
        refusals.append((refused.value.code, refused.value.message))

    assert refusals == [
        ("settlement_file_invalid", "The file is not UTF-8 text (is it a CSV export?)."),
        ("settlement_file_invalid", "The file has a line longer than 64 KB: it is not a settlement CSV."),
        ("settlement_file_too_large", "The file is larger than 1 MB; split it by day."),
    ]
    nothing_imported()


def test_one_bad_line_among_good_ones_imports_nothing(merchant):
    account = sandbox_account(merchant)
    paid_payments(merchant, [150_000])
    good = export_csv(account)
    bad = good + f"payment,tx9,pay_z,,,1O0,0,IDR,{today().isoformat()}T11:00:00Z\n".encode()

    with pytest.raises(ValidationError) as refused:
        upload(account, bad)

    assert "amount '1O0'" in refused.value.message
    nothing_imported()


def test_the_xendit_and_midtrans_presets_read_their_columns(merchant):
    account = sandbox_account(merchant)
    day = today().isoformat()
    xendit = (
        "Status,Type,Reference,Product ID,Currency,Amount,Total Fee,Total VAT,Net Amount,Created Date\n"
        f"SUCCESS,PAYMENT,pay_a,inv-1,IDR,100000,900,100,99000,{day}T09:00:00Z\n"
        f"FAILED,PAYMENT,pay_b,inv-2,IDR,5000,0,0,5000,{day}T09:30:00Z\n"
        f"SUCCESS,WITHDRAWAL,wd-1,wd-1,IDR,-99000,0,0,-99000,{day}T20:00:00Z\n"
    ).encode()
    parsed = parse_settlement_file(
        stream=io.BytesIO(xendit), account=account, day=today(), preset_name="xendit_transactions_v2"
    )
    assert [(line.kind, line.amount_minor, line.fee_minor, line.payment_id) for line in parsed.lines] == [
        ("payment", 100_000, 1_000, "pay_a"),
        ("payout", 99_000, 0, "wd-1"),
    ]
    assert parsed.skipped_status == 1 and not parsed.settles_to_bank

    midtrans = (
        "order_id,transaction_id,gross_amount,currency,transaction_status,settlement_time\n"
        f"pay_c,9aed5972-5b6a,150000.00,IDR,settlement,{day} 10:00:00\n"
    ).encode()
    SettlementFileMapping.objects.create(account=account, preset="midtrans")
    parsed = parse_settlement_file(
        stream=io.BytesIO(midtrans), account=account, day=today(), preset_name="midtrans"
    )
    (line,) = parsed.lines
    assert (line.kind, line.amount_minor, line.reference) == ("payment", 150_000, "9aed5972-5b6a")
    assert line.occurred_at.hour == 3  # 10:00 WIB is 03:00 UTC
    assert parsed.settles_to_bank
