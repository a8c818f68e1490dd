"""Manual bank transfer: PayTrust shows the payer the merchant's bank details and a transfer reference on a hosted
instructions page (/bank-transfer/{token}); finance staff record the transfer when it reaches the bank
(docs/adr/0052-manual-bank-transfer.md). No external call anywhere: the gateway's "database" is ManualTransfer,
BankTransferReceipt and ManualRefund, and its notifications are recordings signed with a generated secret."""

from __future__ import annotations

import secrets
from collections.abc import Mapping

from django.conf import settings
from django.utils import timezone

from gateways.base import (
    CreatePaymentRequest,
    CreatePaymentResult,
    Gateway,
    GatewayOutcome,
    PaymentStatusResult,
    RefundRequest,
    RefundResult,
    RefundStatus,
    WebhookNotification,
)
from gateways.manual import services
from gateways.manual import webhooks as manual_webhooks
from gateways.models import ManualRefund, ManualRefundStatus, ManualTransfer, ManualTransferStatus
from paytrust import money
from paytrust.errors import GatewayError


def instructions_url(token: str) -> str:
    return f"{settings.PUBLIC_BASE_URL}/bank-transfer/{token}"


class ManualGateway(Gateway):
    name = "manual"
    supported_currencies = frozenset(money.ENABLED_CURRENCIES)
    credential_fields = ()  # the merchant supplies bank details (account configuration), not secrets
    takes_bank_details = True
    supports_manual_capture = False  # nothing is ever held
    supports_refunds = True
    supports_partial_refunds = True
    refunds_paid_out_by_hand = True

    @classmethod
    def generated_credentials(cls) -> dict[str, str]:
        return {"signing_secret": "mansec_" + secrets.token_urlsafe(32)}

    def create_payment(self, request: CreatePaymentRequest) -> CreatePaymentResult:
        if request.currency not in self.account.currencies:
            raise GatewayError(f"This account does not take {request.currency}.", code="gateway_rejected")
        transfer = services.transfer_create(account=self.account, request=request)
        return CreatePaymentResult(
            gateway_reference=transfer.pk,
            payment_url=instructions_url(transfer.token),
            status=GatewayOutcome.PENDING,
            expires_at=transfer.expires_at,
            raw={"transfer_id": transfer.pk, "reference": transfer.reference, "status": transfer.status},
        )

    def get_status(self, *, payment_id: str, gateway_reference: str | None = None) -> PaymentStatusResult:
        return _status(
            services.transfer_get(
                account=self.account, payment_id=payment_id, gateway_reference=gateway_reference
            )
        )

    def expire_payment(self, *, payment_id: str, gateway_reference: str | None = None) -> PaymentStatusResult:
        return _status(
            services.transfer_expire(
                account=self.account, payment_id=payment_id, gateway_reference=gateway_reference
            )
        )

    def refund(self, request: RefundRequest) -> RefundResult:
        """Pending until finance marks it paid out by hand (the money has not left yet)."""
        return _refund_result(services.refund_create(account=self.account, request=request))

    def get_refund(
        self, *, refund_id: str, payment_id: str, gateway_reference: str, gateway_refund_reference: str = ""
    ) -> RefundResult:
        return _refund_result(
            services.refund_get(account=self.account, refund_id=refund_id, payment_id=payment_id)
        )

    def verify_webhook(self, headers: Mapping[str, str], raw_body: bytes) -> None:
        manual_webhooks.verify(headers, raw_body, secret=self.credentials.get("signing_secret", ""))

    def parse_webhook(self, headers: Mapping[str, str], raw_body: bytes) -> WebhookNotification:
        return manual_webhooks.parse(raw_body)


def _status(transfer: ManualTransfer) -> PaymentStatusResult:
    status = {
        ManualTransferStatus.RECEIVED: GatewayOutcome.SUCCEEDED,
        ManualTransferStatus.EXPIRED: GatewayOutcome.EXPIRED,
    }.get(transfer.status, GatewayOutcome.PENDING)
    if status == GatewayOutcome.PENDING and timezone.now() >= transfer.expires_at:
        status = GatewayOutcome.EXPIRED
    received = status == GatewayOutcome.SUCCEEDED
    return PaymentStatusResult(
        gateway_reference=transfer.pk,
        status=status,
        amount_minor=transfer.amount_received_minor if received else transfer.amount_minor,
        currency=transfer.currency,
        paid_at=transfer.received_at if received else None,
        payment_id=transfer.payment_id,
        raw={"transfer_id": transfer.pk, "reference": transfer.reference, "status": transfer.status},
    )


def _refund_result(refund: ManualRefund) -> RefundResult:
    paid = refund.status == ManualRefundStatus.PAID_OUT
    return RefundResult(
        gateway_refund_reference=refund.payout_reference if paid else "",
        status=RefundStatus.SUCCEEDED if paid else RefundStatus.PENDING,
        amount_minor=refund.amount_minor,
        raw={"refund_id": refund.refund_id, "status": refund.status},
    )
