"""Writes for invoices, one module per use case. Every state change: `transaction.atomic()`, `select_for_update()`
re-read, transition check against `invoices.states`, write, outbound event recorded in the same transaction.

- create.py: `invoice_create`, `invoice_create_supplementary` (the API's hot path: one INSERT statement, which
  is also the transaction); the API calls their two halves, `invoice_prepare[_supplementary]` (validate, compute,
  render) and `invoice_insert` (write, with the caller's stored replay as a CTE of the same statement)
- edit.py: `invoice_update` (drafts; metadata in any status)
- state_changes.py: `invoice_void`, and the start of payment collection (`invoice_mark_payment_initiated`,
  `invoice_check_installment_payable`)
- payment_application.py: `invoice_apply_payment` (money received -> installments, overpayment, reporting facts)
- expiry.py: `invoice_expire`

This layer knows no payment. The services whose events carry the invoice representation take its `payments`
list from the caller (the payments app renders it in the same transaction): `invoice_void`, `invoice_expire`,
`invoice_apply_payment`. The payments app is also the one that voids an invoice together with its open gateway
payments (`payments.services.invoice_void_closing_payments`) and runs the expiry job.

Contracts for the payments work (all keyword-only; see each docstring and docs/adr/0023):
    invoice_mark_payment_initiated(*, invoice_id, installment_number=None, nowait=False, now=None) -> PaymentTarget
    invoice_check_installment_payable(*, invoice, installment_number=None) -> Installment
    invoice_apply_payment(*, invoice_id, payment_id, amount_minor, currency, installment_number, paid_at, payments)
        -> PaymentApplicationResult
    invoice_void(*, merchant, mode, invoice_id, payments, now=None) -> Invoice
    invoice_expire(*, invoice_id, payments, now=None) -> bool
    invoices.selectors.invoice_next_payable_installment(*, invoice_id) -> Installment | None
"""

from invoices.services._support import UNSET
from invoices.services.create import (
    NewInvoice,
    invoice_create,
    invoice_create_supplementary,
    invoice_insert,
    invoice_prepare,
    invoice_prepare_supplementary,
)
from invoices.services.edit import invoice_update
from invoices.services.expiry import invoice_expire
from invoices.services.payment_application import PaymentApplicationResult, invoice_apply_payment
from invoices.services.state_changes import (
    PaymentTarget,
    invoice_check_installment_payable,
    invoice_mark_payment_initiated,
    invoice_void,
)

__all__ = [
    "NewInvoice",
    "UNSET",
    "PaymentApplicationResult",
    "PaymentTarget",
    "invoice_apply_payment",
    "invoice_check_installment_payable",
    "invoice_create",
    "invoice_create_supplementary",
    "invoice_expire",
    "invoice_insert",
    "invoice_prepare",
    "invoice_prepare_supplementary",
    "invoice_mark_payment_initiated",
    "invoice_update",
    "invoice_void",
]
