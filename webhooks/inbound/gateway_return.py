"""The customer's return to PayTrust from a gateway's hosted approval page (PayPal: the order's return_url and
cancel_url, `/v1/webhooks/{gateway}/{gateway_account_id}/return|cancel`). HTML, no API key.

The return completes the approved payment at once (`payments.services.payment_complete_approved`: the capture, or
the authorization for capture_method "manual"), so the customer sees the outcome; the CHECKOUT.ORDER.APPROVED
notification does the same when the customer never comes back. Whichever comes first makes the one gateway call;
the other finds it done (or under way) and changes nothing. The URL's reference (PayPal's `token`) only selects
which of this account's pending payments to complete: the gateway itself refuses to collect an order its customer
did not approve, so a forged return can do nothing a genuine one would not.
"""

from __future__ import annotations

import logging

from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from gateways.registry import gateway_for_account
from gateways.selectors import gateway_account_for_webhook
from payments.models import Payment, PaymentStatus
from payments.services import PaymentNotFoundForGateway, payment_complete_approved
from paytrust.errors import ApplicationError

logger = logging.getLogger("paytrust.webhooks.inbound")

MESSAGES = {
    PaymentStatus.SUCCEEDED: "Payment received. Thank you!",
    PaymentStatus.AUTHORIZED: "Payment authorized. The merchant will collect it shortly.",
    PaymentStatus.FAILED: "The payment was declined.",
    PaymentStatus.EXPIRED: "This payment has expired.",
}
PENDING_MESSAGE = "We are confirming your payment with the gateway; you will hear from the merchant shortly."


def _page(request, message: str, *, status: int = 200):
    return render(request, "gateway_return.html", {"message": message}, status=status)


@never_cache
@require_http_methods(["GET"])
def gateway_return(request, gateway: str, account_id: str):
    try:
        account = gateway_account_for_webhook(gateway=gateway, account_id=account_id)
    except ApplicationError:
        return _page(request, "No such payment.", status=404)
    reference = gateway_for_account(account).approval_return_reference(request.GET)
    if not reference:
        return _page(request, "No such payment.", status=404)
    try:
        outcome = payment_complete_approved(
            gateway_account_id=account.pk, gateway_reference=reference, source="customer_return"
        )
    except PaymentNotFoundForGateway:
        return _page(request, "No such payment.", status=404)
    except (
        ApplicationError
    ) as exc:  # under way elsewhere (the notification), or the gateway cannot answer now
        logger.info("gateway return: not completed now", extra={"account": account.pk, "code": exc.code})
        return _page(request, PENDING_MESSAGE)
    if outcome is not None:
        status = outcome.payment.status
    else:
        status = (
            Payment.objects.filter(gateway_account=account, gateway_reference=reference)
            .values_list("status", flat=True)
            .first()
        )
    if status in (PaymentStatus.REFUNDED, PaymentStatus.PARTIALLY_REFUNDED):
        status = PaymentStatus.SUCCEEDED
    return _page(request, MESSAGES.get(status, PENDING_MESSAGE))


@never_cache
@require_http_methods(["GET"])
def gateway_cancel(request, gateway: str, account_id: str):
    """The customer left the gateway's page without approving: nothing changes (the payment expires as usual)."""
    return _page(
        request, "You canceled the payment. You can close this page or pay again from the merchant's site."
    )
