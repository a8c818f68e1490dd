"""paytrust.sql: pre-built statements run as server-side prepared statements on the pooled connection."""

import pytest
from django.db import IntegrityError, connection, transaction

from apikeys.ratelimit import rate_limit_hit
from gateways.selectors import gateway_account_with_fee
from paytrust.sql import PREPARE_THRESHOLD, prepared_cursor, stable_params
from tests.factories import GatewayAccountFactory, GatewayFeeFactory, MerchantFactory

pytestmark = pytest.mark.django_db


def _prepared_statements() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


def test_a_statement_is_prepared_after_the_threshold_and_keeps_answering(settings):
    settings.REDIS_URL = ""
    merchant = MerchantFactory()
    account = GatewayAccountFactory(merchant=merchant, gateway="xendit", currencies=["IDR"])
    GatewayFeeFactory(account=account, currency="IDR", percent="0.029", fixed_minor=2000)
    for _ in range(PREPARE_THRESHOLD + 2):
        found = gateway_account_with_fee(merchant=merchant, mode="test", ref="xendit", currency="IDR")
        assert (found.account.id, found.fee_fixed_minor) == (account.id, 2000)
        assert rate_limit_hit(bucket="key_prepared", limit=100).allowed
    statements = _prepared_statements()
    assert any("gateways_gatewayaccount" in s for s in statements)
    assert any("paytrust_rate_limit_hit" in s for s in statements)
    # Amounts of any size bind as the same parameter types: one prepared statement, not one per magnitude.
    for _ in range(PREPARE_THRESHOLD + 1):
        assert rate_limit_hit(bucket="key_prepared_big", limit=1_500_000_000).allowed
    assert len([s for s in _prepared_statements() if "paytrust_rate_limit_hit" in s]) == 1


def test_database_errors_are_djangos_and_a_rollback_does_not_break_later_calls():
    merchant = MerchantFactory()
    account = GatewayAccountFactory(merchant=merchant, gateway="xendit", currencies=["IDR"])
    for _ in range(PREPARE_THRESHOLD + 1):
        gateway_account_with_fee(merchant=merchant, mode="test", ref="xendit", currency="IDR")
    with pytest.raises(IntegrityError), transaction.atomic(), prepared_cursor() as cursor:
        # The one-fee-per-currency constraint, raised as django.db.IntegrityError (callers catch that one).
        for _ in range(2):
            cursor.execute(
                "INSERT INTO gateways_gatewayfee (account_id, currency, percent, fixed_minor) "
                "VALUES (%s, 'IDR', 0, %s)",
                stable_params([account.id, 1]),
            )
    # psycopg forgets its prepared statements after the ROLLBACK; the next calls prepare them again.
    for _ in range(PREPARE_THRESHOLD + 1):
        found = gateway_account_with_fee(merchant=merchant, mode="test", ref="xendit", currency="IDR")
        assert found.account.id == account.id and found.fee_percent == 0


def test_stable_params_binds_every_int_as_int8_and_leaves_the_rest():
    values = stable_params([1, 2**40, True, None, "7", 1.5])
    assert [type(v).__name__ for v in values] == ["Int8", "Int8", "bool", "NoneType", "str", "float"]
    assert values[:2] == [1, 2**40]


def test_with_prepared_statements_off_the_hot_path_binds_client_side(settings, client_for):
    """DB_PREPARED_STATEMENTS=false (behind a pooler that cannot keep prepared statements): the same statements run
    with client-side binding, and nothing is prepared on the connection."""
    from gateways.services import merchant_onboard
    from invoices.models import Installment, Invoice, LineItem
    from tests.factories import make_api_key

    settings.DB_PREPARED_STATEMENTS = False
    settings.REDIS_URL = ""
    merchant = merchant_onboard(name="Client-side")
    _, plaintext = make_api_key(merchant)
    api = client_for(plaintext)
    body = {
        "currency": "IDR",
        "line_items": [
            {"name": "Widget", "quantity": 2, "unit_price": "150000", "tax_rate": "0.11"},
            {"name": "Gadget", "quantity": 1, "unit_price": "99999", "tax_rate": "0"},
        ],
        "installments": {"count": 3},
    }
    for n in range(PREPARE_THRESHOLD + 1):
        response = api.post("/v1/invoices", body, format="json", HTTP_IDEMPOTENCY_KEY=f"client-side-{n}")
        assert response.status_code == 201, response.json()
    assert response.json()["total"] == "432999"  # 300000 + 99999 + 33000 tax; sandbox: no fee
    invoice = Invoice.objects.get(pk=response.json()["id"])
    assert LineItem.objects.filter(invoice=invoice).count() == 2
    assert Installment.objects.filter(invoice=invoice).count() == 3
    assert _prepared_statements() == []


# --- rows as one jsonb parameter (insert_for(...).from_json + json_rows) --------------------------------------


def _insert(model, objs):
    from paytrust.sql import insert_for, json_rows

    insert = insert_for(model)
    with transaction.atomic(), prepared_cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {insert.table} {insert.columns} {insert.from_json}", [json_rows(insert, objs)]
        )


