"""pain.001 builders: every document validates against the official XSDs; amounts, sums and ids are right."""

from __future__ import annotations

from decimal import Decimal

import pytest

from iso20022.builders import build_pain001
from iso20022.types import PAIN001_V03, PAIN001_V09, Account, Agent, CreditTransfer, Iso20022InputError
from tests.iso20022.helpers import (
    INVOICE_ID,
    LONG_NAME,
    NAMES,
    decimal_sum,
    make_initiation,
    parse,
    text,
    texts,
    valid,
)

VERSIONS = [PAIN001_V09, PAIN001_V03]
TOTALS = {"IDR": 1_500_007, "MYR": 1_000_003, "USD": 1_699}  # minor units; not divisible by 12 on purpose


@pytest.mark.parametrize("message", VERSIONS)
@pytest.mark.parametrize("currency", ["IDR", "MYR", "USD"])
@pytest.mark.parametrize("installments", [1, 12])
@pytest.mark.parametrize("name", NAMES)
def test_document_validates_and_control_sum_is_the_sum(message, currency, installments, name):
    initiation = make_initiation(
        currency=currency, total_minor=TOTALS[currency], installments=installments, debtor_name=name
    )
    document = build_pain001(initiation, message=message)

    result = valid(document, message)
    assert result.valid, result.errors
    root = parse(document)
    amounts = texts(root, "//p:CdtTrfTxInf/p:Amt/p:InstdAmt")
    assert len(amounts) == installments
    assert text(root, "/p:Document/p:CstmrCdtTrfInitn/p:GrpHdr/p:NbOfTxs") == str(installments)
    ctrl_sum = text(root, "/p:Document/p:CstmrCdtTrfInitn/p:GrpHdr/p:CtrlSum")
    assert (
        Decimal(ctrl_sum)
        == decimal_sum(amounts)
        == Decimal(TOTALS[currency]).scaleb(-2 if currency != "IDR" else 0)
    )
    assert set(texts(root, "//p:InstdAmt/@Ccy")) == {currency}
    decimals = 0 if currency == "IDR" else 2
    for value in [*amounts, ctrl_sum]:
        assert len(value.partition(".")[2]) == decimals, value
    for debtor_name in texts(root, "//p:Dbtr/p:Nm"):
        assert 1 <= len(debtor_name) <= 70 and debtor_name.isascii()


def test_amounts_use_the_currency_exponent():
    idr = parse(build_pain001(make_initiation(currency="IDR", total_minor=150000)))
    usd = parse(build_pain001(make_initiation(currency="USD", total_minor=1699)))
    assert texts(idr, "//p:InstdAmt") == ["150000"]
    assert text(idr, "//p:GrpHdr/p:CtrlSum") == "150000"
    assert texts(usd, "//p:InstdAmt") == ["16.99"]
    assert text(usd, "//p:GrpHdr/p:CtrlSum") == "16.99"


def test_one_credit_transfer_per_installment_with_stable_end_to_end_ids():
    initiation = make_initiation(installments=3, total_minor=100)
    first = parse(build_pain001(initiation))
    again = parse(build_pain001(initiation, message=PAIN001_V03))
    expected = [f"{INVOICE_ID}-{n}" for n in (1, 2, 3)]
    assert texts(first, "//p:CdtTrfTxInf/p:PmtId/p:EndToEndId") == expected
    assert texts(again, "//p:CdtTrfTxInf/p:PmtId/p:EndToEndId") == expected
    assert texts(first, "//p:InstdAmt") == ["33", "33", "34"]  # split_equal: the last takes the remainder
    assert texts(first, "//p:PmtInf/p:ReqdExctnDt/p:Dt") == ["2026-12-01", "2026-12-31", "2027-01-30"]
    assert texts(first, "//p:PmtInf/p:CtrlSum") == ["33", "33", "34"]


def test_version_03_uses_its_own_element_shapes():
    v03 = parse(build_pain001(make_initiation(), message=PAIN001_V03))
    v09 = parse(build_pain001(make_initiation(), message=PAIN001_V09))
    assert text(v03, "//p:PmtInf/p:ReqdExctnDt") == "2026-12-01"  # bare ISODate
    assert text(v09, "//p:PmtInf/p:ReqdExctnDt/p:Dt") == "2026-12-01"  # DateAndDateTime2Choice
    assert text(v03, "//p:CdtrAgt/p:FinInstnId/p:BIC") == "BMRIIDJA"
    assert text(v09, "//p:CdtrAgt/p:FinInstnId/p:BICFI") == "BMRIIDJA"


def test_pmtinf_children_follow_the_xsd_sequence():
    root = parse(build_pain001(make_initiation()))
    (pmt_inf,) = root.xpath("//p:PmtInf", namespaces={"p": root.nsmap[None]})
    names = [child.tag.rpartition("}")[2] for child in pmt_inf]
    assert names == [
        "PmtInfId",
        "PmtMtd",
        "NbOfTxs",
        "CtrlSum",
        "ReqdExctnDt",
        "Dbtr",
        "DbtrAcct",
        "DbtrAgt",
        "ChrgBr",
        "CdtTrfTxInf",
    ]


@pytest.mark.parametrize("message", VERSIONS)
def test_customer_without_account_gets_notprovided_account_and_agent(message):
    root = parse(build_pain001(make_initiation(), message=message))
    assert text(root, "//p:DbtrAcct/p:Id/p:Othr/p:Id") == "NOTPROVIDED"
    assert text(root, "//p:DbtrAgt/p:FinInstnId/p:Othr/p:Id") == "NOTPROVIDED"


