"""PayPal adapter: Orders v2 (hosted approval page), Payments v2 (captures, authorizations, refunds), webhooks
verified by PayPal's verify-webhook-signature API. Decisions and sources: docs/adr/0051-paypal.md.

- create_payment: POST /v2/checkout/orders, intent CAPTURE (or AUTHORIZE for capture_method "manual"),
  PayPal-Request-Id = our pay_ id, purchase_units[0] reference_id = custom_id = invoice_id = pay_ id, amount value a
  decimal string from minor units (paytrust/money.py), application_context return_url / cancel_url. payment_url =
  the `approve` (or `payer-action`) link, gateway_reference = the order id.
- The customer only APPROVES at PayPal; the money moves when we capture (or authorize) the approved order:
  `complete_approved_payment`, called once per payment by payments.services.completion, from the
  CHECKOUT.ORDER.APPROVED notification or the customer's return (PayPal-Request-Id `<pay_ id>:complete`).
- Authorizations: capture POST /v2/payments/authorizations/{id}/capture with final_capture=true (a partial capture
  releases the rest), void POST …/void.
- get_status: GET /v2/checkout/orders/{id}, mapped from the order and its capture / authorization (see
  `order_status`). expire_payment: PayPal cannot cancel an order; an order that holds no money (CREATED, SAVED,
  PAYER_ACTION_REQUIRED, APPROVED, VOIDED) is EXPIRED here — no money can move afterwards, since only our
  capture / authorize call would move it and payments never completes a closed payment.
- Refunds: POST /v2/payments/captures/{capture id}/refund (PayPal-Request-Id = our ref_ id, amount, invoice_id =
  our ref_ id, custom_id = our pay_ id); get_refund GET /v2/payments/refunds/{id}, or found by invoice_id among the
  order's refunds.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date

from django.conf import settings
from django.utils import timezone

from gateways.base import (
    CaptureRequest,
    CreatePaymentRequest,
    CreatePaymentResult,
    Gateway,
    GatewayOutcome,
    GatewayPaymentNotFound,
    GatewayRefundNotFound,
    PaymentStatusResult,
    RefundReport,
    RefundRequest,
    RefundResult,
    RefundStatus,
    SettlementLine,
    WebhookNotification,
)
from gateways.paypal import settlement, webhooks
from gateways.paypal.client import PayPalClient, error_issue
from paytrust import money
from paytrust.errors import GatewayError

# PayPal's currency codes for payments (developer.paypal.com/reference/currency-codes; PayPal-Android
# CurrencyCode.kt). IDR, VND, KWD are not among them.
PAYPAL_CURRENCIES = frozenset(
    {
        "AUD", "BRL", "CAD", "CNY", "CZK", "DKK", "EUR", "HKD", "HUF", "ILS", "JPY", "MYR", "MXN", "TWD",
        "NZD", "NOK", "PHP", "PLN", "GBP", "SGD", "SEK", "CHF", "THB", "USD",
    }
)  # fmt: skip
# "does not support decimals. If you pass a decimal amount, an error occurs."
NO_DECIMALS = frozenset({"HUF", "JPY", "TWD"})


def _bad_response(message: str) -> GatewayError:
    return GatewayError(message, code="gateway_bad_response", retryable=True)


def _money(minor: int, currency: str) -> dict:
    return {"currency_code": currency, "value": money.format_amount(minor, currency)}


class PayPalGateway(Gateway):
    name = "paypal"
    supported_currencies = PAYPAL_CURRENCIES
    credential_fields = ("client_id", "client_secret", "webhook_id")
    supports_manual_capture = True  # intent AUTHORIZE
    supports_refunds = True
    supports_partial_refunds = True
    webhook_verification_does_io = True  # POST /v1/notifications/verify-webhook-signature
    supports_settlement_report = True  # GET /v1/reporting/transactions (settlement.py)

    def __init__(self, *, account, credentials: Mapping[str, str]) -> None:
        super().__init__(account=account, credentials=credentials)
        self.client = PayPalClient(
            client_id=self.credentials.get("client_id", ""),
            client_secret=self.credentials.get("client_secret", ""),
            account_id=account.pk,
            live=account.mode == "live",
        )

    @classmethod
    def currency_refusal(cls, currency: str) -> str | None:
        if currency not in PAYPAL_CURRENCIES:
            return f"PayPal does not support {currency} (it is not one of PayPal's currency codes)."
        if currency in NO_DECIMALS and money.get_currency(currency).exponent != 0:
            return f"PayPal takes {currency} without decimals, but PayTrust's {currency} has decimals."
        return None

    # ----- payments ---------------------------------------------------------------------------------------------
    def create_payment(self, request: CreatePaymentRequest) -> CreatePaymentResult:
        if (refusal := self.currency_refusal(request.currency)) is not None:
            raise GatewayError(refusal, code="gateway_rejected", retryable=False)
        if request.capture_method not in ("automatic", "manual"):
            raise GatewayError(
                f"Unknown capture_method {request.capture_method!r}.",
                code="gateway_rejected",
                retryable=False,
            )
        if request.expires_at <= timezone.now():
            raise GatewayError(
                "The payment's expiry is in the past.", code="gateway_rejected", retryable=False
            )
        base = f"{settings.PUBLIC_BASE_URL}/v1/webhooks/{self.name}/{self.account.pk}"
        unit = {
            "reference_id": request.payment_id,
            "custom_id": request.payment_id,
            # Shown to the payer and unique per PayPal account (duplicate invoice ids are refused): the payment's.
            "invoice_id": request.payment_id,
            "description": request.description[:127],
            "amount": _money(request.amount_minor, request.currency),
        }
        body = {
            "intent": "AUTHORIZE" if request.capture_method == "manual" else "CAPTURE",
            "purchase_units": [unit],
            "application_context": {
                "return_url": request.success_redirect_url or f"{base}/return",
                "cancel_url": request.failure_redirect_url or f"{base}/cancel",
                "shipping_preference": "NO_SHIPPING",
                "user_action": "PAY_NOW",
            },
        }
        data = self.client.create_order(body, request_id=request.payment_id)
        order_id = data.get("id")
        link = _link(data, "approve") or _link(data, "payer-action")
        if not isinstance(order_id, str) or not order_id or not link:
            raise _bad_response("PayPal's create-order answer lacks id or an approve link.")
        return CreatePaymentResult(
            gateway_reference=order_id,
            payment_url=link,
            status=GatewayOutcome.PENDING,
            expires_at=None,  # PayPal gives the payer 3 hours by default; ours (request.expires_at) stands
            raw=data,
        )

    def get_status(self, *, payment_id: str, gateway_reference: str | None = None) -> PaymentStatusResult:
        if not gateway_reference:
            # Orders cannot be searched by our id; without the order id (create timed out) PayPal's idempotency
            # would return the order on a repeated create, but a status query must not create one.
            raise GatewayPaymentNotFound(f"No PayPal order id is known for {payment_id}.")
        return self.order_status(self.client.get_order(gateway_reference), payment_id=payment_id)

    def expire_payment(self, *, payment_id: str, gateway_reference: str | None = None) -> PaymentStatusResult:
        result = self.get_status(payment_id=payment_id, gateway_reference=gateway_reference)
        if result.status in (GatewayOutcome.PENDING, GatewayOutcome.CANCELED, GatewayOutcome.UNKNOWN):
            order_status = str(result.raw.get("status") or "").upper()
            if order_status != "COMPLETED":
                return PaymentStatusResult(
                    gateway_reference=result.gateway_reference,
                    status=GatewayOutcome.EXPIRED,
                    amount_minor=result.amount_minor,
                    currency=result.currency,
                    paid_at=None,
                    payment_id=result.payment_id,
                    raw=result.raw,
                )
        return result

    def complete_approved_payment(
        self, *, payment_id: str, gateway_reference: str, capture_method: str
    ) -> PaymentStatusResult | None:
        request_id = f"{payment_id}:complete"
        try:
            if capture_method == "manual":
                data = self.client.authorize_order(gateway_reference, request_id=request_id)
            else:
                data = self.client.capture_order(gateway_reference, request_id=request_id)
        except GatewayError as exc:
            issue = error_issue(exc)
            if issue in ("ORDER_ALREADY_CAPTURED", "ORDER_ALREADY_AUTHORIZED", "ORDER_NOT_APPROVED"):
                # Done already (a lost answer), or not approved yet: PayPal's order says where it stands.
                return self.get_status(payment_id=payment_id, gateway_reference=gateway_reference)
            if issue in ("INSTRUMENT_DECLINED", "PAYER_ACTION_REQUIRED"):
                # The buyer must choose another funding source at PayPal: the payment stays pending.
                return self.get_status(payment_id=payment_id, gateway_reference=gateway_reference)
            raise
        return self.order_status(data, payment_id=payment_id)

    # ----- authorizations ---------------------------------------------------------------------------------------
    def _authorization(self, gateway_reference: str) -> dict:
        order = self.client.get_order(gateway_reference)
        authorization = _first(_unit(order).get("payments", {}).get("authorizations"))
        if not authorization or not isinstance(authorization.get("id"), str):
            raise GatewayError(
                f"PayPal order {gateway_reference} holds no authorization.",
                code="gateway_capture_unsupported",
                retryable=False,
            )
        return authorization

    def capture(self, request: CaptureRequest) -> PaymentStatusResult:
        authorization = self._authorization(request.gateway_reference)
        body = {"amount": _money(request.amount_minor, request.currency), "final_capture": True}
        data = self.client.capture_authorization(
            authorization["id"], body, request_id=f"{request.payment_id}:capture"
        )
        status = webhooks.CAPTURE_STATUS.get(str(data.get("status") or "").upper(), GatewayOutcome.UNKNOWN)
        amount, currency = webhooks.money_minor(data.get("amount"), error=_bad_response, field="amount")
        paid_at = webhooks.parse_time(data.get("create_time"), error=_bad_response, field="create_time")
        if status == GatewayOutcome.PENDING:
            status = (
                GatewayOutcome.AUTHORIZED
            )  # captured later by PayPal: the payment stays held until it says
        return PaymentStatusResult(
            gateway_reference=request.gateway_reference,
            status=status,
            amount_minor=amount,
            currency=currency,
            paid_at=paid_at or timezone.now(),
            payment_id=request.payment_id,
            raw=data,
        )

    def void_authorization(self, *, payment_id: str, gateway_reference: str) -> PaymentStatusResult:
        authorization = self._authorization(gateway_reference)
        if str(authorization.get("status") or "").upper() != "VOIDED":
            self.client.void_authorization(authorization["id"], request_id=f"{payment_id}:void")
        return self.get_status(payment_id=payment_id, gateway_reference=gateway_reference)

    # ----- refunds ----------------------------------------------------------------------------------------------
    def refund(self, request: RefundRequest) -> RefundResult:
        order = self.client.get_order(request.gateway_reference)
        capture = _collected_capture(order)
        if capture is None:
            raise GatewayError(
                f"PayPal order {request.gateway_reference} has no completed capture to refund.",
                code="gateway_refund_not_allowed",
                retryable=False,
            )
        body = {
            "amount": _money(request.amount_minor, request.currency),
            "invoice_id": request.refund_id,
            "custom_id": request.payment_id,
        }
        if request.reason:
            body["note_to_payer"] = request.reason[:255]
        try:
            data = self.client.refund_capture(capture["id"], body, request_id=request.refund_id)
        except GatewayError as exc:
            issue = error_issue(exc)
            if issue in (
                "REFUND_AMOUNT_EXCEEDED",
                "REFUND_CAPTURE_CURRENCY_MISMATCH",
                "PARTIAL_REFUND_NOT_ALLOWED",
            ):
                raise GatewayError(
                    exc.message, code="gateway_refund_amount_invalid", retryable=False
                ) from exc
            if issue in ("CAPTURE_FULLY_REFUNDED", "REFUND_NOT_ALLOWED", "REFUND_TIME_LIMIT_EXCEEDED"):
                raise GatewayError(exc.message, code="gateway_refund_not_allowed", retryable=False) from exc
            raise
        return refund_result(data)

    def get_refund(
        self, *, refund_id: str, payment_id: str, gateway_reference: str, gateway_refund_reference: str = ""
    ) -> RefundResult:
        if gateway_refund_reference:
            try:
                return refund_result(self.client.get_refund(gateway_refund_reference))
            except GatewayPaymentNotFound as exc:
                raise GatewayRefundNotFound(f"PayPal has no refund {gateway_refund_reference}.") from exc
        try:
            order = self.client.get_order(gateway_reference)
        except GatewayPaymentNotFound as exc:
            raise GatewayRefundNotFound(f"PayPal has no order {gateway_reference}.") from exc
        for refund in _unit(order).get("payments", {}).get("refunds") or []:
            if isinstance(refund, dict) and refund.get("invoice_id") == refund_id:
                return refund_result(refund)
        raise GatewayRefundNotFound(f"PayPal order {gateway_reference} has no refund {refund_id}.")

    # ----- status mapping ---------------------------------------------------------------------------------------
    def order_status(self, order: dict, *, payment_id: str = "") -> PaymentStatusResult:
        """An Orders v2 order -> PaymentStatusResult (order status + its capture / authorization):
        CREATED / SAVED / PAYER_ACTION_REQUIRED / APPROVED -> PENDING; VOIDED -> CANCELED; COMPLETED with a
        capture: COMPLETED -> SUCCEEDED (PARTIALLY_REFUNDED / REFUNDED with the order's completed refunds as a
        cumulative report), PENDING -> PENDING, DECLINED / FAILED -> FAILED; COMPLETED with an authorization only:
        CREATED -> AUTHORIZED (capture_before = its expiration_time), VOIDED -> CANCELED, DENIED -> FAILED,
        PENDING -> PENDING."""
        order_id = order.get("id")
        if not isinstance(order_id, str) or not order_id:
            raise _bad_response("PayPal's order lacks its id.")
        unit = _unit(order)
        amount, currency = webhooks.money_minor(unit.get("amount"), error=_bad_response, field="amount")
        echoed = webhooks.ours(unit.get("custom_id"), "pay_") or webhooks.ours(
            unit.get("reference_id"), "pay_"
        )
        status, paid_at, capture_before, refund = self._order_outcome(order, unit, currency)
        payments = unit.get("payments") or {}
        capture = _collected_capture(order) or _first(payments.get("captures"))
        if capture is not None and status != GatewayOutcome.AUTHORIZED:
            amount, _ = webhooks.money_minor(
                capture.get("amount"), error=_bad_response, field="capture.amount"
            )
        elif status == GatewayOutcome.AUTHORIZED:
            held = _first(payments.get("authorizations")) or {}
            amount, _ = webhooks.money_minor(
                held.get("amount"), error=_bad_response, field="authorization.amount"
            )
        return PaymentStatusResult(
            gateway_reference=order_id,
            status=status,
            amount_minor=amount,
            currency=currency,
            paid_at=paid_at,
            payment_id=echoed or payment_id,
            refund=refund,
            capture_before=capture_before,
            raw=order,
        )

    def _order_outcome(self, order: dict, unit: dict, currency: str):
        order_status = str(order.get("status") or "").upper()
        payments = unit.get("payments") or {}
        if order_status == "VOIDED":
            return GatewayOutcome.CANCELED, None, None, None
        if order_status != "COMPLETED":
            return GatewayOutcome.PENDING, None, None, None
        capture = _collected_capture(order) or _first(payments.get("captures"))
        if capture is not None:
            capture_status = str(capture.get("status") or "").upper()
            paid_at = webhooks.parse_time(
                capture.get("create_time"), error=_bad_response, field="create_time"
            )
            if capture_status in ("REFUNDED", "PARTIALLY_REFUNDED"):
                refunded = sum(
                    webhooks.money_minor(r.get("amount"), error=_bad_response, field="refund.amount")[0]
                    for r in payments.get("refunds") or []
                    if isinstance(r, dict) and str(r.get("status") or "").upper() == "COMPLETED"
                )
                status = (
                    GatewayOutcome.REFUNDED
                    if capture_status == "REFUNDED"
                    else GatewayOutcome.PARTIALLY_REFUNDED
                )
                return status, paid_at or timezone.now(), None, RefundReport(total_minor=refunded)
            status = webhooks.CAPTURE_STATUS.get(capture_status, GatewayOutcome.UNKNOWN)
            if status == GatewayOutcome.SUCCEEDED:
                return status, paid_at or timezone.now(), None, None
            return status, None, None, None
        authorization = _first(payments.get("authorizations"))
        if authorization is None:
            return GatewayOutcome.UNKNOWN, None, None, None
        auth_status = str(authorization.get("status") or "").upper()
        if auth_status == "CREATED":
            expires = webhooks.parse_time(
                authorization.get("expiration_time"), error=_bad_response, field="expiration_time"
            )
            return GatewayOutcome.AUTHORIZED, None, expires.astimezone(UTC) if expires else None, None
        mapped = {
            "VOIDED": GatewayOutcome.CANCELED,
            "DENIED": GatewayOutcome.FAILED,
            "PENDING": GatewayOutcome.PENDING,
        }
        return mapped.get(auth_status, GatewayOutcome.UNKNOWN), None, None, None

    def settlement_lines(self, *, day: date) -> list[SettlementLine]:
        return settlement.settlement_lines(self.client, day=day)

    # ----- webhooks ---------------------------------------------------------------------------------------------
    def verify_webhook(self, headers: Mapping[str, str], raw_body: bytes) -> None:
        webhooks.verify(self.client, headers, raw_body, webhook_id=self.credentials.get("webhook_id", ""))

    def parse_webhook(self, headers: Mapping[str, str], raw_body: bytes) -> WebhookNotification:
        return webhooks.parse(raw_body)

    def approval_return_reference(self, query: Mapping[str, str]) -> str:
        # PayPal appends ?token=<order id>&PayerID=<payer> to the return_url after the buyer approves.
        token = query.get("token") or ""
        return token if token.isalnum() and len(token) <= 36 else ""

    def resolve_notification(self, notification: WebhookNotification) -> WebhookNotification:
        return webhooks.resolve(self.client, notification)


def refund_result(data: Mapping) -> RefundResult:
    refund_id = data.get("id")
    if not isinstance(refund_id, str) or not refund_id:
        raise _bad_response("PayPal's refund lacks its id.")
    amount, _ = webhooks.money_minor(data.get("amount"), error=_bad_response, field="amount")
    status = str(data.get("status") or "").upper()
    outcome = {
        "COMPLETED": RefundStatus.SUCCEEDED,
        "FAILED": RefundStatus.FAILED,
        "CANCELLED": RefundStatus.FAILED,
    }.get(status, RefundStatus.PENDING)
    reason = (
        ((data.get("status_details") or {}).get("reason") or status) if outcome == RefundStatus.FAILED else ""
    )
    return RefundResult(
        gateway_refund_reference=refund_id,
        status=outcome,
        amount_minor=amount,
        failure_message=str(reason),
        raw=dict(data),
    )


def _link(data: Mapping, rel: str) -> str:
    for link in data.get("links") or []:
        if isinstance(link, Mapping) and link.get("rel") == rel and isinstance(link.get("href"), str):
            return link["href"]
    return ""


def _unit(order: Mapping) -> dict:
    units = order.get("purchase_units")
    if not isinstance(units, list) or not units or not isinstance(units[0], dict):
        raise _bad_response("PayPal's order lacks purchase_units.")
    return units[0]


def _first(items: object) -> dict | None:
    if isinstance(items, list) and items and isinstance(items[0], dict):
        return items[0]
    return None


def _collected_capture(order: Mapping) -> dict | None:
    """The order's capture that collected money (COMPLETED, or refunded since)."""
    for capture in (_unit(order).get("payments") or {}).get("captures") or []:
        if isinstance(capture, dict) and str(capture.get("status") or "").upper() in (
            "COMPLETED",
            "PARTIALLY_REFUNDED",
            "REFUNDED",
        ):
            return capture
    return None
