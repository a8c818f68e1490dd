"""The back office as the roles (finance resolves and applies, support only reads), `manage.py reconcile` with its
summary, the daily job, the /metrics gauges, and a lost notification applied after confirming with the gateway."""

from __future__ import annotations

import io

import pytest
from django.contrib.admin.models import LogEntry
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.test import Client

from apikeys.models import AuditLog
from gateways.models import SandboxCheckoutSession
from gateways.models import SandboxSettlementAdjustmentKind as Inject
from gateways.sandbox import services as sandbox
from gateways.sandbox.settlement import sandbox_fee, sandbox_settlement_inject
from ledger.models import Movement
from payments.models import Payment
from paytrust.jobs import app
from reconciliation.models import LineClass, ReconciliationLine, ReconciliationRun, Resolution
from reconciliation.services import reconcile_api_accounts, reconcile_day
from tests.reconciliation.support import balance, initiated, paid_payments, sandbox_account, today
from tests.reporting.test_roles import login

pytestmark = pytest.mark.django_db

LINES = "/admin/reconciliation/reconciliationline/"


def lost_notification_payment(merchant, amount: str = "120000") -> Payment:
    """Paid at the sandbox, but its webhook never reached PayTrust (the receiver failed): still pending here."""
    payment = initiated(merchant, amount)
    session = SandboxCheckoutSession.objects.get(payment_id=payment.pk)

    def lost(*args):
        raise ConnectionError("network down")

    outcome = sandbox.sandbox_checkout_submit(
        token=session.token, nonce=session.form_nonce, action="pay", receiver=lost
    )
    assert not outcome.delivered
    payment.refresh_from_db()
    assert payment.status == "pending"
    return payment


def day_with_discrepancies(merchant):
    account = sandbox_account(merchant)
    paid = paid_payments(merchant, [150_000, 160_000])
    lost = lost_notification_payment(merchant)
    sandbox_settlement_inject(
        account=account, day=today(), kind=Inject.ALTER_AMOUNT, payment_id=paid[1].pk, amount_minor=150_000
    )
    return account, paid, lost


def act(client, action: str, lines, **fields):
    return client.post(
        LINES, {"action": action, "_selected_action": [line.pk for line in lines], "index": "0", **fields}
    )


def test_finance_resolves_a_mismatch_with_a_note_and_applies_a_lost_notification(merchant):
    account, paid, lost = day_with_discrepancies(merchant)
    run = reconcile_day(account=account, day=today())
    mismatch = ReconciliationLine.objects.get(run=run, line_class=LineClass.AMOUNT_MISMATCH)
    missing = ReconciliationLine.objects.get(run=run, line_class=LineClass.MISSING_IN_PAYTRUST)
    assert missing.payment_id == lost.pk and run.open_discrepancies == 2
    client = login("finance")

    page = client.get(f"{LINES}?run__id__exact={run.pk}&line_class__exact=amount_mismatch").content.decode()
    assert str(mismatch.gateway_reference) in page and missing.gateway_reference not in page
    assert client.get(f"/admin/reconciliation/reconciliationrun/{run.pk}/change/").status_code == 200
    form = act(client, "resolve_selected", [mismatch])
    assert form.status_code == 200 and 'name="note"' in form.content.decode()
    refused = act(client, "resolve_selected", [mismatch], step="apply", note="  ")
    assert refused.status_code == 200  # the form again: a note is required
    done = act(client, "resolve_selected", [mismatch], step="apply", note="Gateway promo discount, accepted")
    assert done.status_code == 302
    mismatch.refresh_from_db()
    assert (mismatch.resolution, mismatch.resolution_note) == (
        Resolution.RESOLVED,
        "Gateway promo discount, accepted",
    )
    assert mismatch.resolved_by.username == "finance-user"
    audit = AuditLog.objects.get(actor="user:finance-user", details__action_name="reconciliation.resolve")
    assert audit.details["lines"] == [str(mismatch.pk)] and audit.details["note"].startswith("Gateway promo")
    assert LogEntry.objects.filter(object_id=str(mismatch.pk), user__username="finance-user").exists()

    assert act(client, "apply_selected", [missing]).status_code == 200  # the confirmation page
    assert act(client, "apply_selected", [missing], step="apply").status_code == 302
    lost.refresh_from_db()
    missing.refresh_from_db()
    assert lost.status == "succeeded" and missing.resolution == Resolution.APPLIED
    assert AuditLog.objects.filter(details__action_name="reconciliation.apply").exists()
    run.refresh_from_db()
    assert run.open_discrepancies == 0 and run.status == "completed"

    again = reconcile_day(
        account=account, day=today()
    )  # the applied payment now matches; the resolution stays
    assert again.counts[LineClass.MATCHED] == 2 and again.counts[LineClass.AMOUNT_MISMATCH] == 1
    assert (
        ReconciliationLine.objects.get(run=again, line_class="amount_mismatch").resolution
        == Resolution.RESOLVED
    )
    assert balance(merchant, "gateway_fees") == sandbox_fee(150_000) + sandbox_fee(120_000)


