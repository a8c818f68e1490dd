"""Issue 10 moved tables between apps (inbound notifications left `webhooks` for `inbound`). No data is lost:

A database is filled by the code as it was before the move (a git worktree of BEFORE, its own `manage.py`, the
real API and the sandbox checkout): a webhook endpoint, an invoice, a sandbox payment, its inbound notification
(processed, with its attempt) and the outbound events and deliveries it caused. Then this tree's `manage.py
migrate` runs on that database, and everything must still be there, read through today's models.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[1]
BEFORE = "9c46e2e"  # main before issue 10 (the last commit of the previous session)

# Runs inside BEFORE's tree (`manage.py shell`): the old code makes the data through its own API and services.
OLD_CODE_SCRIPT = r"""
import json
from django.test import Client
from rest_framework.test import APIClient
from apikeys.services import Actor, api_key_create
from gateways.models import SandboxCheckoutSession
from merchants.services import merchant_create
from webhooks.inbound import inbound_event_process
from webhooks.models import WebhookEvent

merchant = merchant_create(name="Before the move")
_, key = api_key_create(merchant=merchant, mode="test", actor=Actor.system(), name="k", scopes=[])
api = APIClient()
api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
endpoint = api.post("/v1/webhook-endpoints", {"url": "http://127.0.0.1:9/hook", "enabled_events": ["*"]}, format="json")
assert endpoint.status_code == 201, endpoint.content
invoice = api.post("/v1/invoices", {"currency": "IDR", "gateway": "sandbox",
    "line_items": [{"name": "Tea", "quantity": 1, "unit_price": "150000"}]}, format="json")
assert invoice.status_code == 201, invoice.content
payment = api.post(f"/v1/invoices/{invoice.json()['id']}/payments", {}, format="json")
assert payment.status_code == 201, payment.content
token = payment.json()["payment_url"].rsplit("/", 1)[1]
session = SandboxCheckoutSession.objects.get(token=token)
page = Client().post(f"/sandbox/checkout/{token}", {"action": "pay", "nonce": session.form_nonce})
assert page.status_code == 200, page.content
notification = WebhookEvent.objects.get(payment_reference=payment.json()["id"])
inbound_event_process(event_id=notification.pk)
print("RESULT " + json.dumps({"merchant": merchant.pk, "invoice": invoice.json()["id"],
    "payment": payment.json()["id"], "endpoint": endpoint.json()["id"], "notification": notification.pk}))
