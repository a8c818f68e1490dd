"""PayPal's own list of what moved on a day: GET /v1/reporting/transactions (Transaction Search API), for
reconciliation (`Gateway.settlement_lines`, issue 15). Schema: PPSPEC reporting_transactions_v1.json
(shared/reference/gateways-global.md); no recorded answer exists in shared/gateway_samples, the fake builds it
from that schema (tests/fixtures/paypal/SOURCES.md).

- Query: start_date = the UTC day's 00:00:00Z, end_date = 23:59:59Z (the API takes at most 31 days; seconds
  required), fields=transaction_info, page_size=500, page=1… while page < total_pages. PayPal lists a transaction up
  to three hours after it happened: reconcile a day once it is over by more than that.
- Only completed transactions count (`transaction_status` S; also V, a success reversed later: the reversal is its
  own line). Pending (P) and denied (D) move no money.
- `transaction_event_code` (PayPal's "Transaction event codes"): T00xx money received for a payment -> PAYMENT
  (gross `transaction_amount`, `fee_amount` as fee); T1107 payment refund -> REFUND; T1106 payment reversal and
  T12xx chargeback / dispute -> CHARGEBACK; T01xx fees -> FEE; T04xx withdrawal to the bank -> PAYOUT; anything
  else -> ADJUSTMENT with its signed amount. PAYMENT / REFUND / CHARGEBACK / FEE / PAYOUT amounts are given by their
  size.
- Our ids: `custom_field` is the custom_id we send (the pay_ id on orders and on refunds), `invoice_id` the
  payment's pay_ id (orders) or our ref_ id (refunds).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from urllib.parse import urlencode

from gateways.base import SettlementKind, SettlementLine
from gateways.paypal import webhooks
from gateways.paypal.client import PayPalClient
from paytrust.errors import GatewayError

PAGE_SIZE = 500
MAX_PAGES = 200  # 100,000 transactions a day on one account: far beyond a PayTrust merchant
_SETTLED = frozenset({"S", "V"})


def _bad_response(message: str) -> GatewayError:
    return GatewayError(message, code="gateway_bad_response", retryable=True)


def kind_of(event_code: str) -> SettlementKind:
    code = event_code.upper()
    if code.startswith("T00"):
        return SettlementKind.PAYMENT
    if code == "T1107":
        return SettlementKind.REFUND
    if code == "T1106" or code.startswith("T12"):
        return SettlementKind.CHARGEBACK
    if code.startswith("T01"):
        return SettlementKind.FEE
    if code.startswith("T04"):
        return SettlementKind.PAYOUT
    return SettlementKind.ADJUSTMENT


def settlement_lines(client: PayPalClient, *, day: date) -> list[SettlementLine]:
    start = datetime.combine(day, time.min, tzinfo=UTC)
    end = datetime.combine(day, time(23, 59, 59), tzinfo=UTC)
    lines: list[SettlementLine] = []
    page, total_pages = 1, 1
    while page <= total_pages:
        if page > MAX_PAGES:
            raise _bad_response(f"PayPal lists more than {MAX_PAGES} pages of transactions for {day}.")
        query = urlencode(
            {
                "start_date": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "end_date": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "fields": "transaction_info",
                "page_size": str(PAGE_SIZE),
                "page": str(page),
            }
        )
        data = client.call(
            "GET",
            f"/v1/reporting/transactions?{query}",
            operation="settlement_lines",
            prefer_representation=False,
        )
        details = data.get("transaction_details", [])
        pages = data.get("total_pages", 1)
        if not isinstance(details, list) or not isinstance(pages, int):
            raise _bad_response("PayPal's transaction list lacks transaction_details or total_pages.")
        for detail in details:
            line = _line(detail)
            if line is not None:
                lines.append(line)
        total_pages = pages
        page += 1
    return lines


def _line(detail: object) -> SettlementLine | None:
    info = detail.get("transaction_info") if isinstance(detail, dict) else None
    if not isinstance(info, dict) or not isinstance(info.get("transaction_id"), str):
        raise _bad_response("A PayPal transaction lacks transaction_info.transaction_id.")
    if str(info.get("transaction_status") or "").upper() not in _SETTLED:
        return None
    kind = kind_of(str(info.get("transaction_event_code") or ""))
    money = info.get("transaction_amount")
    amount, currency = webhooks.money_minor(money, error=_bad_response, field="transaction_amount")
    negative = isinstance(money, dict) and str(money.get("value", "")).startswith("-")
    fee = 0
    if isinstance(info.get("fee_amount"), dict):
        fee, _ = webhooks.money_minor(info["fee_amount"], error=_bad_response, field="fee_amount")
        # PayPal's sign is the merchant balance's: a fee taken is negative (T0006), a fee given back with a refund
        # positive (T1107). Ours: > 0 taken, < 0 given back.
        if not str(info["fee_amount"].get("value", "")).startswith("-"):
            fee = -fee
    occurred = webhooks.parse_time(
        info.get("transaction_initiation_date"), error=_bad_response, field="transaction_initiation_date"
    )
    if occurred is None:
        raise _bad_response(f"PayPal transaction {info['transaction_id']} has no date.")
    custom, invoice = info.get("custom_field"), info.get("invoice_id")
    return SettlementLine(
        kind=kind,
        reference=info["transaction_id"],
        amount_minor=-amount if kind == SettlementKind.ADJUSTMENT and negative else amount,
        currency=currency,
        occurred_at=occurred.astimezone(UTC),
        payment_id=webhooks.ours(custom, "pay_") or webhooks.ours(invoice, "pay_"),
        refund_id=webhooks.ours(invoice, "ref_") if kind == SettlementKind.REFUND else "",
        fee_minor=fee if kind in (SettlementKind.PAYMENT, SettlementKind.REFUND) else 0,
        raw=info,
    )
