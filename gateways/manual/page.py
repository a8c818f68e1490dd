"""The manual gateway's hosted instructions page: GET /bank-transfer/{token} (HTML, no API key, read-only).

The unguessable 256-bit token in the URL is the credential, as for the sandbox checkout. The page shows the amount,
the account's bank details (bank_details: account configuration meant for payers), the per-currency instructions
and the transfer reference; nothing secret (no credentials, no signing secret, no customer data). An unknown token
is a 404 page. Nothing can be posted: a transfer is confirmed only when finance records it.
"""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from gateways.models import ManualTransfer, ManualTransferStatus
from paytrust import money


@never_cache
@require_GET
def instructions(request, token: str) -> HttpResponse:
    transfer = ManualTransfer.objects.select_related("account").filter(token=token).first()
    if transfer is None:
        return render(request, "manual/not_found.html", status=404)
    status = transfer.status
    if status == ManualTransferStatus.OPEN and timezone.now() >= transfer.expires_at:
        status = ManualTransferStatus.EXPIRED
    bank = transfer.account.bank_details or {}
    context = {
        "transfer": transfer,
        "bank": bank,
        "instructions": (bank.get("instructions") or {}).get(transfer.currency, ""),
        "amount": money.format_amount(transfer.amount_minor, transfer.currency),
        "amount_display": money.format_display(transfer.amount_minor, transfer.currency),
        "received_display": money.format_display(transfer.amount_received_minor, transfer.currency),
        "status": status,
        "status_display": ManualTransferStatus(status).label,
    }
    return render(request, "manual/instructions.html", context)
