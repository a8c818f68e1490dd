"""Writes for payments, one module per use case (docs/adr/0030-payment-initiation-and-reconciliation.md):

- initiation.py: `payment_initiate` (three phases; the gateway is called outside any transaction)
- application.py: `payment_apply_gateway_status`, the ONE code path that applies a gateway's word about a payment
  (inbound webhooks and reconciliation both use it) and hands money received to `invoice_apply_payment`
- gateway_refunds.py: `refund_record`, the refunds and chargebacks a gateway reports (called by application.py;
  docs/adr/0032-gateway-reported-refunds.md)
- refunds.py: `refund_create` (our refunds: API and admin; three phases) and `refund_apply_result`, the one code
  path for a gateway's answer about one of our refunds; refund_settlement.py: what succeeded/failed write (shared
  with gateway_refunds.py); refund_reconciliation.py: `refunds_reconcile`, pending refunds asked with get_refund
  (docs/adr/0046-refunds.md)
- reconciliation.py: `payment_reconcile`, `payments_reconcile`, `payments_to_reconcile`,
  `payments_reconcile_queue` (the admin's action: jobs, not gateway calls), `payment_close_at_gateway`
- authorization.py: what entering / leaving `authorized` does (hold fields, ledger, events), for application.py
- capture.py: `payment_capture`, `payment_void` (two phases; docs/adr/0047-authorize-and-capture.md) and
  `authorization_settle` (reconciliation of authorized payments: lapsed holds, voided invoices, lost answers)
- completion.py: `payment_complete_approved` (the one call that collects a payment the customer approved at the
  gateway, PayPal; exactly once: a mark under the payment's lock, like capture.py; docs/adr/0051-paypal.md)
- voiding.py: `invoice_void_closing_payments` (the API's and the admin's void: the invoice, then its open payments)
- expiry.py: `invoices_expire_overdue`, `invoice_expire_with_payments` (the expiry job, the command, the admin)

This layer orchestrates invoices: it calls `invoices.services` and passes each invoice event's `payments` list,
which it renders (`payments.selectors`) in the same transaction.

Row locks, in the order every writer takes them: a payment, then its invoice (application; void locks all the
invoice's open payments, by id, then the invoice). Initiation locks the invoice first and then the open payment,
but both with NOWAIT (409 `payment_in_progress` instead of waiting), so it never waits while holding the invoice.
The invoice expiry job locks only the invoice, skipping it if locked; phase 3 of initiation and reconciliation's
bookkeeping lock only the payment.
"""

from payments.services.application import (
    ApplyOutcome,
    GatewayStatusUpdate,
    PaymentNotFoundForGateway,
    payment_apply_gateway_status,
)
from payments.services.capture import payment_capture, payment_void
from payments.services.completion import payment_complete_approved
from payments.services.expiry import invoice_expire_with_payments, invoices_expire_overdue
from payments.services.initiation import InitiationResult, payment_initiate
from payments.services.reconciliation import (
    ReconcileSummary,
    payment_reconcile,
    payments_reconcile,
    payments_reconcile_queue,
    payments_to_reconcile,
)
from payments.services.refund_reconciliation import refund_reconcile, refunds_reconcile, refunds_to_reconcile
from payments.services.refunds import refund_apply_result, refund_create
from payments.services.voiding import invoice_void_closing_payments, payments_close_for_invoice

__all__ = [
    "ApplyOutcome",
    "GatewayStatusUpdate",
    "InitiationResult",
    "PaymentNotFoundForGateway",
    "ReconcileSummary",
    "invoice_expire_with_payments",
    "invoice_void_closing_payments",
    "invoices_expire_overdue",
    "payment_apply_gateway_status",
    "payment_capture",
    "payment_complete_approved",
    "payment_initiate",
    "payment_reconcile",
    "payment_void",
    "payments_close_for_invoice",
    "payments_reconcile",
    "payments_reconcile_queue",
    "payments_to_reconcile",
    "refund_apply_result",
    "refund_create",
    "refund_reconcile",
    "refunds_reconcile",
    "refunds_to_reconcile",
]
