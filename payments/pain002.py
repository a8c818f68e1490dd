"""The pain.002 status of a payment (ISO 20022 TxSts + reason code), from its status and failure code.

Pure functions, no database. The payments app stores the result on every status change (`Payment.pain002_status`
/ `pain002_reason`, shown as `iso20022_status` / `iso20022_reason`); `iso20022.statuses` builds the installment and
group statuses of the pain.002 report on top of it. The mapping and its reasons: docs/adr/0009-iso20022-messages.md.

| payment status                                        | TxSts | reason                                     |
| ----------------------------------------------------- | ----- | ------------------------------------------ |
| `succeeded`, `refunded`, `partially_refunded`         | ACSC  | (a refund is a separate money movement)    |
| `pending` (accepted by the gateway, waiting for the customer's money) | ACSP |                        |
| `initiating`, `unknown` (outcome not known yet)       | PDNG  |                                            |
| `failed`                                              | RJCT  | gateway failure code mapped (AM04, AC01, ...), else NARR |
| `expired`                                             | RJCT  | NARR "expired"                             |
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ACSC = "ACSC"  # accepted, settlement completed
ACSP = "ACSP"  # accepted, settlement in process
PDNG = "PDNG"  # pending
RJCT = "RJCT"  # rejected

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
    """(TxSts code, StsRsnInf reason code or None) for a payment status: what a payment stores at every status
    change (`Payment.pain002_status` / `pain002_reason`).

    >>> payment_status_to_pain002("succeeded")
    ('ACSC', None)
    >>> payment_status_to_pain002("failed", "INSUFFICIENT_BALANCE")
    ('RJCT', 'AM04')
    """
    detail = payment_status_detail(status, failure_code)
    return detail.code, detail.reason_code
