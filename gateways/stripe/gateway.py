"""Stripe adapter: our contract <-> Stripe Checkout Sessions, PaymentIntents and Refunds (docs/adr/0050-stripe.md).

- create_payment: `POST /v1/checkout/sessions` (mode=payment, one line item priced at the installment's amount,
  `client_reference_id` and `metadata[payment_id]` = our pay_ id, also on the intent through
  `payment_intent_data[metadata]`; `Idempotency-Key` = our pay_ id; `expires_at` clamped into Stripe's 30 min–24 h
  window; capture_method "manual" -> `payment_intent_data[capture_method]=manual`). The session id (cs_…) is the
  gateway_reference, its `url` the payment_url.
- get_status: the session with its intent and the intent's latest charge expanded; by our payment id (after a
  create timeout) the recent sessions are listed (the list API has no metadata filter) and ours is found by
  `metadata.payment_id` / `client_reference_id`.
- expire_payment: `POST /v1/checkout/sessions/{id}/expire` while open; anything else (paid, expired, an
  authorization, which payments' void releases) reports what Stripe holds.
- capture / void_authorization: `POST /v1/payment_intents/{pi}/capture` (amount_to_capture) / `…/cancel`.
- refunds: refunds.py. Webhooks: webhooks.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from gateways.base import (
    CaptureRequest,
    CreatePaymentRequest,
    CreatePaymentResult,
    Gateway,
    GatewayOutcome,
    GatewayPaymentNotFound,
    PaymentStatusResult,
    RefundReport,
    RefundRequest,
    RefundResult,
    SettlementLine,
    WebhookNotification,
)
from gateways.stripe import refunds, settlement, webhooks
from gateways.stripe.amounts import from_stripe, to_stripe
from gateways.stripe.client import StripeApiError, StripeClient
from paytrust import money
from paytrust.errors import GatewayError

SESSION_MIN = timedelta(minutes=30)
SESSION_MAX = timedelta(hours=24)
# A session lives 24 h at most; one created longer ago than this cannot be an open payment's.
_LOOKBACK = timedelta(hours=48)
_MAX_PAGES = 20


def _fresh_key(payment_id: str, operation: str) -> str:
    """A new Idempotency-Key per call, like stripe-python's own: Stripe replays a key's first answer for 24 h, even a
    500, so a fixed key would block a retry after a transient error. Safety comes from the status read first (a
    capture or void is sent only while the intent is requires_capture) and payments' hold marks (docs/adr/0047)."""
    return f"{payment_id}:{operation}:{uuid.uuid4().hex}"


def bad_response(message: str) -> GatewayError:
    return GatewayError(message, code="gateway_bad_response", retryable=True)


