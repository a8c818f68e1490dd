"""What Stripe moved on a UTC day, from its balance transactions (reconciliation, issue 15; docs/adr/0050-stripe.md).

`GET /v1/balance_transactions?created[gte]=<day 00:00>&created[lt]=<next day>&limit=100&expand[]=data.source
&expand[]=data.source.payment_intent`, paged by `starting_after` while `has_more`. Each transaction is classified by
its `reporting_category` (Stripe's advice for accounting, stripe-python _balance_transaction.py):
charge -> PAYMENT (gross `amount`, `fee`), refund -> REFUND, dispute -> CHARGEBACK, payout -> PAYOUT, fee -> FEE (the
debits' amounts made positive), anything else (or a category whose sign is unexpected) -> ADJUSTMENT with Stripe's
signed amount. Our pay_ id comes from the source's `metadata.payment_id` or its (expanded) intent's; our ref_ id
from a refund's `metadata.refund_id`. Amounts are converted exactly (gateways/stripe/amounts.py).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from gateways.base import SettlementKind, SettlementLine
from gateways.stripe.amounts import from_stripe
from gateways.stripe.client import StripeClient
from gateways.stripe.webhooks import epoch, our_id
from paytrust.errors import GatewayError

_MAX_PAGES = 200  # 20,000 transactions in a day for one account
_KINDS = {
    "charge": SettlementKind.PAYMENT,
    "refund": SettlementKind.REFUND,
    "dispute": SettlementKind.CHARGEBACK,
    "payout": SettlementKind.PAYOUT,
    "fee": SettlementKind.FEE,
}
_DEBITS = frozenset(
    {SettlementKind.REFUND, SettlementKind.CHARGEBACK, SettlementKind.PAYOUT, SettlementKind.FEE}
)


def _bad_response(message: str) -> GatewayError:
    return GatewayError(message, code="gateway_bad_response", retryable=True)


def settlement_lines(client: StripeClient, *, day: date) -> list[SettlementLine]:
    start = datetime.combine(day, time.min, tzinfo=UTC)
    since, until = int(start.timestamp()), int((start + timedelta(days=1)).timestamp())
    lines: list[SettlementLine] = []
    after = ""
    for _ in range(_MAX_PAGES):
        page = client.list_balance_transactions(created_gte=since, created_lt=until, starting_after=after)
        lines.extend(line(item) for item in page["data"])
        if not page.get("has_more") or not page["data"]:
            return lines
        after = str(page["data"][-1].get("id") or "")
    raise _bad_response(f"Stripe lists more than {_MAX_PAGES} pages of balance transactions for {day}.")


def line(txn: dict) -> SettlementLine:
    reference, currency = txn.get("id"), str(txn.get("currency") or "").upper()
    if not isinstance(reference, str) or not reference or not currency:
        raise _bad_response("A Stripe balance transaction lacks id or currency.")
    amount = from_stripe(txn.get("amount"), currency, field="amount", error=_bad_response)
    fee = from_stripe(txn.get("fee", 0), currency, field="fee", error=_bad_response)
    kind = _KINDS.get(str(txn.get("reporting_category") or ""), SettlementKind.ADJUSTMENT)
    if kind in _DEBITS:
        amount = -amount
    if kind != SettlementKind.ADJUSTMENT and amount <= 0:
        kind, amount = SettlementKind.ADJUSTMENT, -amount if kind in _DEBITS else amount
    source = txn.get("source") if isinstance(txn.get("source"), dict) else {}
    intent = source.get("payment_intent") if isinstance(source.get("payment_intent"), dict) else {}
    occurred_at = epoch(txn.get("created"), field="created", error=_bad_response)
    if occurred_at is None:
        raise _bad_response(f"Stripe's balance transaction {reference} lacks created.")
    return SettlementLine(
        kind=kind,
        reference=reference,
        amount_minor=amount,
        currency=currency,
        occurred_at=occurred_at,
        payment_id=our_id(source.get("metadata"), "payment_id", "pay_")
        or our_id(intent.get("metadata"), "payment_id", "pay_"),
        refund_id=our_id(source.get("metadata"), "refund_id", "ref_")
        if kind == SettlementKind.REFUND
        else "",
        fee_minor=fee,  # Stripe's sign: > 0 taken, < 0 given back (e.g. with a refund); posted as it is
        raw=txn,
    )
