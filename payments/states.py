"""The payment state machine: the ONE transitions table every writer checks.

    initiating ──► pending ──► succeeded ──► partially_refunded ──► refunded
        │  │          │  │         ▲  └───────────────────────────────►┘
        │  └► unknown ┤  └► failed ┤
        │             │            │
        │             ├──► expired ┘
        │             │       ▲
        └─────────────┴► authorized ──► succeeded (captured) / canceled (voided) / expired (not captured in time)
                                    └─► failed

- From an open status (initiating, pending, unknown, authorized) a payment may end succeeded, failed or expired.
- `authorized` (capture_method "manual", docs/adr/0047): the gateway holds the money; a capture makes it
  `succeeded` (with what was captured), a void `canceled`, a hold not captured by `capture_before` `expired`.
  `canceled` is final. An open payment whose authorization the gateway reports voided before we saw it
  authorized (a missed notification) may become `canceled` directly.
- `failed` and `expired` may still become `succeeded`: when the gateway later reports money received, the money is
  never refused (it is applied to the invoice, or recorded as overpayment when the invoice is closed).
- Nothing else moves backwards: a late EXPIRED or FAILED after a success changes nothing; a late PENDING after
  anything but initiating/unknown changes nothing (out-of-order delivery); a late AUTHORIZED after a capture or
  a void changes nothing.
"""

from __future__ import annotations

from payments.models import OPEN_STATUSES, PaymentStatus

S = PaymentStatus

TRANSITIONS: dict[str, frozenset[str]] = {
    S.INITIATING: frozenset(
        {S.PENDING, S.UNKNOWN, S.AUTHORIZED, S.SUCCEEDED, S.FAILED, S.EXPIRED, S.CANCELED}
    ),
    S.UNKNOWN: frozenset({S.PENDING, S.AUTHORIZED, S.SUCCEEDED, S.FAILED, S.EXPIRED, S.CANCELED}),
    S.PENDING: frozenset({S.AUTHORIZED, S.SUCCEEDED, S.FAILED, S.EXPIRED, S.CANCELED}),
    S.AUTHORIZED: frozenset({S.SUCCEEDED, S.CANCELED, S.EXPIRED, S.FAILED}),
    S.FAILED: frozenset({S.SUCCEEDED}),
    S.EXPIRED: frozenset({S.SUCCEEDED}),
    S.SUCCEEDED: frozenset({S.PARTIALLY_REFUNDED, S.REFUNDED}),
    S.PARTIALLY_REFUNDED: frozenset({S.REFUNDED}),
    S.REFUNDED: frozenset(),
    S.CANCELED: frozenset(),
}

# The outbound event recorded when a payment enters a status.
STATUS_EVENTS: dict[str, str] = {
    S.AUTHORIZED: "payment.authorized",
    S.SUCCEEDED: "payment.succeeded",
    S.FAILED: "payment.failed",
    S.CANCELED: "payment.canceled",
}

# Recorded when an authorization lapses uncaptured (authorized -> expired; payments/services/capture.py). A
# checkout that lapses unpaid has no payment event (the invoice's own events tell the merchant).
AUTHORIZATION_EXPIRED_EVENT = "payment.expired"


def can_transition(current: str, target: str) -> bool:
    return target in TRANSITIONS[current]


def is_open(status: str) -> bool:
    return status in OPEN_STATUSES
