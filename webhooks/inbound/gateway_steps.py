"""The steps of inbound webhook handling that call the gateway (HTTP), run outside any database transaction:
verifying a delivery with the gateway's API (`Gateway.webhook_verification_does_io`, PayPal) and, before a stored
notification is applied, resolving it, asking the gateway's status and completing an approved payment
(docs/adr/0051-paypal.md). webhooks/inbound/services.py calls them."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from django.conf import settings

from gateways import base as gw
from payments.services import payment_complete_approved
from paytrust.errors import WebhookAuthError

logger = logging.getLogger("paytrust.webhooks.inbound.services")


def verify_delivery(adapter: gw.Gateway, headers: Mapping[str, str], raw_body: bytes) -> None:
    """Authenticate first (401, nothing stored). A gateway whose verification calls it
    (`webhook_verification_does_io`: PayPal's verify-webhook-signature API; no transaction is open here) and cannot
    answer now gets 503 with Retry-After, never 401 (the notification may be genuine: the gateway delivers again)
    and never 500."""
    try:
        adapter.verify_webhook(headers, raw_body)
    except gw.GatewayError as exc:
        if not adapter.webhook_verification_does_io:
            raise
        if not exc.retryable and exc.code != "gateway_authentication_failed":
            # The gateway refused to verify this delivery (a malformed verification request): not authenticated.
            raise WebhookAuthError(f"The gateway could not verify the webhook: {exc.message}")
        logger.warning(
            "inbound webhook: the gateway could not verify it now",
            extra={"gateway": adapter.name, "code": exc.code},
        )
        raise gw.GatewayError(
            f"The {adapter.name} webhook could not be verified right now ({exc.code}); deliver it again later.",
            code="webhook_verification_unavailable",
            status_code=503,
            retryable=True,
            headers={"Retry-After": str(settings.INBOUND_WEBHOOK_VERIFY_RETRY_AFTER_SECONDS)},
        ) from exc


@dataclass(frozen=True)
class Prepared:
    """What the HTTP steps before the processing transaction learned about a stored notification."""

    notification: gw.WebhookNotification  # as resolved by the adapter (`Gateway.resolve_notification`)
    truth: gw.PaymentStatusResult | None  # the gateway's status when its notifications are not authoritative
    completion: str  # what completing an approved payment did ("" when the notification is no approval)


def prepare(adapter: gw.Gateway, *, event_pk: str, notification: gw.WebhookNotification) -> Prepared:
    """The HTTP steps, outside any transaction: the adapter fills in what the notification leaves out
    (`resolve_notification`: PayPal refund events name only the capture); for a gateway whose notifications are not
    authoritative, its own status of the payment (`get_status`); for an approval (`approved`: PayPal's
    CHECKOUT.ORDER.APPROVED), the one call that collects the payment (`payments.services.payment_complete_approved`,
    exactly once per payment). PaymentNotFoundForGateway, a GatewayError (or a completion under way elsewhere, 409) propagates: the attempt
    fails and is retried."""
    notification = adapter.resolve_notification(notification)
    truth = None
    if not adapter.notifications_are_authoritative:
        truth = adapter.get_status(
            payment_id=notification.payment_id, gateway_reference=notification.gateway_reference or None
        )
    completion = ""
    if notification.approved:
        outcome = payment_complete_approved(
            payment_id=notification.payment_id,
            gateway_account_id=adapter.account.pk,
            gateway_reference=notification.gateway_reference,
            source=f"webhook:{event_pk}",
        )
        completion = "completed: " + (outcome.note if outcome is not None else "nothing to complete")
    return Prepared(notification=notification, truth=truth, completion=completion)
