"""The invoice and installment state machines: the ONE transitions table every writer checks.

    draft ──► pending ──► partially_paid ──► paid
      │          │   └──────────────────────►┘
      │          │              │
      ├──────────┴──────────────┴──► expired     (expires_at passed with money still due)
      │                                 └──► partially_paid / paid   (money paid before the lapse, reported late)
      └──────────┴─────────────────► void        (no money received)

Nothing moves backwards and `paid` and `void` are final: a late "expired" or "failed" gateway event never undoes
`paid`, and money arriving for a closed invoice is recorded as unapplied overpayment (docs/adr/0021). `expired` is
final too, except for money the gateway received at or before the invoice's lapse time and reported after it: it is
applied as if it had arrived in time (only `invoice_apply_payment` does that; docs/adr/0025).
"""

from __future__ import annotations

from datetime import datetime

from invoices.models import OPEN_STATUSES, InstallmentStatus, Invoice, InvoiceStatus
from paytrust.errors import Conflict

S = InvoiceStatus
INVOICE_TRANSITIONS: dict[str, frozenset[str]] = {
    S.DRAFT: frozenset({S.PENDING, S.EXPIRED, S.VOID}),
    S.PENDING: frozenset({S.PARTIALLY_PAID, S.PAID, S.EXPIRED, S.VOID}),
    S.PARTIALLY_PAID: frozenset({S.PAID, S.EXPIRED}),
    S.PAID: frozenset(),
    S.EXPIRED: frozenset({S.PARTIALLY_PAID, S.PAID}),  # only money paid in time, reported late (ADR 0025)
    S.VOID: frozenset(),
}

I = InstallmentStatus  # noqa: E741
INSTALLMENT_TRANSITIONS: dict[str, frozenset[str]] = {
    I.UNPAID: frozenset({I.PARTIALLY_PAID, I.PAID}),
    I.PARTIALLY_PAID: frozenset({I.PAID}),
    I.PAID: frozenset(),
}

# The outbound event emitted when an invoice enters a status.
STATUS_EVENTS: dict[str, str] = {
    S.PENDING: "invoice.pending",
    S.PARTIALLY_PAID: "invoice.partially_paid",
    S.PAID: "invoice.paid",
    S.EXPIRED: "invoice.expired",
    S.VOID: "invoice.voided",
}


def can_transition(current: str, target: str) -> bool:
    return target in INVOICE_TRANSITIONS[current]


def check_transition(current: str, target: str) -> None:
    """Raise 409 `invoice_transition_invalid` unless current -> target is in the table."""
    if not can_transition(current, target):
        raise Conflict(
            f"An invoice that is {current} cannot become {target}.", code="invoice_transition_invalid"
        )


def check_installment_transition(current: str, target: str) -> None:
    if target != current and target not in INSTALLMENT_TRANSITIONS[current]:
        raise Conflict(
            f"An installment that is {current} cannot become {target}.", code="installment_transition_invalid"
        )


def is_overdue(invoice: Invoice, at: datetime) -> bool:
    """Money still expected and the lapse time has passed: the invoice is expired for every reader and writer,
    whether or not the expiry job has written the transition yet (docs/adr/0021)."""
    return invoice.status in OPEN_STATUSES and invoice.lapses_at <= at


def effective_status(invoice: Invoice, at: datetime) -> str:
    return InvoiceStatus.EXPIRED if is_overdue(invoice, at) else invoice.status
