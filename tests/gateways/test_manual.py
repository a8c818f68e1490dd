"""The manual bank-transfer gateway (docs/adr/0052): transfer references, bank details on the account, every
gateway's capabilities in the gateway-accounts API and its schema, initiation refusing what an adapter cannot do,
the hosted instructions page, expiry."""

from __future__ import annotations

import pytest
from django.test import Client

from gateways.manual import reference as refs
from gateways.models import GatewayAccount, ManualTransfer
from gateways.registry import GATEWAYS, gateway_for_account
from payments.models import Payment
from payments.services.reconciliation import payment_close_at_gateway
from tests.gateways.conftest import XENDIT_CALLBACK_TOKEN, XENDIT_SECRET
from tests.gateways.manual_support import BANK_DETAILS, manual_account, manual_payment
from tests.payments.factories import make_invoice

pytestmark = pytest.mark.django_db


# ---- transfer references ---------------------------------------------------------------------------------------


def test_references_are_short_typable_and_carry_a_check_character():
    reference = refs.generate()
    assert len(reference) == 12 and reference.startswith("PT-") and reference[7] == "-"
    assert refs.normalize(reference) == reference
    # What a payer types: lower case, spaces, no dashes, no prefix, O for 0 and I/L for 1.
    sloppy = reference.lower().replace("-", " ").replace("0", "o").replace("1", "l")
    assert refs.normalize(sloppy) == reference
    assert refs.normalize(reference[3:].replace("-", "")) == reference
    body = reference[3:7] + reference[8:]
    for position in range(8):  # every single-character typo is caught
        wrong = refs.ALPHABET[(refs.ALPHABET.index(body[position]) + 5) % 32]
        typo = body[:position] + wrong + body[position + 1 :]
        with pytest.raises(refs.InvalidReference):
            refs.normalize(typo)
    if body[0] != body[1]:  # two neighbours swapped
        with pytest.raises(refs.InvalidReference):
            refs.normalize(body[1] + body[0] + body[2:])
    with pytest.raises(refs.InvalidReference):
        refs.normalize("PT-12")


def test_each_payment_gets_its_own_stored_reference(merchant):
    account = manual_account(merchant)
    _, first = manual_payment(merchant, account=account)
    _, second = manual_payment(merchant, account=account)
    assert first.reference != second.reference
    assert ManualTransfer._meta.get_field("reference").unique


# ---- accounts: bank details and capabilities ----------------------------------------------------------------------


MANUAL_BODY = {"gateway": "manual", "currencies": ["IDR", "USD"], "bank_details": BANK_DETAILS}


def test_every_gateway_account_shows_its_adapters_capabilities(api, merchant, sandbox_account):
    manual = api.post("/v1/gateway-accounts", MANUAL_BODY, format="json")
    xendit = api.post(
        "/v1/gateway-accounts",
        {
            "gateway": "xendit",
            "credentials": {"secret_key": XENDIT_SECRET, "callback_token": XENDIT_CALLBACK_TOKEN},
        },
        format="json",
    )
    assert manual.status_code == 201, manual.content
    assert xendit.status_code == 201, xendit.content
    assert manual.json()["bank_details"] == BANK_DETAILS
    assert manual.json()["capabilities"] == {
        "currencies": ["IDR", "MYR", "USD"],
        "manual_capture": False,
        "refunds": True,
        "partial_refunds": True,
        "refunds_paid_out_by_hand": True,
        "settlement_report": False,
    }
    listed = api.get("/v1/gateway-accounts").json()["data"]
    assert {a["gateway"] for a in listed} >= {"manual", "xendit", "sandbox"}
    for account in listed:
        cls = GATEWAYS[account["gateway"]]
        assert account["capabilities"] == cls.capabilities()
        assert account["capabilities"]["manual_capture"] is cls.supports_manual_capture
        assert set(account["capabilities"]["currencies"]) == set(cls.supported_currencies) & {
            "IDR",
            "MYR",
            "USD",
        }
    sandbox = next(a for a in listed if a["gateway"] == "sandbox")
    assert sandbox["capabilities"]["manual_capture"] is True and sandbox["bank_details"] is None
    one = api.get(f"/v1/gateway-accounts/{manual.json()['id']}").json()
    assert one["capabilities"]["refunds_paid_out_by_hand"] is True
    # The signing secret PayTrust generated for the manual account is never shown.
    assert one["credentials_set"] is True and one["credentials_hint"] == {}
    assert "mansec_" not in str(listed)


def test_bank_details_are_required_validated_and_editable(api, merchant):
    missing = api.post("/v1/gateway-accounts", {"gateway": "manual"}, format="json")
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "bank_details"
    no_number = api.post(
        "/v1/gateway-accounts",
        {**MANUAL_BODY, "bank_details": {"bank_name": "BCA", "account_name": "Acme"}},
        format="json",
    )
    assert no_number.json()["error"]["param"] == "bank_details.account_number"
    foreign = api.post(
        "/v1/gateway-accounts",
        {
            **MANUAL_BODY,
            "currencies": ["IDR"],
            "bank_details": {**BANK_DETAILS, "instructions": {"USD": "x"}},
        },
        format="json",
    )
    assert foreign.status_code == 400 and foreign.json()["error"]["param"] == "bank_details.instructions.USD"
    not_manual = api.post(
        "/v1/gateway-accounts",
        {
            "gateway": "xendit",
            "credentials": {"secret_key": XENDIT_SECRET, "callback_token": XENDIT_CALLBACK_TOKEN},
            "bank_details": BANK_DETAILS,
        },
        format="json",
    )
    assert not_manual.status_code == 400 and not_manual.json()["error"]["param"] == "bank_details"
    assert not GatewayAccount.objects.filter(gateway__in=["manual", "xendit"]).exists()

    created = api.post("/v1/gateway-accounts", MANUAL_BODY, format="json").json()
    patched = api.patch(
        f"/v1/gateway-accounts/{created['id']}",
        {"bank_details": {**BANK_DETAILS, "account_number": "0001112223"}},
        format="json",
    )
    assert patched.status_code == 200, patched.content
    assert patched.json()["bank_details"]["account_number"] == "0001112223"
    assert patched.json()["capabilities"]["manual_capture"] is False
    # Dropping USD keeps only IDR's instructions valid; dropping IDR would orphan them and is refused.
    orphaned = api.patch(f"/v1/gateway-accounts/{created['id']}", {"currencies": ["USD"]}, format="json")
    assert (
        orphaned.status_code == 400 and orphaned.json()["error"]["param"] == "bank_details.instructions.IDR"
    )


