"""Sandbox adapter: a gateway implemented inside PayTrust for test mode (hosted page /sandbox/checkout/{token})."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import date

from django.conf import settings
from django.utils import timezone

from gateways.base import (
    CaptureRequest,
    CreatePaymentRequest,
    CreatePaymentResult,
    Gateway,
    GatewayOutcome,
    PaymentStatusResult,
    RefundReport,
    RefundRequest,
    RefundResult,
    RefundStatus,
    SettlementLine,
    WebhookNotification,
)
from gateways.models import SandboxCheckoutSession, SandboxCheckoutStatus, SandboxRefund
from gateways.sandbox import refunds as sandbox_refunds
from gateways.sandbox import services
from gateways.sandbox import settlement as sandbox_settlement
from gateways.sandbox import webhooks as sandbox_webhooks
from paytrust import money
from paytrust.errors import GatewayError


def checkout_url(token: str) -> str:
    return f"{settings.PUBLIC_BASE_URL}/sandbox/checkout/{token}"


class SandboxGateway(Gateway):
    name = "sandbox"
    supported_currencies = frozenset(money.ENABLED_CURRENCIES)
    credential_fields = ()  # the merchant supplies none; PayTrust generates the signing secret
    allowed_modes = frozenset({"test"})
    supports_manual_capture = True
    supports_refunds = True
    supports_partial_refunds = True
    supports_settlement_report = True  # its own export (gateways/sandbox/settlement.py)

    @classmethod
    def generated_credentials(cls) -> dict[str, str]:
        return {"signing_secret": "sbxsec_" + secrets.token_urlsafe(32)}

    # ----- payments -----------------------------------------------------------------------------------------
    def create_payment(self, request: CreatePaymentRequest) -> CreatePaymentResult:
        if request.currency not in self.account.currencies:
            raise GatewayError(
                f"This sandbox account does not take {request.currency}.", code="gateway_rejected"
            )
        session = services.sandbox_session_create(account=self.account, request=request)
        return CreatePaymentResult(
            gateway_reference=session.pk,
            payment_url=checkout_url(session.token),
            status=GatewayOutcome.PENDING,
            expires_at=session.expires_at,
            raw={"checkout_id": session.pk, "status": session.status},
        )

    def get_status(self, *, payment_id: str, gateway_reference: str | None = None) -> PaymentStatusResult:
        session = services.sandbox_session_get(
            account=self.account, payment_id=payment_id, gateway_reference=gateway_reference
        )
        return _status_result(session)

    def expire_payment(self, *, payment_id: str, gateway_reference: str | None = None) -> PaymentStatusResult:
        session = services.sandbox_session_expire(
            account=self.account, payment_id=payment_id, gateway_reference=gateway_reference
        )
        return _status_result(session)

    def refund(self, request: RefundRequest) -> RefundResult:
        """Outcome by the amount's last two minor-unit digits (gateways/sandbox/refunds.py): 13 fails, 42 pending."""
        return _refund_result(sandbox_refunds.sandbox_refund(account=self.account, request=request))

    def get_refund(
        self, *, refund_id: str, payment_id: str, gateway_reference: str, gateway_refund_reference: str = ""
    ) -> RefundResult:
        refund = sandbox_refunds.sandbox_refund_get(
            account=self.account,
            refund_id=refund_id,
            payment_id=payment_id,
            gateway_reference=gateway_reference,
        )
        return _refund_result(refund)

    # ----- authorize and capture (docs/adr/0047) --------------------------------------------------------------
    def capture(self, request: CaptureRequest) -> PaymentStatusResult:
        return _status_result(services.sandbox_capture(account=self.account, request=request))

    def void_authorization(self, *, payment_id: str, gateway_reference: str) -> PaymentStatusResult:
        session = services.sandbox_void(
            account=self.account, payment_id=payment_id, gateway_reference=gateway_reference
        )
        return _status_result(session)

    # ----- reconciliation (docs/adr/0054) -------------------------------------------------------------------
    def settlement_lines(self, *, day: date) -> list[SettlementLine]:
        return sandbox_settlement.sandbox_settlement_lines(account=self.account, day=day)

    # ----- webhooks -----------------------------------------------------------------------------------------
    def verify_webhook(self, headers: Mapping[str, str], raw_body: bytes) -> None:
        sandbox_webhooks.verify(headers, raw_body, secret=self.credentials.get("signing_secret", ""))

    def parse_webhook(self, headers: Mapping[str, str], raw_body: bytes) -> WebhookNotification:
        return sandbox_webhooks.parse(raw_body)


def _refund_result(refund: SandboxRefund) -> RefundResult:
    return RefundResult(
        gateway_refund_reference=f"sbxref_{refund.pk}",
        status=RefundStatus(refund.status),
        amount_minor=refund.amount_minor,
        failure_message=refund.failure_message,
        raw={
            "checkout_id": refund.session_id,
            "refund_id": refund.refund_id,
            "status": refund.status,
            "failure_message": refund.failure_message,
        },
    )


def _status_result(session: SandboxCheckoutSession) -> PaymentStatusResult:
    status = {
        SandboxCheckoutStatus.SUCCEEDED: GatewayOutcome.SUCCEEDED,
        SandboxCheckoutStatus.FAILED: GatewayOutcome.FAILED,
        SandboxCheckoutStatus.EXPIRED: GatewayOutcome.EXPIRED,
        SandboxCheckoutStatus.AUTHORIZED: GatewayOutcome.AUTHORIZED,
        SandboxCheckoutStatus.CANCELED: GatewayOutcome.CANCELED,
    }.get(session.status, GatewayOutcome.PENDING)
    now = timezone.now()
    if status == GatewayOutcome.PENDING and now >= session.expires_at:
        status = GatewayOutcome.EXPIRED  # an open session past its expiry can no longer be paid
    if status == GatewayOutcome.AUTHORIZED and session.capture_before and now >= session.capture_before:
        status = GatewayOutcome.EXPIRED  # a hold past its limit can no longer be captured
    if status == GatewayOutcome.SUCCEEDED and session.amount_refunded_minor:
        status = (
            GatewayOutcome.REFUNDED
            if session.amount_refunded_minor >= session.amount_paid_minor
            else GatewayOutcome.PARTIALLY_REFUNDED
        )
    paid = status in (GatewayOutcome.SUCCEEDED, GatewayOutcome.REFUNDED, GatewayOutcome.PARTIALLY_REFUNDED)
    held = status == GatewayOutcome.AUTHORIZED
    return PaymentStatusResult(
        gateway_reference=session.pk,
        status=status,
        amount_minor=session.amount_paid_minor
        if paid
        else (session.amount_authorized_minor if held else session.amount_minor),
        currency=session.currency,
        paid_at=session.completed_at if paid else None,
        payment_id=session.payment_id,
        refund=RefundReport(total_minor=session.amount_refunded_minor)
        if session.amount_refunded_minor
        else None,
        capture_before=session.capture_before if held else None,
        raw={"checkout_id": session.pk, "status": session.status, "action": session.action},
    )
