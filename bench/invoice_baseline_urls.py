"""A bare Django + DRF endpoint that inserts the same rows as `POST /v1/invoices` - one invoice, its line items
and installments - with none of the production stack: no API-key authentication, rate limiting, idempotency,
audit, strict validation, money module, gateway lookups or outbound event. It is the throughput ceiling the real
endpoint is compared with (bench/README.md). Outside the production URLconf on purpose.

Merchant and gateway account come from BENCH_MERCHANT_ID / BENCH_ACCOUNT_ID (set by bench/invoice_load.py).
"""

import os
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.db import transaction
from django.http import HttpResponse
from django.urls import path
from django.utils import timezone
from rest_framework.response import Response
from rest_framework.views import APIView

from invoices.models import Installment, Invoice, LineItem

MERCHANT_ID = os.environ.get("BENCH_MERCHANT_ID", "")
ACCOUNT_ID = os.environ.get("BENCH_ACCOUNT_ID", "")
FEE_PERCENT = Decimal(os.environ.get("BENCH_FEE_PERCENT", "0.029"))
FEE_FIXED = int(os.environ.get("BENCH_FEE_FIXED", "2000"))


def _round(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


class BaselineInvoiceCreate(APIView):
    authentication_classes: list = []
    permission_classes: list = []

    def post(self, request):
        data = request.data
        now = timezone.now()
        expires_at = now + timedelta(hours=24)
        lines = []
        for position, item in enumerate(data["line_items"]):
            quantity, price, rate = int(item["quantity"]), int(item["unit_price"]), Decimal(item["tax_rate"])
            subtotal = quantity * price
            lines.append((position, item["name"], quantity, price, rate, subtotal, _round(subtotal * rate)))
        subtotal = sum(line[5] for line in lines)
        tax = sum(line[6] for line in lines)
        fee = _round(subtotal * FEE_PERCENT) + FEE_FIXED
        total = subtotal + tax + fee
        count = int(data.get("installments", {}).get("count", 1))
        base = total // count
        amounts = [base] * (count - 1) + [total - base * (count - 1)]
        customer = data.get("customer", {})
        with transaction.atomic():
            invoice = Invoice.objects.create(
                merchant_id=MERCHANT_ID,
                mode="test",
                currency=data["currency"],
                gateway_account_id=ACCOUNT_ID,
                gateway=data["gateway"],
                external_id=data.get("external_id"),
                description=data.get("description", ""),
                customer_name=customer.get("name", ""),
                customer_email=customer.get("email", ""),
                customer_phone=customer.get("phone", ""),
                subtotal_minor=subtotal,
                tax_total_minor=tax,
                service_fee_minor=fee,
                total_minor=total,
                fee_percent=FEE_PERCENT,
                fee_fixed_minor=FEE_FIXED,
                expires_at=expires_at,
                lapses_at=expires_at,
                metadata=data.get("metadata", {}),
            )
            LineItem.objects.bulk_create(
                [
                    LineItem(
                        invoice=invoice,
                        position=p,
                        name=n,
                        quantity=q,
                        unit_price_minor=u,
                        tax_rate=r,
                        subtotal_minor=s,
                        tax_minor=t,
                    )
                    for p, n, q, u, r, s, t in lines
                ]  # fmt: skip
            )
            Installment.objects.bulk_create(
                [
                    Installment(
                        invoice=invoice,
                        number=i + 1,
                        amount_minor=a,
                        tax_share_minor=0,
                        fee_share_minor=0,
                        due_date=(expires_at + timedelta(days=30 * i)).date(),
                    )
                    for i, a in enumerate(amounts)
                ]  # fmt: skip
            )
        return Response({"id": invoice.id, "total": str(total)}, status=201)


def healthz(request):
    return HttpResponse("ok")


urlpatterns = [
    path("v1/invoices", BaselineInvoiceCreate.as_view()),
    path("healthz", healthz),
]
