import base64

import pytest
from django.db import transaction

from tests.factories import MerchantFactory, make_api_key
from tests.webhooks.factories import WebhookEndpointFactory
from webhooks.outbound.delivery import endpoint_signing_secrets
from webhooks.outbound.models import Delivery, DeliveryStatus, Event, WebhookEndpoint
from webhooks.outbound.services import event_record

INVOICE = {"id": "inv_1", "object": "invoice", "status": "paid"}


def _create(api, **overrides):
    body = {"url": "http://localhost:8123/hook", "enabled_events": ["invoice.paid"], **overrides}
    return api.post("/v1/webhook-endpoints", body, format="json")


def test_create_returns_the_secret_once_and_stores_it_encrypted(api):
    response = _create(api, description="orders", metadata={"team": "billing"})
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["id"].startswith("whe_") and body["object"] == "webhook_endpoint"
    assert body["enabled_events"] == ["invoice.paid"] and body["enabled"] is True
    assert body["metadata"] == {"team": "billing"} and body["mode"] == "test"
    secret = body["secret"]
    assert secret.startswith("whsec_") and 24 <= len(base64.b64decode(secret[6:])) <= 64

    stored = WebhookEndpoint.objects.get(pk=body["id"])
    assert secret not in stored.secret_encrypted and secret[6:] not in stored.secret_encrypted
    fetched = api.get(f"/v1/webhook-endpoints/{body['id']}").json()
    assert "secret" not in fetched and fetched["url"] == "http://localhost:8123/hook"
    listed = api.get("/v1/webhook-endpoints").json()
    assert [e["id"] for e in listed["data"]] == [body["id"]] and "secret" not in listed["data"][0]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"enabled_events": ["invoice.exploded"]}, "enabled_events.0"),
        ({"enabled_events": []}, "enabled_events"),
        ({"enabled_events": ["*", "invoice.paid"]}, "enabled_events"),
        ({"url": "ftp://example.com/hook"}, "url"),
        ({"url": "http://example.com/hook"}, "url"),
        ({"url": "https://user:pw@example.com/hook"}, "url"),
        ({"url": "not a url"}, "url"),
        ({"colour": "blue"}, "colour"),
        ({"metadata": {"k": 1}}, "metadata"),
    ],
)
def test_invalid_endpoint_is_refused_with_the_param(api, body, param):
    response = _create(api, **body)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize(
    "url",
    [
        "https://10.0.0.1/hook",
        "https://192.168.1.20/hook",
        "https://127.0.0.1/hook",
        "https://localhost/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://[fd00::1]/hook",
        "https://[::ffff:10.0.0.1]/hook",
        "https://224.0.0.1/hook",
        "https://0.0.0.0/hook",
        "https://100.64.0.1/hook",
        "http://localhost:8000/hook",
    ],
)
def test_live_mode_refuses_private_loopback_and_insecure_urls(merchant, client_for, url):
    _, plaintext = make_api_key(merchant, mode="live")
    response = client_for(plaintext).post(
        "/v1/webhook-endpoints", {"url": url, "enabled_events": ["*"]}, format="json"
    )
    assert response.status_code == 400, response.json()
    assert response.json()["error"]["param"] == "url"
    assert response.json()["error"]["code"] in ("url_forbidden", "url_insecure")


def test_live_mode_accepts_a_public_https_url(merchant, client_for):
    _, plaintext = make_api_key(merchant, mode="live")
    response = client_for(plaintext).post(
        "/v1/webhook-endpoints", {"url": "https://93.184.215.14/hook", "enabled_events": ["*"]}, format="json"
    )
    assert response.status_code == 201, response.json()


def test_unresolvable_host_is_refused(api):
    response = _create(api, url="https://no-such-host.invalid/hook")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "url_unresolvable"


def test_test_mode_refuses_private_addresses_other_than_loopback(api):
    assert _create(api, url="http://10.0.0.1/hook").status_code == 400
    assert _create(api, url="https://169.254.169.254/").status_code == 400
    assert _create(api, url="http://127.0.0.1:9000/hook").status_code == 201