class StripeGateway(Gateway):
    name = "stripe"
    # Every currency PayTrust knows is one Stripe charges in (docs.stripe.com/currencies); intersected with
    # money.ENABLED_CURRENCIES at account configuration.
    supported_currencies = frozenset(money.CURRENCIES) & frozenset(
        {"IDR", "MYR", "USD", "SGD", "THB", "PHP", "VND", "EUR", "JPY", "KWD"}
    )
    credential_fields = ("secret_key", "webhook_secret")
    credential_mode_prefixes = {"secret_key": {"test": ("sk_test_",), "live": ("sk_live_",)}}
    supports_manual_capture = True
    supports_refunds = True
    supports_partial_refunds = True
    supports_settlement_report = True  # GET /v1/balance_transactions (settlement.py)

    def __init__(self, *, account, credentials: Mapping[str, str]) -> None:
        super().__init__(account=account, credentials=credentials)
        self.client = StripeClient(secret_key=self.credentials.get("secret_key", ""), account_id=account.pk)

    @classmethod
    def validate_credentials(
        cls, credentials: object, *, mode: str, param: str = "credentials"
    ) -> dict[str, str]:
        from paytrust.errors import ValidationError

        cleaned = super().validate_credentials(credentials, mode=mode, param=param)
        if not cleaned["webhook_secret"].startswith("whsec_"):
            raise ValidationError(
                "credentials.webhook_secret must be the endpoint's signing secret (whsec_…).",
                param=f"{param}.webhook_secret",
            )
        return cleaned

    # ----- payments -----------------------------------------------------------------------------------------
    def create_payment(self, request: CreatePaymentRequest) -> CreatePaymentResult:
        if request.currency not in self.supported_currencies:
            raise GatewayError(
                f"Stripe does not take {request.currency}.", code="gateway_rejected", retryable=False
            )
        if request.capture_method not in ("automatic", "manual"):
            raise GatewayError(
                f"Unknown capture_method {request.capture_method!r}.",
                code="gateway_rejected",
                retryable=False,
            )
        now = timezone.now()
        if request.expires_at <= now:
            raise GatewayError(
                "The payment's expiry is in the past.", code="gateway_rejected", retryable=False
            )
        expires_at = min(max(request.expires_at, now + SESSION_MIN + timedelta(seconds=5)), now + SESSION_MAX)
        metadata = {"payment_id": request.payment_id}
        if request.invoice_id:
            metadata["invoice_id"] = request.invoice_id
        if request.installment_number is not None:
            metadata["installment"] = str(request.installment_number)
        intent_data: dict[str, Any] = {"metadata": metadata}
        if request.description:
            intent_data["description"] = request.description[:1000]
        if request.capture_method == "manual":
            intent_data["capture_method"] = "manual"
            # The session says so too: its checkout.session.completed then never counts as money collected.
            metadata["capture_method"] = "manual"
        params: dict[str, Any] = {
            "mode": "payment",
            "line_items": [
                {
                    "price_data": {
                        "currency": request.currency.lower(),
                        "unit_amount": to_stripe(request.amount_minor, request.currency),
                        "product_data": {
                            "name": (request.description or f"Payment {request.payment_id}")[:250]
                        },
                    },
                    "quantity": 1,
                }
            ],
            # Stripe's hosted page sends the customer here when paid; PayTrust's own page when the merchant gave none.
            "success_url": request.success_redirect_url or f"{settings.PUBLIC_BASE_URL}/",
            "cancel_url": request.failure_redirect_url or request.success_redirect_url or None,
            "expires_at": int(expires_at.timestamp()),
            "client_reference_id": request.payment_id,
            "metadata": metadata,
            "payment_intent_data": intent_data,
            "customer_email": request.customer.email or None,
        }
        data = self.client.create_session(params, idempotency_key=request.payment_id)
        url = data.get("url")
        if not data["id"].startswith("cs_") or not isinstance(url, str) or not url:
            raise bad_response("Stripe's Checkout Session answer lacks id or url.")
        self._check_echo(data, request.payment_id)
        amount = from_stripe(
            data.get("amount_total"), request.currency, field="amount_total", error=bad_response
        )
        if amount != request.amount_minor or str(data.get("currency") or "").upper() != request.currency:
            raise bad_response(
                f"Stripe's session is for {amount} {data.get('currency')}, not {request.amount_minor} "
                f"{request.currency}."
            )
        return CreatePaymentResult(
            gateway_reference=data["id"],
            payment_url=url,
            status=GatewayOutcome.PENDING,
            expires_at=webhooks.epoch(data.get("expires_at"), field="expires_at", error=bad_response),
            raw=data,
        )

    @staticmethod
    def _check_echo(session: dict, payment_id: str) -> None:
        echoed = webhooks.our_id(session.get("metadata"), "payment_id", "pay_")
        if echoed and echoed != payment_id:
            raise bad_response(f"Stripe's session {session['id']} belongs to payment {echoed}.")

    def get_status(self, *, payment_id: str, gateway_reference: str | None = None) -> PaymentStatusResult:
        if gateway_reference:
            session = self.client.get_session(gateway_reference)
        else:
            session = self.client.get_session(self._find_session(payment_id)["id"])
        if payment_id:
            self._check_echo(session, payment_id)
        return session_status(session)

    def _find_session(self, payment_id: str) -> dict:
        since = int((timezone.now() - _LOOKBACK).timestamp())
        after = ""
        for _ in range(_MAX_PAGES):
            page = self.client.list_sessions(created_gte=since, starting_after=after)
            for session in page["data"]:
                metadata_id = webhooks.our_id(session.get("metadata"), "payment_id", "pay_")
                if payment_id in (metadata_id, session.get("client_reference_id")):
                    return session
            if not page.get("has_more") or not page["data"]:
                break
            after = str(page["data"][-1].get("id") or "")
        raise GatewayPaymentNotFound(f"Stripe has no Checkout Session for {payment_id}.")

    def expire_payment(self, *, payment_id: str, gateway_reference: str | None = None) -> PaymentStatusResult:
        current = self.get_status(payment_id=payment_id, gateway_reference=gateway_reference)
        reference = current.gateway_reference
        # Only an open session is expired. An authorization (requires_capture) is money already held: it is
        # reported as it is, and released by payments' void (its hold bookkeeping), never here behind its back.
        if current.status != GatewayOutcome.PENDING or current.raw.get("status") != "open":
            return current
        try:
            self.client.expire_session(reference, idempotency_key=_fresh_key(payment_id, "expire"))
        except StripeApiError:
            pass  # no longer open (paid or expired meanwhile): report what Stripe holds
        return self.get_status(payment_id=payment_id, gateway_reference=reference)

    # ----- authorize and capture ----------------------------------------------------------------------------
    def _intent_id(self, payment_id: str, gateway_reference: str) -> tuple[str, PaymentStatusResult]:
        current = self.get_status(payment_id=payment_id, gateway_reference=gateway_reference or None)
        intent = current.raw.get("payment_intent")
        intent_id = intent.get("id") if isinstance(intent, dict) else intent
        if not isinstance(intent_id, str) or not intent_id:
            raise GatewayError(
                "Stripe's session has no PaymentIntent yet (nothing was authorized).",
                code="gateway_rejected",
                retryable=False,
            )
        return intent_id, current

    def capture(self, request: CaptureRequest) -> PaymentStatusResult:
        intent_id, current = self._intent_id(request.payment_id, request.gateway_reference)
        if current.status != GatewayOutcome.AUTHORIZED:
            return current  # captured or voided already (a retried call): Stripe's truth
        intent = self.client.capture_intent(
            intent_id,
            amount=to_stripe(request.amount_minor, request.currency),
            idempotency_key=_fresh_key(request.payment_id, "capture"),
        )
        return intent_status(intent, session=current.raw)

    def void_authorization(self, *, payment_id: str, gateway_reference: str) -> PaymentStatusResult:
        intent_id, current = self._intent_id(payment_id, gateway_reference)
        if current.status != GatewayOutcome.AUTHORIZED:
            return current
        intent = self.client.cancel_intent(intent_id, idempotency_key=_fresh_key(payment_id, "void"))
        return intent_status(intent, session=current.raw)

    # ----- refunds ------------------------------------------------------------------------------------------
    def refund(self, request: RefundRequest) -> RefundResult:
        return refunds.refund(self, request)

    def get_refund(
        self, *, refund_id: str, payment_id: str, gateway_reference: str, gateway_refund_reference: str = ""
    ) -> RefundResult:
        return refunds.get_refund(
            self,
            refund_id=refund_id,
            payment_id=payment_id,
            gateway_reference=gateway_reference,
            gateway_refund_reference=gateway_refund_reference,
        )

    # ----- settlement (reconciliation) ----------------------------------------------------------------------
    def settlement_lines(self, *, day: date) -> list[SettlementLine]:
        return settlement.settlement_lines(self.client, day=day)

    # ----- webhooks -----------------------------------------------------------------------------------------
    def verify_webhook(self, headers: Mapping[str, str], raw_body: bytes) -> None:
        webhooks.verify_signature(headers, raw_body, secret=self.credentials.get("webhook_secret", ""))

    def parse_webhook(self, headers: Mapping[str, str], raw_body: bytes) -> WebhookNotification:
        return webhooks.parse_event(raw_body)

    def resolve_notification(self, notification: WebhookNotification) -> WebhookNotification:
        """A dispute names the PaymentIntent by id only: our payment id is in that intent's metadata (set when the
        session was created), read with one GET before the chargeback is applied. An intent that is not ours (no
        pay_ id in its metadata) leaves the notification as it is: failed as foreign, nothing touched."""
        intent_id = notification.raw.get("payment_intent")
        if notification.payment_id or not isinstance(intent_id, str) or not intent_id.startswith("pi_"):
            return notification
        intent = self.client.get_intent(intent_id)
        payment_id = webhooks.our_id(intent.get("metadata"), "payment_id", "pay_")
        return replace(notification, payment_id=payment_id) if payment_id else notification


