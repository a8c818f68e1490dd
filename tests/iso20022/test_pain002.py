"""pain.002 builders: status reports that validate and refer back to the pain.001 they report on."""

from __future__ import annotations

from decimal import Decimal

import pytest

from iso20022.builders import build_pain001, build_pain002
from iso20022.statuses import group_status
from iso20022.types import PAIN002_V03, PAIN002_V10, Iso20022InputError
from tests.iso20022.helpers import make_initiation, make_report, parse, text, texts, valid

VERSIONS = [PAIN002_V10, PAIN002_V03]
CYCLE = [
    ("ACSC", None, None),
    ("ACSP", None, "Partially paid: 10 of 20 IDR"),
    ("PDNG", None, None),
    ("RJCT", "AM04", None),
]


@pytest.mark.parametrize("message", VERSIONS)
@pytest.mark.parametrize("currency", ["IDR", "MYR", "USD"])
@pytest.mark.parametrize("installments", [1, 12])
def test_report_validates_and_refers_back_to_the_initiation(message, currency, installments):
    initiation = make_initiation(currency=currency, total_minor=1_200_001, installments=installments)
    statuses = [CYCLE[i % len(CYCLE)] for i in range(installments)]
    report = make_report(initiation, statuses, group_status=group_status([code for code, _, _ in statuses]))
    document = build_pain002(report, message=message)

    result = valid(document, message)
    assert result.valid, result.errors
    root = parse(document)
    pain001 = parse(build_pain001(initiation))
    assert text(root, "//p:OrgnlGrpInfAndSts/p:OrgnlMsgId") == text(pain001, "//p:GrpHdr/p:MsgId")
    assert text(root, "//p:OrgnlGrpInfAndSts/p:OrgnlMsgNmId") == "pain.001.001.09"
    assert text(root, "//p:OrgnlGrpInfAndSts/p:OrgnlNbOfTxs") == text(pain001, "//p:GrpHdr/p:NbOfTxs")
    assert text(root, "//p:OrgnlGrpInfAndSts/p:OrgnlCtrlSum") == text(pain001, "//p:GrpHdr/p:CtrlSum")
    assert texts(root, "//p:OrgnlPmtInfAndSts/p:OrgnlPmtInfId") == texts(pain001, "//p:PmtInf/p:PmtInfId")
    assert texts(root, "//p:TxInfAndSts/p:OrgnlEndToEndId") == texts(pain001, "//p:EndToEndId")
    assert texts(root, "//p:TxInfAndSts/p:TxSts") == [code for code, _, _ in statuses]
    assert texts(root, "//p:TxInfAndSts/p:OrgnlTxRef/p:Amt/p:InstdAmt") == texts(pain001, "//p:InstdAmt")
    # NbOfTxsPerSts: one entry per status, counts and control sums add up to the group.
    counts = texts(root, "//p:OrgnlGrpInfAndSts/p:NbOfTxsPerSts/p:DtldNbOfTxs")
    sums = texts(root, "//p:OrgnlGrpInfAndSts/p:NbOfTxsPerSts/p:DtldCtrlSum")
    assert sum(int(c) for c in counts) == installments
    assert sum(Decimal(s) for s in sums) == Decimal(text(pain001, "//p:GrpHdr/p:CtrlSum"))


def test_counts_per_status_are_exact():
    initiation = make_initiation(installments=5, total_minor=500)
    statuses = [CYCLE[0], CYCLE[0], CYCLE[2], CYCLE[3], CYCLE[3]]
    root = parse(build_pain002(make_report(initiation, statuses, group_status="PART")))
    entries = root.xpath("//p:OrgnlGrpInfAndSts/p:NbOfTxsPerSts", namespaces={"p": root.nsmap[None]})
    got = [(e[0].text, e[1].text, e[2].text) for e in entries]
    assert got == [("2", "ACSC", "200"), ("1", "PDNG", "100"), ("2", "RJCT", "200")]
    assert text(root, "//p:OrgnlGrpInfAndSts/p:GrpSts") == "PART"


def test_rejection_carries_reason_code_and_narrative():
    initiation = make_initiation(installments=2, total_minor=200)
    statuses = [("RJCT", "AC01", "Đặng's account number is invalid"), ("RJCT", "NARR", "Payment expired")]
    document = build_pain002(make_report(initiation, statuses, group_status="RJCT"))
    assert valid(document).valid
    root = parse(document)
    assert texts(root, "//p:TxInfAndSts/p:StsRsnInf/p:Rsn/p:Cd") == ["AC01", "NARR"]
    assert texts(root, "//p:TxInfAndSts/p:StsRsnInf/p:AddtlInf") == [
        "Dang's account number is invalid",
        "Payment expired",
    ]


def test_version_03_refuses_codes_outside_its_closed_lists():
    initiation = make_initiation()
    # ACCC exists in the external code list used by .10 but not in .03's TransactionIndividualStatus3Code.
    report = make_report(initiation, [("ACCC", None, None)], group_status="ACSC")
    assert valid(build_pain002(report, message=PAIN002_V10)).valid
    with pytest.raises(Iso20022InputError):
        build_pain002(report, message=PAIN002_V03)
    # PART is a group-level code only.
    with pytest.raises(Iso20022InputError):
        build_pain002(
            make_report(initiation, [("PART", None, None)], group_status="PART"), message=PAIN002_V03
        )


def test_version_03_uses_a_bare_requested_execution_date():
    root = parse(
        build_pain002(make_report(make_initiation(), [CYCLE[2]], group_status="PDNG"), message=PAIN002_V03)
    )
    assert text(root, "//p:OrgnlTxRef/p:ReqdExctnDt") == "2026-12-01"


@pytest.mark.parametrize("code", ["", "ACCEPTED", "acsc"])
def test_malformed_status_codes_are_refused(code):
    with pytest.raises(Iso20022InputError):
        build_pain002(make_report(make_initiation(), [(code, None, None)], group_status="PDNG"))
