"""Builders of pain.001 / pain.002 inputs for tests, and XML reading helpers. No database."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from lxml import etree

from iso20022.types import (
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
from iso20022.validation import validate
from paytrust.money import split_equal
from tests.shared import SHARED_DIR

REPO = Path(__file__).resolve().parents[2]
# The official copies (provenance in SOURCES.md there): tests never validate against the app's own copies.
SHARED_ISO = SHARED_DIR / "iso20022"
SAMPLES = SHARED_ISO / "samples"

INVOICE_ID = "inv_0123456789ABCDEFGHIJabcd"
CREDITOR_ACCOUNT = Account(other_id="1370012345678")
CREDITOR_AGENT = Agent(bic="BMRIIDJA", name="Bank Mandiri")
CREATED = datetime(2026, 11, 1, 8, 30, tzinfo=UTC)

LONG_NAME = "Đặng Thị Hồng Nhung " * 10  # 200 characters
NAMES = [
    "Budi",
    "Đặng Thị Hồng Nhung",
    "Müller-Lüdenscheidt",
    "王小明",
    "Zoë 😀 O’Brien-Łukasz Øster ß",
    LONG_NAME,
]


def valid(document: bytes, message: str | None = None):
    """Validate against the official XSDs in ../shared/iso20022."""
    return validate(document, message=message, schema_dir=SHARED_ISO)


def make_initiation(
    *,
    currency: str = "IDR",
    total_minor: int = 450000,
    installments: int = 1,
    debtor_name: str = "Budi",
    invoice_id: str = INVOICE_ID,
    external_id: str | None = "order-1001",
    debtor_account: Account | None = None,
    debtor_agent: Agent | None = None,
    creditor_account: Account | None = CREDITOR_ACCOUNT,
    creditor_agent: Agent | None = CREDITOR_AGENT,
    amounts: list[int] | None = None,
) -> PaymentInitiation:
    amounts = amounts or split_equal(total_minor, installments)
    first_due = date(2026, 12, 1)
    instructions = tuple(
        PaymentInstruction(
            payment_information_id=f"{invoice_id}-P{number}",
            requested_execution_date=first_due + timedelta(days=30 * (number - 1)),
            transactions=(
                CreditTransfer(
                    end_to_end_id=f"{invoice_id}-{number}",
                    amount_minor=amount,
                    currency=currency,
                    remittance_information=f"{invoice_id} {external_id or ''} {number}/{len(amounts)}",
                ),
            ),
        )
        for number, amount in enumerate(amounts, start=1)
    )
    return PaymentInitiation(
        message_id=f"{invoice_id}-M1",
        created_at=CREATED,
        initiating_party=Party(name="Acme Trading"),
        debtor=Party(name=debtor_name, email="customer@example.com", phone="+62 812-3456-7890"),
        creditor=Party(name="Acme Trading", country="ID"),
        instructions=instructions,
        debtor_account=debtor_account,
        debtor_agent=debtor_agent,
        creditor_account=creditor_account,
        creditor_agent=creditor_agent,
    )


def make_report(initiation: PaymentInitiation, statuses: list[tuple], *, group_status: str) -> StatusReport:
    """A report on `initiation`; statuses[i] = (code, reason, info) for the i-th transaction."""
    instructions = []
    for instruction, (code, reason, info) in zip(initiation.instructions, statuses, strict=True):
        (tx,) = instruction.transactions
        instructions.append(
            PaymentInstructionStatus(
                original_payment_information_id=instruction.payment_information_id,
                status=code,
                transactions=(
                    TransactionStatus(
                        original_end_to_end_id=tx.end_to_end_id,
                        status=code,
                        amount_minor=tx.amount_minor,
                        currency=tx.currency,
                        requested_execution_date=instruction.requested_execution_date,
                        reason_code=reason,
                        additional_information=info,
                    ),
                ),
            )
        )
    return StatusReport(
        message_id="S20261101083000-TEST",
        created_at=CREATED + timedelta(days=1),
        original_message_id=initiation.message_id,
        original_message_name_id="pain.001.001.09",
        original_created_at=initiation.created_at,
        group_status=group_status,
        instructions=tuple(instructions),
        initiating_party=Party(name="PayTrust"),
    )


def parse(document: bytes):
    return etree.fromstring(document)


def ns(document_root) -> dict[str, str]:
    return {"p": etree.QName(document_root).namespace}


def texts(root, path: str) -> list[str]:
    return [str(e) if isinstance(e, str) else e.text for e in root.xpath(path, namespaces=ns(root))]


def text(root, path: str) -> str:
    (value,) = texts(root, path)
    return value


def decimal_sum(values: list[str]) -> Decimal:
    return sum((Decimal(value) for value in values), Decimal(0))
