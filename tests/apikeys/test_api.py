from datetime import timedelta

import pytest
from django.utils import timezone

from apikeys.models import ApiKey, AuditLog
from tests.factories import make_api_key

pytestmark = pytest.mark.django_db


def _create(client, **body):
    body.setdefault("mode", "test")
    return client.post("/v1/api-keys", body, format="json", HTTP_USER_AGENT="pytest-agent/1")


def test_create_returns_plaintext_once_and_the_key_works(admin_key, client_for, merchant):
    _, admin_plain = admin_key
    response = _create(client_for(admin_plain), name="backend", mode="test")
    assert response.status_code == 201
    body = response.json()
    assert body["object"] == "api_key" and body["merchant"] == merchant.id and body["status"] == "active"
    assert body["secret"].startswith("pt_test_") and body["secret"].startswith(body["prefix"])
    stored = ApiKey.objects.get(pk=body["id"])
    assert body["secret"] not in stored.secret_hash and stored.secret_hash.startswith("$argon2id$")
    assert client_for(body["secret"]).get("/v1/merchant").status_code == 200

    listed = client_for(admin_plain).get("/v1/api-keys").json()
    assert body["id"] in [row["id"] for row in listed["data"]]
    assert all("secret" not in row for row in listed["data"])
    detail = client_for(admin_plain).get(f"/v1/api-keys/{body['id']}").json()
    assert "secret" not in detail and detail["prefix"] == body["prefix"]


def test_create_is_audited_with_ip_user_agent_and_request_id(admin_key, client_for):
    key, plain = admin_key
    response = client_for(plain).post(
        "/v1/api-keys",
        {"mode": "test", "name": "x"},
        format="json",
        HTTP_USER_AGENT="curl/8",
        HTTP_X_REQUEST_ID="req-create-1",
        REMOTE_ADDR="203.0.113.9",
    )
    assert response.status_code == 201
    row = AuditLog.objects.get(action=AuditLog.Action.KEY_CREATED, api_key_id=response.json()["id"])
    assert (row.actor, row.ip, row.user_agent, row.request_id) == (
        key.id,
        "203.0.113.9",
        "curl/8",
        "req-create-1",
    )


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/v1/api-keys"),
        ("post", "/v1/api-keys"),
        ("get", "/v1/api-keys/audit"),
        ("get", "/v1/api-keys/{id}"),
        ("delete", "/v1/api-keys/{id}"),
        ("put", "/v1/api-keys/{id}/rotate"),
    ],
)
def test_merchant_key_on_admin_endpoints_gets_403(api, api_key, method, path):
    response = getattr(api, method)(path.format(id=api_key[0].id), {"mode": "test"}, format="json")
    assert response.status_code == 403
    assert response.json()["error"]["type"] == "permission_error"
    assert ApiKey.objects.get(pk=api_key[0].pk).revoked_at is None


def test_unknown_field_invalid_mode_and_scope_get_400_with_param(admin_key, client_for):
    client = client_for(admin_key[1])
    cases = [
        ({"mode": "test", "colour": "red"}, "colour", "parameter_unknown"),
        ({"mode": "sandbox"}, "mode", "invalid_choice"),
        ({"name": "x"}, "mode", "parameter_missing"),
        ({"mode": "test", "scopes": ["root"]}, "scopes.0", "invalid_choice"),
        ({"mode": "test", "name": "n" * 101}, "name", "max_length"),
    ]
    for body, param, code in cases:
        response = client.post("/v1/api-keys", body, format="json")
        assert response.status_code == 400, body
        error = response.json()["error"]
        assert (error["param"], error["code"], error["type"]) == (param, code, "invalid_request_error")
    assert ApiKey.objects.count() == 1  # only the admin key


def test_admin_key_manages_another_merchants_keys(admin_key, client_for, other_merchant):
    client = client_for(admin_key[1])
    created = _create(client, merchant=other_merchant.id).json()
    assert created["merchant"] == other_merchant.id
    own = client.get("/v1/api-keys").json()["data"]
    assert created["id"] not in [row["id"] for row in own]
    theirs = client.get(f"/v1/api-keys?merchant={other_merchant.id}").json()["data"]
    assert [row["id"] for row in theirs] == [created["id"]]
    missing = client.get("/v1/api-keys?merchant=mer_nope")
    assert missing.status_code == 404 and missing.json()["error"]["param"] == "merchant"
    assert _create(client, merchant="mer_nope").status_code == 404


def test_test_mode_admin_cannot_create_or_see_live_keys(admin_key, live_admin_key, client_for, merchant):
    test_client = client_for(admin_key[1])
    refused = _create(test_client, mode="live")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "live_mode_required"
    live_key, _ = make_api_key(merchant, mode="live")
    assert test_client.get(f"/v1/api-keys/{live_key.id}").status_code == 404
    assert test_client.delete(f"/v1/api-keys/{live_key.id}").status_code == 404
    assert live_key.id not in [row["id"] for row in test_client.get("/v1/api-keys").json()["data"]]

    live_client = client_for(live_admin_key[1])
    created = _create(live_client, mode="live")
    assert created.status_code == 201 and created.json()["secret"].startswith("pt_live_")
    assert live_client.get(f"/v1/api-keys/{live_key.id}").status_code == 200


