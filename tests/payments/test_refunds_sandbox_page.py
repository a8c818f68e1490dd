"""A pending sandbox refund (amount ending in 42) is completed or failed from the payment's sandbox checkout page;
the page then has PayTrust ask the sandbox (get_refund), so the refund is settled at once, through the same code
as the reconciliation job."""

from __future__ import annotations

import pytest
from django.test import Client

from gateways.models import SandboxCheckoutSession
from payments.models import Refund
from tests.payments.refund_support import paid_sandbox_payment, refund_movements

pytestmark = pytest.mark.django_db


def _pending(api, merchant) -> tuple[Refund, str, SandboxCheckoutSession]:
    payment = paid_sandbox_payment(merchant)
    body = api.post(f"/v1/payments/{payment.id}/refunds", {"amount": "10042"}, format="json").json()
    assert body["status"] == "pending"
    session = SandboxCheckoutSession.objects.get(payment_id=payment.id)
    return Refund.objects.get(pk=body["id"]), f"/sandbox/checkout/{session.token}", session


def _settle(page: str, session, refund: Refund, action: str, nonce: str | None = None):
    return Client().post(
        page, {"nonce": session.form_nonce if nonce is None else nonce, "action": action, "refund": refund.id}
    )


def test_completing_a_pending_refund_on_the_page_settles_it_in_paytrust(api, merchant):
    refund, page, session = _pending(api, merchant)
    html = Client().get(page).content.decode()
    assert f'value="{refund.id}"' in html and 'value="refund_succeed"' in html

    response = _settle(page, session, refund, "refund_succeed")

    assert response.status_code == 200
    assert "PayTrust has been told" in response.content.decode()
    refund.refresh_from_db()
    assert refund.status == "succeeded"
    assert refund_movements(refund.id) == ["refund", "refund_succeeded"]
    payment = refund.payment
    payment.refresh_from_db()
    assert (payment.status, payment.amount_refunded_minor) == ("partially_refunded", 10042)
    assert 'value="refund_succeed"' not in response.content.decode()  # settled: no more buttons
    assert _settle(page, session, refund, "refund_fail").status_code == 409


def test_failing_a_pending_refund_on_the_page_fails_it_in_paytrust(api, merchant):
    refund, page, session = _pending(api, merchant)

    assert _settle(page, session, refund, "refund_fail").status_code == 200

    refund.refresh_from_db()
    assert (refund.status, refund.failure_message) == ("failed", "declined in the sandbox checkout")
    assert api.get(f"/v1/payments/{refund.payment_id}").json()["amount_refunded"] == "0"


def test_a_refund_form_without_the_page_nonce_is_refused(api, merchant):
    refund, page, session = _pending(api, merchant)

    assert _settle(page, session, refund, "refund_succeed", nonce="forged").status_code == 403

    refund.refresh_from_db()
    assert refund.status == "pending"
