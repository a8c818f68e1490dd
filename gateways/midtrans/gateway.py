"""Midtrans adapter: Snap for the hosted payment page, Core API for status / expire / refund.

- IDR only (Midtrans settles in IDR; `gross_amount` is an integer): other currencies are refused when the
  account is configured, and create_payment refuses them too.
- order_id = our payment id; it is also the gateway_reference (Midtrans has no transaction id until the customer
  picks a payment method in Snap, and every Core API call and notification carries the order id).
- Test-mode accounts talk to the Midtrans sandbox, live-mode accounts to production (see client.py).
- A Snap create retried with the same order_id is refused by Midtrans ("order_id already used"): after a timeout,
  ask get_status(payment_id=…) (404 until the customer starts paying) rather than creating again.
- Notifications are not authoritative (`notifications_are_authoritative = False`): the inbound pipeline applies
  get_status's answer, never the notification's transaction_status.
- Refunds / chargebacks (refund, partial_refund, chargeback, partial_chargeback): get_status reports the gross
  amount as collected, the settlement time as paid_at, and a RefundReport with Midtrans' cumulative refunded amount.
- Refund (refund key = our refund id), cancel before settlement, authorize / capture / void: refunds.py and
  docs/adr/0048-midtrans-xendit-refunds-and-capture.md. capture_method "manual" makes a card-only Snap
  transaction with `credit_card.type = "authorize"`; Midtrans then reports `authorize` (AUTHORIZED).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import timedelta

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
    RefundRequest,
    RefundResult,
    WebhookNotification,
    gateway_amount_to_minor,
)
from gateways.midtrans import refunds, webhooks
from gateways.midtrans.client import MidtransClient, bad_response, gross_amount_int
from paytrust.errors import GatewayError

_COLLECTED = (GatewayOutcome.SUCCEEDED, GatewayOutcome.REFUNDED, GatewayOutcome.PARTIALLY_REFUNDED)
# "By default, reserved fund will be released after seven days if there is no capture action" (Midtrans docs,
# reference-link/card-feature-pre-authorization): an AUTHORIZED status's capture_before = transaction_time + 7 days.
AUTHORIZATION_HOLD = timedelta(days=7)


class MidtransGateway(Gateway):
    name = "midtrans"
    supported_currencies = frozenset({"IDR"})
    credential_fields = ("server_key", "client_key")
    # Midtrans sandbox keys start with SB-; production keys are Mid-server-/Mid-client- (older accounts: VT-…).
    credential_mode_prefixes = {
        "server_key": {"test": ("SB-Mid-server-",), "live": ("Mid-server-", "VT-server-")},
        "client_key": {"test": ("SB-Mid-client-",), "live": ("Mid-client-", "VT-client-")},
    }
    # The signature leaves transaction_status/fraud_status/transaction_id/times unsigned: notifications only
    # trigger a status query (webhooks.py docstring).
    notifications_are_authoritative = False
    supports_manual_capture = True  # card transactions only (credit_card.type "authorize")
    supports_refunds = True  # POST /v2/{order_id}/refund (cancel before settlement)
    supports_partial_refunds = True

    def __init__(self, *, account, credentials: Mapping[str, str]) -> None:
        super().__init__(account=account, credentials=credentials)
        self.client = MidtransClient(
            server_key=self.credentials.get("server_key", ""),
            account_id=account.pk,
            production=account.mode == "live",
        )

    # ----- payments -----------------------------------------------------------------------------------------
    def create_payment(self, request: CreatePaymentRequest) -> CreatePaymentResult:
        if request.currency not in self.supported_currencies:
            raise GatewayError(
                f"Midtrans does not take {request.currency}; only IDR.",
                code="gateway_rejected",
                retryable=False,
            )
        if request.capture_method not in ("automatic", "manual"):
            raise GatewayError(
                f"Unknown capture_method {request.capture_method!r}.",
                code="gateway_rejected",
                retryable=False,
            )
        now = timezone.now()
        minutes = math.floor((request.expires_at - now).total_seconds() / 60)
        if minutes < 1:
            raise GatewayError(
                "The payment's expiry is less than a minute away.", code="gateway_rejected", retryable=False
            )
        body: dict = {
            "transaction_details": {
                "order_id": request.payment_id,
                "gross_amount": gross_amount_int(request.amount_minor, request.currency),
            },
            "expiry": {
                "start_time": now.astimezone(webhooks.WIB).strftime("%Y-%m-%d %H:%M:%S +0700"),
                "unit": "minute",
                "duration": minutes,
            },
        }
        customer = {
            key: value
            for key, value in (
                ("first_name", request.customer.name),
                ("email", request.customer.email),
                ("phone", request.customer.phone),
            )
            if value
        }
        if customer:
            body["customer_details"] = customer
        if request.capture_method == "manual":
            # Authorize only (card payments only): Snap offers just the card form; `capture` collects later.
            body["credit_card"] = {"type": "authorize", "secure": True}
            body["enabled_payments"] = ["credit_card"]
        if request.success_redirect_url:
            body["callbacks"] = {"finish": request.success_redirect_url}
        if request.invoice_id:
            body["custom_field1"] = request.invoice_id
        if request.installment_number is not None:
            body["custom_field2"] = str(request.installment_number)
        data = self.client.create_snap_transaction(
            body,
            idempotency_key=request.payment_id,
            notification_url=f"{settings.PUBLIC_BASE_URL}/v1/webhooks/{self.name}/{self.account.pk}",
        )
        token, redirect_url = data.get("token"), data.get("redirect_url")
        if not isinstance(token, str) or not token or not isinstance(redirect_url, str) or not redirect_url:
            raise bad_response("Midtrans Snap's answer lacks token or redirect_url.")
        expires_at = now.replace(microsecond=0) + timedelta(minutes=minutes)
        return CreatePaymentResult(
            gateway_reference=request.payment_id,
            payment_url=redirect_url,
            status=GatewayOutcome.PENDING,
            expires_at=expires_at,
            raw=data,
        )

    def get_status(self, *, payment_id: str, gateway_reference: str | None = None) -> PaymentStatusResult:
        return self.status_result(self.client.get_status(gateway_reference or payment_id))

    def expire_payment(self, *, payment_id: str, gateway_reference: str | None = None) -> PaymentStatusResult:
        order_id = gateway_reference or payment_id
        try:
            return self.status_result(self.client.expire(order_id))
        except GatewayPaymentNotFound:
            raise
        except GatewayError as exc:
            if exc.retryable:
                raise
            # Settled / already expired transactions cannot be expired: report what Midtrans holds.
            return self.status_result(self.client.get_status(order_id))

    # ----- refunds, capture, void: see refunds.py ---------------------------------------------------------------
    def refund(self, request: RefundRequest) -> RefundResult:
        return refunds.refund(self, request)

    def get_refund(
        self, *, refund_id: str, payment_id: str, gateway_reference: str, gateway_refund_reference: str = ""
    ) -> RefundResult:
        return refunds.get_refund(
            self,
            refund_id=refund_id,
            order_id=gateway_reference or payment_id,
            gateway_refund_reference=gateway_refund_reference,
        )

    def capture(self, request: CaptureRequest) -> PaymentStatusResult:
        return refunds.capture(self, request)

    def void_authorization(self, *, payment_id: str, gateway_reference: str) -> PaymentStatusResult:
        return refunds.void_authorization(self, order_id=gateway_reference or payment_id)

    def status_result(self, data: dict) -> PaymentStatusResult:
        """A Core API transaction body (status, expire, capture, cancel answers) -> PaymentStatusResult."""
        order_id = data.get("order_id")
        if not isinstance(order_id, str) or not order_id:
            raise bad_response("Midtrans' status answer lacks order_id.")
        currency = str(data.get("currency") or "IDR").upper()
        status = webhooks.map_status(data.get("transaction_status"), data.get("fraud_status"))
        gross = webhooks.field_text(data.get("gross_amount"))
        amount_minor = gateway_amount_to_minor(gross, currency, param="gross_amount", error=bad_response)
        paid_at = None
        if status in _COLLECTED:  # a refunded transaction was settled first: its gross amount was collected
            paid_at = webhooks.parse_time(
                data.get("settlement_time") or data.get("transaction_time"),
                error=bad_response,
                field="settlement_time",
            )
        capture_before = None
        if status == GatewayOutcome.AUTHORIZED:
            authorized_at = webhooks.parse_time(
                data.get("transaction_time"), error=bad_response, field="transaction_time"
            )
            capture_before = authorized_at + AUTHORIZATION_HOLD if authorized_at else None
        return PaymentStatusResult(
            gateway_reference=order_id,
            status=status,
            amount_minor=amount_minor,
            currency=currency,
            paid_at=paid_at,
            payment_id=order_id,
            capture_before=capture_before,
            refund=webhooks.refund_report(
                data, currency=currency, gross_minor=amount_minor, error=bad_response
            ),
            raw=data,
        )

    # ----- webhooks -----------------------------------------------------------------------------------------
    def verify_webhook(self, headers: Mapping[str, str], raw_body: bytes) -> None:
        webhooks.verify_notification(headers, raw_body, server_key=self.credentials.get("server_key", ""))

    def parse_webhook(self, headers: Mapping[str, str], raw_body: bytes) -> WebhookNotification:
        return webhooks.parse_notification(raw_body)
