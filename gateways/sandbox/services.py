"""The sandbox gateway's own state: checkout sessions (one per payment), the checkout actions, refunds.

These play the remote gateway. PayTrust's payments learn outcomes only through the signed webhook the checkout
action sends, exactly as with Xendit or Midtrans. The sandbox does not POST over the network (it would call
itself): the caller of `sandbox_checkout_submit` — the checkout page in webhooks/inbound/sandbox_checkout.py, the
layer that owns both sides — passes the inbound pipeline's receive function as `receiver`, and the signed
delivery is handed to it in process.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from gateways.base import CaptureRequest, CreatePaymentRequest, GatewayPaymentNotFound
from gateways.models import (
    GatewayAccount,
    SandboxCheckoutSession,
    SandboxCheckoutStatus,
)
from gateways.sandbox import webhooks as sandbox_webhooks
from gateways.selectors import gateway_account_credentials
from paytrust import money
from paytrust.errors import (
    ApplicationError,
    Conflict,
    GatewayError,
    NotFound,
    PermissionError_,
    ValidationError,
)

logger = logging.getLogger("paytrust.gateways.sandbox")

ACTIONS = ("pay", "pay_partial", "overpay", "fail", "expire", "authorize")
_PAYING = {"pay", "pay_partial", "overpay", "authorize"}
# A manual-capture session's customer authorizes (the whole amount, like a card hold) instead of paying.
_MANUAL_ACTIONS = {"authorize", "fail", "expire"}
# How long the sandbox keeps an authorization capturable (card holds typically last about a week).
SANDBOX_AUTHORIZATION_HOLD = timedelta(days=7)

# receiver(account, headers, raw body): takes the signed delivery exactly like `POST /v1/webhooks/sandbox/{account}`
# with those headers and that body (verify, store, deduplicate on the event id, enqueue processing). Raising means
# "not delivered": the page says so, and submitting again re-delivers the SAME event (same id and body, fresh
# signature timestamp). It runs inside a savepoint of the transaction that holds the checkout session's row lock,
# so what it stores commits together with the "delivered" mark; it must not do network I/O.
WebhookReceiver = Callable[[GatewayAccount, dict[str, str], bytes], Any]


def new_token() -> str:
    return secrets.token_urlsafe(32)  # 256 bits


def sandbox_session_create(
    *, account: GatewayAccount, request: CreatePaymentRequest
) -> SandboxCheckoutSession:
    """The checkout session for `request.payment_id`; a retry with the same payment id returns the same one."""
    existing = SandboxCheckoutSession.objects.filter(account=account, payment_id=request.payment_id).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            return SandboxCheckoutSession.objects.create(
                account=account,
                payment_id=request.payment_id,
                token=new_token(),
                form_nonce=secrets.token_urlsafe(24),
                merchant_name=account.merchant.name,
                invoice_id=request.invoice_id,
                installment_number=request.installment_number,
                description=request.description,
                amount_minor=request.amount_minor,
                currency=request.currency,
                customer={
                    "name": request.customer.name,
                    "email": request.customer.email,
                    "phone": request.customer.phone,
                },
                expires_at=request.expires_at,
                capture_method=request.capture_method,
                success_redirect_url=request.success_redirect_url,
                failure_redirect_url=request.failure_redirect_url,
            )
    except IntegrityError:
        # A concurrent create for the same payment won the unique constraint: return its session.
        return SandboxCheckoutSession.objects.get(account=account, payment_id=request.payment_id)


def sandbox_session_get(
    *, account: GatewayAccount, payment_id: str, gateway_reference: str | None = None
) -> SandboxCheckoutSession:
    qs = SandboxCheckoutSession.objects.filter(account=account)
    session = (
        qs.filter(pk=gateway_reference) if gateway_reference else qs.filter(payment_id=payment_id)
    ).first()
    if session is None:
        raise GatewayPaymentNotFound(f"The sandbox has no checkout for {gateway_reference or payment_id}.")
    return session


def sandbox_session_expire(
    *, account: GatewayAccount, payment_id: str, gateway_reference: str | None = None
) -> SandboxCheckoutSession:
    """Close an open session as expired (a merchant-side cancel; no webhook, the caller knows)."""
    session = sandbox_session_get(account=account, payment_id=payment_id, gateway_reference=gateway_reference)
    with transaction.atomic():
        session = SandboxCheckoutSession.objects.select_for_update().get(pk=session.pk)
        if session.status == SandboxCheckoutStatus.OPEN:
            session.status = SandboxCheckoutStatus.EXPIRED
            session.action = "expire"
            session.completed_at = timezone.now()
            session.save(update_fields=["status", "action", "completed_at", "updated_at"])
    return session


@dataclass(frozen=True)
class CheckoutOutcome:
    session: SandboxCheckoutSession
    delivered: bool
    delivery_error: str = ""
    repeated: bool = False  # the session was already closed; its webhook was (re)delivered


def _resolve_amount(session: SandboxCheckoutSession, action: str, amount: object) -> int:
    manual = session.capture_method == "manual"
    if manual and action not in _MANUAL_ACTIONS:
        raise ValidationError(
            "This checkout only authorizes the payment (the merchant captures it later): choose Authorize.",
            param="action",
        )
    if action == "authorize" and not manual:
        raise ValidationError(
            "This checkout collects at once; there is nothing to authorize.", param="action"
        )
    if action in ("pay", "authorize"):
        return session.amount_minor
    if action in ("fail", "expire"):
        return 0
    if amount in (None, ""):
        raise ValidationError("Enter an amount.", code="parameter_missing", param="amount")
    minor = money.to_minor(amount, session.currency, param="amount", allow_zero=False)
    due = money.format_display(session.amount_minor, session.currency)  # as the checkout page shows amounts
    if action == "pay_partial" and minor >= session.amount_minor:
        raise ValidationError(f"A partial payment must be less than {due}.", param="amount")
    if action == "overpay" and minor <= session.amount_minor:
        raise ValidationError(f"An overpayment must be more than {due}.", param="amount")
    return minor


def _signing_secret(account: GatewayAccount) -> str:
    """The account's generated signing secret (created with the account's first adapter, before any session)."""
    secret = gateway_account_credentials(account=account).get("signing_secret", "")
    if not secret:
        raise GatewayError("The sandbox account has no signing secret.", retryable=False)
    return secret


def sandbox_checkout_submit(
    *, token: str, nonce: str, action: str, amount: object = None, receiver: WebhookReceiver
) -> CheckoutOutcome:
    """A checkout-page action: close the session, then deliver the signed webhook to `receiver`.

    A submission on an already-closed session re-delivers the stored webhook if it was not delivered yet
    (same event id and body), and otherwise just reports the outcome.
    """
    if action not in ACTIONS:
        raise ValidationError(f"action must be one of {', '.join(ACTIONS)}.", param="action")
    repeated = False
    with transaction.atomic():
        session = (
            SandboxCheckoutSession.objects.select_for_update()
            .select_related("account", "account__merchant")
            .filter(token=token)
            .first()
        )
        if session is None:
            raise NotFound("No such checkout.")
        if not secrets.compare_digest(session.form_nonce.encode(), str(nonce or "").encode()):
            raise PermissionError_(
                "This form is stale or was not served by this checkout page; reload the page.",
                code="checkout_nonce_invalid",
            )
        if session.status != SandboxCheckoutStatus.OPEN:
            repeated = True
            if session.webhook_delivered_at is not None:
                return CheckoutOutcome(session=session, delivered=True, repeated=True)
        else:
            now = timezone.now()
            if action in _PAYING and now >= session.expires_at:
                raise Conflict(
                    "This checkout has expired; it can no longer be paid.", code="checkout_expired"
                )
            paid = _resolve_amount(session, action, amount)
            status = {
                "fail": SandboxCheckoutStatus.FAILED,
                "expire": SandboxCheckoutStatus.EXPIRED,
                "authorize": SandboxCheckoutStatus.AUTHORIZED,
            }.get(action, SandboxCheckoutStatus.SUCCEEDED)
            event_id = "sbxevt_" + secrets.token_hex(16)
            body = sandbox_webhooks.build_body(
                event_id=event_id,
                action=action,
                checkout_id=session.pk,
                payment_id=session.payment_id,
                invoice_id=session.invoice_id,
                installment=session.installment_number,
                status=str(status),
                amount_minor=paid,
                requested_minor=session.amount_minor,
                currency=session.currency,
                occurred_at=now.replace(microsecond=0),
            )
            session.status = status
            session.action = action
            session.webhook_event_id = event_id
            session.webhook_body = body.decode()
            fields = ["status", "action", "webhook_event_id", "webhook_body", "updated_at"]
            if status == SandboxCheckoutStatus.AUTHORIZED:
                fields += _authorize(session, paid, now=now)
            else:
                session.amount_paid_minor = paid
                session.completed_at = now
                fields += ["amount_paid_minor", "completed_at"]
            session.save(update_fields=fields)
    return _deliver(session, repeated=repeated, receiver=receiver)


def _deliver(
    session: SandboxCheckoutSession, *, repeated: bool, receiver: WebhookReceiver
) -> CheckoutOutcome:
    """Sign and hand the stored webhook to the inbound pipeline, exactly once.

    Runs in its own transaction holding the session's row lock: concurrent submissions wait here and then see
    `webhook_delivered_at`. The handler runs inside a savepoint, so what it stores commits together with the
    "delivered" mark, and a failing handler leaves nothing behind (its writes are rolled back, the error is kept
    and a later submission retries with the same event).
    """
    secret = _signing_secret(session.account)
    with transaction.atomic():
        locked = (
            SandboxCheckoutSession.objects.select_for_update()
            .select_related("account", "account__merchant")
            .get(pk=session.pk)
        )
        if locked.webhook_delivered_at is not None:
            return CheckoutOutcome(session=locked, delivered=True, repeated=True)
        body = locked.webhook_body.encode()
        try:
            with transaction.atomic():
                receiver(locked.account, dict(sandbox_webhooks.sign(secret, body)), body)
        except Exception as exc:  # noqa: BLE001 - any handler failure means "not delivered", shown on the page
            if isinstance(exc, ApplicationError):
                message = f"{exc.code}: {exc.message}"[:500]
            else:
                message = f"inbound handler failed ({type(exc).__name__})"
            logger.warning(
                "sandbox webhook not delivered",
                extra={"checkout_id": locked.pk, "event_id": locked.webhook_event_id, "error": message},
                exc_info=not isinstance(exc, ApplicationError),
            )
            locked.webhook_error = message
            locked.save(update_fields=["webhook_error", "updated_at"])
            return CheckoutOutcome(session=locked, delivered=False, delivery_error=message, repeated=repeated)
        locked.webhook_delivered_at = timezone.now()
        locked.webhook_error = ""
        locked.save(update_fields=["webhook_delivered_at", "webhook_error", "updated_at"])
    return CheckoutOutcome(session=locked, delivered=True, repeated=repeated)


# ---- authorize and capture (docs/adr/0047) -------------------------------------------------------------------


def _authorize(session: SandboxCheckoutSession, amount_minor: int, *, now: datetime) -> list[str]:
    """The checkout's `authorize`: hold the amount (nothing is collected yet); the fields to save."""
    session.amount_authorized_minor = amount_minor
    session.authorized_at = now
    session.capture_before = now + SANDBOX_AUTHORIZATION_HOLD
    return ["amount_authorized_minor", "authorized_at", "capture_before"]