# ----- Stripe objects -> PaymentStatusResult -------------------------------------------------------------------


def session_status(session: dict) -> PaymentStatusResult:
    """A Checkout Session (intent and latest charge expanded) -> our status."""
    currency = str(session.get("currency") or "").upper()
    payment_id = webhooks.our_id(session.get("metadata"), "payment_id", "pay_")
    intent = session.get("payment_intent")
    if isinstance(intent, dict):
        return intent_status(intent, session=session)
    state = session.get("status")
    status = {"open": GatewayOutcome.PENDING, "expired": GatewayOutcome.EXPIRED}.get(
        state, GatewayOutcome.UNKNOWN
    )
    if state == "complete" and session.get("payment_status") == "paid":
        status = GatewayOutcome.SUCCEEDED
    elif state == "complete":
        status = GatewayOutcome.PENDING
    amount = from_stripe(session.get("amount_total"), currency, field="amount_total", error=bad_response)
    return PaymentStatusResult(
        gateway_reference=str(session["id"]),
        status=status,
        amount_minor=amount,
        currency=currency,
        paid_at=None,
        payment_id=payment_id,
        raw=session,
    )


_INTENT_OPEN = frozenset(
    {"requires_payment_method", "requires_confirmation", "requires_action", "processing"}
)


def intent_status(intent: dict, *, session: dict) -> PaymentStatusResult:
    """A PaymentIntent (latest_charge expanded when there is one) of `session` -> our status."""
    currency = str(intent.get("currency") or "").upper()
    state = intent.get("status")
    charge = intent.get("latest_charge") if isinstance(intent.get("latest_charge"), dict) else {}
    field, paid_at, refund, capture_before = "amount", None, None, None
    if state == "succeeded":
        status, field = GatewayOutcome.SUCCEEDED, "amount_received"
        paid_at = webhooks.epoch(
            charge.get("created") or intent.get("created"), field="created", error=bad_response
        )
        refunded = from_stripe(
            charge.get("amount_refunded", 0), currency, field="amount_refunded", error=bad_response
        )
        if refunded:
            received = from_stripe(
                intent.get("amount_received"), currency, field="amount_received", error=bad_response
            )
            status = GatewayOutcome.REFUNDED if refunded >= received else GatewayOutcome.PARTIALLY_REFUNDED
            refund = RefundReport(total_minor=refunded)
    elif state == "requires_capture":
        status, field = GatewayOutcome.AUTHORIZED, "amount_capturable"
        card = (charge.get("payment_method_details") or {}).get("card") or {}
        capture_before = webhooks.epoch(
            card.get("capture_before"), field="capture_before", error=bad_response
        )
    elif state == "canceled":
        manual = intent.get("capture_method") == "manual"
        status = GatewayOutcome.CANCELED if manual else GatewayOutcome.FAILED
        if session.get("status") == "expired" and not manual:
            status = GatewayOutcome.EXPIRED
    elif state in _INTENT_OPEN:
        status = GatewayOutcome.EXPIRED if session.get("status") == "expired" else GatewayOutcome.PENDING
    else:
        status = GatewayOutcome.UNKNOWN
    return PaymentStatusResult(
        gateway_reference=str(session.get("id") or ""),
        status=status,
        amount_minor=from_stripe(intent.get(field), currency, field=field, error=bad_response),
        currency=currency,
        paid_at=paid_at,
        payment_id=webhooks.our_id(session.get("metadata"), "payment_id", "pay_")
        or webhooks.our_id(intent.get("metadata"), "payment_id", "pay_"),
        refund=refund,
        capture_before=capture_before,
        raw={**session, "payment_intent": intent},
    )
