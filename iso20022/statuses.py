"""pain.002 status codes derived from PayTrust's payment and installment states (pure functions, no database).

The mapping and its reasons are in docs/adr/0009-iso20022-messages.md. A single payment's status is mapped by
`payments.pain002` (the payments app stores it on every status change); this module builds the installment and
group statuses on top of it. In short:

| PayTrust                                   | TxSts | reason                                     |
| ------------------------------------------ | ----- | ------------------------------------------ |
| payment `succeeded`, `refunded`, `partially_refunded` | ACSC | (a refund is a separate money movement) |
| payment `pending` (accepted by the gateway, waiting for the customer's money) | ACSP | |
| payment `initiating`, `unknown` (outcome not known yet) | PDNG |                                  |
| payment `failed`                           | RJCT  | gateway failure code mapped (AM04, AC01, ...), else NARR |
| payment `expired`                          | RJCT  | NARR "expired"                             |
| installment paid in full                   | ACSC  |                                            |
| installment partly paid                    | ACSP  | AddtlInf "Partially paid: x of y CCY"      |
| installment unpaid, no payment yet         | PDNG  |                                            |
| installment unpaid, invoice void/expired   | RJCT  | NARR                                       |
| installment unpaid, with payments          | the latest payment's code                  |

Group and payment-information status (`group_status`): all ACSC -> ACSC; all RJCT -> RJCT; money received for
some but not all (an ACSC, or a partly paid transaction) -> PART; otherwise all alike -> that code; a mix with
something accepted (ACSP, or ACCP/ACTC/... from other sources) -> PART; a mix of PDNG and RJCT only -> PDNG.
"""

from __future__ import annotations

from collections.abc import Sequence

from payments.pain002 import (
    ACSC,
    ACSP,
    NARR,
    PDNG,
    RJCT,
    StatusDetail,
    failure_reason,
    payment_status_detail,
    payment_status_to_pain002,
)
from paytrust.money import format_amount

# The payment-level mapping lives with the payments (which store it on every status change); re-exported here so
# the pain.002 builders read every code from one module.
__all__ = [
    "ACCEPTED",
    "ACSC",
    "ACSP",
    "NARR",
    "PART",
    "PDNG",
    "RJCT",
    "SETTLED",
    "StatusDetail",
    "failure_reason",
    "group_status",
    "installment_status_detail",
    "payment_status_detail",
    "payment_status_to_pain002",
]

PART = "PART"  # partially accepted (group / payment-information level only)


def installment_status_detail(
    *,
    amount_minor: int,
    amount_paid_minor: int,
    currency: str,
    payments: Sequence[tuple[str, str | None]] = (),
    invoice_status: str | None = None,
) -> StatusDetail:
    """The TxSts of one installment's credit transfer.

    `payments` are this installment's payments as (status, failure_code), oldest first. The installment's own
    money decides first (paid -> ACSC, partly paid -> ACSP); only an unpaid installment looks at its payments.
    """
    if amount_paid_minor >= amount_minor:
        return StatusDetail(ACSC)
    if amount_paid_minor > 0:
        info = (
            f"Partially paid: {format_amount(amount_paid_minor, currency)} of "
            f"{format_amount(amount_minor, currency)} {currency}"
        )
        return StatusDetail(ACSP, None, info)
    if invoice_status == "void":
        return StatusDetail(RJCT, NARR, "Invoice voided")
    if invoice_status == "expired":
        return StatusDetail(RJCT, NARR, "Invoice expired before this installment was paid")
    if not payments:
        return StatusDetail(PDNG)
    status, failure_code = payments[-1]
    detail = payment_status_detail(status, failure_code)
    if detail.code == ACSC:
        # A successful (maybe since refunded) payment but no money on this installment: still owed.
        return StatusDetail(PDNG, None, f"Latest payment {status} but nothing applied to this installment")
    return detail


# Codes meaning "accepted" (some processing stage passed) and "settled" in the ISO external code list.
ACCEPTED = frozenset({"ACTC", "ACCP", "ACSP", "ACSC", "ACCC", "ACWC", "ACWP"})
SETTLED = frozenset({"ACSC", "ACCC"})


def group_status(codes: Sequence[str], *, money_received: Sequence[bool] | None = None) -> str:
    """GrpSts / PmtInfSts from the transactions' codes; `money_received[i]` says transaction i got some money
    (default: the settled ones)."""
    if not codes:
        raise ValueError("a group needs at least one transaction")
    received = list(money_received) if money_received is not None else [code in SETTLED for code in codes]
    distinct = set(codes)
    if distinct <= SETTLED:
        return codes[0] if len(distinct) == 1 else ACSC
    if distinct == {RJCT}:
        return RJCT
    if any(received) or distinct & SETTLED:
        return PART
    if len(distinct) == 1:
        return codes[0]
    if distinct & ACCEPTED:
        return PART
    return PDNG
