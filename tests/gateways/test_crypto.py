"""Secrets at rest: Fernet with key rotation (prepend a key, run rotate_encryption_keys, drop the old key)."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from gateways.models import GatewayAccount
from gateways.selectors import gateway_account_credentials
from gateways.services import gateway_account_create
from paytrust import crypto

OLD_KEY = crypto.generate_key()
NEW_KEY = crypto.generate_key()


def test_round_trip_and_tamper_detection(settings):
    settings.FIELD_ENCRYPTION_KEYS = [OLD_KEY]
    token = crypto.encrypt_json({"secret_key": "s3cr3t"})
    assert "s3cr3t" not in token
    assert crypto.decrypt_json(token) == {"secret_key": "s3cr3t"}
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt_json(token[:-4] + "AAAA")


def test_missing_keys_are_a_configuration_error(settings):
    from django.core.exceptions import ImproperlyConfigured

    settings.FIELD_ENCRYPTION_KEYS = []
    with pytest.raises(ImproperlyConfigured):
        crypto.encrypt_str("x")


@pytest.mark.django_db
def test_rotation_re_encrypts_under_the_new_key(settings, merchant):
    settings.FIELD_ENCRYPTION_KEYS = [OLD_KEY]
    account = gateway_account_create(
        merchant=merchant,
        mode="test",
        gateway="midtrans",
        credentials={
            "server_key": "SB-Mid-server-abcdefghijklmnop",
            "client_key": "SB-Mid-client-abcdefghijklmnop",
        },
        currencies=["IDR"],
    )
    sandbox = gateway_account_create(merchant=merchant, mode="test", gateway="sandbox")
    before = GatewayAccount.objects.get(pk=account.pk).credentials_encrypted

    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]  # step 1: prepend; old rows still decrypt
    assert gateway_account_credentials(account=account)["server_key"] == "SB-Mid-server-abcdefghijklmnop"
    assert not crypto.is_current(before)

    out = StringIO()
    call_command("rotate_encryption_keys", "--dry-run", stdout=out)
    assert "would re-encrypt 2" in out.getvalue()
    assert GatewayAccount.objects.get(pk=account.pk).credentials_encrypted == before

    out = StringIO()
    call_command("rotate_encryption_keys", stdout=out)
    assert "re-encrypted 2" in out.getvalue()
    after = GatewayAccount.objects.get(pk=account.pk).credentials_encrypted
    assert after != before and crypto.is_current(after)

    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY]  # step 3: drop the old key
    assert gateway_account_credentials(account=GatewayAccount.objects.get(pk=account.pk)) == {
        "server_key": "SB-Mid-server-abcdefghijklmnop",
        "client_key": "SB-Mid-client-abcdefghijklmnop",
    }
    assert gateway_account_credentials(account=GatewayAccount.objects.get(pk=sandbox.pk))["signing_secret"]

    out = StringIO()
    call_command("rotate_encryption_keys", stdout=out)  # idempotent: nothing left to do
    assert "re-encrypted 0" in out.getvalue()


@pytest.mark.django_db
def test_rotation_reports_rows_no_key_can_decrypt(settings, merchant):
    settings.FIELD_ENCRYPTION_KEYS = [OLD_KEY]
    gateway_account_create(merchant=merchant, mode="test", gateway="sandbox")
    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY]  # old key removed too early
    with pytest.raises(CommandError):
        call_command("rotate_encryption_keys", stdout=StringIO())