def test_patch_changes_only_given_fields_and_reenables(api):
    endpoint_id = _create(api).json()["id"]
    response = api.patch(
        f"/v1/webhook-endpoints/{endpoint_id}", {"enabled": False, "description": "paused"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["enabled"] is False and response.json()["disabled_reason"] == "manual"
    assert response.json()["enabled_events"] == ["invoice.paid"]
    response = api.patch(f"/v1/webhook-endpoints/{endpoint_id}", {"enabled": True}, format="json")
    assert response.json()["enabled"] is True and response.json()["disabled_reason"] is None
    response = api.patch(f"/v1/webhook-endpoints/{endpoint_id}", {"url": "http://10.1.1.1/"}, format="json")
    assert response.status_code == 400 and response.json()["error"]["param"] == "url"
    assert WebhookEndpoint.objects.get(pk=endpoint_id).url == "http://localhost:8123/hook"


def test_delete_hides_the_endpoint_and_keeps_history(api, merchant):
    endpoint_id = _create(api, enabled_events=["*"]).json()["id"]
    with transaction.atomic():
        event = event_record(merchant=merchant, mode="test", type="invoice.paid", data=INVOICE)
    response = api.delete(f"/v1/webhook-endpoints/{endpoint_id}")
    assert response.status_code == 200 and response.json() == {
        "id": endpoint_id,
        "object": "webhook_endpoint",
        "deleted": True,
    }
    assert api.get(f"/v1/webhook-endpoints/{endpoint_id}").status_code == 404
    assert api.delete(f"/v1/webhook-endpoints/{endpoint_id}").status_code == 404
    assert Delivery.objects.get(event=event).status == DeliveryStatus.CANCELLED


def test_rotate_secret_returns_a_new_secret_and_a_window(api):
    created = _create(api).json()
    response = api.post(f"/v1/webhook-endpoints/{created['id']}/rotate-secret", {}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["secret"].startswith("whsec_") and body["secret"] != created["secret"]
    assert body["previous_secret_expires_at"] is not None
    bad = api.post(
        f"/v1/webhook-endpoints/{created['id']}/rotate-secret", {"grace_seconds": -1}, format="json"
    )
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "grace_seconds"


def test_other_tenants_and_modes_get_404(api, merchant, client_for):
    other = WebhookEndpointFactory(merchant=MerchantFactory())
    live = WebhookEndpointFactory(merchant=merchant, mode="live", url="https://93.184.215.14/")
    with transaction.atomic():
        other_event = event_record(merchant=other.merchant, mode="test", type="invoice.paid", data=INVOICE)
        live_event = event_record(merchant=merchant, mode="live", type="invoice.paid", data=INVOICE)
    for endpoint in (other, live):
        assert api.get(f"/v1/webhook-endpoints/{endpoint.id}").status_code == 404
        assert (
            api.patch(f"/v1/webhook-endpoints/{endpoint.id}", {"enabled": False}, format="json").status_code
            == 404
        )
        assert api.delete(f"/v1/webhook-endpoints/{endpoint.id}").status_code == 404
        assert (
            api.post(f"/v1/webhook-endpoints/{endpoint.id}/rotate-secret", {}, format="json").status_code
            == 404
        )
        assert api.get(f"/v1/webhook-endpoints/{endpoint.id}/deliveries").status_code == 404
    for event in (other_event, live_event):
        assert api.get(f"/v1/events/{event.id}").status_code == 404
        assert api.post(f"/v1/events/{event.id}/redeliver").status_code == 404
    assert api.get("/v1/events").json()["data"] == []
    assert api.get("/v1/webhook-endpoints").json()["data"] == []
    assert WebhookEndpoint.objects.get(pk=other.pk).enabled is True


def test_events_list_paginates_newest_first_and_filters_by_type(api, merchant):
    with transaction.atomic():
        created = [
            event_record(merchant=merchant, mode="test", type=t, data=INVOICE)
            for t in ["invoice.created", "invoice.paid", "invoice.created", "invoice.paid", "invoice.paid"]
        ]
    page1 = api.get("/v1/events?limit=2").json()
    assert page1["has_more"] is True
    page2 = api.get(f"/v1/events?limit=2&cursor={page1['next_cursor']}").json()
    page3 = api.get(f"/v1/events?limit=2&cursor={page2['next_cursor']}").json()
    ids = [e["id"] for e in page1["data"] + page2["data"] + page3["data"]]
    expected = [e.id for e in sorted(created, key=lambda e: (e.created_at, e.id), reverse=True)]
    assert ids == expected and page3["has_more"] is False
    paid = api.get("/v1/events?type=invoice.paid").json()["data"]
    assert len(paid) == 3 and {e["type"] for e in paid} == {"invoice.paid"}
    assert paid[0]["data"] == INVOICE and paid[0]["object"] == "event"
    bad = api.get("/v1/events?type=invoice.nope")
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "type"


def test_event_detail_shows_deliveries_and_redeliver_queues_them(api, merchant):
    endpoint = WebhookEndpointFactory(merchant=merchant)
    with transaction.atomic():
        event = event_record(merchant=merchant, mode="test", type="invoice.paid", data=INVOICE)
    Delivery.objects.filter(event=event).update(status=DeliveryStatus.FAILED, next_attempt_at=None)
    late = WebhookEndpointFactory(merchant=merchant, enabled_events=["invoice.paid"])  # registered afterwards

    detail = api.get(f"/v1/events/{event.id}").json()
    assert detail["id"] == event.id
    assert [(d["endpoint"], d["status"]) for d in detail["deliveries"]] == [(endpoint.id, "failed")]
    assert detail["deliveries"][0]["attempts"] == []

    response = api.post(f"/v1/events/{event.id}/redeliver")
    assert response.status_code == 202 and response.json() == {"event": event.id, "deliveries_queued": 2}
    statuses = dict(Delivery.objects.filter(event=event).values_list("endpoint_id", "status"))
    assert statuses == {endpoint.id: "pending", late.id: "pending"}
    assert Event.objects.count() == 1


def test_endpoint_deliveries_list_filters_by_status(api, merchant):
    endpoint = WebhookEndpointFactory(merchant=merchant)
    with transaction.atomic():
        first = event_record(merchant=merchant, mode="test", type="invoice.paid", data=INVOICE)
        event_record(merchant=merchant, mode="test", type="invoice.created", data=INVOICE)
    Delivery.objects.filter(event=first).update(status=DeliveryStatus.FAILED)
    rows = api.get(f"/v1/webhook-endpoints/{endpoint.id}/deliveries?status=failed").json()["data"]
    assert [(r["event"], r["event_type"]) for r in rows] == [(first.id, "invoice.paid")]
    assert len(api.get(f"/v1/webhook-endpoints/{endpoint.id}/deliveries").json()["data"]) == 2
    assert api.get(f"/v1/webhook-endpoints/{endpoint.id}/deliveries?status=nope").status_code == 400


def test_schema_documents_the_outbound_routes(api):
    from django.test import Client

    schema = Client().get("/v1/schema", HTTP_ACCEPT="application/json").json()
    paths = schema["paths"]
    for path in (
        "/v1/webhook-endpoints",
        "/v1/webhook-endpoints/{endpoint_id}",
        "/v1/webhook-endpoints/{endpoint_id}/rotate-secret",
        "/v1/events",
        "/v1/events/{event_id}",
        "/v1/events/{event_id}/redeliver",
    ):
        assert path in paths
    assert "400" in paths["/v1/webhook-endpoints"]["post"]["responses"]


def test_idempotent_replay_of_create_does_not_store_or_return_the_secret(api):
    first = api.post(
        "/v1/webhook-endpoints",
        {"url": "http://localhost:8123/hook", "enabled_events": ["*"]},
        format="json",
        HTTP_IDEMPOTENCY_KEY="create-hook-1",
    )
    again = api.post(
        "/v1/webhook-endpoints",
        {"url": "http://localhost:8123/hook", "enabled_events": ["*"]},
        format="json",
        HTTP_IDEMPOTENCY_KEY="create-hook-1",
    )
    assert first.status_code == again.status_code == 201
    assert first.json()["secret"].startswith("whsec_")
    assert again["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"] and again.json()["secret"] is None
    assert WebhookEndpoint.objects.count() == 1


def test_idempotent_replay_of_rotate_secret_does_not_rotate_again_or_return_the_secret(api):
    created = _create(api).json()
    path = f"/v1/webhook-endpoints/{created['id']}/rotate-secret"
    first = api.post(path, {"grace_seconds": 60}, format="json", HTTP_IDEMPOTENCY_KEY="rotate-1")
    again = api.post(path, {"grace_seconds": 60}, format="json", HTTP_IDEMPOTENCY_KEY="rotate-1")
    assert first.status_code == again.status_code == 200
    assert "Idempotent-Replayed" not in first and again["Idempotent-Replayed"] == "true"
    rotated = first.json()["secret"]
    assert rotated.startswith("whsec_") and rotated != created["secret"]
    assert again.json()["secret"] is None and again.json()["id"] == created["id"]
    # No second rotation: the endpoint signs with the first rotation's secret and the one it replaced.
    endpoint = WebhookEndpoint.objects.get(pk=created["id"])
    assert endpoint_signing_secrets(endpoint) == [rotated, created["secret"]]
