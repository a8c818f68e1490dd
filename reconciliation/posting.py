"""What a reconciled settlement posts to the ledger (docs/adr/0054; chart in docs/adr/0045). Runs inside the run's
transaction; every movement is idempotent per settlement line (`ledger.services.movement_post` with source
("settlement_line", posting_key(account, line key))), so a re-run never posts twice. Signs: debit > 0.

Two ways a gateway pays a merchant, chosen by the source:
- through a balance it pays out (the sandbox, Xendit; Stripe's model): each MATCHED line's fee is a `gateway_fee`
  movement (Dr gateway_fees, Cr gateway_clearing); a FEE line likewise; each PAYOUT line a `payout` movement
  (Dr bank, Cr gateway_clearing). After the payout, gateway_clearing holds what the gateway still owes us.
- straight to the bank per transaction (a settlement file with `settles_to_bank`, e.g. Midtrans): each MATCHED
  payment is a `settlement` movement (Dr bank net, Dr gateway_fees fee, Cr gateway_clearing gross); a matched
  refund (Dr gateway_clearing, Cr bank) takes its money back from the bank.
Only matched lines post: a discrepancy's money is not booked until staff resolve it and the day is run again.
Adjustment lines are counted on the run, not posted (what they are is the gateway's; staff book them).
"""

from __future__ import annotations

from collections import defaultdict

from gateways.base import SettlementKind, SettlementLine
from gateways.models import GatewayAccount
from ledger.models import AccountCode as A
from ledger.models import MovementType as T
from ledger.selectors import source_account_total
from ledger.services import movement_post
from reconciliation.matching import Classified, DayResult, posting_key
from reconciliation.models import LineClass

SOURCE_TYPE = "settlement_line"


def _post(account: GatewayAccount, *, key: str, type: str, currency: str, at, lines: dict, description: str):
    movement_post(
        merchant_id=account.merchant_id,
        mode=account.mode,
        currency=currency,
        type=type,
        source_type=SOURCE_TYPE,
        source_id=posting_key(account.pk, key),
        occurred_at=at,
        lines=lines,
        description=description,
    )


def post_settlement(*, account: GatewayAccount, result: DayResult, settles_to_bank: bool) -> None:
    for line in result.lines:
        if line.line_class == LineClass.MATCHED:
            _post_matched(account, line, settles_to_bank=settles_to_bank)
    for other in result.other:
        _post_other(account, other)


def _post_matched(account: GatewayAccount, line: Classified, *, settles_to_bank: bool) -> None:
    gross, fee = line.gateway_amount_minor, line.fee_minor
    what = f"{line.kind} {line.gateway_reference} ({line.payment_id})"
    if settles_to_bank:
        if line.kind == SettlementKind.PAYMENT:
            lines = {A.BANK: gross - fee, A.GATEWAY_FEES: fee, A.GATEWAY_CLEARING: -gross}
        else:
            lines = {A.GATEWAY_CLEARING: gross, A.GATEWAY_FEES: fee, A.BANK: -gross - fee}
        _post(
            account,
            key=line.key,
            type=T.SETTLEMENT,
            currency=line.currency,
            at=line.occurred_at,
            lines=lines,
            description=f"settled {what}",
        )
    elif fee:
        _post(
            account,
            key=line.key,
            type=T.GATEWAY_FEE,
            currency=line.currency,
            at=line.occurred_at,
            lines={A.GATEWAY_FEES: fee, A.GATEWAY_CLEARING: -fee},
            description=f"gateway fee on {what}",
        )


def _post_other(account: GatewayAccount, line: SettlementLine) -> None:
    key = f"{line.kind}:{line.reference}"
    if line.kind == SettlementKind.PAYOUT:
        lines, type_ = {A.BANK: line.amount_minor, A.GATEWAY_CLEARING: -line.amount_minor}, T.PAYOUT
        description = f"payout {line.reference}"
    elif line.kind == SettlementKind.FEE:
        lines, type_ = (
            {A.GATEWAY_FEES: line.amount_minor, A.GATEWAY_CLEARING: -line.amount_minor},
            T.GATEWAY_FEE,
        )
        description = f"gateway fee {line.reference}"
    else:
        return
    _post(
        account,
        key=key,
        type=type_,
        currency=line.currency,
        at=line.occurred_at,
        lines=lines,
        description=description,
    )


def ledger_clearing_by_currency(result: DayResult) -> dict[str, int]:
    """The ledger's movement on gateway_clearing for the matched payments (their `payment` movements) and refunds
    (`refund_succeeded` / `chargeback`), per currency: what the net settled plus fees must equal."""
    payments: dict[str, list[str]] = defaultdict(list)
    refunds: dict[str, list[str]] = defaultdict(list)
    for line in result.lines:
        if line.line_class != LineClass.MATCHED:
            continue
        if line.kind == SettlementKind.PAYMENT:
            payments[line.currency].append(line.payment_id)
        else:
            refunds[line.currency].append(line.refund_id)
    totals: dict[str, int] = {}
    for currency in set(payments) | set(refunds):
        totals[currency] = source_account_total(
            source_type="payment", source_ids=payments[currency], code=A.GATEWAY_CLEARING
        ) + source_account_total(source_type="refund", source_ids=refunds[currency], code=A.GATEWAY_CLEARING)
    return totals
