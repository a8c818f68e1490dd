"""The sandbox checkout page as a customer reads it: one amount format, an installment's outcome named as such,
every action button in an aligned row. Payments made through the API, pages rendered by the real view, the
notification handed to the real inbound pipeline."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from django.test import Client

from gateways.models import SandboxCheckoutSession
from tests.factories import make_api_key
from tests.payments.factories import make_invoice
from tests.webhooks.inbound_support import initiate, merchant  # noqa: F401 - fixture
from webhooks.inbound.models import InboundNotification

pytestmark = pytest.mark.django_db


class _Page(HTMLParser):
    """The text a person sees (no <style>, no attributes) and, for each button, whether it sits in an .actions row."""

    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.buttons: list[tuple[str, bool]] = []
        self._stack: list[tuple[str, str]] = []
        self._in_style = False
        self._button: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "style":
            self._in_style = True
        if tag == "button":
            in_row = any("actions" in (cls or "").split() for _, cls in self._stack)
            self.buttons.append((attrs.get("value", ""), in_row))
        if tag not in ("input", "meta", "br"):
            self._stack.append((tag, attrs.get("class", "")))

    def handle_endtag(self, tag):
        if tag == "style":
            self._in_style = False
        while self._stack:
            if self._stack.pop()[0] == tag:
                break

    def handle_data(self, data):
        if not self._in_style and data.strip():
            self.text.append(" ".join(data.split()))


def _read(response) -> _Page:
    parsed = _Page()
    parsed.feed(response.content.decode())
    return parsed


@pytest.fixture
def api(merchant):  # noqa: F811
    client = Client()
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {make_api_key(merchant)[1]}"
    return client


def _checkout(api, invoice_id: str) -> tuple[str, SandboxCheckoutSession]:
    response = api.post(f"/v1/invoices/{invoice_id}/payments", {}, content_type="application/json")
    assert response.status_code == 201, response.content
    payment = response.json()
    path = "/" + payment["payment_url"].split("://", 1)[1].split("/", 1)[1]
    return path, SandboxCheckoutSession.objects.get(payment_id=payment["id"])


def _post(path, session, action, amount=None):
    data = {"nonce": session.form_nonce, "action": action}
    if amount is not None:
        data["amount"] = amount
    return Client().post(path, data)


def test_amounts_are_shown_in_one_format(api, merchant):  # noqa: F811
    invoice = make_invoice(merchant, amount="300000", installments=3)
    path, _ = _checkout(api, invoice.id)
    page = _read(Client().get(path))
    text = " | ".join(page.text)
    assert "IDR 100,000" in text  # the amount, the pay button, the field's example
    assert "100000" not in text and "100000 IDR" not in text  # never the API's plain decimal beside it
    assert "Pay IDR 100,000" in page.text


def test_an_installment_reads_1_of_3_and_its_payment_is_not_paid_in_full(api, merchant):  # noqa: F811
    invoice = make_invoice(merchant, amount="300000", installments=3)
    path, session = _checkout(api, invoice.id)
    page = _read(Client().get(path))
    assert page.text[page.text.index("Installment") + 1] == "1 of 3"

    response = _post(path, session, "pay")
    assert response.status_code == 200
    page = _read(response)
    assert "Installment 1 of 3 paid" in page.text
    assert "Paid in full" not in " ".join(page.text)
    assert "— IDR 100,000 received." in " ".join(page.text)
    assert InboundNotification.objects.count() == 1  # the real pipeline took the notification


def test_part_of_an_installment_in_the_displayed_format(api, merchant):  # noqa: F811
    invoice = make_invoice(merchant, amount="300000", installments=3)
    path, session = _checkout(api, invoice.id)
    response = _post(path, session, "pay_partial", "IDR 40,000")  # as the page shows amounts
    assert response.status_code == 200, response.content
    text = " ".join(_read(response).text)
    assert "Installment 1 of 3 paid in part" in text and "IDR 40,000 received." in text
    assert SandboxCheckoutSession.objects.get(pk=session.pk).amount_paid_minor == 40000


def test_an_overpaid_installment_says_so(api, merchant):  # noqa: F811
    invoice = make_invoice(merchant, amount="300000", installments=3)
    path, session = _checkout(api, invoice.id)
    response = _post(path, session, "overpay", "120,000")
    assert response.status_code == 200, response.content
    assert "Installment 1 of 3 overpaid" in _read(response).text


def test_a_whole_invoice_is_paid_in_full_and_has_no_installment_line(api, merchant):  # noqa: F811
    invoice = make_invoice(merchant, amount="150000")
    path, session = _checkout(api, invoice.id)
    page = _read(Client().get(path))
    assert "Installment" not in page.text
    page = _read(_post(path, session, "pay"))
    assert "Paid in full" in page.text


def test_refusals_quote_amounts_in_the_same_format(api, merchant):  # noqa: F811
    invoice = make_invoice(merchant, amount="300000", installments=3)
    path, session = _checkout(api, invoice.id)
    response = _post(path, session, "pay_partial", "100,000")
    assert response.status_code == 400
    assert "A partial payment must be less than IDR 100,000." in _read(response).text
    response = _post(path, session, "pay_partial", "1,00")  # not a grouping: refused, not read as 100
    assert response.status_code == 400
    assert SandboxCheckoutSession.objects.get(pk=session.pk).status == "open"


def test_every_button_sits_in_an_aligned_row(api, merchant):  # noqa: F811
    invoice = make_invoice(merchant, amount="300000", installments=3)
    path, _ = _checkout(api, invoice.id)
    page = _read(Client().get(path))
    assert [value for value, _ in page.buttons] == ["pay", "pay_partial", "overpay", "fail", "expire"]
    assert all(in_row for _, in_row in page.buttons), page.buttons
