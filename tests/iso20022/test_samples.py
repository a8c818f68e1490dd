"""Our builders reproduce the published samples (same elements, same order, same values) from the same inputs."""

from __future__ import annotations

from datetime import UTC, date, datetime

from lxml import etree

from iso20022.builders import build_pain001, build_pain002
from iso20022.statuses import group_status
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
from paytrust.money import to_minor
from tests.iso20022.helpers import SAMPLES, parse, text, texts, valid


def leaves(document: bytes) -> list[tuple[str, str]]:
    """(path of local names, text or attribute) for every leaf, in document order; comments ignored."""
    root = etree.fromstring(document, etree.XMLParser(remove_comments=True, remove_blank_text=True))
    out = []
    for element in root.iter(etree.Element):
        path = "/".join(etree.QName(e).localname for e in [*reversed(list(element.iterancestors())), element])
        for name, value in sorted(element.attrib.items()):
            out.append((f"{path}/@{name}", value))
        if len(element) == 0:
            out.append((path, (element.text or "").strip()))
    return out


def test_single_credit_transfer_sample_is_reproduced():
    sample = (SAMPLES / "apiome_iso20022-credit-transfer_pain001.001.09.xml").read_bytes()
    initiation = PaymentInitiation(
        message_id="MSG-20260115-0001",
        created_at=datetime(2026, 1, 15, 8, 30, tzinfo=UTC),
        initiating_party=Party("Example Corp"),
        debtor=Party("Example Corp"),
        creditor=Party("Supplier GmbH"),
        debtor_account=Account(iban="DE89370400440532013000"),
        debtor_agent=Agent(bic="COBADEFFXXX"),
        creditor_account=Account(iban="DE91100000000123456789"),
        creditor_agent=Agent(bic="DEUTDEFFXXX"),
        charge_bearer=None,
        instructions=(
            PaymentInstruction(
                payment_information_id="PMT-0001",
                requested_execution_date=date(2026, 1, 16),
                transactions=(
                    CreditTransfer(
                        end_to_end_id="E2E-0001",
                        amount_minor=to_minor("1500.00", "EUR"),
                        currency="EUR",
                        remittance_information="Invoice 2026-0042",
                    ),
                ),
            ),
        ),
    )
    ours = build_pain001(initiation)
    assert valid(ours).valid
    expected = leaves(sample)
    got = leaves(ours)
    # The only difference: we always state the time zone (UTC) of CreDtTm; the sample leaves it local.
    creation = "Document/CstmrCdtTrfInitn/GrpHdr/CreDtTm"
    assert (creation, "2026-01-15T08:30:00") in expected and (creation, "2026-01-15T08:30:00Z") in got
    assert [leaf for leaf in got if leaf[0] != creation] == [leaf for leaf in expected if leaf[0] != creation]


def test_status_report_on_the_sample_initiation_matches_the_published_report():
    initiation = parse((SAMPLES / "apiome_status-set_pain001.001.09.xml").read_bytes())
    published = parse((SAMPLES / "apiome_status-set_pain002.001.10.xml").read_bytes())
    # The published outcome: the first transfer accepted (ACCP), the second rejected with AC01.
    outcome = [("ACCP", None), ("RJCT", "AC01")]
    assert texts(published, "//p:TxSts") == [code for code, _ in outcome]
    currency = text(initiation, "(//p:InstdAmt)[1]/@Ccy")
    transactions = tuple(
        TransactionStatus(
            original_end_to_end_id=e2e,
            status=code,
            amount_minor=to_minor(amount, currency),
            currency=currency,
            reason_code=reason,
        )
        for e2e, amount, (code, reason) in zip(
            texts(initiation, "//p:EndToEndId"), texts(initiation, "//p:InstdAmt"), outcome, strict=True
        )
    )
    codes = [code for code, _ in outcome]
    report = StatusReport(
        message_id="STS-20260824-0007",
        created_at=datetime(2026, 8, 24, 11, 15, tzinfo=UTC),
        original_message_id=text(initiation, "//p:GrpHdr/p:MsgId"),
        original_message_name_id="pain.001.001.09",
        original_created_at=datetime.fromisoformat(text(initiation, "//p:GrpHdr/p:CreDtTm")).replace(
            tzinfo=UTC
        ),
        group_status=group_status(codes),
        instructions=(
            PaymentInstructionStatus(
                original_payment_information_id=text(initiation, "//p:PmtInfId"),
                status=group_status(codes),
                transactions=transactions,
            ),
        ),
    )
    ours = parse(build_pain002(report))
    assert valid(etree.tostring(ours)).valid
    for path in [
        "//p:OrgnlGrpInfAndSts/p:OrgnlMsgId",
        "//p:OrgnlGrpInfAndSts/p:OrgnlMsgNmId",
        "//p:OrgnlGrpInfAndSts/p:OrgnlNbOfTxs",
        "//p:OrgnlGrpInfAndSts/p:OrgnlCtrlSum",
        "//p:OrgnlGrpInfAndSts/p:GrpSts",
        "//p:OrgnlPmtInfAndSts/p:OrgnlPmtInfId",
        "//p:OrgnlPmtInfAndSts/p:PmtInfSts",
        "//p:TxInfAndSts/p:OrgnlEndToEndId",
        "//p:TxInfAndSts/p:TxSts",
        "//p:TxInfAndSts/p:StsRsnInf/p:Rsn/p:Cd",
        "//p:TxInfAndSts/p:OrgnlTxRef/p:Amt/p:InstdAmt",
    ]:
        assert texts(ours, path) == texts(published, path), path
