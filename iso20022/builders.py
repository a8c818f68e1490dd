"""pain.001 (customer credit transfer initiation) and pain.002 (customer payment status report) builders.

Pure functions from the dataclasses in `iso20022.types` to UTF-8 XML bytes, built with lxml in the exact element
order of the official XSDs (every content model is an xs:sequence). No database access here.

Choices that are not dictated by the schemas are recorded in docs/adr/0009-iso20022-messages.md:
- party and agent names are cut to 70 characters (the EPC/SEPA limit; the base schemas allow 140);
- a missing debtor account or debtor agent (both mandatory in PmtInf) is written as `Othr/Id` "NOTPROVIDED";
- free text is transliterated to printable ASCII (`iso20022.text`);
- amounts are formatted with the currency's own exponent (`paytrust.money.format_amount`), never floats.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, date, datetime

from lxml import etree

from paytrust.money import CURRENCIES, format_amount

from .text import clean_text, format_phone
from .types import (
    PAIN001_V03,
    PAIN001_V09,
    PAIN002_V03,
    PAIN002_V10,
    Account,
    Agent,
    CreditTransfer,
    Iso20022InputError,
    Party,
    PaymentInitiation,
    StatusReport,
    TransactionStatus,
)

NAMESPACE_PREFIX = "urn:iso:std:iso:20022:tech:xsd:"
PAIN001_MESSAGES = (PAIN001_V09, PAIN001_V03)
PAIN002_MESSAGES = (PAIN002_V10, PAIN002_V03)

NOT_PROVIDED = "NOTPROVIDED"
NAME_MAX = 70  # Nm: Max140Text in the schemas; 70 keeps EPC/SEPA-style profiles happy too
ID_MAX = 35  # Max35Text: MsgId, PmtInfId, EndToEndId, InstrId, FinInstnId/Othr/Id
ACCOUNT_ID_MAX = 34  # Max34Text: Othr/Id of an account
REMITTANCE_MAX = 140  # Max140Text: RmtInf/Ustrd
ADDITIONAL_INFO_MAX = 105  # Max105Text: StsRsnInf/AddtlInf
EMAIL_MAX = 2048  # Max2048Text

CHARGE_BEARERS = frozenset({"DEBT", "CRED", "SHAR", "SLEV"})
# pain.002.001.03 has closed code lists (pain.002.001.10 takes any 1-4 character external code).
V03_GROUP_STATUSES = frozenset({"ACTC", "RCVD", "PART", "RJCT", "PDNG", "ACCP", "ACSP", "ACSC", "ACWC"})
V03_TRANSACTION_STATUSES = frozenset({"ACTC", "RJCT", "PDNG", "ACCP", "ACSP", "ACSC", "ACWC"})
# Canonical order of NbOfTxsPerSts entries: settled first, then in process, pending, rejected, the rest by name.
_STATUS_ORDER = {"ACSC": 0, "ACCC": 1, "ACSP": 2, "ACCP": 3, "ACTC": 4, "PDNG": 5, "RJCT": 6}

_IBAN = re.compile(r"[A-Z]{2}[0-9]{2}[a-zA-Z0-9]{1,30}")
_BIC_V09 = re.compile(r"[A-Z0-9]{4}[A-Z]{2}[A-Z0-9]{2}([A-Z0-9]{3})?")  # BICFIDec2014Identifier
_BIC_V03 = re.compile(r"[A-Z]{6}[A-Z2-9][A-NP-Z0-9]([A-Z0-9]{3})?")  # BICIdentifier (stricter)
_COUNTRY = re.compile(r"[A-Z]{2}")
_STATUS_CODE = re.compile(r"[A-Z0-9]{1,4}")
# An identifier: 1-35 printable ASCII characters, no space at either end.
_IDENTIFIER = re.compile(r"[\x21-\x7e]([\x20-\x7e]{0,33}[\x21-\x7e])?")


# --- small helpers -------------------------------------------------------------------------------------------


class _Doc:
    """Element factory bound to one message's namespace."""

    def __init__(self, message: str) -> None:
        self.namespace = NAMESPACE_PREFIX + message
        self.root = etree.Element(f"{{{self.namespace}}}Document", nsmap={None: self.namespace})

    def sub(self, parent, tag: str, text: str | None = None, **attrib: str):
        element = etree.SubElement(parent, f"{{{self.namespace}}}{tag}", attrib)
        if text is not None:
            element.text = text
        return element

    def tostring(self) -> bytes:
        body = etree.tostring(self.root, encoding="UTF-8", xml_declaration=False, pretty_print=True)
        return b'<?xml version="1.0" encoding="UTF-8"?>\n' + body


