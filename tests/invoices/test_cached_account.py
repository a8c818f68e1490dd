"""The API's invoice creation reads the gateway account and fee from this process's cache once it has read them,
and its write asserts, in its own snapshot, that they still hold (gateways.selectors.gateway_account_with_fee,
paytrust.sql.Check): a changed fee or a disabled account is never written from the cache; the write fails as a
whole and the request reads them again."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from gateways.models import GatewayAccount, GatewayFee
from invoices.models import Invoice
from tests.invoices.factories import account_with_fee

pytestmark = pytest.mark.django_db

BODY = {
    "currency": "IDR",
    "gateway": "xendit",
    "line_items": [{"name": "Widget", "quantity": 1, "unit_price": "100000", "tax_rate": "0"}],
}


def _lookups(queries) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if q["sql"].startswith("SELECT a.")]


def test_the_second_creation_reads_no_account_and_the_write_asserts_it(api, merchant):
    account_with_fee(merchant, percent="0.029", fixed_minor=2000)
    first = api.post("/v1/invoices", BODY, format="json")
    assert first.status_code == 201 and first.json()["service_fee"] == "4900"
    with CaptureQueriesContext(connection) as queries:
        second = api.post("/v1/invoices", BODY, format="json")
    assert second.status_code == 201 and second.json()["service_fee"] == "4900"
    assert not _lookups(queries)
    (insert,) = [q["sql"] for q in queries.captured_queries if "INSERT INTO" in q["sql"]]
    assert "paytrust_assert(EXISTS (SELECT FROM (SELECT a." in insert


@pytest.mark.parametrize(
    "change", [{"percent": "0.05"}, {"fixed_minor": 0}, "deleted"], ids=["percent", "fixed", "fee-removed"]
)
def test_a_fee_changed_after_it_was_cached_is_read_again_and_gives_the_new_fee(api, merchant, change):
    account = account_with_fee(merchant, percent="0.029", fixed_minor=2000)
    assert api.post("/v1/invoices", BODY, format="json").status_code == 201  # now cached
    fee = GatewayFee.objects.filter(account=account, currency="IDR")
    if change == "deleted":
        fee.delete()
        expected = "0"
    else:
        fee.update(**change)
        expected = {"percent": "7000", "fixed_minor": "2900"}[next(iter(change))]
    with CaptureQueriesContext(connection) as queries:
        created = api.post("/v1/invoices", BODY, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["service_fee"] == expected
    stored = Invoice.objects.get(pk=created.json()["id"])
    assert str(stored.service_fee_minor) == expected
    assert len(_lookups(queries)) == 1  # the failed write, then one fresh read and the write
    assert Invoice.objects.filter(merchant=merchant).count() == 2  # the failed write left nothing


def test_an_account_disabled_after_it_was_cached_is_refused_and_nothing_is_written(api, merchant):
    from webhooks.outbound.models import Event

    account = account_with_fee(merchant, percent="0.029", fixed_minor=2000)
    assert api.post("/v1/invoices", BODY, format="json").status_code == 201
    GatewayAccount.objects.filter(pk=account.pk).update(enabled=False)
    events = Event.objects.filter(merchant=merchant).count()
    refused = api.post("/v1/invoices", BODY, format="json", HTTP_IDEMPOTENCY_KEY="after-disable")
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "gateway_unavailable"
    assert Invoice.objects.filter(merchant=merchant).count() == 1
    assert Event.objects.filter(merchant=merchant).count() == events
    again = api.post("/v1/invoices", BODY, format="json", HTTP_IDEMPOTENCY_KEY="after-disable")
    assert again.status_code == 400  # the 400 released the key; still refused, not replayed


def test_another_currency_or_gateway_is_another_entry(api, merchant):
    account_with_fee(merchant, percent="0.029", fixed_minor=2000)
    account_with_fee(merchant, currency="USD", percent="0.01", fixed_minor=30)
    GatewayAccount.objects.filter(merchant=merchant, gateway="xendit").update(currencies=["IDR", "USD"])
    idr = api.post("/v1/invoices", BODY, format="json").json()
    usd = api.post("/v1/invoices", {**BODY, "currency": "USD"}, format="json").json()
    sandbox = api.post("/v1/invoices", {**BODY, "gateway": "sandbox"}, format="json").json()
    assert (idr["service_fee"], usd["service_fee"], sandbox["service_fee"]) == ("4900", "1000.30", "0")