def test_support_reads_runs_but_cannot_resolve_apply_or_run(merchant):
    account, _, _ = day_with_discrepancies(merchant)
    run = reconcile_day(account=account, day=today())
    line = ReconciliationLine.objects.get(run=run, line_class=LineClass.AMOUNT_MISMATCH)
    client = login("support")

    page = client.get(LINES).content.decode()
    assert client.get("/admin/reconciliation/reconciliationrun/").status_code == 200
    assert '<option value="resolve_selected"' not in page and '<option value="apply_selected"' not in page
    assert act(client, "resolve_selected", [line], step="apply", note="I think it's fine").status_code == 403
    assert act(client, "apply_selected", [line], step="apply").status_code == 403
    assert client.get("/admin/reconciliation/reconciliationrun/run/").status_code == 403
    line.refresh_from_db()
    assert line.resolution == Resolution.OPEN
    assert not AuditLog.objects.filter(details__action_name__startswith="reconciliation.").exists()


def test_finance_uploads_a_settlement_file_and_a_bad_one_is_refused(merchant):
    account = sandbox_account(merchant)
    paid_payments(merchant, [150_000])
    export = io.StringIO()
    call_command("sandbox_settlement", account=account.pk, date=today().isoformat(), stdout=export)
    client = login("finance")
    url = "/admin/reconciliation/reconciliationrun/run/"

    bad = client.post(
        url,
        {
            "account": account.pk,
            "day": today().isoformat(),
            "file": SimpleUploadedFile("s.csv", b"a,b\n1,2\n"),
        },
    )
    assert bad.status_code == 200 and "lacks the column(s)" in bad.content.decode()
    assert not ReconciliationRun.objects.exists()
    good = client.post(
        url,
        {
            "account": account.pk,
            "day": today().isoformat(),
            "file": SimpleUploadedFile("s.csv", export.getvalue().encode()),
        },
    )
    assert good.status_code == 302
    run = ReconciliationRun.objects.get()
    assert run.source == "file" and run.counts["matched"] == 1
    assert AuditLog.objects.filter(
        details__action_name="reconciliation.run", actor="user:finance-user"
    ).exists()


def test_the_command_prints_a_summary_and_reruns_to_the_same_result(merchant):
    account = sandbox_account(merchant)
    paid_payments(merchant, [150_000, 170_000])
    sandbox_settlement_inject(account=account, day=today(), kind=Inject.UNKNOWN_PAYMENT, amount_minor=80_000)
    out, err = io.StringIO(), io.StringIO()

    call_command("reconcile", date=today().isoformat(), account=account.pk, stdout=out, stderr=err)
    call_command("reconcile", date=today().isoformat(), account=account.pk, stdout=out, stderr=err)

    lines = out.getvalue().splitlines()
    assert lines[0] == lines[2]  # the same summary twice
    assert (
        f"{account.pk} {today()}: discrepancies; matched 2, amount_mismatch 0, missing_in_paytrust 1"
        in lines[0]
    )
    assert "open 1" in lines[0] and lines[1] == f"reconciled 1 of 1 account(s) for {today()}"
    assert Movement.objects.filter(type="payout").count() == 1
    with pytest.raises(CommandError, match="not a YYYY-MM-DD"):
        call_command("reconcile", date="30/11/2026", stdout=out, stderr=err)
    with pytest.raises(CommandError, match="--file needs --account"):
        call_command("reconcile", date=today().isoformat(), file="x.csv", stdout=out, stderr=err)


def test_the_daily_job_is_scheduled():
    app.perform_import_paths()
    scheduled = {p.task.name: p.cron for p in app.periodic_registry.periodic_tasks.values()}
    assert scheduled["reconciliation.reconcile_yesterday"] == "17 3 * * *"


def test_the_daily_run_covers_every_api_account_and_metrics_show_the_discrepancies(merchant):
    account = sandbox_account(merchant)
    paid_payments(merchant, [150_000])
    sandbox_settlement_inject(account=account, day=today(), kind=Inject.UNKNOWN_PAYMENT, amount_minor=80_000)

    done = reconcile_api_accounts(day=today(), started_by="job")

    assert done == {"accounts": 1, "failed": 0, "open_discrepancies": 1}
    assert ReconciliationRun.objects.get(account=account, day=today()).started_by == "job"
    text = Client().get("/metrics").content.decode()
    assert 'paytrust_reconciliation_discrepancies{class="missing_in_paytrust",gateway="sandbox"} 1.0' in text
    assert 'paytrust_reconciliation_failed_runs{gateway="sandbox"} 0.0' in text
