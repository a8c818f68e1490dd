"""Invoices -> pain.001 / pain.002 inputs, and the two documents the API serves. Reads only; writes nothing.

Identifiers (docs/adr/0009-iso20022-messages.md):
- EndToEndId `{invoice id}-{installment number}` and PmtInfId `{invoice id}-P{number}`: stable per installment.
- pain.001 MsgId `{invoice id}-{fingerprint}`: the fingerprint is a hash of the message's business content, so
  downloading the same instruction twice gives the same message (a bank's duplicate check then protects the
  customer from paying twice) while any change to a draft gives a new MsgId. CreDtTm is the moment the invoice
  was frozen (payment_initiated_at), or its last change while it is a draft: the document is reproducible and
  the pain.002 can name its OrgnlMsgId and OrgnlCreDtTm without storing exports.
- pain.002 MsgId: new for every report (a report is a snapshot taken now).

Payments are read through `payments.selectors.invoice_payments` (the same data as the invoice object's
`payments`, oldest first): each payment's `installment`, `status` and `failure_code`. Without payments the
statuses come from the installments alone.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import logging
import secrets
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from django.utils import timezone

from invoices.models import Installment, Invoice
from invoices.selectors import invoice_get
from invoices.states import effective_status
from merchants.models import Merchant
from payments.selectors import invoice_payments
from paytrust.errors import API, ApplicationError

from .builders import build_pain001, build_pain002
from .statuses import group_status, installment_status_detail, payment_status_detail
from .types import (
    PAIN001_V09,
    PAIN002_V10,
    Account,
    Agent,
    CreditTransfer,
    Party,
    PaymentInitiation,
    PaymentInstruction,
    PaymentInstructionStatus,
    StatusReport,
    TransactionStatus,
)
from .validation import Iso20022ValidationError, assert_valid

logger = logging.getLogger("paytrust.iso20022")

ID_MAX = 35
REPORTING_PARTY = "PayTrust"


class DocumentInvalid(ApplicationError):
    """A generated document failed XSD validation: a bug on our side. Logged; never served."""

    status_code = 500
    error_type = API
    code = "iso20022_document_invalid"
    default_message = "The ISO 20022 document could not be generated. The error has been logged."


def _bounded(text: str) -> str:
    """`text` if it fits Max35Text, else its head plus a hash of the whole (still deterministic and unique)."""
    if len(text) <= ID_MAX:
        return text
    digest = base64.b32encode(hashlib.sha256(text.encode()).digest()).decode()[:8]
    return f"{text[: ID_MAX - 9]}-{digest}"


def end_to_end_id(invoice_id: str, number: int) -> str:
    return _bounded(f"{invoice_id}-{number}")


def payment_information_id(invoice_id: str, number: int) -> str:
    return _bounded(f"{invoice_id}-P{number}")


def _fingerprint(initiation: PaymentInitiation) -> str:
    content = dataclasses.asdict(initiation)
    content.pop("message_id")
    content.pop("created_at")
    canonical = json.dumps(content, sort_keys=True, default=str, ensure_ascii=True)
    return base64.b32encode(hashlib.sha256(canonical.encode()).digest()).decode()[:6]


def _remittance(invoice: Invoice, number: int, count: int) -> str:
    parts = [invoice.id]
    if invoice.external_id:
        parts.append(invoice.external_id)
    if count > 1:
        parts.append(f"installment {number}/{count}")
    return " ".join(parts)


def _merchant_party(merchant: Merchant) -> Party:
    return Party(name=merchant.legal_name or merchant.name, country=merchant.country or None)


def payment_initiation_for(
    invoice: Invoice, installments: Sequence[Installment], merchant: Merchant
) -> PaymentInitiation:
    """The pain.001 content of an invoice: one PmtInf + CdtTrfTxInf per installment (due dates differ)."""
    installments = sorted(installments, key=lambda row: row.number)
    if not installments or sum(row.amount_minor for row in installments) != invoice.total_minor:
        raise RuntimeError(f"invoice {invoice.id}: installments do not add up to the total")
    count = len(installments)
    instructions = tuple(
        PaymentInstruction(
            payment_information_id=payment_information_id(invoice.id, row.number),
            requested_execution_date=row.due_date,
            transactions=(
                CreditTransfer(
                    end_to_end_id=end_to_end_id(invoice.id, row.number),
                    amount_minor=row.amount_minor,
                    currency=invoice.currency,
                    remittance_information=_remittance(invoice, row.number, count),
                ),
            ),
        )
        for row in installments
    )
    draft = PaymentInitiation(
        message_id="pending",
        created_at=invoice.payment_initiated_at or invoice.updated_at,
        initiating_party=_merchant_party(merchant),
        debtor=Party(
            name=invoice.customer_name,
            email=invoice.customer_email or None,
            phone=invoice.customer_phone or None,
        ),
        creditor=_merchant_party(merchant),
        instructions=instructions,
        # The customer's bank account is unknown to PayTrust: the builder writes NOTPROVIDED.
        debtor_account=None,
        debtor_agent=None,
        creditor_account=Account(
            iban=merchant.account_iban or None, other_id=merchant.account_number or None
        ),
        creditor_agent=Agent(bic=merchant.bank_bic or None, name=merchant.bank_name or None),
    )
    return dataclasses.replace(draft, message_id=_bounded(f"{invoice.id}-{_fingerprint(draft)}"))


def _payment_states(
    invoice: Invoice, installments: Sequence[Installment]
) -> dict[int, list[tuple[str, str | None]]]:
    """{installment number: [(status, failure_code), ...] oldest first} from the invoice's payment objects
    (`payments.selectors.invoice_payments`, oldest first).
    A status this module does not know is reported as "unknown" (PDNG) and logged, rather than failing the report.
    """
    payments = invoice_payments(invoice_id=invoice.id)
    only = installments[0].number if len(installments) == 1 else None
    by_number: dict[int, list[tuple[str, str | None]]] = {}
    for payment in payments:
        if not isinstance(payment, Mapping) or not payment.get("status"):
            continue
        number = payment.get("installment", only)
        if isinstance(number, bool) or not isinstance(number, int):
            continue
        status = str(payment["status"])
        failure = payment.get("failure_code") or None
        try:
            payment_status_detail(status, failure)
        except ValueError:
            logger.warning(
                "payment %s has status %r unknown to the pain.002 mapping", payment.get("id"), status
            )
            status, failure = "unknown", None
        by_number.setdefault(number, []).append((status, failure))
    return by_number


def _new_report_id(now: datetime) -> str:
    token = base64.b32encode(secrets.token_bytes(10)).decode()[:12]
    return f"S{now.astimezone(UTC).strftime('%Y%m%d%H%M%S')}-{token}"


def status_report_for(
    invoice: Invoice,
    installments: Sequence[Installment],
    merchant: Merchant,
    *,
    now: datetime,
    payment_states: Mapping[int, Sequence[tuple[str, str | None]]] | None = None,
) -> StatusReport:
    """The pain.002.001.10 content: the status of each installment's credit transfer, the group's, per PmtInf."""
    initiation = payment_initiation_for(invoice, installments, merchant)
    installments = sorted(installments, key=lambda row: row.number)
    if payment_states is None:
        payment_states = _payment_states(invoice, installments)
    invoice_status = effective_status(invoice, now)
    blocks: list[PaymentInstructionStatus] = []
    codes: list[str] = []
    received: list[bool] = []
    for row, instruction in zip(installments, initiation.instructions, strict=True):
        detail = installment_status_detail(
            amount_minor=row.amount_minor,
            amount_paid_minor=row.amount_paid_minor,
            currency=invoice.currency,
            payments=payment_states.get(row.number, ()),
            invoice_status=invoice_status,
        )
        money = row.amount_paid_minor > 0
        codes.append(detail.code)
        received.append(money)
        (tx,) = instruction.transactions
        blocks.append(
            PaymentInstructionStatus(
                original_payment_information_id=instruction.payment_information_id,
                status=group_status([detail.code], money_received=[money]),
                transactions=(
                    TransactionStatus(
                        original_end_to_end_id=tx.end_to_end_id,
                        status=detail.code,
                        amount_minor=tx.amount_minor,
                        currency=tx.currency,
                        requested_execution_date=instruction.requested_execution_date,
                        reason_code=detail.reason_code,
                        additional_information=detail.additional_information,
                    ),
                ),
            )
        )
    return StatusReport(
        message_id=_new_report_id(now),
        created_at=now,
        original_message_id=initiation.message_id,
        original_message_name_id=PAIN001_V09,
        original_created_at=initiation.created_at,
        group_status=group_status(codes, money_received=received),
        instructions=tuple(blocks),
        initiating_party=Party(name=REPORTING_PARTY),
    )


def _checked(document: bytes, *, message: str, invoice_id: str) -> bytes:
    """Validate against the shipped XSDs before serving: an invalid document is a bug, never a response."""
    try:
        assert_valid(document, message=message)
    except Iso20022ValidationError as exc:
        logger.error("invalid %s for %s: %s", message, invoice_id, exc.errors[:5])
        raise DocumentInvalid()
    return document


def _load(*, merchant: Merchant, mode: str, invoice_id: str) -> tuple[Invoice, list[Installment]]:
    invoice = invoice_get(merchant=merchant, mode=mode, invoice_id=invoice_id, related=False)
    installments = list(Installment.objects.filter(invoice=invoice).order_by("number"))
    return invoice, installments


def invoice_payment_initiation(
    *, merchant: Merchant, mode: str, invoice_id: str, message: str = PAIN001_V09
) -> bytes:
    """The pain.001 document of the caller's invoice (404 for anyone else's)."""
    invoice, installments = _load(merchant=merchant, mode=mode, invoice_id=invoice_id)
    initiation = payment_initiation_for(invoice, installments, merchant)
    return _checked(build_pain001(initiation, message=message), message=message, invoice_id=invoice.id)


def invoice_payment_status(
    *, merchant: Merchant, mode: str, invoice_id: str, message: str = PAIN002_V10, now: datetime | None = None
) -> bytes:
    """The pain.002 status report of the caller's invoice (404 for anyone else's)."""
    invoice, installments = _load(merchant=merchant, mode=mode, invoice_id=invoice_id)
    report = status_report_for(invoice, installments, merchant, now=now or timezone.now())
    return _checked(build_pain002(report, message=message), message=message, invoice_id=invoice.id)
