"""The sandbox's hosted checkout page: GET shows the payment, POST performs one action (HTML, no API key).

It lives in the inbound layer because it joins both sides explicitly: the sandbox gateway closes its checkout
session (gateways.sandbox.services) and hands the signed notification to `sandbox_notification_receive`, the same
pipeline a real gateway's HTTP delivery goes through.

CSRF: the view is csrf_exempt and uses a token-bound form nonce instead of Django's cookie-based token. CSRF
defends ambient credentials (session cookies); this page has none: the unguessable 256-bit token in the URL IS
the credential, and the customer (or a test) may have no Django session at all. Each session also has a random
`form_nonce`, rendered only into the page's form and checked in constant time on POST, so a POST must come from
someone who loaded this checkout's page (not merely from a link), and a form from another checkout is refused.
Clickjacking is blocked by X-Frame-Options: DENY (project setting).

Refunds (docs/adr/0046-refunds.md): the page lists the payment's sandbox refunds; a pending one (amount ending in
42 minor units) has "Complete refund" / "Fail refund" buttons (`action` = `refund_succeed` | `refund_fail`, field
`refund` = our ref_ id, the same form nonce). After settling it the page calls
`payments.services.refund_reconcile` for that refund, which asks the sandbox (`get_refund`) and applies the answer
exactly like the reconciliation job: the page plays the gateway's notification.

Amounts are shown in one format, the display format of paytrust/money.py ("IDR 150,000", "USD 16.99"), and the
amount field also takes what the page shows (thousands separators, a leading currency code). An installment's
outcome names it ("Installment 1 of 3 paid"); "Paid in full" is said only of a payment that settles the invoice's
only installment.

A payment created with capture_method "manual" (docs/adr/0047) is authorized here, not paid: the page offers
"Authorize" (and the failure simulations) instead of the paying buttons; the merchant captures or voids it later
through the API.

Every POST records the payer's IP (paytrust.client_ip: REMOTE_ADDR, or X-Forwarded-For through TRUSTED_PROXIES)
as the payment's `checkout_ip` (payments.services.risk_check; shown in the admin's review queue).
"""

from __future__ import annotations

import re

from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from gateways.models import SandboxCheckoutSession, SandboxCheckoutStatus
from gateways.sandbox import refunds as sandbox_refunds
from gateways.sandbox import services
from invoices.selectors import invoice_installment_count
from payments.services import refund_reconcile
from payments.services.risk_check import payment_record_checkout_ip
from paytrust import money
from paytrust.client_ip import client_ip
from paytrust.errors import ApplicationError
from webhooks.inbound.services import sandbox_notification_receive

OUTCOME_TEXT = {
    "pay": "Paid in full",
    "pay_partial": "Paid in part",
    "overpay": "Overpaid",
    "fail": "Payment failed",
    "expire": "Payment expired",
    "authorize": "Payment authorized",
    "capture": "Payment captured",
    "void": "Authorization voided",
    "lapse": "Authorization lapsed",
}
# The paying outcomes when the invoice has several installments: "Installment 1 of 3 paid".
INSTALLMENT_OUTCOME_TEXT = {"pay": "paid", "pay_partial": "paid in part", "overpay": "overpaid"}
_GROUPED = re.compile(r"^\d{1,3}(,\d{3})+(\.\d+)?$")  # 150,000 or 1,234.56 (the page's display format)


def _installment(session: SandboxCheckoutSession) -> str:
    """ "2 of 3" for an installment of a plan, "" for a payment of a whole invoice (one installment)."""
    number = session.installment_number
    if not number or not session.invoice_id:
        return str(number or "")
    count = invoice_installment_count(invoice_id=session.invoice_id)
    if count <= 1:
        return "" if count == 1 else str(number)
    return f"{number} of {count}"


def _outcome(session: SandboxCheckoutSession, installment: str) -> str:
    if " of " in installment and session.action in INSTALLMENT_OUTCOME_TEXT:
        return f"Installment {installment} {INSTALLMENT_OUTCOME_TEXT[session.action]}"
    return OUTCOME_TEXT.get(session.action, "")


def _plain_amount(value: str | None, currency: str) -> str | None:
    """The amount field as money.to_minor reads it: "IDR 150,000" and "150,000" become "150000"; anything else is
    passed on unchanged (and refused there with its message)."""
    if value is None:
        return None
    text = value.strip()
    if text[:3].upper() == currency and text[3:4] in (" ", ""):
        text = text[3:].strip()
    return text.replace(",", "") if _GROUPED.match(text) else text