def _locked_session(
    *, account: GatewayAccount, payment_id: str, gateway_reference: str
) -> SandboxCheckoutSession:
    session = sandbox_session_get(account=account, payment_id=payment_id, gateway_reference=gateway_reference)
    return SandboxCheckoutSession.objects.select_for_update().get(pk=session.pk)


def sandbox_capture(*, account: GatewayAccount, request: CaptureRequest) -> SandboxCheckoutSession:
    """Collect (part of) an authorized session; the rest of the hold is released. Idempotent: the same capture
    again (a retry after a timeout) returns the captured session. No webhook: the caller learns from the answer.
    Refused (permanent GatewayError `gateway_rejected`): not authorized, another amount than a capture already
    made, more than held, the currency differs, or the hold lapsed (then the session is canceled)."""
    now = timezone.now()
    with transaction.atomic():
        session = _locked_session(
            account=account, payment_id=request.payment_id, gateway_reference=request.gateway_reference
        )
        if session.status == SandboxCheckoutStatus.SUCCEEDED and session.action == "capture":
            if session.amount_paid_minor == request.amount_minor:
                return session
            raise GatewayError("This authorization was already captured.", code="gateway_rejected")
        if session.status != SandboxCheckoutStatus.AUTHORIZED:
            raise GatewayError(
                f"Only an authorized sandbox checkout can be captured (it is {session.status}).",
                code="gateway_rejected",
            )
        if session.capture_before is not None and now >= session.capture_before:
            _end_hold(session, action="lapse", now=now)
            return session  # reported CANCELED: the hold is gone
        if request.currency != session.currency:
            raise GatewayError("The capture's currency is not the authorization's.", code="gateway_rejected")
        if not 0 < request.amount_minor <= session.amount_authorized_minor:
            raise GatewayError("The capture exceeds the authorized amount.", code="gateway_rejected")
        session.status = SandboxCheckoutStatus.SUCCEEDED
        session.action = "capture"
        session.amount_paid_minor = request.amount_minor
        session.completed_at = now
        session.save(update_fields=["status", "action", "amount_paid_minor", "completed_at", "updated_at"])
    return session


def sandbox_void(
    *, account: GatewayAccount, payment_id: str, gateway_reference: str
) -> SandboxCheckoutSession:
    """Release an authorized session's hold (CANCELED). Idempotent: a canceled session is returned as is. A
    captured (or otherwise ended) session is refused with a permanent GatewayError `gateway_rejected`."""
    with transaction.atomic():
        session = _locked_session(account=account, payment_id=payment_id, gateway_reference=gateway_reference)
        if session.status == SandboxCheckoutStatus.CANCELED:
            return session
        if session.status != SandboxCheckoutStatus.AUTHORIZED:
            raise GatewayError(
                f"Only an authorized sandbox checkout can be voided (it is {session.status}).",
                code="gateway_rejected",
            )
        _end_hold(session, action="void", now=timezone.now())
    return session


def _end_hold(session: SandboxCheckoutSession, *, action: str, now: datetime) -> None:
    session.status = SandboxCheckoutStatus.CANCELED
    session.action = action
    session.completed_at = now
    session.save(update_fields=["status", "action", "completed_at", "updated_at"])