def test_the_schema_documents_capabilities_and_bank_details():
    schema = Client().get("/v1/schema", HTTP_ACCEPT="application/json").json()
    components = schema["components"]["schemas"]
    output = components["GatewayAccountOutput"]["properties"]
    capabilities = components[output["capabilities"]["allOf"][0]["$ref"].rsplit("/", 1)[1]]
    assert set(capabilities["required"]) >= {"currencies", "manual_capture", "refunds", "partial_refunds"}
    assert output["bank_details"]["properties"]["account_number"]["type"] == "string"
    assert output["bank_details"]["nullable"] is True  # null for every gateway but manual
    assert "bank_details" in components["GatewayAccountCreateInputRequest"]["properties"]
    assert "bank_details" in components["PatchedGatewayAccountUpdateInputRequest"]["properties"]


# ---- initiation refuses what the adapter cannot do ----------------------------------------------------------------


def test_initiation_refuses_manual_capture_and_a_currency_the_account_no_longer_takes(api, merchant):
    account = manual_account(merchant)
    invoice = make_invoice(merchant, gateway=account.id, currency="USD", amount="20.00")
    capture = api.post(f"/v1/invoices/{invoice.id}/payments", {"capture_method": "manual"}, format="json")
    assert capture.status_code == 400
    assert capture.json()["error"]["code"] == "capture_method_unsupported"

    api.patch(f"/v1/gateway-accounts/{account.id}", {"currencies": ["IDR"]}, format="json")
    currency = api.post(f"/v1/invoices/{invoice.id}/payments", {}, format="json")
    assert currency.status_code == 400, currency.content
    assert currency.json()["error"]["code"] == "gateway_currency_unsupported"
    assert "USD" in currency.json()["error"]["message"]
    assert not Payment.objects.filter(invoice_id=invoice.id).exists()
    assert not ManualTransfer.objects.exists()


# ---- the instructions page --------------------------------------------------------------------------------------


def test_the_instructions_page_shows_amount_bank_details_and_reference_and_no_secret(api, merchant):
    account = manual_account(merchant)
    invoice = make_invoice(merchant, gateway=account.id, amount="150000")
    created = api.post(f"/v1/invoices/{invoice.id}/payments", {}, format="json")
    assert created.status_code == 201, created.content
    url = created.json()["payment_url"]
    transfer = ManualTransfer.objects.get(payment_id=created.json()["id"])
    assert url.endswith(f"/bank-transfer/{transfer.token}") and len(transfer.token) >= 43

    page = Client().get(f"/bank-transfer/{transfer.token}")
    html = page.content.decode()
    assert page.status_code == 200
    assert "IDR 150,000" in html and transfer.reference in html
    for value in ("Bank Central Asia", "PT Acme Indonesia", "8830123456", "CENAIDJA", "BI-FAST"):
        assert value in html
    secret = gateway_for_account(account).credentials["signing_secret"]
    assert secret not in html and "budi@example.com" not in html
    assert (
        "Test mode" in html and "sandbox" not in html.lower()
    )  # a live account's page is not a sandbox page
    assert page["Cache-Control"].startswith("max-age=0")
    unknown = Client().get("/bank-transfer/not-a-token")
    assert unknown.status_code == 404 and "Payment instructions not found" in unknown.content.decode()
    assert Client().post(f"/bank-transfer/{transfer.token}").status_code == 405


def test_expiry_closes_the_instructions_locally(merchant):
    payment, transfer = manual_payment(merchant)
    payment_close_at_gateway(payment_id=payment.id)
    payment.refresh_from_db()
    transfer.refresh_from_db()
    assert (payment.status, transfer.status) == ("expired", "expired")
    html = Client().get(f"/bank-transfer/{transfer.token}").content.decode()
    assert "These instructions have expired" in html


def test_a_forged_manual_notification_is_401_and_stores_nothing(merchant):
    from gateways.manual import webhooks as manual_webhooks
    from webhooks.inbound.models import InboundNotification

    payment, transfer = manual_payment(merchant)
    body = manual_webhooks.build_body(
        transfer_id=transfer.pk,
        reference=transfer.reference,
        payment_id=payment.id,
        bank_reference="FORGED-1",
        amount="150000",
        currency="IDR",
        received_on="2026-11-30",
        occurred_at=transfer.created_at,
        recorded_by="attacker",
    )
    headers = manual_webhooks.sign("mansec_not-the-accounts-secret", body)
    response = Client().post(
        f"/v1/webhooks/manual/{transfer.account_id}",
        data=body,
        content_type="application/json",
        HTTP_X_MANUAL_SIGNATURE=headers[manual_webhooks.SIGNATURE_HEADER],
    )
    assert response.status_code == 401
    assert not InboundNotification.objects.exists()
    payment.refresh_from_db()
    assert payment.status == "pending"
