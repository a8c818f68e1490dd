"""GET /v1/invoices/{id}/payment-initiation (pain.001) and /payment-status (pain.002) over real invoices."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from invoices.models import Invoice
from invoices.services import invoice_apply_payment, invoice_mark_payment_initiated, invoice_void
from iso20022 import exports
from payments.models import Payment
from tests.factories import GatewayAccountFactory, MerchantFactory, make_api_key
from tests.iso20022.helpers import LONG_NAME, parse, text, texts, valid

pytestmark = pytest.mark.django_db

UNIT_PRICES = {"IDR": "150000", "MYR": "16.99", "USD": "16.99"}


@pytest.fixture
def creditor(merchant):
    merchant.legal_name = "Acme Trading Sdn Bhd"
    merchant.country = "MY"
    merchant.account_iban = ""
    merchant.account_number = "5140 1234 5678"
    merchant.bank_bic = "MBBEMYKL"
    merchant.bank_name = "Maybank"
    merchant.save()
    GatewayAccountFactory(merchant=merchant, mode="test", gateway="sandbox")
    return merchant


def create_invoice(api, *, currency="IDR", installments=1, name="Budi", quantity=1, **extra):
    body = {
        "currency": currency,
        "gateway": "sandbox",
        "external_id": extra.pop("external_id", "order-1001"),
        "customer": {"name": name, "email": "budi@example.com", "phone": "+62 812 3456 7890"},
        "line_items": [
            {"name": "Widget", "quantity": quantity, "unit_price": UNIT_PRICES[currency], "tax_rate": "0"}
        ],
        **extra,
    }
    if installments > 1:
        body["installments"] = {"count": installments}
    response = api.post("/v1/invoices", body, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def get_xml(api, invoice_id, what="payment-initiation", **params):
    response = api.get(f"/v1/invoices/{invoice_id}/{what}", params)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/xml; charset=utf-8"
    return response.content


def pay(invoice_id, *, number, amount_minor, currency, payment_id):
    invoice_mark_payment_initiated(invoice_id=invoice_id, installment_number=number)
    invoice_apply_payment(
        invoice_id=invoice_id,
        payment_id=payment_id,
        amount_minor=amount_minor,
        currency=currency,
        installment_number=number,
        paid_at=timezone.now(),
        payments=[],
    )


@pytest.mark.parametrize(
    ("currency", "installments", "name"),
    [
        ("IDR", 1, "Đặng Thị Hồng Nhung"),
        ("IDR", 12, LONG_NAME),
        ("MYR", 1, "王小明 😀"),
        ("MYR", 12, "Müller-Lüdenscheidt"),
        ("USD", 1, LONG_NAME),
        ("USD", 12, "Đặng Thị Hồng Nhung"),
    ],
)
def test_payment_initiation_is_a_valid_pain001_of_the_invoice(api, creditor, currency, installments, name):
    invoice = create_invoice(api, currency=currency, installments=installments, name=name, quantity=13)
    document = get_xml(api, invoice["id"])

    result = valid(document, "pain.001.001.09")
    assert result.valid, result.errors
    root = parse(document)
    assert text(root, "//p:GrpHdr/p:CtrlSum") == invoice["total"]
    assert text(root, "//p:GrpHdr/p:NbOfTxs") == str(installments)
    schedule = invoice["installments"]
    assert texts(root, "//p:CdtTrfTxInf/p:Amt/p:InstdAmt") == [row["amount"] for row in schedule]
    assert texts(root, "//p:PmtInf/p:ReqdExctnDt/p:Dt") == [row["due_date"] for row in schedule]
    assert texts(root, "//p:EndToEndId") == [f"{invoice['id']}-{n}" for n in range(1, installments + 1)]
    assert set(texts(root, "//p:InstdAmt/@Ccy")) == {currency}
    assert all(len(e) <= 35 for e in texts(root, "//p:EndToEndId | //p:MsgId | //p:PmtInfId"))
    # Creditor = the merchant's profile; debtor = the customer, whose bank account PayTrust does not know.
    assert set(texts(root, "//p:Cdtr/p:Nm")) == {"Acme Trading Sdn Bhd"}
    assert set(texts(root, "//p:CdtrAcct/p:Id/p:Othr/p:Id")) == {"5140 1234 5678"}
    assert set(texts(root, "//p:CdtrAgt/p:FinInstnId/p:BICFI")) == {"MBBEMYKL"}
    assert set(texts(root, "//p:DbtrAcct/p:Id/p:Othr/p:Id")) == {"NOTPROVIDED"}
    assert set(texts(root, "//p:Dbtr/p:CtctDtls/p:EmailAdr")) == {"budi@example.com"}
    ustrd = texts(root, "//p:RmtInf/p:Ustrd")
    assert all(u.startswith(f"{invoice['id']} order-1001") for u in ustrd)


def test_xml_responses_carry_the_common_api_headers(api, creditor):
    invoice = create_invoice(api)
    for what in ("payment-initiation", "payment-status"):
        response = api.get(f"/v1/invoices/{invoice['id']}/{what}", HTTP_X_REQUEST_ID="req-iso-1")
        assert response.status_code == 200
        assert response["X-Request-Id"] == "req-iso-1"
        assert int(response["X-RateLimit-Limit"]) > 0 and "X-RateLimit-Remaining" in response


def test_amount_decimals_follow_the_currency(api, creditor):
    idr = parse(get_xml(api, create_invoice(api, currency="IDR")["id"]))
    usd = parse(get_xml(api, create_invoice(api, currency="USD", external_id="order-2")["id"]))
    assert texts(idr, "//p:InstdAmt") == ["150000"]
    assert texts(usd, "//p:InstdAmt") == ["16.99"]


def test_version_03_on_request(api, creditor):
    invoice = create_invoice(api, installments=3)
    document = get_xml(api, invoice["id"], version="03")
    assert valid(document, "pain.001.001.03").valid
    root = parse(document)
    assert text(root, "//p:GrpHdr/p:CtrlSum") == invoice["total"]
    assert set(texts(root, "//p:CdtrAgt/p:FinInstnId/p:BIC")) == {"MBBEMYKL"}


@pytest.mark.parametrize("version", ["99", "pain.001.001.10", "", "3x"])
def test_unknown_version_is_a_400_envelope(api, creditor, version):
    invoice = create_invoice(api)
    response = api.get(f"/v1/invoices/{invoice['id']}/payment-initiation", {"version": version})
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["type"], error["code"], error["param"]) == (
        "invalid_request_error",
        "parameter_invalid",
        "version",
    )


def test_message_id_is_stable_for_the_same_content_and_changes_with_a_draft_edit(api, creditor):
    invoice = create_invoice(api)
    first = text(parse(get_xml(api, invoice["id"])), "//p:GrpHdr/p:MsgId")
    again = get_xml(api, invoice["id"])
    assert text(parse(again), "//p:GrpHdr/p:MsgId") == first
    assert len(first) <= 35 and first.startswith(invoice["id"])
    response = api.patch(
        f"/v1/invoices/{invoice['id']}",
        {"customer": {"name": "Siti", "email": "siti@example.com"}},
        format="json",
    )
    assert response.status_code == 200, response.json()
    edited = parse(get_xml(api, invoice["id"]))
    assert text(edited, "(//p:Dbtr/p:Nm)[1]") == "Siti"
    assert text(edited, "//p:GrpHdr/p:MsgId") != first


def test_another_merchants_invoice_is_a_404(api, creditor, client_for):
    invoice = create_invoice(api)
    _, other_key = make_api_key(MerchantFactory())
    other = client_for(other_key)
    for what in ("payment-initiation", "payment-status"):
        response = other.get(f"/v1/invoices/{invoice['id']}/{what}")
        assert response.status_code == 404
        assert response["Content-Type"].startswith("application/json")
        assert response.json()["error"]["code"] == "resource_missing"


def test_the_same_merchants_live_key_does_not_see_test_invoices(api, creditor, client_for):
    invoice = create_invoice(api)
    _, live_key = make_api_key(creditor, mode="live")
    response = client_for(live_key).get(f"/v1/invoices/{invoice['id']}/payment-initiation")
    assert response.status_code == 404


def test_unknown_invoice_is_a_404_even_when_xml_is_asked_for(api, creditor):
    response = api.get("/v1/invoices/inv_doesnotexist/payment-initiation", HTTP_ACCEPT="application/xml")
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_without_an_api_key_is_a_401(client, creditor):
    response = client.get("/v1/invoices/inv_x/payment-status")
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"


# --- pain.002 ---------------------------------------------------------------------------------------------------


def statuses(root):
    return texts(root, "//p:TxInfAndSts/p:TxSts")


def test_invoice_without_payments_reports_pending(api, creditor):
    invoice = create_invoice(api, installments=3)
    pain001 = parse(get_xml(api, invoice["id"]))
    document = get_xml(api, invoice["id"], "payment-status")

    result = valid(document, "pain.002.001.10")
    assert result.valid, result.errors
    root = parse(document)
    assert text(root, "//p:OrgnlGrpInfAndSts/p:OrgnlMsgId") == text(pain001, "//p:GrpHdr/p:MsgId")
    assert text(root, "//p:OrgnlGrpInfAndSts/p:OrgnlCreDtTm") == text(pain001, "//p:GrpHdr/p:CreDtTm")
    assert text(root, "//p:OrgnlGrpInfAndSts/p:OrgnlMsgNmId") == "pain.001.001.09"
    assert text(root, "//p:OrgnlGrpInfAndSts/p:OrgnlCtrlSum") == invoice["total"]
    assert text(root, "//p:GrpSts") == "PDNG"
    assert statuses(root) == ["PDNG"] * 3
    assert texts(root, "//p:OrgnlEndToEndId") == texts(pain001, "//p:EndToEndId")
    assert texts(root, "//p:OrgnlPmtInfId") == texts(pain001, "//p:PmtInfId")
    assert texts(root, "//p:OrgnlGrpInfAndSts/p:NbOfTxsPerSts/p:DtldSts") == ["PDNG"]
    assert texts(root, "//p:OrgnlGrpInfAndSts/p:NbOfTxsPerSts/p:DtldNbOfTxs") == ["3"]


def test_each_status_report_has_its_own_message_id(api, creditor):
    invoice = create_invoice(api)
    first = text(parse(get_xml(api, invoice["id"], "payment-status")), "//p:GrpHdr/p:MsgId")
    second = text(parse(get_xml(api, invoice["id"], "payment-status")), "//p:GrpHdr/p:MsgId")
    assert first != second and len(first) <= 35


def test_paid_installment_is_settled_and_the_group_partly_settled(api, creditor):
    invoice = create_invoice(api, installments=3, currency="USD", quantity=3)  # 50.97 = 16.99 x 3
    first = invoice["installments"][0]
    pay(
        invoice["id"],
        number=1,
        amount_minor=int(Decimal(first["amount"]) * 100),
        currency="USD",
        payment_id="pay_1",
    )
    pain001 = parse(get_xml(api, invoice["id"]))
    root = parse(get_xml(api, invoice["id"], "payment-status"))
    assert valid(get_xml(api, invoice["id"], "payment-status")).valid
    # Paying froze the invoice: the report still refers to the (unchanged) pain.001 message.
    assert text(root, "//p:OrgnlMsgId") == text(pain001, "//p:GrpHdr/p:MsgId")
    assert statuses(root) == ["ACSC", "PDNG", "PDNG"]
    assert texts(root, "//p:PmtInfSts") == ["ACSC", "PDNG", "PDNG"]
    assert text(root, "//p:GrpSts") == "PART"
    assert texts(root, "//p:OrgnlGrpInfAndSts/p:NbOfTxsPerSts/p:DtldSts") == ["ACSC", "PDNG"]
    assert texts(root, "//p:OrgnlGrpInfAndSts/p:NbOfTxsPerSts/p:DtldCtrlSum") == [
        first["amount"],
        str(Decimal(invoice["total"]) - Decimal(first["amount"])),
    ]


def test_partly_paid_single_installment_is_in_process_and_the_group_partial(api, creditor):
    invoice = create_invoice(api, currency="IDR")  # 150000
    pay(invoice["id"], number=1, amount_minor=50000, currency="IDR", payment_id="pay_1")
    root = parse(get_xml(api, invoice["id"], "payment-status"))
    assert statuses(root) == ["ACSP"]
    assert text(root, "//p:TxInfAndSts/p:StsRsnInf/p:AddtlInf") == "Partially paid: 50000 of 150000 IDR"
    assert text(root, "//p:GrpSts") == "PART"


def test_fully_paid_invoice_is_settled(api, creditor):
    invoice = create_invoice(api, installments=2)  # 75000 + 75000
    pay(
        invoice["id"], number=1, amount_minor=150000, currency="IDR", payment_id="pay_1"
    )  # pays both, in order
    root = parse(get_xml(api, invoice["id"], "payment-status"))
    assert statuses(root) == ["ACSC", "ACSC"]
    assert text(root, "//p:GrpSts") == "ACSC"


def test_void_invoice_reports_rejected_with_a_narrative(api, creditor):
    invoice = create_invoice(api, installments=2)
    invoice_void(merchant=creditor, mode="test", invoice_id=invoice["id"], payments=[])
    document = get_xml(api, invoice["id"], "payment-status")
    assert valid(document).valid
    root = parse(document)
    assert statuses(root) == ["RJCT", "RJCT"]
    assert set(texts(root, "//p:TxInfAndSts/p:StsRsnInf/p:Rsn/p:Cd")) == {"NARR"}
    assert text(root, "//p:GrpSts") == "RJCT"


def test_overdue_invoice_reports_its_unpaid_installments_rejected(api, creditor):
    invoice = create_invoice(api, installments=2)
    later = timezone.now() + timedelta(days=400)
    document = exports.invoice_payment_status(
        merchant=creditor, mode="test", invoice_id=invoice["id"], now=later
    )
    assert valid(document).valid
    assert statuses(parse(document)) == ["RJCT", "RJCT"]


def test_payment_status_version_03(api, creditor):
    invoice = create_invoice(api, installments=2)
    pay(invoice["id"], number=1, amount_minor=75000, currency="IDR", payment_id="pay_1")
    document = get_xml(api, invoice["id"], "payment-status", version="03")
    assert valid(document, "pain.002.001.03").valid
    assert text(parse(document), "//p:GrpSts") == "PART"


def record_payment(invoice_id, *, installment, status, failure_code=""):
    """A payment row of the invoice as the payments app stores it (its pain.002 code is what the report reads
    back through payments.selectors)."""
    invoice = Invoice.objects.get(pk=invoice_id)
    return Payment.objects.create(
        merchant_id=invoice.merchant_id,
        mode=invoice.mode,
        invoice=invoice,
        installment_number=installment,
        gateway_account_id=invoice.gateway_account_id,
        gateway=invoice.gateway,
        currency=invoice.currency,
        amount_minor=1000,
        status=status,
        failure_code=failure_code,
    )


def test_payments_decide_the_status_of_unpaid_installments(api, creditor):
    invoice = create_invoice(api, installments=3)
    record_payment(invoice["id"], installment=1, status="failed", failure_code="INSUFFICIENT_BALANCE")
    record_payment(invoice["id"], installment=1, status="pending")
    record_payment(invoice["id"], installment=2, status="failed", failure_code="INSUFFICIENT_BALANCE")
    record_payment(invoice["id"], installment=3, status="failed")
    record_payment(invoice["id"], installment=3, status="initiating")
    document = get_xml(api, invoice["id"], "payment-status")
    assert valid(document).valid
    root = parse(document)
    assert statuses(root) == ["ACSP", "RJCT", "PDNG"]
    assert texts(root, "//p:TxInfAndSts/p:StsRsnInf/p:Rsn/p:Cd") == ["AM04"]
    assert text(root, "//p:GrpSts") == "PART"


def test_a_payment_status_unknown_to_the_mapping_is_reported_pending(api, creditor, monkeypatch, caplog):
    """The database only holds known statuses today; a status added later without a pain.002 mapping must give
    PDNG (and a log line), not a failed report. The payments read is replaced to feed one."""
    invoice = create_invoice(api, installments=2)
    record_payment(invoice["id"], installment=1, status="failed", failure_code="deny")
    real = exports.invoice_payments

    def with_a_new_status(*, invoice_id):
        rows = real(invoice_id=invoice_id)
        return [*rows, {**rows[0], "id": "pay_new", "installment": 2, "status": "teleported"}]

    monkeypatch.setattr(exports, "invoice_payments", with_a_new_status)
    root = parse(get_xml(api, invoice["id"], "payment-status"))
    assert statuses(root) == ["RJCT", "PDNG"]
    assert "teleported" in caplog.text


def test_an_invalid_document_is_never_served(api, creditor, monkeypatch):
    invoice = create_invoice(api)
    real = exports.build_pain001
    monkeypatch.setattr(
        exports, "build_pain001", lambda *a, **k: real(*a, **k).replace(b"<PmtMtd>TRF", b"<PmtMtd>XXX")
    )
    response = api.get(f"/v1/invoices/{invoice['id']}/payment-initiation")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "iso20022_document_invalid"
    assert b"XXX" not in response.content


def test_openapi_schema_documents_both_endpoints(api):
    response = api.get("/v1/schema", {"format": "json"})
    assert response.status_code == 200
    schema = response.json()
    for path in ("/v1/invoices/{invoice_id}/payment-initiation", "/v1/invoices/{invoice_id}/payment-status"):
        operation = schema["paths"][path]["get"]
        assert "application/xml" in operation["responses"]["200"]["content"]
        assert "404" in operation["responses"] and "400" in operation["responses"]
        assert any(p["name"] == "version" for p in operation["parameters"])


def test_payment_of_a_single_installment_invoice_needs_no_installment_number(api, creditor):
    invoice = create_invoice(api)
    record_payment(invoice["id"], installment=1, status="failed", failure_code="deny")
    root = parse(get_xml(api, invoice["id"], "payment-status"))
    assert statuses(root) == ["RJCT"]
    assert texts(root, "//p:TxInfAndSts/p:StsRsnInf/p:Rsn/p:Cd") == ["AG01"]
