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
"""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from gateways.models import SandboxCheckoutSession, SandboxCheckoutStatus
from gateways.sandbox import services
from paytrust import money
from paytrust.errors import ApplicationError
from webhooks.inbound.services import sandbox_notification_receive

OUTCOME_TEXT = {
    "pay": "Paid in full",
    "pay_partial": "Paid in part",
    "overpay": "Overpaid",
    "fail": "Payment failed",
    "expire": "Payment expired",
}


def _safe_url(url: str) -> str:
    """Only http(s) links are rendered (never javascript: or data: URLs)."""
    return url if url.startswith(("https://", "http://")) else ""


def _context(session: SandboxCheckoutSession, **extra) -> dict:
    cur = session.currency
    context = {
        "session": session,
        "amount": money.format_amount(session.amount_minor, cur),
        "amount_display": money.format_display(session.amount_minor, cur),
        "amount_paid_display": money.format_display(session.amount_paid_minor, cur),
        "currency": cur,
        "exponent": money.CURRENCIES[cur].exponent,
        "step": str(money.CURRENCIES[cur].quantum),
        "is_open": session.status == SandboxCheckoutStatus.OPEN,
        "is_past_expiry": session.status == SandboxCheckoutStatus.OPEN
        and timezone.now() >= session.expires_at,
        "outcome": OUTCOME_TEXT.get(session.action, ""),
        "redirect_url": _safe_url(
            session.success_redirect_url
            if session.status == SandboxCheckoutStatus.SUCCEEDED
            else session.failure_redirect_url
        ),
    }
    context.update(extra)
    return context


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

    try:
        outcome = services.sandbox_checkout_submit(
            token=token,
            nonce=request.POST.get("nonce", ""),
            action=request.POST.get("action", ""),
            amount=request.POST.get("amount"),
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
