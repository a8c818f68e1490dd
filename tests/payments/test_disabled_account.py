"""A gateway account disabled after its invoice was issued takes no new charge (issue 11 point 4)."""

import pytest

from gateways.models import GatewayAccount
from invoices.models import Invoice
from payments.models import Payment
from tests.payments.factories import make_invoice

pytestmark = pytest.mark.django_db


def test_initiation_on_a_disabled_account_is_409_and_never_calls_the_gateway(
    api, merchant, xendit_account, xendit_fake
):
    invoice = make_invoice(merchant, gateway="xendit")
    GatewayAccount.objects.filter(pk=xendit_account.pk).update(enabled=False)

    response = api.post(f"/v1/invoices/{invoice.id}/payments", {}, format="json")

    assert response.status_code == 409, response.content
    error = response.json()["error"]
    assert error["code"] == "gateway_account_disabled" and xendit_account.pk in error["message"]
    assert xendit_fake.create_requests() == []
    assert not Payment.objects.filter(invoice_id=invoice.id).exists()
    assert Invoice.objects.get(pk=invoice.id).status == invoice.status  # nothing half-written


def test_after_re_enabling_the_account_the_payment_goes_through(api, merchant, xendit_account, xendit_fake):
    invoice = make_invoice(merchant, gateway="xendit")
    GatewayAccount.objects.filter(pk=xendit_account.pk).update(enabled=False)
    assert api.post(f"/v1/invoices/{invoice.id}/payments", {}, format="json").status_code == 409
    GatewayAccount.objects.filter(pk=xendit_account.pk).update(enabled=True)
    assert api.post(f"/v1/invoices/{invoice.id}/payments", {}, format="json").status_code == 201
    assert len(xendit_fake.create_requests()) == 1


def test_an_account_holding_keys_of_the_other_mode_takes_no_charge(
    api, merchant, xendit_account, xendit_fake
):
    """Configured before keys were checked against the mode: a test account holding a production key."""
    from gateways.selectors import gateway_account_credentials
    from paytrust import crypto

    credentials = gateway_account_credentials(account=xendit_account)
    production = {
        **credentials,
        "secret_key": credentials["secret_key"].replace("xnd_development_", "xnd_production_"),
    }
    GatewayAccount.objects.filter(pk=xendit_account.pk).update(
        credentials_encrypted=crypto.encrypt_json(production)
    )
    invoice = make_invoice(merchant, gateway="xendit")

    response = api.post(f"/v1/invoices/{invoice.id}/payments", {}, format="json")

    assert response.status_code == 409, response.content
    assert response.json()["error"]["code"] == "gateway_account_credentials_mismatch"
    assert xendit_fake.create_requests() == []
    assert not Payment.objects.filter(invoice_id=invoice.id).exists()
