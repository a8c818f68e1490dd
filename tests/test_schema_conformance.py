"""The OpenAPI schema is the contract: schemathesis fuzzes every operation of /v1/schema against the app, in
process, and every check must hold (docs/adr/0044-schema-conformance-with-schemathesis.md).

Per operation: 50 fuzzed requests (`max-examples`, positive and negative data), schemathesis's coverage cases
(boundary values, each parameter missing or of the wrong type, unsupported methods) and the schema's examples,
derandomized from a fixed seed, so a run is reproducible and a drift between the schema and the server fails
`make test`. Merchant operations run with a test-mode merchant key, the /v1/api-keys operations with an admin key;
a positive request names objects the merchant has (an invoice with a payment, a webhook endpoint, its event,
the sandbox account, another API key) instead of ids that name nothing. Every built-in check runs (the CLI's
`--checks all`); the configured exceptions are below, each with its reason.
"""

import re
import socket
from dataclasses import dataclass
from datetime import UTC

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient
from schemathesis import checks
from schemathesis.config import SchemathesisConfig

from gateways.services import merchant_onboard
from paytrust.pagination import encode_cursor
from paytrust.wsgi import application
from tests.factories import make_api_key

CONFIG = SchemathesisConfig.from_dict(
    {
        "seed": 20261130,
        "generation": {
            "max-examples": 50,
            "deterministic": True,
            "database": "none",
            # No string may contain U+0000 (PostgreSQL cannot store it): the server refuses it everywhere with a
            # 400 (said in every 400's description). OpenAPI 3.0 could only say it with a pattern on every string.
            "allow-x00": False,
        },
        # Constants schemathesis would extract from the app's modules depend on what else the process imported
        # (the same seed generated other requests inside the whole suite than alone): off, for reproducibility.
        "analysis": {"constants": {"enabled": False}},
        "checks": {
            "positive_data_acceptance": {
                # The defaults (2xx, 3xx, 401, 403, 404, 409, 429, 5xx) plus 422: a well-formed request the server
                # cannot process in the current state, e.g. an Idempotency-Key already used with another body
                # (generated requests reuse keys). 5xx stays here because not_a_server_error judges it.
                "expected-statuses": ["2xx", "3xx", "401", "403", "404", "409", "422", "429", "5xx"],
            },
        },
    }
)


# `format: cursor` (paytrust.schema.CURSOR_PARAMETER) is an opaque token made by the server: generate real ones.
schemathesis.openapi.format(
    "cursor",
    st.builds(
        encode_cursor,
        st.datetimes(timezones=st.just(UTC)),
        st.from_regex(r"[a-z]{3}_[A-Za-z0-9]{1,24}", fullmatch=True),
    ),
)

schema = schemathesis.openapi.from_wsgi("/v1/schema", application, config=CONFIG)
merchant_schema = schema.exclude(path_regex=r"^/v1/api-keys")
admin_schema = schema.include(path_regex=r"^/v1/api-keys")


@dataclass(frozen=True)
class Rule:
    """A schema-valid request the server refuses by design, for a reason OpenAPI 3.0 cannot express: a 400 with
    this code (and `param`/message matching) is not a conformance failure. All other checks still run on it."""

    operations: str  # regex over "METHOD /path"
    code: str
    param: str = ".*"
    message: str = ".*"


