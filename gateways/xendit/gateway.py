"""Xendit adapter: our contract <-> Xendit Invoice API (POST /v2/invoices, GET /v2/invoices/{id}, expire!).

Refunds: Xendit's Refund API (POST /refunds, GET /refunds/{id}, GET /refunds?invoice_id=…), see refunds.py.
No manual capture: an invoice collects at once (capture_method "manual" is refused, supports_manual_capture False).
Webhooks: invoice callbacks and refund callbacks (refunds made in Xendit's dashboard or API), see webhooks.py."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime

from django.utils import timezone

from gateways.base import (
    CreatePaymentRequest,
    CreatePaymentResult,
    Gateway,
    GatewayOutcome,
    GatewayPaymentNotFound,
    PaymentStatusResult,
    RefundRequest,
    RefundResult,
    SettlementLine,
    WebhookNotification,
    gateway_amount_to_minor,
)
from gateways.xendit import refunds, webhooks
from gateways.xendit.client import XenditClient
from gateways.xendit.settlement import xendit_settlement_lines
from paytrust import money
from paytrust.errors import GatewayError


def _bad_response(message: str) -> GatewayError:
    return GatewayError(message, code="gateway_bad_response", retryable=True)


class XenditGateway(Gateway):
    name = "xendit"
    # Xendit invoice currencies (InvoiceCurrency enum); intersected with money.ENABLED_CURRENCIES on config.
    supported_currencies = frozenset({"IDR", "USD", "THB", "VND", "PHP", "MYR"})
    credential_fields = ("secret_key", "callback_token")
    supports_refunds = True  # Refund API (POST /refunds)
    supports_partial_refunds = True
    supports_settlement_report = True  # Transaction API: GET /transactions (settlement.py)
    # Xendit's secret keys name their environment (dashboard > Settings > API keys).
    credential_mode_prefixes = {"secret_key": {"test": ("xnd_development_",), "live": ("xnd_production_",)}}

    def __init__(self, *, account, credentials: Mapping[str, str]) -> None:
        super().__init__(account=account, credentials=credentials)
        self.client = XenditClient(secret_key=self.credentials.get("secret_key", ""), account_id=account.pk)

    # ----- payments -----------------------------------------------------------------------------------------
    def create_payment(self, request: CreatePaymentRequest) -> CreatePaymentResult:
        if request.currency not in self.supported_currencies:
            raise GatewayError(
                f"Xendit does not take {request.currency}.", code="gateway_rejected", retryable=False
            )
        if request.capture_method != "automatic":
            raise GatewayError(
                "Xendit invoices cannot authorize only: capture_method must be automatic.",
                code="gateway_capture_unsupported",
                retryable=False,
            )
        duration = int((request.expires_at - timezone.now()).total_seconds())
        if duration < 1:
            raise GatewayError(
                "The payment's expiry is in the past.", code="gateway_rejected", retryable=False
            )
        body: dict = {
            "external_id": request.payment_id,
            # A JSON number in major units, written exactly from a Decimal (gateways.http.dumps_json).
            "amount": money.to_major(request.amount_minor, request.currency),
            "currency": request.currency,
            "description": request.description or f"Payment {request.payment_id}",
            "invoice_duration": duration,
            "metadata": {"paytrust_payment_id": request.payment_id},
        }
        if request.invoice_id:
            body["metadata"]["paytrust_invoice_id"] = request.invoice_id
        if request.installment_number is not None:
            body["metadata"]["paytrust_installment"] = str(request.installment_number)
        customer = {
            key: value
            for key, value in (
                ("given_names", request.customer.name),
                ("email", request.customer.email),
                ("mobile_number", request.customer.phone),
            )
            if value
        }
        if customer:
            body["customer"] = customer
        if request.customer.email:
            body["payer_email"] = request.customer.email
        if request.success_redirect_url:
            body["success_redirect_url"] = request.success_redirect_url
        if request.failure_redirect_url:
            body["failure_redirect_url"] = request.failure_redirect_url

        data = self.client.create_invoice(body, idempotency_key=request.payment_id)
        invoice_id, invoice_url = data.get("id"), data.get("invoice_url")
        if not isinstance(invoice_id, str) or not isinstance(invoice_url, str) or not invoice_id:
            raise _bad_response("Xendit's create-invoice answer lacks id or invoice_url.")
        return CreatePaymentResult(
            gateway_reference=invoice_id,
            payment_url=invoice_url,
            status=webhooks.map_status(data.get("status")),
            expires_at=webhooks.parse_time(data.get("expiry_date"), error=_bad_response, field="expiry_date"),
            raw=data,
        )

    def get_status(self, *, payment_id: str, gateway_reference: str | None = None) -> PaymentStatusResult:
        if gateway_reference:
            return self._status_result(self.client.get_invoice(gateway_reference))
        invoices = self.client.find_invoices(external_id=payment_id)
        if not invoices:
            raise GatewayPaymentNotFound(f"Xendit has no invoice with external_id {payment_id}.")
        return self._status_result(_pick_invoice(invoices))

    def expire_payment(self, *, payment_id: str, gateway_reference: str | None = None) -> PaymentStatusResult:
        if not gateway_reference:
            gateway_reference = self.get_status(payment_id=payment_id).gateway_reference
        try:
            return self._status_result(self.client.expire_invoice(gateway_reference))
        except GatewayError as exc:
            if exc.retryable:
                raise
            # Already paid / expired invoices cannot be expired: report what Xendit holds.
            return self._status_result(self.client.get_invoice(gateway_reference))

    # ----- refunds (refunds.py) ------------------------------------------------------------------------------
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

    def settlement_lines(self, *, day: date) -> list[SettlementLine]:
        return xendit_settlement_lines(self.client, day=day)

    def _status_result(self, data: dict) -> PaymentStatusResult:
        invoice_id = data.get("id")
        currency = data.get("currency") or "IDR"
        if not isinstance(invoice_id, str) or not isinstance(currency, str):
            raise _bad_response("Xendit's invoice lacks id or currency.")
        status = webhooks.map_status(data.get("status"))
        amount_field = (
            "paid_amount" if status == GatewayOutcome.SUCCEEDED and "paid_amount" in data else "amount"
        )
        if amount_field not in data:
            raise _bad_response("Xendit's invoice lacks amount.")
        amount_minor = gateway_amount_to_minor(
            data[amount_field], currency, param=amount_field, error=_bad_response
        )
        return PaymentStatusResult(
            gateway_reference=invoice_id,
            status=status,
            amount_minor=amount_minor,
            currency=currency,
            paid_at=webhooks.parse_time(data.get("paid_at"), error=_bad_response, field="paid_at"),
            payment_id=str(data.get("external_id") or ""),
            raw=data,
        )

    # ----- webhooks -----------------------------------------------------------------------------------------
    def verify_webhook(self, headers: Mapping[str, str], raw_body: bytes) -> None:
        webhooks.verify_callback_token(headers, expected_token=self.credentials.get("callback_token", ""))

    def parse_webhook(self, headers: Mapping[str, str], raw_body: bytes) -> WebhookNotification:
        return webhooks.parse_callback(raw_body)


def _pick_invoice(invoices: list[dict]) -> dict:
    """Several invoices for one external id (a create retried without idempotency): a paid one wins, else newest."""
    paid = [inv for inv in invoices if webhooks.map_status(inv.get("status")) == GatewayOutcome.SUCCEEDED]
    candidates = paid or invoices

    def created(inv: dict) -> datetime:
        try:
            parsed = datetime.fromisoformat(str(inv.get("created")))
        except ValueError:
            return datetime.min.replace(tzinfo=UTC)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)

    return max(candidates, key=created)
