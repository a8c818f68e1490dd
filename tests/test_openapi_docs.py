"""The published schema reads as documentation (issue 12): one tag per resource, a human description for every
operation (never an internal class docstring), examples for the main request bodies."""

import pytest
from drf_spectacular.generators import SchemaGenerator

RESOURCES = {
    "invoices",
    "payments",
    "refunds",
    "gateway accounts",
    "inbound notifications",
    "outbound events and endpoints",
    "API keys",
    "reports",
    "merchant",
    "balance",
    "risk",
}


@pytest.fixture(scope="module")
def operations():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return [
        (method.upper(), path, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method in ("get", "post", "put", "patch", "delete")
    ]


def test_one_tag_per_resource(operations):
    assert {tag for _, _, op in operations for tag in op["tags"]} == RESOURCES
    assert all(len(op["tags"]) == 1 for _, _, op in operations)
    tags = {(method, path): op["tags"][0] for method, path, op in operations}
    assert tags[("POST", "/v1/invoices/{invoice_id}/payments")] == "payments"
    assert tags[("POST", "/v1/payments/{payment_id}/refunds")] == "refunds"
    assert tags[("GET", "/v1/invoices/{invoice_id}/payment-initiation")] == "invoices"
    assert tags[("POST", "/v1/webhooks/{gateway}/{account_id}")] == "inbound notifications"


def test_every_operation_has_a_summary_and_a_description_for_api_users(operations):
    internal = ("Authenticated merchant API view", "StrictSerializer", "ViewSetMixin", "Unknown JSON fields")
    for method, path, op in operations:
        assert op.get("summary"), (method, path)
        assert op.get("description"), (method, path)
        assert not any(word in op["description"] for word in internal), (method, path, op["description"])


def test_the_main_bodies_have_examples(operations):
    def examples(method, path):
        op = next(op for m, p, op in operations if (m, p) == (method, path))
        return op["requestBody"]["content"]["application/json"].get("examples", {})

    for method, path in [
        ("POST", "/v1/invoices"),
        ("POST", "/v1/invoices/{invoice_id}/payments"),
        ("POST", "/v1/webhook-endpoints"),
        ("POST", "/v1/gateway-accounts"),
    ]:
        assert examples(method, path), (method, path)
