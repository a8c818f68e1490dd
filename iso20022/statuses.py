"""pain.002 status codes derived from PayTrust's payment and installment states (pure functions, no database).

The mapping and its reasons are in docs/adr/0009-iso20022-messages.md. In short:

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

import re
from collections.abc import Sequence
from dataclasses import dataclass

from paytrust.money import format_amount

ACSC = "ACSC"  # accepted, settlement completed
ACSP = "ACSP"  # accepted, settlement in process
PDNG = "PDNG"  # pending
RJCT = "RJCT"  # rejected
PART = "PART"  # partially accepted (group / payment-information level only)

NARR = "NARR"  # reason: narrative, see AddtlInf


@dataclass(frozen=True)
class StatusDetail:
    """A pain.002 transaction status with its optional reason code and narrative (StsRsnInf)."""

    code: str
    reason_code: str | None = None
    additional_information: str | None = None


_SUCCESS = {"succeeded", "refunded", "partially_refunded"}
_IN_PROCESS = {"pending", "authorized", "processing"}
_NOT_KNOWN_YET = {"initiating", "unknown"}
_EXPIRED = {"expired"}
_FAILED = {"failed", "canceled", "cancelled", "voided"}

# Gateway / internal failure codes (compared case-insensitively, spaces and dashes as underscores) to
# ExternalStatusReason1Code values.
_FAILURE_REASONS = {
    "insufficient_funds": "AM04",
    "insufficient_balance": "AM04",
    "not_enough_balance": "AM04",
    "invalid_account": "AC01",
    "invalid_account_number": "AC01",
    "incorrect_account_number": "AC01",
    "account_not_found": "AC01",
    "account_closed": "AC04",
    "closed_account": "AC04",
    "account_blocked": "AC06",
    "blocked_account": "AC06",
    "duplicate": "AM05",
    "duplicate_payment": "AM05",
    "invalid_amount": "AM02",
    "amount_limit_exceeded": "AM02",
    "limit_exceeded": "AM02",
    "deny": "AG01",
    "denied": "AG01",
    "declined": "AG01",
    "card_declined": "AG01",
    "do_not_honor": "AG01",
    "transaction_forbidden": "AG01",
}
_NARRATIVE_FAILURES = {
    "fraud": "Refused as suspected fraud",
    "fraud_deny": "Refused as suspected fraud",
    "suspected_fraud": "Refused as suspected fraud",
    "expire": "Payment expired before it was completed",
    "expired": "Payment expired before it was completed",
    "cancel": "Payment cancelled",
    "canceled": "Payment cancelled",
    "cancelled": "Payment cancelled",
}
# A failure code that already is an ISO external status reason code (AM04, AC01, NARR, ...) is kept as is.
_ISO_REASON = re.compile(r"[A-Z]{2}[0-9]{2}|NARR|DUPL")


def failure_reason(failure_code: str | None) -> tuple[str, str | None]:
    """(ExternalStatusReason1Code, narrative or None) for a failed payment's failure code."""
    if not failure_code:
        return NARR, "Payment failed"
    text = failure_code.strip()
    if _ISO_REASON.fullmatch(text):
        return text, None
    key = re.sub(r"[\s\-]+", "_", text.lower())
    if key in _FAILURE_REASONS:
        return _FAILURE_REASONS[key], None
    if key in _NARRATIVE_FAILURES:
        return NARR, _NARRATIVE_FAILURES[key]
    return NARR, f"Payment failed: {text}"


def payment_status_detail(status: str, failure_code: str | None = None) -> StatusDetail:
    """The pain.002 transaction status of one payment, with reason code and narrative."""
    normalized = (status or "").strip().lower()
    if normalized in _SUCCESS:
        return StatusDetail(ACSC)
    if normalized in _IN_PROCESS:
        return StatusDetail(ACSP)
    if normalized in _NOT_KNOWN_YET:
        return StatusDetail(PDNG)
    if normalized in _EXPIRED:
        if failure_code:
            code, info = failure_reason(failure_code)
            return StatusDetail(RJCT, code, info)
        return StatusDetail(RJCT, NARR, "Payment expired before it was completed")
    if normalized in _FAILED:
        code, info = failure_reason(failure_code or (normalized if normalized != "failed" else None))
        return StatusDetail(RJCT, code, info)
    raise ValueError(f"unknown payment status {status!r}")


def payment_status_to_pain002(status: str, failure_code: str | None = None) -> tuple[str, str | None]:
    """(TxSts code, StsRsnInf reason code or None) for a payment status: what the inbound webhook work stores.

    >>> payment_status_to_pain002("succeeded")
    ('ACSC', None)
    >>> payment_status_to_pain002("failed", "INSUFFICIENT_BALANCE")
    ('RJCT', 'AM04')
    """
    detail = payment_status_detail(status, failure_code)
    return detail.code, detail.reason_code


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
