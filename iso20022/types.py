"""Inputs of the pain.001 / pain.002 builders: plain dataclasses, independent of the Django models.

`iso20022.exports` maps invoices (and their payments) onto these; the builders in `iso20022.builders` turn them
into XML. Amounts are integer minor units plus an ISO 4217 code, as everywhere else in PayTrust: the builders
format them with `paytrust.money.format_amount`, so the currency's exponent decides the decimals.

Free text (names, remittance information) may be any Unicode: the builders transliterate and cut it to the
schema limits (`iso20022.text`). Identifiers (message, payment-information and end-to-end ids) are NOT rewritten:
they must already be 1-35 printable ASCII characters, or the builder raises `Iso20022InputError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

PAIN001_V09 = "pain.001.001.09"
PAIN001_V03 = "pain.001.001.03"
PAIN002_V10 = "pain.002.001.10"
PAIN002_V03 = "pain.002.001.03"


class Iso20022InputError(ValueError):
    """The builder input cannot become a valid message (a programming error in the caller, not bad user input)."""


@dataclass(frozen=True)
class Party:
    """A debtor, creditor or initiating party. `email`/`phone` go into CtctDtls when representable."""

    name: str
    email: str | None = None
    phone: str | None = None
    country: str | None = None  # ISO 3166 alpha-2 -> PstlAdr/Ctry


@dataclass(frozen=True)
class Account:
    """A cash account: an IBAN, or another identifier (a domestic account number). Both empty = not provided."""

    iban: str | None = None
    other_id: str | None = None


@dataclass(frozen=True)
class Agent:
    """A financial institution: a BIC, or at least a name. Both empty = not provided."""

    bic: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class CreditTransfer:
    """One CdtTrfTxInf: one installment (or the whole invoice)."""

    end_to_end_id: str
    amount_minor: int
    currency: str
    remittance_information: str | None = None
    instruction_id: str | None = None


@dataclass(frozen=True)
class PaymentInstruction:
    """One PmtInf block: the transactions that share a requested execution date."""

    payment_information_id: str
    requested_execution_date: date
    transactions: tuple[CreditTransfer, ...]


@dataclass(frozen=True)
class PaymentInitiation:
    """A whole pain.001 message (CstmrCdtTrfInitn)."""

    message_id: str
    created_at: datetime
    initiating_party: Party
    debtor: Party
    creditor: Party
    instructions: tuple[PaymentInstruction, ...]
    debtor_account: Account | None = None
    debtor_agent: Agent | None = None
    creditor_account: Account | None = None
    creditor_agent: Agent | None = None
    charge_bearer: str | None = "SHAR"  # DEBT | CRED | SHAR | SLEV, or None to leave ChrgBr out

    @property
    def transactions(self) -> tuple[CreditTransfer, ...]:
        return tuple(tx for instruction in self.instructions for tx in instruction.transactions)


@dataclass(frozen=True)
class TransactionStatus:
    """One TxInfAndSts of a pain.002: the status of one original CdtTrfTxInf."""

    original_end_to_end_id: str
    status: str  # ACSC, ACSP, PDNG, RJCT, ...
    amount_minor: int  # the original instructed amount (OrgnlTxRef/Amt/InstdAmt)
    currency: str
    requested_execution_date: date | None = None
    reason_code: str | None = None  # StsRsnInf/Rsn/Cd (AM04, AC01, NARR, ...)
    additional_information: str | None = None  # StsRsnInf/AddtlInf


@dataclass(frozen=True)
class PaymentInstructionStatus:
    """One OrgnlPmtInfAndSts of a pain.002."""

    original_payment_information_id: str
    status: str  # PmtInfSts
    transactions: tuple[TransactionStatus, ...]


@dataclass(frozen=True)
class StatusReport:
    """A whole pain.002 message (CstmrPmtStsRpt) about one pain.001."""

    message_id: str
    created_at: datetime
    original_message_id: str
    original_message_name_id: str  # "pain.001.001.09"
    original_created_at: datetime | None
    group_status: str  # GrpSts
    instructions: tuple[PaymentInstructionStatus, ...]
    initiating_party: Party | None = None
    group_reason_code: str | None = None
    group_additional_information: str | None = None

    @property
    def transactions(self) -> tuple[TransactionStatus, ...]:
        return tuple(tx for instruction in self.instructions for tx in instruction.transactions)
