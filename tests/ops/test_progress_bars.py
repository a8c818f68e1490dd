"""Progress bars of the operator commands: drawn only on a terminal, plain (not Django's red stderr), not broken by
log lines, and a summary line on stdout always.

Off a terminal the commands run in-process (`call_command` with StringIO streams, as in cron or a pipe). On a
terminal: a real pseudo-terminal around a `manage.py replay_webhooks --sync` subprocess whose processing logs a
warning for every notification while the bar is drawn.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import pty
import struct
import subprocess
import sys
import termios
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.test import Client

from gateways.registry import gateway_for_account
from gateways.sandbox.webhooks import build_body, sign
from gateways.selectors import gateway_account_credentials
from gateways.services import merchant_onboard
from invoices.models import Invoice
from payments.models import Payment
from tests.factories import make_api_key
from tests.payments.factories import make_invoice, sandbox_account
from tests.webhooks.factories import WebhookEndpointFactory
from webhooks.inbound.models import InboundNotification
from webhooks.outbound.models import Delivery
from webhooks.outbound.services import event_record

ROOT = Path(__file__).resolve().parents[2]
BAR_MARKS = ("\r", "%|", "it/s", "/s]", "\x1b[")


@pytest.fixture
def merchant(db):
    return merchant_onboard(name="Acme")  # with its test-mode sandbox account


def _unknown_payment_notifications(merchant, count: int) -> list[str]:
    """Signed sandbox notifications naming payments the account never made: processing fails them (and logs)."""
    account = sandbox_account(merchant)
    gateway_for_account(account)  # the account's signing secret is made with its first adapter
    account.refresh_from_db()
    secret = gateway_account_credentials(account=account)["signing_secret"]
    for n in range(count):
        body = build_body(
            event_id=f"sbxevt_{n:032x}",
            action="pay",
            checkout_id="ckt_elsewhere",
            payment_id=f"pay_unknown{n}",
            invoice_id="",
            installment=None,
            status="succeeded",
            amount_minor=100000,
            requested_minor=100000,
            currency="IDR",
            occurred_at=datetime.now(UTC).replace(microsecond=0),
        )
        headers = {k: v for k, v in sign(secret, body).items() if k != "Content-Type"}
        response = Client().post(
            f"/v1/webhooks/sandbox/{account.pk}", body, content_type="application/json", headers=headers
        )
        assert response.status_code == 200, response.content
    ids = list(InboundNotification.objects.order_by("created_at").values_list("pk", flat=True))
    InboundNotification.objects.filter(pk__in=ids).update(status="failed", last_error="test")
    return ids


def _run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def _no_bar(err: str) -> None:
    for mark in BAR_MARKS:
        assert mark not in err, f"progress bar output {mark!r} off a terminal: {err!r}"


def test_replay_webhooks_off_a_terminal_draws_no_bar_and_prints_the_summary(merchant):
    _unknown_payment_notifications(merchant, 2)
    out, err = _run("replay_webhooks", "--failed")
    _no_bar(err)
    assert out.strip().splitlines()[-1] == "replayed 2, skipped 0 (of 2 selected)"


def test_redeliver_events_off_a_terminal_draws_no_bar_and_prints_the_summary(merchant):
    WebhookEndpointFactory(merchant=merchant)
    with transaction.atomic():
        event_record(
            merchant=merchant, mode="test", type="invoice.paid", data={"id": "inv_1", "object": "invoice"}
        )
    Delivery.objects.update(status="failed")
    out, err = _run("redeliver_events", "--failed")
    _no_bar(err)
    assert "redeliver_events: 1 selected, queued 1, skipped 0" in out.strip().splitlines()[-1]


def test_reconcile_payments_off_a_terminal_draws_no_bar_and_prints_the_summary(merchant):
    _, key = make_api_key(merchant)
    invoice = make_invoice(merchant)
    response = Client().post(
        f"/v1/invoices/{invoice.id}/payments",
        {},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
    )
    assert response.status_code == 201, response.content
    Payment.objects.update(status="unknown")
    out, err = _run("reconcile_payments")
    _no_bar(err)
    assert out.strip().splitlines()[-1] == "checked 1, changed 1, unchanged 0, errors 0"
    assert Payment.objects.get().status == "pending"  # the sandbox's answer was applied


def test_expire_invoices_off_a_terminal_draws_no_bar_and_prints_the_summary(merchant):
    invoice = make_invoice(merchant)
    past = datetime.now(UTC) - timedelta(minutes=1)
    Invoice.objects.filter(pk=invoice.pk).update(expires_at=past, lapses_at=past)
    out, err = _run("expire_invoices")
    _no_bar(err)
    assert out.strip().splitlines()[-1] == "Expired 1 invoice(s)."


def test_commands_with_nothing_to_do_still_print_a_summary(merchant):
    assert _run("replay_webhooks", "--failed")[0].strip() == "replayed 0, skipped 0 (of 0 selected)"
    assert _run("reconcile_payments")[0].strip() == "checked 0, changed 0, unchanged 0, errors 0"
    assert _run("expire_invoices")[0].strip() == "Expired 0 invoice(s)."
    assert _run("redeliver_events", "--failed")[0].strip().startswith("redeliver_events: 0 selected")


# --- on a terminal -------------------------------------------------------------------------------------------


def _test_database_url() -> str:
    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s.get("PASSWORD") else "")
    return f"postgresql://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def _run_on_a_terminal(*args: str) -> tuple[int, str]:
    """Run manage.py with stdout and stderr on a pseudo-terminal of 100x24; return its exit code and output."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    env = {
        **os.environ,
        "DATABASE_URL": _test_database_url(),
        "TEST_DATABASE_NAME": "",
        "PAYTRUST_ALLOW_DEV_SECRET": "true",
        "LOG_LEVEL": "INFO",
        "TERM": "xterm",
    }
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError as exc:  # EIO: the child closed the terminal
            if exc.errno != errno.EIO:
                raise
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return proc.wait(timeout=60), b"".join(chunks).decode(errors="replace")


@pytest.mark.django_db(transaction=True)
def test_on_a_terminal_the_bar_is_plain_and_log_lines_stay_whole(merchant):
    ids = _unknown_payment_notifications(merchant, 3)
    code, output = _run_on_a_terminal("replay_webhooks", "--failed", "--sync")
    assert code == 0, output

    assert "replaying: 100%" in output and "3/3" in output  # the bar is drawn on a terminal
    assert "\x1b[31" not in output  # nothing in Django's red error style
    segments = [s.strip() for s in output.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    log_lines = [s for s in segments if '"logger"' in s]
    assert len(log_lines) >= 3, output  # "inbound webhook failed" for each notification
    for line in log_lines:  # each on a line of its own, never glued to the bar
        record = json.loads(line)
        assert record["level"] in ("INFO", "WARNING")
    failed = [json.loads(s) for s in log_lines if "inbound webhook failed" in s]
    assert sorted(r["event"] for r in failed) == sorted(ids)
    assert "replayed 3, skipped 0, processed 0, not processed 3 (of 3 selected)" in segments
    notes = [s for s in segments if s.startswith("whk_")]
    assert len(notes) == 3 and all(note.endswith(": failed") for note in notes)