def _identifier(value: str, what: str) -> str:
    if not isinstance(value, str) or not _IDENTIFIER.fullmatch(value):
        raise Iso20022InputError(f"{what} must be 1-35 printable ASCII characters, got {value!r}")
    return value


def _datetime(value: datetime, what: str) -> str:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise Iso20022InputError(f"{what} must be a timezone-aware datetime")
    return value.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def _date(value: date, what: str) -> str:
    if not isinstance(value, date) or isinstance(value, datetime):
        raise Iso20022InputError(f"{what} must be a date")
    return value.isoformat()


def _currency(transactions: Iterable[CreditTransfer | TransactionStatus]) -> str:
    currencies = {tx.currency for tx in transactions}
    if len(currencies) != 1:
        # Amounts of different currencies are never added together (CtrlSum is one number).
        raise Iso20022InputError(f"all transactions must share one currency, got {sorted(currencies)}")
    currency = currencies.pop()
    if currency not in CURRENCIES:
        raise Iso20022InputError(f"unknown currency {currency!r}")
    return currency


def _amount(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise Iso20022InputError(f"{what} must be a non-negative int of minor units, got {value!r}")
    return value


def _unique(values: list[str], what: str) -> None:
    duplicates = [value for value, count in Counter(values).items() if count > 1]
    if duplicates:
        raise Iso20022InputError(f"{what} must be unique within the message, repeated: {duplicates}")


def normalize_iban(value: str | None) -> str | None:
    """The IBAN without spaces, upper case, if it has the schema's IBAN shape; else None."""
    if not value:
        return None
    text = "".join(value.split()).upper()
    return text if _IBAN.fullmatch(text) else None


def normalize_bic(value: str | None, *, message: str) -> str | None:
    """The BIC if it matches the message version's pattern (.03's BICIdentifier is stricter); else None."""
    if not value:
        return None
    text = "".join(value.split()).upper()
    pattern = _BIC_V03 if message in (PAIN001_V03, PAIN002_V03) else _BIC_V09
    return text if pattern.fullmatch(text) else None


def _country(value: str | None) -> str | None:
    if not value:
        return None
    text = value.strip().upper()
    return text if _COUNTRY.fullmatch(text) else None


def _party(doc: _Doc, parent, tag: str, party: Party, *, contact: bool) -> None:
    """PartyIdentification135 (.09) / PartyIdentification32 (.03): Nm, PstlAdr, Id, CtryOfRes, CtctDtls."""
    element = doc.sub(parent, tag)
    doc.sub(element, "Nm", clean_text(party.name, NAME_MAX, fallback=NOT_PROVIDED))
    country = _country(party.country)
    if country:
        address = doc.sub(element, "PstlAdr")
        doc.sub(address, "Ctry", country)
    if contact:
        phone = format_phone(party.phone)
        email = clean_text(party.email, EMAIL_MAX)
        if email and "@" not in email:
            email = None
        if phone or email:
            # Contact4 (.09) and ContactDetails2 (.03) share this order: NmPrfx, Nm, PhneNb, MobNb, FaxNb, EmailAdr.
            details = doc.sub(element, "CtctDtls")
            if phone:
                doc.sub(details, "PhneNb", phone)
            if email:
                doc.sub(details, "EmailAdr", email)


def _account(doc: _Doc, parent, tag: str, account: Account | None) -> None:
    """CashAccount38 / CashAccount16: Id is a choice of IBAN or Othr/Id (Max34Text)."""
    element = doc.sub(parent, tag)
    identification = doc.sub(element, "Id")
    iban = normalize_iban(account.iban) if account else None
    if iban:
        doc.sub(identification, "IBAN", iban)
        return
    other = clean_text(account.other_id if account else None, ACCOUNT_ID_MAX, fallback=NOT_PROVIDED)
    doc.sub(doc.sub(identification, "Othr"), "Id", other)


def _agent(doc: _Doc, parent, tag: str, agent: Agent | None, *, message: str, required: bool) -> None:
    """BranchAndFinancialInstitutionIdentification6 / 4: FinInstnId with BICFI|BIC, Nm, else Othr/Id."""
    bic = normalize_bic(agent.bic, message=message) if agent else None
    name = clean_text(agent.name, NAME_MAX) if agent else None
    if not (bic or name or required):
        return
    institution = doc.sub(doc.sub(parent, tag), "FinInstnId")
    if bic:
        doc.sub(institution, "BIC" if message in (PAIN001_V03, PAIN002_V03) else "BICFI", bic)
    if name:
        doc.sub(institution, "Nm", name)
    if not (bic or name):
        doc.sub(doc.sub(institution, "Othr"), "Id", NOT_PROVIDED)


def _instructed_amount(doc: _Doc, parent, amount_minor: int, currency: str) -> None:
    doc.sub(doc.sub(parent, "Amt"), "InstdAmt", format_amount(amount_minor, currency), Ccy=currency)


def _requested_execution_date(doc: _Doc, parent, value: date, *, message: str) -> None:
    text = _date(value, "requested_execution_date")
    if message in (PAIN001_V03, PAIN002_V03):
        doc.sub(parent, "ReqdExctnDt", text)  # ISODate
    else:
        doc.sub(doc.sub(parent, "ReqdExctnDt"), "Dt", text)  # DateAndDateTime2Choice


# --- pain.001 ------------------------------------------------------------------------------------------------


def build_pain001(initiation: PaymentInitiation, *, message: str = PAIN001_V09) -> bytes:
    """A pain.001.001.09 (default) or pain.001.001.03 document as UTF-8 bytes."""
    if message not in PAIN001_MESSAGES:
        raise Iso20022InputError(f"unsupported message {message!r}; use one of {PAIN001_MESSAGES}")
    if not initiation.instructions or any(not i.transactions for i in initiation.instructions):
        raise Iso20022InputError("a pain.001 needs at least one payment instruction, each with a transaction")
    if initiation.charge_bearer is not None and initiation.charge_bearer not in CHARGE_BEARERS:
        raise Iso20022InputError(f"charge_bearer must be one of {sorted(CHARGE_BEARERS)}")
    transactions = initiation.transactions
    currency = _currency(transactions)
    for tx in transactions:
        _identifier(tx.end_to_end_id, "end_to_end_id")
        if tx.instruction_id is not None:
            _identifier(tx.instruction_id, "instruction_id")
        _amount(tx.amount_minor, "amount_minor")
    _unique([tx.end_to_end_id for tx in transactions], "end_to_end_id")
    _unique([i.payment_information_id for i in initiation.instructions], "payment_information_id")

    doc = _Doc(message)
    body = doc.sub(doc.root, "CstmrCdtTrfInitn")

    header = doc.sub(body, "GrpHdr")
    doc.sub(header, "MsgId", _identifier(initiation.message_id, "message_id"))
    doc.sub(header, "CreDtTm", _datetime(initiation.created_at, "created_at"))
    doc.sub(header, "NbOfTxs", str(len(transactions)))
    doc.sub(header, "CtrlSum", format_amount(sum(tx.amount_minor for tx in transactions), currency))
    _party(doc, header, "InitgPty", initiation.initiating_party, contact=False)

    for instruction in initiation.instructions:
        block = doc.sub(body, "PmtInf")
        doc.sub(block, "PmtInfId", _identifier(instruction.payment_information_id, "payment_information_id"))
        doc.sub(block, "PmtMtd", "TRF")
        doc.sub(block, "NbOfTxs", str(len(instruction.transactions)))
        doc.sub(
            block, "CtrlSum", format_amount(sum(tx.amount_minor for tx in instruction.transactions), currency)
        )
        _requested_execution_date(doc, block, instruction.requested_execution_date, message=message)
        _party(doc, block, "Dbtr", initiation.debtor, contact=True)
        _account(doc, block, "DbtrAcct", initiation.debtor_account)
        _agent(doc, block, "DbtrAgt", initiation.debtor_agent, message=message, required=True)
        if initiation.charge_bearer:
            doc.sub(block, "ChrgBr", initiation.charge_bearer)
        for tx in instruction.transactions:
            item = doc.sub(block, "CdtTrfTxInf")
            payment_id = doc.sub(item, "PmtId")
            if tx.instruction_id:
                doc.sub(payment_id, "InstrId", tx.instruction_id)
            doc.sub(payment_id, "EndToEndId", tx.end_to_end_id)
            _instructed_amount(doc, item, tx.amount_minor, currency)
            _agent(doc, item, "CdtrAgt", initiation.creditor_agent, message=message, required=False)
            _party(doc, item, "Cdtr", initiation.creditor, contact=False)
            _account(doc, item, "CdtrAcct", initiation.creditor_account)
            remittance = clean_text(tx.remittance_information, REMITTANCE_MAX)
            if remittance:
                doc.sub(doc.sub(item, "RmtInf"), "Ustrd", remittance)
    return doc.tostring()


# --- pain.002 ------------------------------------------------------------------------------------------------


def _status_code(code: str, what: str, *, allowed: frozenset[str] | None) -> str:
    if not isinstance(code, str) or not _STATUS_CODE.fullmatch(code):
        raise Iso20022InputError(f"{what} must be a 1-4 character code, got {code!r}")
    if allowed is not None and code not in allowed:
        raise Iso20022InputError(f"{what} {code!r} is not allowed in this message version")
    return code


def _reason(doc: _Doc, parent, code: str | None, info: str | None) -> None:
    """StatusReasonInformation12 / 8: Orgtr, Rsn (Cd), AddtlInf."""
    info_text = clean_text(info, ADDITIONAL_INFO_MAX)
    if not code and not info_text:
        return
    element = doc.sub(parent, "StsRsnInf")
    if code:
        doc.sub(doc.sub(element, "Rsn"), "Cd", _status_code(code, "reason_code", allowed=None))
    if info_text:
        doc.sub(element, "AddtlInf", info_text)


def _counts_per_status(doc: _Doc, parent, transactions: tuple[TransactionStatus, ...], currency: str) -> None:
    by_status: dict[str, list[int]] = {}
    for tx in transactions:
        by_status.setdefault(tx.status, []).append(tx.amount_minor)
    for status in sorted(by_status, key=lambda s: (_STATUS_ORDER.get(s, 99), s)):
        amounts = by_status[status]
        entry = doc.sub(parent, "NbOfTxsPerSts")
        doc.sub(entry, "DtldNbOfTxs", str(len(amounts)))
        doc.sub(entry, "DtldSts", status)
        doc.sub(entry, "DtldCtrlSum", format_amount(sum(amounts), currency))


def build_pain002(report: StatusReport, *, message: str = PAIN002_V10) -> bytes:
    """A pain.002.001.10 (default) or pain.002.001.03 document as UTF-8 bytes.

    Statuses are taken as given (see `iso20022.statuses` for how PayTrust derives them); NbOfTxsPerSts and the
    control sums are computed here from the transactions.
    """
    if message not in PAIN002_MESSAGES:
        raise Iso20022InputError(f"unsupported message {message!r}; use one of {PAIN002_MESSAGES}")
    v03 = message == PAIN002_V03
    group_codes = V03_GROUP_STATUSES if v03 else None
    transaction_codes = V03_TRANSACTION_STATUSES if v03 else None
    transactions = report.transactions
    if not transactions:
        raise Iso20022InputError("a status report needs at least one transaction")
    currency = _currency(transactions)
    for tx in transactions:
        _identifier(tx.original_end_to_end_id, "original_end_to_end_id")
        _status_code(tx.status, "transaction status", allowed=transaction_codes)
        _amount(tx.amount_minor, "amount_minor")
    _unique([tx.original_end_to_end_id for tx in transactions], "original_end_to_end_id")

    doc = _Doc(message)
    body = doc.sub(doc.root, "CstmrPmtStsRpt")

    header = doc.sub(body, "GrpHdr")
    doc.sub(header, "MsgId", _identifier(report.message_id, "message_id"))
    doc.sub(header, "CreDtTm", _datetime(report.created_at, "created_at"))
    if report.initiating_party is not None:
        _party(doc, header, "InitgPty", report.initiating_party, contact=False)

    group = doc.sub(body, "OrgnlGrpInfAndSts")
    doc.sub(group, "OrgnlMsgId", _identifier(report.original_message_id, "original_message_id"))
    doc.sub(group, "OrgnlMsgNmId", _identifier(report.original_message_name_id, "original_message_name_id"))
    if report.original_created_at is not None:
        doc.sub(group, "OrgnlCreDtTm", _datetime(report.original_created_at, "original_created_at"))
    doc.sub(group, "OrgnlNbOfTxs", str(len(transactions)))
    doc.sub(group, "OrgnlCtrlSum", format_amount(sum(tx.amount_minor for tx in transactions), currency))
    doc.sub(group, "GrpSts", _status_code(report.group_status, "group status", allowed=group_codes))
    _reason(doc, group, report.group_reason_code, report.group_additional_information)
    _counts_per_status(doc, group, transactions, currency)

    for instruction in report.instructions:
        block = doc.sub(body, "OrgnlPmtInfAndSts")
        doc.sub(
            block,
            "OrgnlPmtInfId",
            _identifier(instruction.original_payment_information_id, "original_payment_information_id"),
        )
        doc.sub(block, "OrgnlNbOfTxs", str(len(instruction.transactions)))
        doc.sub(
            block,
            "OrgnlCtrlSum",
            format_amount(sum(tx.amount_minor for tx in instruction.transactions), currency),
        )
        doc.sub(
            block,
            "PmtInfSts",
            _status_code(instruction.status, "payment information status", allowed=group_codes),
        )
        for tx in instruction.transactions:
            item = doc.sub(block, "TxInfAndSts")
            doc.sub(item, "OrgnlEndToEndId", tx.original_end_to_end_id)
            doc.sub(item, "TxSts", tx.status)
            _reason(doc, item, tx.reason_code, tx.additional_information)
            reference = doc.sub(item, "OrgnlTxRef")
            _instructed_amount(doc, reference, tx.amount_minor, currency)
            if tx.requested_execution_date is not None:
                _requested_execution_date(doc, reference, tx.requested_execution_date, message=message)
    return doc.tostring()
