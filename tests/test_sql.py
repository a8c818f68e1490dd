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