def test_customer_account_and_bank_are_used_when_known():
    initiation = make_initiation(
        debtor_account=Account(iban="de89 3704 0044 0532 0130 00"), debtor_agent=Agent(bic="cobadeffxxx")
    )
    document = build_pain001(initiation)
    assert valid(document).valid
    root = parse(document)
    assert text(root, "//p:DbtrAcct/p:Id/p:IBAN") == "DE89370400440532013000"
    assert text(root, "//p:DbtrAgt/p:FinInstnId/p:BICFI") == "COBADEFFXXX"


def test_bic_invalid_for_version_03_falls_back_to_the_bank_name():
    # Digits in the bank code are allowed by .09's BICFIDec2014Identifier, not by .03's BICIdentifier.
    initiation = make_initiation(creditor_agent=Agent(bic="B1NKIDJA", name="Bank Satu"))
    v09 = build_pain001(initiation, message=PAIN001_V09)
    v03 = build_pain001(initiation, message=PAIN001_V03)
    assert valid(v09).valid and valid(v03).valid
    assert text(parse(v09), "//p:CdtrAgt/p:FinInstnId/p:BICFI") == "B1NKIDJA"
    assert texts(parse(v03), "//p:CdtrAgt/p:FinInstnId/p:BIC") == []
    assert text(parse(v03), "//p:CdtrAgt/p:FinInstnId/p:Nm") == "Bank Satu"


def test_creditor_without_account_or_bank_still_validates():
    initiation = make_initiation(creditor_account=None, creditor_agent=None)
    document = build_pain001(initiation)
    assert valid(document).valid
    root = parse(document)
    assert text(root, "//p:CdtrAcct/p:Id/p:Othr/p:Id") == "NOTPROVIDED"
    assert texts(root, "//p:CdtrAgt") == []  # optional: left out rather than invented


def test_names_are_transliterated_and_cut_to_70():
    root = parse(build_pain001(make_initiation(debtor_name=LONG_NAME)))
    name = text(root, "//p:Dbtr/p:Nm")
    assert name.startswith("Dang Thi Hong Nhung Dang Thi Hong Nhung")
    assert len(name) <= 70 and not name.endswith(" ")
    umlaut = parse(build_pain001(make_initiation(debtor_name="Müller-Lüdenscheidt")))
    assert text(umlaut, "//p:Dbtr/p:Nm") == "Muller-Ludenscheidt"


def test_name_without_latin_form_falls_back_to_notprovided():
    root = parse(build_pain001(make_initiation(debtor_name="王小明 😀")))
    assert text(root, "//p:Dbtr/p:Nm") == "NOTPROVIDED"


def test_contact_details_carry_email_and_iso_phone():
    root = parse(build_pain001(make_initiation()))
    assert text(root, "(//p:Dbtr)[1]/p:CtctDtls/p:PhneNb") == "+62-81234567890"
    assert text(root, "(//p:Dbtr)[1]/p:CtctDtls/p:EmailAdr") == "customer@example.com"


def test_remittance_information_names_invoice_and_external_id():
    root = parse(build_pain001(make_initiation(installments=2)))
    assert texts(root, "//p:RmtInf/p:Ustrd") == [
        f"{INVOICE_ID} order-1001 1/2",
        f"{INVOICE_ID} order-1001 2/2",
    ]


def test_remittance_is_cut_to_140():
    initiation = make_initiation(external_id="x" * 300)
    root = parse(build_pain001(initiation))
    assert len(text(root, "//p:RmtInf/p:Ustrd")) == 140
    assert valid(build_pain001(initiation)).valid


def _with_transaction(initiation, **changes):
    instruction = initiation.instructions[0]
    tx = instruction.transactions[0]
    fields = {**tx.__dict__, **changes}
    new_instruction = type(instruction)(
        instruction.payment_information_id, instruction.requested_execution_date, (CreditTransfer(**fields),)
    )
    return type(initiation)(**{**initiation.__dict__, "instructions": (new_instruction,)})


@pytest.mark.parametrize(
    "changes",
    [
        {"amount_minor": 1.5},  # floats never reach an amount
        {"amount_minor": -1},
        {"amount_minor": True},
        {"currency": "XXX"},
        {"end_to_end_id": "E" * 36},
        {"end_to_end_id": ""},
        {"end_to_end_id": "Đ-1"},
    ],
)
def test_bad_transaction_input_is_refused(changes):
    with pytest.raises(Iso20022InputError):
        build_pain001(_with_transaction(make_initiation(), **changes))


def test_message_id_longer_than_35_is_refused_not_cut():
    initiation = make_initiation()
    with pytest.raises(Iso20022InputError):
        build_pain001(type(initiation)(**{**initiation.__dict__, "message_id": "M" * 36}))


def test_mixed_currencies_are_refused():
    initiation = make_initiation(installments=2, currency="USD", total_minor=200)
    second = initiation.instructions[1]
    tx = second.transactions[0]
    mixed = type(second)(
        second.payment_information_id,
        second.requested_execution_date,
        (CreditTransfer(tx.end_to_end_id, tx.amount_minor, "MYR"),),
    )
    with pytest.raises(Iso20022InputError, match="one currency"):
        build_pain001(
            type(initiation)(**{**initiation.__dict__, "instructions": (initiation.instructions[0], mixed)})
        )


def test_naive_creation_time_is_refused():
    initiation = make_initiation()
    with pytest.raises(Iso20022InputError):
        build_pain001(
            type(initiation)(
                **{**initiation.__dict__, "created_at": initiation.created_at.replace(tzinfo=None)}
            )
        )


def test_unknown_version_is_refused():
    with pytest.raises(Iso20022InputError):
        build_pain001(make_initiation(), message="pain.001.001.99")