INVOICE_WRITES = (
    r"(POST /v1/invoices|PATCH /v1/invoices/\{invoice_id\}|POST /v1/invoices/\{invoice_id\}/supplementary)$"
)
ACCOUNT_WRITES = r"(POST /v1/gateway-accounts|PATCH /v1/gateway-accounts/\{account_id\})$"
ENDPOINT_WRITES = r"(POST /v1/webhook-endpoints|PATCH /v1/webhook-endpoints/\{endpoint_id\})$"
RULES = [
    # Relations between parameters: start and end go together, end after start, at most REPORT_MAX_DAYS apart.
    Rule(r"GET /v1/reports/financial$", "parameter_missing", r"start|end", r".* is required when .*"),
    Rule(r"GET /v1/reports/financial$", "parameter_invalid", r"end", r"end must be after start\."),
    Rule(r"GET /v1/reports/financial$", "report_period_too_long", r"end"),
    # A date-time whose instant falls off Python's calendar (years 1 and 9999 in UTC): no `format` bounds in 3.0.
    Rule(r".*", "parameter_invalid", r"start|end|created_gte|created_lt", r".* must lie between .*"),
    # U+0000 in an object key (schemathesis's `allow-x00: false` does not reach generated property names).
    Rule(r".*", "invalid_characters", r".*", r"Keys must not contain U\+0000 .*"),
    # Metadata keys are 1-40 characters: OpenAPI 3.0 has no `propertyNames`.
    Rule(r".*", "parameter_invalid", r"metadata", r"metadata keys must be .*"),
    # Invoices: decimals and maxima depend on the currency (a sibling field); the total must be positive and
    # installments must add up to it; expires_at and due dates are relative to now; `gateway` must name one of
    # the merchant's enabled accounts that takes the currency; a supplementary invoice keeps its parent's currency.
    Rule(INVOICE_WRITES, "amount_precision"),
    Rule(INVOICE_WRITES, "amount_too_large"),
    Rule(INVOICE_WRITES, "amount_invalid", r"line_items", r"The invoice total must be greater than zero\."),
    Rule(INVOICE_WRITES, "expiry_invalid", r"expires_at"),
    Rule(INVOICE_WRITES, "installments_invalid", r"installments\..*", r".*(exactly|increasing|years).*"),
    Rule(INVOICE_WRITES, "installments_sum_mismatch"),
    Rule(INVOICE_WRITES, "gateway_unavailable", r"gateway"),
    Rule(INVOICE_WRITES, "gateway_currency_unsupported", r"gateway"),
    Rule(INVOICE_WRITES, "currency_mismatch"),
    Rule(INVOICE_WRITES, "supplementary_mismatch"),
    # An installment number must exist on the invoice (its plan says how many).
    Rule(r"POST /v1/invoices/\{invoice_id\}/payments$", "installment_invalid", r"installment"),
    # Refunds: the amount's decimals and maximum follow the payment's currency (not in the request); whether a
    # gateway refunds at all, or only in full, is the payment's gateway's.
    Rule(r"POST /v1/payments/\{payment_id\}/refunds$", r"amount_precision|amount_too_large", r"amount"),
    Rule(
        r"POST /v1/payments/\{payment_id\}/refunds$",
        r"refund_unsupported|partial_refund_unsupported",
        r"amount",
    ),
    # Gateway accounts: which credentials (and which key prefixes) depend on the gateway and the mode; which
    # currencies a gateway takes and which modes it exists in; fee currencies must be the account's.
    Rule(ACCOUNT_WRITES, r"parameter_missing|parameter_unknown|parameter_invalid", r"credentials(\..*)?"),
    Rule(ACCOUNT_WRITES, "credentials_mode_mismatch"),
    # bank_details: required by the manual gateway, refused by the others; instructions only for the account's
    # currencies (docs/adr/0052).
    Rule(ACCOUNT_WRITES, r"parameter_missing|parameter_unknown|parameter_invalid", r"bank_details(\..*)?"),
    Rule(ACCOUNT_WRITES, "gateway_currency_unsupported", r"currencies\.\d+"),
    Rule(ACCOUNT_WRITES, "gateway_mode_invalid", r"gateway"),
    Rule(ACCOUNT_WRITES, "fee_currency_invalid", r"fees\.\d+\.currency"),
    Rule(ACCOUNT_WRITES, "parameter_invalid", r"fees\.\d+\.currency", r"Two fees for .*"),
    Rule(ACCOUNT_WRITES, "amount_precision", r"fees\.\d+\.fixed"),
    # A JSON number as a rate: "at most 4 decimals" has no reliable `multipleOf` for binary floats.
    Rule(
        ACCOUNT_WRITES + "|" + INVOICE_WRITES, "rate_invalid", r".*(percent|tax_rate)", r".*decimal places\."
    ),
    # Risk settings: a block-list entry must be an e-mail address, a domain, an IP address or CIDR block (OpenAPI
    # 3.0 has no format for "IP or CIDR" or "domain"); threshold amounts follow their currency (a property name).
    Rule(
        r"PATCH /v1/risk-settings$",
        "parameter_invalid",
        r"blocked_(emails|email_domains|ips|device_ids)\.\d+",
    ),
    Rule(
        r"PATCH /v1/risk-settings$",
        r"amount_precision|amount_too_large|amount_invalid|parameter_invalid|currency_\w+",
        r"(amount|new_customer)_thresholds(\..*)?",
    ),
    # Webhook URLs: the host must resolve (DNS) to a public address; http only for localhost in test mode.
    Rule(ENDPOINT_WRITES, r"url_unresolvable|url_forbidden|url_insecure", r"url"),
]