def _safe_url(url: str) -> str:
    """Only http(s) links are rendered (never javascript: or data: URLs)."""
    return url if url.startswith(("https://", "http://")) else ""


def _context(session: SandboxCheckoutSession, **extra) -> dict:
    cur = session.currency
    installment = _installment(session)
    context = {
        "session": session,
        "amount": money.format_amount(session.amount_minor, cur),
        "amount_display": money.format_display(session.amount_minor, cur),
        "amount_paid_display": money.format_display(session.amount_paid_minor, cur),
        "currency": cur,
        "installment": installment,
        "is_open": session.status == SandboxCheckoutStatus.OPEN,
        "is_manual": session.capture_method == "manual",
        "amount_authorized_display": money.format_display(session.amount_authorized_minor, cur),
        "is_past_expiry": session.status == SandboxCheckoutStatus.OPEN
        and timezone.now() >= session.expires_at,
        "outcome": _outcome(session, installment),
        "redirect_url": _safe_url(
            session.success_redirect_url
            if session.status == SandboxCheckoutStatus.SUCCEEDED
            else session.failure_redirect_url
        ),
    }
    context["refunds"] = [
        {
            "refund_id": refund.refund_id,
            "amount_display": money.format_display(refund.amount_minor, cur),
            "status": refund.status,
            "failure_message": refund.failure_message,
        }
        for refund in session.refunds.order_by("created_at", "id")
    ]
    context.update(extra)
    return context


def _settle_refund(request, token: str, session: SandboxCheckoutSession) -> HttpResponse:
    """Complete or fail a pending sandbox refund, then have PayTrust ask the sandbox about it at once (what a real
    gateway's refund notification would trigger; the reconciliation job would otherwise ask later)."""
    refund_id = request.POST.get("refund", "")
    try:
        refund = sandbox_refunds.sandbox_refund_settle(
            token=token,
            nonce=request.POST.get("nonce", ""),
            refund_id=refund_id,
            action=request.POST["action"],
        )
    except ApplicationError as exc:
        if exc.status_code == 404 and not refund_id:
            return _not_found(request)
        session.refresh_from_db()
        return render(
            request, "sandbox/checkout.html", _context(session, error=exc.message), status=exc.status_code
        )
    refund_reconcile(refund_id=refund.refund_id)  # no transaction is open here
    session.refresh_from_db()
    notice = f"Refund {refund.refund_id} {refund.status}; PayTrust has been told."
    return render(request, "sandbox/checkout.html", _context(session, refund_notice=notice))


def _not_found(request) -> HttpResponse:
    return render(request, "sandbox/not_found.html", status=404)


@never_cache
@csrf_exempt
@require_http_methods(["GET", "POST"])
def checkout(request, token: str) -> HttpResponse:
    session = (
        SandboxCheckoutSession.objects.select_related("account", "account__merchant")
        .filter(token=token)
        .first()
    )
    if session is None:
        return _not_found(request)
    if request.method == "GET":
        return render(request, "sandbox/checkout.html", _context(session))
    # The payer acts here: their address goes onto the payment's risk data (docs/adr/0053), as a real gateway's
    # checkout would report it. Behind our proxies, paytrust.client_ip reads X-Forwarded-For (TRUSTED_PROXIES).
    payment_record_checkout_ip(payment_id=session.payment_id, ip=client_ip(request))
    if request.POST.get("action", "") in sandbox_refunds.SETTLE_ACTIONS:
        return _settle_refund(request, token, session)

    try:
        outcome = services.sandbox_checkout_submit(
            token=token,
            nonce=request.POST.get("nonce", ""),
            action=request.POST.get("action", ""),
            amount=_plain_amount(request.POST.get("amount"), session.currency),
            receiver=sandbox_notification_receive,
        )
    except ApplicationError as exc:
        if exc.status_code == 404:
            return _not_found(request)
        session.refresh_from_db()
        return render(
            request,
            "sandbox/checkout.html",
            _context(
                session,
                error=exc.message,
                error_param=exc.param,
                entered_amount=request.POST.get("amount", ""),
            ),
            status=exc.status_code,
        )
    return render(
        request,
        "sandbox/checkout.html",
        _context(
            outcome.session,
            delivered=outcome.delivered,
            delivery_error=outcome.delivery_error,
            repeated=outcome.repeated,
            submitted=True,
        ),
    )
