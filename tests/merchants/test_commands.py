from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.utils import timezone
from rest_framework.test import APIClient

from apikeys.models import ApiKey, AuditLog
from gateways.models import GatewayAccount
from merchants.models import Merchant

pytestmark = pytest.mark.django_db


def _run(*args) -> list[str]:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue().rstrip("\n").split("\n")


def test_create_merchant_prints_the_id_alone_on_the_last_line():
    last = _run("create_merchant", "--name", "Toko Baru", "--rate-limit", "120")[-1]
    merchant = Merchant.objects.get(pk=last)
    assert (merchant.name, merchant.rate_limit_per_minute) == ("Toko Baru", 120)
    assert GatewayAccount.objects.filter(merchant=merchant, mode="test", gateway="sandbox").exists()
    assert AuditLog.objects.filter(merchant=merchant, actor="cli:create_merchant").exists()


def test_create_merchant_refuses_bad_input():
    with pytest.raises(CommandError):
        _run("create_merchant", "--name", "  ")
    with pytest.raises(CommandError):
        _run("create_merchant", "--name", "x", "--rate-limit", "0")
    assert not Merchant.objects.exists()


def test_create_api_key_prints_the_plaintext_alone_on_the_last_line(merchant):
    lines = _run(
        "create_api_key", "--merchant", merchant.id, "--mode", "live", "--scope", "admin", "--name", "ops"
    )
    plaintext = lines[-1]
    assert plaintext.startswith("pt_live_") and " " not in plaintext
    key = ApiKey.objects.get(merchant=merchant, name="ops")
    assert key.scopes == ["admin"] and key.mode == "live" and plaintext.startswith(key.prefix)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    assert client.get("/v1/api-keys").status_code == 200  # an admin key
    assert AuditLog.objects.get(action=AuditLog.Action.KEY_CREATED, api_key=key).actor == "cli:create_api_key"


def test_create_api_key_for_an_unknown_merchant_fails():
    with pytest.raises(CommandError):
        _run("create_api_key", "--merchant", "mer_missing", "--mode", "test")


def test_purge_audit_log_deletes_rows_older_than_the_limit(merchant):
    old = AuditLog.objects.create(action=AuditLog.Action.AUTH_FAILED, actor="anonymous", merchant=merchant)
    AuditLog.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=400))
    recent = AuditLog.objects.create(action=AuditLog.Action.AUTH_FAILED, actor="anonymous", merchant=merchant)
    assert _run("purge_audit_log")[-1] == "1"
    assert list(AuditLog.objects.values_list("pk", flat=True)) == [recent.pk]
    AuditLog.objects.filter(pk=recent.pk).update(created_at=timezone.now() - timedelta(days=10))
    assert _run("purge_audit_log", "--older-than-days", "7")[-1] == "1"


def test_seed_demo_creates_once_and_then_reports_what_exists():
    first = "\n".join(_run("seed_demo"))
    assert "API_KEY=pt_test_" in first and "password:" in first
    plaintext = first.split("API_KEY=")[1].split()[0]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    assert client.get("/v1/merchant").json()["name"] == "Demo Store"
    assert get_user_model().objects.get(username="admin").is_superuser

    second = "\n".join(_run("seed_demo"))
    assert "API_KEY=" not in second and "password:" not in second
    assert "exists" in second and "create_api_key" in second
    assert Merchant.objects.filter(name="Demo Store").count() == 1
    assert ApiKey.objects.filter(merchant__name="Demo Store").count() == 1
