"""Xendit's Transaction API as a settlement list (reconciliation, docs/adr/0054).

GET /transactions (xendit-python docs/TransactionApi.md `get_all_transactions`, docs.xendit.co/apidocs/
list-transactions): filters `created[gte]` / `created[lte]` (DateRangeFilter), `limit`, cursor `after_id` (the
last item's id) while `has_more`. Each Transaction (docs/balance_and_transaction/TransactionResponse.md): `id`
(txn_…), `product_id` (the product's id: invoice / refund …), `type`, `status`, `reference_id` (the external_id /
reference_id WE sent: our pay_ id for an invoice, our ref_ id for a refund), `currency`, `amount` (major units),
`cashflow` (MONEY_IN / MONEY_OUT), `fee` {xendit_fee, value_added_tax, …}, `created`.

Only SUCCESS transactions count. Types: PAYMENT -> payment (its fee = xendit_fee + value_added_tax), REFUND ->
refund, CHARGEBACK -> chargeback, WITHDRAWAL -> payout (to the merchant's bank), PLATFORM_FEE / CASHBACK_FEE ->
fee, anything else (TRANSFER, DISBURSEMENT, TOPUP, …) -> adjustment, signed by its cashflow.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from gateways.base import SettlementKind, SettlementLine, gateway_amount_to_minor
from gateways.xendit.client import XenditClient
from paytrust import money
from paytrust.errors import GatewayError

PAGE_SIZE = 50
MAX_PAGES = 2000  # 100,000 transactions a day; beyond that something is wrong with the cursor
KINDS = {
    "PAYMENT": SettlementKind.PAYMENT,
    "REFUND": SettlementKind.REFUND,
    "CHARGEBACK": SettlementKind.CHARGEBACK,
    "WITHDRAWAL": SettlementKind.PAYOUT,
    "PLATFORM_FEE": SettlementKind.FEE,
    "CASHBACK_FEE": SettlementKind.FEE,
}


def _bad(message: str) -> GatewayError:
    return GatewayError(message, code="gateway_bad_response", retryable=True)


def _iso_ms(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def xendit_settlement_lines(client: XenditClient, *, day: date) -> list[SettlementLine]:
    start = datetime.combine(day, time.min, tzinfo=UTC)
    end = start + timedelta(days=1) - timedelta(milliseconds=1)
    lines: list[SettlementLine] = []
    after_id = ""
    for _ in range(MAX_PAGES):
        page = client.list_transactions(
            created_gte=_iso_ms(start), created_lte=_iso_ms(end), after_id=after_id, limit=PAGE_SIZE
        )
        items = page["data"]
        lines.extend(line for line in (_line(item) for item in items) if line is not None)
        if not page.get("has_more") or not items:
            return lines
        after_id = str(items[-1].get("id") or "")
        if not after_id:
            raise _bad("Xendit's transaction page has more but its last item has no id.")
    raise _bad("Xendit's transaction list did not end.")


def _line(item: dict) -> SettlementLine | None:
    if item.get("status") != "SUCCESS":
        return None
    currency = str(item.get("currency") or "")
    if currency not in money.CURRENCIES:
        raise _bad(f"Xendit transaction {item.get('id')} has an unknown currency {currency!r}.")
    amount = gateway_amount_to_minor(item.get("amount"), currency, param="amount", error=_bad)
    kind = KINDS.get(str(item.get("type")), SettlementKind.ADJUSTMENT)
    if kind == SettlementKind.ADJUSTMENT and item.get("cashflow") == "MONEY_OUT":
        amount = -amount
    fee = 0
    if kind in (SettlementKind.PAYMENT, SettlementKind.REFUND) and isinstance(item.get("fee"), dict):
        parts = [item["fee"].get("xendit_fee") or 0, item["fee"].get("value_added_tax") or 0]
        fee = sum(gateway_amount_to_minor(Decimal(str(p)), currency, param="fee", error=_bad) for p in parts)
    reference_id = str(item.get("reference_id") or "")
    return SettlementLine(
        kind=kind,
        reference=str(item.get("id") or ""),
        amount_minor=amount,
        currency=currency,
        occurred_at=_time(item.get("created")),
        payment_id=reference_id if kind == SettlementKind.PAYMENT else "",
        gateway_reference=str(item.get("product_id") or ""),
        refund_id=reference_id if kind == SettlementKind.REFUND else "",
        fee_minor=fee,
        raw=item,
    )


def _time(value) -> datetime:
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise _bad(f"Xendit transaction time {value!r} is not ISO 8601.") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)  # documented as UTC+0
    return parsed.astimezone(UTC)