def test_rotate_returns_a_new_key_and_the_old_one_is_refused_on_the_next_request(
    admin_key, api_key, client_for
):
    old, old_plain = api_key
    old_client = client_for(old_plain)
    assert old_client.get("/v1/merchant").status_code == 200  # verified and cached
    response = client_for(admin_key[1]).put(f"/v1/api-keys/{old.id}/rotate", {}, format="json")
    assert response.status_code == 200
    new = response.json()
    assert new["id"] != old.id and new["rotated_from"] == old.id and new["secret"].startswith("pt_test_")
    assert old_client.get("/v1/merchant").status_code == 401
    assert client_for(new["secret"]).get("/v1/merchant").status_code == 200
    row = AuditLog.objects.get(action=AuditLog.Action.KEY_ROTATED, api_key_id=old.id)
    assert row.details["new_key_id"] == new["id"] and row.actor == admin_key[0].id
    again = client_for(admin_key[1]).put(f"/v1/api-keys/{old.id}/rotate", {}, format="json")
    assert again.status_code == 409


def test_rotate_with_grace_keeps_the_old_key_until_the_grace_ends(admin_key, api_key, client_for):
    old, old_plain = api_key
    old_client = client_for(old_plain)
    response = client_for(admin_key[1]).put(
        f"/v1/api-keys/{old.id}/rotate", {"grace_seconds": 3600}, format="json"
    )
    assert response.status_code == 200
    assert old_client.get("/v1/merchant").status_code == 200  # during the grace period
    assert client_for(response.json()["secret"]).get("/v1/merchant").status_code == 200
    # The grace period ends (moving the deadline is the same as the clock passing it).
    ApiKey.objects.filter(pk=old.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    refused = old_client.get("/v1/merchant")
    assert refused.status_code == 401 and refused.json()["error"]["type"] == "authentication_error"
    assert AuditLog.objects.filter(action=AuditLog.Action.AUTH_FAILED, details__reason="expired").exists()


def test_rotate_rejects_bad_grace_seconds(admin_key, api_key, client_for):
    client = client_for(admin_key[1])
    for value in (-1, "soon", 10**9):
        response = client.put(f"/v1/api-keys/{api_key[0].id}/rotate", {"grace_seconds": value}, format="json")
        assert response.status_code == 400 and response.json()["error"]["param"] == "grace_seconds"
    assert ApiKey.objects.get(pk=api_key[0].pk).revoked_at is None


def test_delete_revokes_and_the_key_is_refused_on_the_next_request(admin_key, api_key, client_for):
    key, plain = api_key
    client = client_for(plain)
    assert client.get("/v1/merchant").status_code == 200
    response = client_for(admin_key[1]).delete(f"/v1/api-keys/{key.id}")
    assert response.status_code == 200 and response.json()["status"] == "revoked"
    assert client.get("/v1/merchant").status_code == 401
    assert AuditLog.objects.filter(action=AuditLog.Action.KEY_REVOKED, api_key_id=key.id).count() == 1
    # Revoking again is a no-op (no second audit row).
    assert client_for(admin_key[1]).delete(f"/v1/api-keys/{key.id}").status_code == 200
    assert AuditLog.objects.filter(action=AuditLog.Action.KEY_REVOKED, api_key_id=key.id).count() == 1


def test_audit_endpoint_filters_and_paginates(admin_key, api_key, client_for):
    admin = client_for(admin_key[1])
    key, plain = api_key
    client_for(plain[:-1] + ("x" if plain[-1] != "x" else "y")).get("/v1/merchant")  # failed auth
    admin.delete(f"/v1/api-keys/{key.id}")

    failed = admin.get("/v1/api-keys/audit?action=auth.failed").json()["data"]
    assert [row["action"] for row in failed] == ["auth.failed"]
    assert failed[0]["api_key"] == key.id and failed[0]["details"]["reason"] == "wrong_secret"
    assert failed[0]["actor"] == "anonymous" and failed[0]["request_id"]

    about_key = admin.get(f"/v1/api-keys/audit?key={key.id}").json()["data"]
    assert {row["action"] for row in about_key} == {"api_key.created", "auth.failed", "api_key.revoked"}
    assert [row["created_at"] for row in about_key] == sorted(
        (row["created_at"] for row in about_key), reverse=True
    )

    page = admin.get("/v1/api-keys/audit?limit=2").json()
    assert len(page["data"]) == 2 and page["has_more"] is True
    rest = admin.get(f"/v1/api-keys/audit?limit=2&cursor={page['next_cursor']}").json()
    seen = [row["id"] for row in page["data"] + rest["data"]]
    assert len(seen) == len(set(seen)) == 4  # admin key created, key created, failed auth, revoked

    future = (timezone.now() + timedelta(hours=1)).isoformat()
    assert admin.get("/v1/api-keys/audit", {"start": future}).json()["data"] == []
    assert len(admin.get("/v1/api-keys/audit", {"end": future}).json()["data"]) == 4


@pytest.mark.parametrize(
    ("query", "param"), [("start=yesterday", "start"), ("end=2026-13-01", "end"), ("action=nope", "action")]
)
def test_audit_endpoint_rejects_bad_filters(admin_key, client_for, query, param):
    response = client_for(admin_key[1]).get(f"/v1/api-keys/audit?{query}")
    assert response.status_code == 400 and response.json()["error"]["param"] == param
