"""GET/PATCH /v1/risk-settings: the defaults until changed, partial updates normalised and audited, isolation
between merchants and modes, and bad input as a 400 envelope naming the field (nothing written)."""

from __future__ import annotations

import pytest

from apikeys.models import AuditLog
from risk.models import RiskSettings
from tests.factories import make_api_key

pytestmark = pytest.mark.django_db


def test_a_new_merchant_sees_the_documented_defaults(api):
    body = api.get("/v1/risk-settings").json()
    assert body["object"] == "risk_settings" and body["mode"] == "test" and body["customized"] is False
    assert (body["review_threshold"], body["block_threshold"]) == (50, 80)
    assert (body["velocity_email_hour"], body["velocity_ip_hour"], body["velocity_device_day"]) == (
        30,
        100,
        300,
    )
    assert body["amount_thresholds"] == {"IDR": "75000000", "MYR": "20000.00", "USD": "5000.00"}
    assert body["blocked_ips"] == [] and body["updated_at"] is None


def test_patch_changes_only_what_is_sent_normalised_and_audited(merchant, api):
    response = api.patch(
        "/v1/risk-settings",
        {
            "velocity_email_hour": 3,
            "velocity_ip_day": None,
            "amount_thresholds": {"USD": "1000.5", "IDR": 2000000},
            "blocked_emails": ["Fraud@Example.COM", "fraud@example.com"],
            "blocked_email_domains": ["@Mailinator.com"],
            "blocked_ips": ["2001:0db8::0/32", "203.0.113.7"],
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["customized"] is True and body["updated_at"]
    assert body["velocity_email_hour"] == 3 and body["velocity_ip_day"] is None
    assert body["velocity_email_day"] == 300  # kept
    assert body["amount_thresholds"] == {"IDR": "2000000", "USD": "1000.50"}
    assert body["blocked_emails"] == ["fraud@example.com"]
    assert body["blocked_email_domains"] == ["mailinator.com"]
    assert body["blocked_ips"] == ["2001:db8::/32", "203.0.113.7"]
    assert api.get("/v1/risk-settings").json() == body
    row = RiskSettings.objects.get(merchant=merchant, mode="test")
    assert row.amount_thresholds == {"IDR": 2000000, "USD": 100050}
    audit = AuditLog.objects.get(merchant=merchant, details__action_name="risk_settings.update")
    assert audit.mode == "test" and audit.details["changes"]["velocity_email_hour"] == 3


def test_settings_are_per_merchant_and_mode(merchant, other_merchant, api, client_for):
    api.patch("/v1/risk-settings", {"blocked_device_ids": ["dev-1"]}, format="json")
    other = client_for(make_api_key(other_merchant)[1])
    live = client_for(make_api_key(merchant, mode="live")[1])
    assert other.get("/v1/risk-settings").json()["blocked_device_ids"] == []
    live_body = live.get("/v1/risk-settings").json()
    assert live_body["mode"] == "live" and live_body["blocked_device_ids"] == []
    assert api.get("/v1/risk-settings").json()["blocked_device_ids"] == ["dev-1"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"review_threshold": 0}, "review_threshold"),
        ({"block_threshold": 101}, "block_threshold"),
        ({"velocity_email_hour": 0}, "velocity_email_hour"),
        ({"velocity_email_hour": "many"}, "velocity_email_hour"),
        ({"amount_thresholds": {"XXX": "100"}}, "amount_thresholds.XXX"),
        ({"amount_thresholds": {"IDR": "100.5"}}, "amount_thresholds.IDR"),
        ({"amount_thresholds": {"USD": "-1"}}, "amount_thresholds.USD"),
        ({"amount_thresholds": ["IDR"]}, "amount_thresholds"),
        ({"blocked_emails": ["not-an-email"]}, "blocked_emails.0"),
        ({"blocked_email_domains": ["ok.com", "bad domain"]}, "blocked_email_domains.1"),
        ({"blocked_ips": ["10.0.0.1/8"]}, "blocked_ips.0"),  # host bits set: ambiguous
        ({"blocked_ips": ["999.1.1.1"]}, "blocked_ips.0"),
        ({"blocked_device_ids": ["x" * 129]}, "blocked_device_ids.0"),
        ({"blocked_device_ids": "dev-1"}, "blocked_device_ids"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_changes_nothing(merchant, api, body, param):
    response = api.patch("/v1/risk-settings", body, format="json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param, error
    assert not RiskSettings.objects.filter(merchant=merchant).exists()


def test_a_review_threshold_not_below_the_block_threshold_is_a_422(merchant, api):
    response = api.patch("/v1/risk-settings", {"review_threshold": 80}, format="json")  # block is 80
    assert response.status_code == 422, response.content
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("risk_thresholds_invalid", "review_threshold")
    assert not RiskSettings.objects.filter(merchant=merchant).exists()


@pytest.mark.parametrize("body", ["null", "[]", '"x"'])
def test_a_body_that_is_not_an_object_is_a_400(merchant, api, body):
    response = api.generic("PATCH", "/v1/risk-settings", body, content_type="application/json")
    assert response.status_code == 400, response.content
    assert not RiskSettings.objects.filter(merchant=merchant).exists()


def test_without_a_key_it_is_401(client):
    assert client.get("/v1/risk-settings").status_code == 401
