"""Admin keys see only their own mode's data (issue 11 points 8 and 9): inbound notifications (list and replay)
and the audit log; the audit log without `merchant=` covers every merchant of the key's mode, and `key=` finds a
key's rows wherever it belongs."""

import pytest

from apikeys.models import AuditLog
from gateways.services import merchant_onboard
from tests.factories import MerchantFactory, make_api_key
from webhooks.inbound.models import InboundNotification

pytestmark = pytest.mark.django_db


def _failed_notification(merchant, mode: str, n: int) -> InboundNotification:
    account = merchant.gateway_accounts.get(gateway="sandbox")
    return InboundNotification.objects.create(
        gateway_account=account,
        merchant=merchant,
        mode=mode,
        gateway="sandbox",
        gateway_event_id=f"evt-{mode}-{n}",
        body=b"{}",
        status="failed",
        last_error="boom",
    )


@pytest.fixture
def notifications():
    a, b = merchant_onboard(name="A"), merchant_onboard(name="B")
    return {
        "test": [_failed_notification(a, "test", 1), _failed_notification(b, "test", 2)],
        "live": [_failed_notification(a, "live", 3), _failed_notification(b, "live", 4)],
    }


@pytest.mark.parametrize("mode", ["test", "live"])
def test_an_admin_key_lists_every_merchants_failed_notifications_of_its_own_mode_only(
    client_for, notifications, mode
):
    admin = client_for(make_api_key(MerchantFactory(), mode=mode, scopes=["admin"])[1])
    listed = {row["id"] for row in admin.get("/v1/webhooks/failed").json()["data"]}
    assert listed == {n.id for n in notifications[mode]}


def test_a_test_mode_admin_key_cannot_replay_a_live_notification(client_for, notifications):
    admin = client_for(make_api_key(MerchantFactory(), mode="test", scopes=["admin"])[1])
    live = notifications["live"][0]
    response = admin.post(f"/v1/webhooks/{live.id}/replay", {}, format="json")
    assert response.status_code == 404
    live.refresh_from_db()
    assert live.status == "failed"
    replayed = admin.post(f"/v1/webhooks/{notifications['test'][0].id}/replay", {}, format="json")
    assert replayed.status_code == 202, replayed.content  # accepted: queued


@pytest.fixture
def audit_rows():
    """Key lifecycle rows of two merchants in both modes (made through the service)."""
    a, b = MerchantFactory(name="A"), MerchantFactory(name="B")
    keys = {(m.name, mode): make_api_key(m, mode=mode)[0] for m in (a, b) for mode in ("test", "live")}
    return a, b, keys


def _audit(client, **params):
    response = client.get("/v1/api-keys/audit", params)
    assert response.status_code == 200, response.content
    return response.json()["data"]


def test_a_test_mode_admin_key_never_reads_live_audit_rows(client_for, audit_rows):
    a, b, keys = audit_rows
    admin = client_for(make_api_key(a, mode="test", scopes=["admin"])[1])
    for params in ({}, {"merchant": a.id}, {"merchant": b.id}, {"key": keys[("A", "live")].id}):
        rows = _audit(admin, **params)
        assert all(row["mode"] == "test" for row in rows), params
    assert _audit(admin, key=keys[("A", "live")].id) == []


def test_without_merchant_an_admin_sees_every_merchants_rows_of_its_mode(client_for, audit_rows):
    a, b, keys = audit_rows
    admin = client_for(make_api_key(a, mode="test", scopes=["admin"])[1])
    merchants = {row["merchant"] for row in _audit(admin, action="api_key.created", limit=100)}
    assert {a.id, b.id} <= merchants
    only_b = _audit(admin, merchant=b.id, action="api_key.created")
    assert {row["api_key"] for row in only_b} == {keys[("B", "test")].id}


def test_key_filter_finds_a_key_of_another_merchant(client_for, audit_rows):
    a, b, keys = audit_rows
    admin = client_for(make_api_key(a, mode="live", scopes=["admin"])[1])
    rows = _audit(admin, key=keys[("B", "live")].id)
    assert rows and {row["api_key"] for row in rows} == {keys[("B", "live")].id}
    assert {row["merchant"] for row in rows} == {b.id}


def test_live_admin_keys_see_back_office_rows_of_no_mode_and_test_keys_do_not(client_for, audit_rows):
    a, _, _ = audit_rows
    AuditLog.objects.create(action="admin.action", actor="user:alice", merchant=a, details={"action": "x"})
    live = client_for(make_api_key(a, mode="live", scopes=["admin"])[1])
    test = client_for(make_api_key(a, mode="test", scopes=["admin"])[1])
    assert any(row["actor"] == "user:alice" for row in _audit(live, action="admin.action"))
    assert not any(row["actor"] == "user:alice" for row in _audit(test, action="admin.action"))


def test_a_back_office_action_on_test_objects_is_a_test_mode_audit_row(client, admin_user, merchant):
    from tests.payments.factories import make_invoice

    client.force_login(admin_user)
    invoice = make_invoice(merchant_onboard(name="Voided"), gateway="sandbox")
    response = client.post(
        "/admin/invoices/invoice/", {"action": "void_selected", "_selected_action": [invoice.pk]}
    )
    assert response.status_code == 302
    row = AuditLog.objects.get(action="admin.action", details__action_name="invoices.void")
    assert row.mode == "test"