def refused_by_rule(case, response) -> bool:
    if response.status_code != 400:
        return False
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return False
    operation = f"{case.method.upper()} {case.operation.path}"
    return any(
        re.fullmatch(rule.operations, operation)
        and re.fullmatch(rule.code, error["code"])
        and re.fullmatch(rule.param, error["param"] or "", re.DOTALL)
        and re.fullmatch(rule.message, error["message"], re.DOTALL)
        for rule in RULES
    )


def positive_data_acceptance_except_rules(ctx, response, case):
    """The built-in positive_data_acceptance, except for a refusal listed in RULES."""
    if refused_by_rule(case, response):
        return None
    return checks.positive_data_acceptance(ctx, response, case)


def _seed_merchant_world() -> tuple[dict, dict]:
    """A merchant as a client would leave it: (headers of its test key, ids for path parameters)."""
    merchant = merchant_onboard(
        name="Schema",
        legal_name="Schema Trading Sdn Bhd",
        country="MY",
        account_number="5140 1234 5678",
        bank_bic="MBBEMYKL",
        bank_name="Maybank",
    )
    _, plaintext = make_api_key(merchant)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")

    def post(path, body):
        response = api.post(path, body, format="json")
        assert response.status_code in (200, 201), response.content
        return response.json()

    endpoint = post("/v1/webhook-endpoints", {"url": "http://localhost:9/hook", "enabled_events": ["*"]})
    line = {"name": "Widget", "quantity": 2, "unit_price": "75000", "tax_rate": "0.11"}
    invoice = post("/v1/invoices", {"currency": "IDR", "line_items": [line], "customer": {"name": "Budi"}})
    payment = post(f"/v1/invoices/{invoice['id']}/payments", {})
    event = api.get("/v1/events").json()["data"][0]
    ids = {
        "invoice_id": invoice["id"],
        "payment_id": payment["id"],
        "endpoint_id": endpoint["id"],
        "event_id": event["id"],
        "account_id": payment["gateway_account"],
        "gateway": "sandbox",
    }
    return {"Authorization": f"Bearer {plaintext}"}, ids


def _seed_operator_world() -> tuple[dict, dict]:
    """(headers of an admin key, ids): `key_id` is another key, so rotating or revoking it leaves ours working."""
    operator = merchant_onboard(name="Operator")
    _, plaintext = make_api_key(operator, scopes=["admin"], name="admin key")
    other, _ = make_api_key(operator, name="managed key")
    return {"Authorization": f"Bearer {plaintext}"}, {"key_id": other.id}


@pytest.fixture
def _in_process(monkeypatch):
    """The app called through its WSGI handler inside the test's transaction, with no DNS."""
    # Django's WSGI handler closes "obsolete" connections around each request; inside the test's transaction that
    # would close it. Django's own test client disconnects the same receivers (and reconnects them after each of
    # its requests, so the worlds above are seeded before this fixture).
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    # DNS is the outside world: webhook URLs name no host that resolves, except localhost.
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if host in ("localhost", "127.0.0.1", "::1"):
            return real_getaddrinfo(host, *args, **kwargs)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def merchant_world(db):
    return _seed_merchant_world()


@pytest.fixture
def operator_world(db):
    return _seed_operator_world()


def call_and_validate(case, world):
    headers, ids = world
    if case.meta.generation.mode.is_positive:
        # A generated id names nothing (404); a schema-valid request names what the client has.
        for name in case.path_parameters or {}:
            if name in ids:
                case.path_parameters[name] = ids[name]
    case.call_and_validate(
        headers=headers,
        excluded_checks=[checks.positive_data_acceptance],
        additional_checks=[positive_data_acceptance_except_rules],
    )


# The fixtures (database transaction, key) are shared by an operation's examples on purpose: what one request
# creates, the next may find.
@merchant_schema.parametrize()
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_merchant_operations_conform(case, merchant_world, _in_process):
    call_and_validate(case, merchant_world)


@admin_schema.parametrize()
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_admin_operations_conform(case, operator_world, _in_process):
    call_and_validate(case, operator_world)