def test_json_rows_store_every_value_exactly_as_the_orm_would():
    from datetime import UTC, datetime
    from decimal import Decimal
    from zoneinfo import ZoneInfo

    from invoices.models import Invoice
    from paytrust.sql import new_instance

    merchant = MerchantFactory()
    account = GatewayAccountFactory(merchant=merchant, gateway="sandbox", currencies=["IDR"])
    # A non-UTC offset and microseconds: stored as the same instant, to the microsecond.
    expires = datetime(2026, 12, 31, 23, 59, 59, 123456, tzinfo=UTC).astimezone(ZoneInfo("Asia/Jakarta"))
    values = dict(
        merchant=merchant,
        mode="test",
        currency="IDR",
        gateway_account=account,
        gateway="sandbox",
        external_id="ext-ü-1",
        description='quotes " and \\ backslash, emoji \U0001f600',
        customer_name="Budi",
        subtotal_minor=9_007_199_254_740_993,  # > 2**53: exact, never through a float
        tax_total_minor=0,
        service_fee_minor=0,
        total_minor=9_007_199_254_740_993,
        fee_percent=Decimal("0.0290"),
        fee_fixed_minor=2000,
        expires_at=expires,
        lapses_at=expires,
        metadata={"nested": {"list": [1, "2", None, True]}, "é": "ü"},
    )
    json_invoice = new_instance(Invoice, **values)
    _insert(Invoice, [json_invoice])
    orm_invoice = Invoice(**{**values, "external_id": "ext-orm"})
    orm_invoice.save(force_insert=True)
    stored = {i.pk: i for i in Invoice.objects.filter(pk__in=[json_invoice.pk, orm_invoice.pk])}
    skip = {"id", "external_id", "created_at", "updated_at"}
    columns = [f.attname for f in Invoice._meta.concrete_fields if f.attname not in skip]
    as_json = {c: getattr(stored[json_invoice.pk], c) for c in columns}
    assert as_json == {c: getattr(stored[orm_invoice.pk], c) for c in columns}
    assert as_json["expires_at"] == expires and as_json["subtotal_minor"] == 9_007_199_254_740_993
    # auto_now_add filled on the instance and stored to the microsecond
    assert stored[json_invoice.pk].created_at == json_invoice.created_at


def test_json_rows_refuse_what_the_column_cannot_hold_instead_of_truncating():
    from decimal import Decimal

    from django.db import DataError

    from invoices.models import Invoice
    from paytrust.sql import new_instance

    merchant = MerchantFactory()
    account = GatewayAccountFactory(merchant=merchant, gateway="sandbox", currencies=["IDR"])
    base = dict(merchant=merchant, mode="test", currency="IDR", gateway_account=account, gateway="sandbox")
    too_long = new_instance(Invoice, **base, customer_name="x" * 1000)
    with pytest.raises(DataError):
        _insert(Invoice, [too_long])
    too_big = new_instance(Invoice, **base, total_minor=2**63)
    with pytest.raises(DataError):
        _insert(Invoice, [too_big])
    for amount in (1.5, Decimal("NaN")):  # a float or a non-finite decimal never reaches a numeric column
        with pytest.raises((TypeError, ValueError)):
            _insert(Invoice, [new_instance(Invoice, **base, fee_percent=amount)])
    assert not Invoice.objects.filter(merchant=merchant).exists()


def test_a_json_field_with_an_encoder_is_stored_as_the_orm_stores_it():
    """Event.data (DjangoJSONEncoder) goes into the row as the encoder's own text: what the encoder makes of a
    datetime, a Decimal or a UUID, unicode and nesting, exactly as `save()` stores it."""
    from datetime import UTC, datetime
    from decimal import Decimal
    from uuid import UUID

    from paytrust.sql import insert_for, json_rows, new_instance
    from webhooks.outbound.models import Event

    merchant = MerchantFactory()
    data = {
        "at": datetime(2026, 12, 1, 3, 4, 5, 678901, tzinfo=UTC),
        "amount": Decimal("16.990"),
        "ref": UUID("12345678-1234-5678-1234-567812345678"),
        "text": 'é "quoted" \\ \U0001f600',
        "nested": [{"a": None, "b": True, "c": 2**60}],
    }
    assert insert_for(Event).fragments  # the path under test
    via_json = new_instance(Event, merchant=merchant, mode="test", type="invoice.created", data=data)
    _insert(
        Event,
        [via_json, new_instance(Event, merchant=merchant, mode="test", type="invoice.created", data={})],
    )
    via_orm = Event(merchant=merchant, mode="test", type="invoice.created", data=data)
    via_orm.save(force_insert=True)
    stored = {e.pk: e.data for e in Event.objects.filter(merchant=merchant)}
    assert stored[via_json.pk] == stored[via_orm.pk]
    assert (
        stored[via_json.pk]["at"] == "2026-12-01T03:04:05.678Z" and stored[via_json.pk]["amount"] == "16.990"
    )
    assert sorted(map(str, stored.values())).count("{}") == 1
    assert json_rows(insert_for(Event), []) == "[]"
