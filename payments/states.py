"""The payment state machine: the ONE transitions table every writer checks.

    initiating ──► pending ──► succeeded ──► partially_refunded ──► refunded
        │  │          │  │         ▲  └───────────────────────────────►┘
        │  └► unknown ┤  └► failed ┤
        │             │            │
        └─────────────┴──► expired ┘

- From an open status (initiating, pending, unknown) a payment may end succeeded, failed or expired.
- `failed` and `expired` may still become `succeeded`: when the gateway later reports money received, the money is
  never refused (it is applied to the invoice, or recorded as overpayment when the invoice is closed).
- Nothing else moves backwards: a late EXPIRED or FAILED after a success changes nothing; a late PENDING after
  anything but initiating/unknown changes nothing (out-of-order delivery).
"""

from __future__ import annotations

from payments.models import OPEN_STATUSES, PaymentStatus

S = PaymentStatus

TRANSITIONS: dict[str, frozenset[str]] = {
    S.INITIATING: frozenset({S.PENDING, S.UNKNOWN, S.SUCCEEDED, S.FAILED, S.EXPIRED}),
    S.UNKNOWN: frozenset({S.PENDING, S.SUCCEEDED, S.FAILED, S.EXPIRED}),
    S.PENDING: frozenset({S.SUCCEEDED, S.FAILED, S.EXPIRED}),
    S.FAILED: frozenset({S.SUCCEEDED}),
    S.EXPIRED: frozenset({S.SUCCEEDED}),
    S.SUCCEEDED: frozenset({S.PARTIALLY_REFUNDED, S.REFUNDED}),
    S.PARTIALLY_REFUNDED: frozenset({S.REFUNDED}),
    S.REFUNDED: frozenset(),
}

# The outbound event recorded when a payment enters a status.
STATUS_EVENTS: dict[str, str] = {
    S.SUCCEEDED: "payment.succeeded",
    S.FAILED: "payment.failed",
}


def can_transition(current: str, target: str) -> bool:
    return target in TRANSITIONS[current]


def is_open(status: str) -> bool:
    return status in OPEN_STATUSES