"""


def _server_url(database: str) -> str:
    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s.get("PASSWORD") else "")
    return f"postgresql://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{database}"


def _manage(tree: Path, database_url: str, *args: str, stdin: str | None = None) -> str:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DEBUG": "true",
        "PAYTRUST_ALLOW_DEV_SECRET": "true",
        "OUTBOUND_WEBHOOK_ALLOW_LOOPBACK_IN_TEST_MODE": "true",
        "DJANGO_SETTINGS_MODULE": "paytrust.settings",
    }
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=tree,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, (
        f"manage.py {' '.join(args)} in {tree}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    return done.stdout


@pytest.fixture
def old_tree(tmp_path):
    if subprocess.run(["git", "cat-file", "-e", f"{BEFORE}^{{commit}}"], cwd=ROOT).returncode != 0:
        pytest.fail(f"commit {BEFORE} (main before issue 10) is not in this clone's history")
    tree = tmp_path / "before"
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(tree), BEFORE], cwd=ROOT, check=True, capture_output=True
    )
    try:
        yield tree
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, capture_output=True)
        shutil.rmtree(tree, ignore_errors=True)


@pytest.fixture
def scratch_database(db):
    name = f"paytrust_migrate_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(_server_url("postgres"), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(_server_url("postgres"), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_data_made_before_the_move_is_all_there_after_migrating(old_tree, scratch_database):
    url = _server_url(scratch_database)
    _manage(old_tree, url, "migrate", "--no-input")
    out = _manage(old_tree, url, "shell", stdin=OLD_CODE_SCRIPT)
    made = json.loads(out.split("RESULT ", 1)[1].splitlines()[0])

    with psycopg.connect(url) as conn:
        before = {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608 - fixed names
            for table in (
                "webhooks_webhookevent",
                "webhooks_webhookeventattempt",
                "webhooks_event",
                "webhooks_delivery",
            )
        }
        conn.execute(
            "INSERT INTO auth_group (name) VALUES ('helpdesk')"
        )  # a group holding the old permission: it must follow the model
        conn.execute(
            "INSERT INTO auth_group_permissions (group_id, permission_id) SELECT g.id, p.id FROM auth_group g, "
            "auth_permission p JOIN django_content_type c ON c.id = p.content_type_id "
            "WHERE g.name = 'helpdesk' AND c.app_label = 'webhooks' AND c.model = 'webhookevent' "
            "AND p.codename = 'view_webhookevent'"
        )
        # A worker died mid-request before the deploy: a delivery left `sending` (its lease running) whose job is
        # gone. The old sweeper would have re-sent it; the new mechanism must not strand it.
        stuck = conn.execute(
            "SELECT id FROM webhooks_delivery WHERE endpoint_id = %s ORDER BY id LIMIT 1", [made["endpoint"]]
        ).fetchone()[0]
        conn.execute(
            "UPDATE webhooks_delivery SET status = 'sending', lease_expires_at = now() WHERE id = %s", [stuck]
        )
        conn.execute("DELETE FROM procrastinate_jobs WHERE args->>'delivery_id' = %s", [stuck])
    assert before["webhooks_webhookevent"] == 1 and before["webhooks_webhookeventattempt"] >= 1
    assert before["webhooks_event"] >= 2 and before["webhooks_delivery"] >= 2

    _manage(ROOT, url, "migrate", "--no-input")
    _manage(ROOT, url, "makemigrations", "--check", "--dry-run")

    with psycopg.connect(url) as conn:
        notification = conn.execute(
            "SELECT status, payment_id, merchant_id, body FROM inbound_notification WHERE id = %s",
            [made["notification"]],
        ).fetchone()
        attempts = conn.execute(
            "SELECT count(*) FROM inbound_notification_attempt WHERE notification_id = %s",
            [made["notification"]],
        ).fetchone()[0]
        invoice_status = conn.execute(
            "SELECT status FROM invoices_invoice WHERE id = %s", [made["invoice"]]
        ).fetchone()
        payment_status = conn.execute(
            "SELECT status FROM payments_payment WHERE id = %s", [made["payment"]]
        ).fetchone()
        events = conn.execute(
            "SELECT type FROM webhooks_event WHERE merchant_id = %s ORDER BY created_at", [made["merchant"]]
        ).fetchall()
        deliveries = conn.execute(
            "SELECT count(*) FROM webhooks_delivery WHERE endpoint_id = %s", [made["endpoint"]]
        ).fetchone()[0]
        granted = conn.execute(
            "SELECT c.app_label, c.model, p.codename FROM auth_group g JOIN auth_group_permissions gp ON gp.group_id = g.id "
            "JOIN auth_permission p ON p.id = gp.permission_id JOIN django_content_type c ON c.id = p.content_type_id "
            "WHERE g.name = 'helpdesk'"
        ).fetchall()
        stuck_jobs = conn.execute(
            "SELECT task_name, args->>'delivery_id' FROM procrastinate_jobs WHERE lock = %s AND status = 'todo'",
            [stuck],
        ).fetchall()
        stale = conn.execute(
            "SELECT count(*) FROM django_content_type WHERE app_label = 'webhooks' AND model LIKE 'webhookevent%%'"
        ).fetchone()[0]

    assert notification is not None, "the inbound notification was lost"
    assert (
        notification[0] == "processed"
        and notification[1] == made["payment"]
        and notification[2] == made["merchant"]
    )
    assert bytes(notification[3]).startswith(b"{")  # the raw body, byte for byte
    assert attempts == before["webhooks_webhookeventattempt"]
    assert invoice_status == ("paid",) and payment_status == ("succeeded",)
    assert len(events) == before["webhooks_event"] and ("invoice.paid",) in events
    assert deliveries == before["webhooks_delivery"]
    assert granted == [("inbound", "inboundnotification", "view_inboundnotification")]
    assert stale == 0
    assert stuck_jobs == [("webhooks.deliver_webhook", stuck)], "the stuck delivery must get its job back"
