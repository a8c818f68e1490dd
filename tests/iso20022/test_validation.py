"""The validator really validates: the official samples pass, documents broken on purpose fail."""

from __future__ import annotations

import hashlib
import re

import pytest
from lxml import etree

from iso20022 import validation
from iso20022.builders import build_pain001, build_pain002
from iso20022.statuses import PDNG
from iso20022.types import PAIN001_V03, PAIN001_V09, PAIN002_V03, PAIN002_V10
from iso20022.validation import Iso20022ValidationError, assert_valid, load_schema, message_of, validate
from tests.iso20022.helpers import SAMPLES, SHARED_ISO, make_initiation, make_report, parse, valid

SAMPLE_FILES = sorted(SAMPLES.glob("*.xml"))


def test_samples_are_there():
    assert len(SAMPLE_FILES) == 7


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: p.name)
def test_published_samples_validate(path):
    result = validate(str(path), schema_dir=SHARED_ISO)
    assert result.valid, result.errors
    assert result.message in path.name.replace("pain001.", "pain.001.").replace("pain002.", "pain.002.")


def test_sample_validated_against_the_wrong_message_fails():
    path = SAMPLES / "apiome_status-set_pain001.001.09.xml"
    result = validate(str(path), message=PAIN001_V03, schema_dir=SHARED_ISO)
    assert not result.valid


def _mutate(document: bytes, xpath: str, action) -> bytes:
    root = parse(document)
    (element,) = root.xpath(xpath, namespaces={"p": root.nsmap[None]})
    action(element)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _remove(element):
    element.getparent().remove(element)


def _set(value):
    def action(element):
        element.text = value

    return action


PAIN001_09 = build_pain001(make_initiation(currency="USD", total_minor=1699))
PAIN001_03 = build_pain001(make_initiation(currency="USD", total_minor=1699), message=PAIN001_V03)


@pytest.mark.parametrize(
    ("document", "xpath", "action"),
    [
        (PAIN001_09, "//p:PmtInf/p:ReqdExctnDt", _remove),
        (PAIN001_03, "//p:PmtInf/p:ReqdExctnDt", _remove),
        (PAIN001_09, "//p:InstdAmt", _set("16.990001")),  # 6 decimals
        (PAIN001_09, "//p:InstdAmt", _set("-16.99")),
        (PAIN001_09, "//p:InstdAmt", _set("1234567890123456789")),  # 19 digits
        (PAIN001_09, "//p:GrpHdr/p:MsgId", _set("M" * 36)),
        (PAIN001_03, "//p:GrpHdr/p:MsgId", _set("M" * 36)),
        (PAIN001_09, "//p:EndToEndId", _set("E" * 36)),
        (PAIN001_09, "//p:GrpHdr/p:MsgId", _set("")),
        (PAIN001_09, "//p:GrpHdr/p:NbOfTxs", _set("one")),
        (PAIN001_09, "//p:PmtMtd", _set("XXX")),
        (PAIN001_09, "//p:DbtrAgt", _remove),
        (PAIN001_09, "//p:DbtrAcct", _remove),
        (PAIN001_09, "//p:GrpHdr/p:InitgPty", _remove),
        (PAIN001_09, "//p:Dbtr/p:CtctDtls/p:PhneNb", _set("+6281234567890")),
        (PAIN001_09, "//p:Dbtr/p:Nm", _set("N" * 141)),
        (PAIN001_09, "//p:RmtInf/p:Ustrd", _set("R" * 141)),
    ],
)
def test_documents_broken_on_purpose_fail(document, xpath, action):
    assert valid(document).valid
    broken = _mutate(document, xpath, action)
    result = valid(broken)
    assert not result.valid
    assert result.errors


def test_lower_case_currency_attribute_fails():
    broken = PAIN001_09.replace(b'Ccy="USD"', b'Ccy="usd"')
    assert not valid(broken).valid


def test_version_09_date_shape_in_a_version_03_document_fails():
    broken = PAIN001_03.replace(
        b"<ReqdExctnDt>2026-12-01</ReqdExctnDt>", b"<ReqdExctnDt><Dt>2026-12-01</Dt></ReqdExctnDt>"
    )
    assert broken != PAIN001_03
    assert not valid(broken).valid


def test_elements_out_of_order_fail():
    root = parse(PAIN001_09)
    ns = {"p": root.nsmap[None]}
    (header,) = root.xpath("//p:GrpHdr", namespaces=ns)
    msg_id = header[0]
    header.remove(msg_id)
    header.append(msg_id)  # MsgId after InitgPty
    assert not valid(etree.tostring(root)).valid


def test_pain002_status_code_constraints_differ_by_version():
    report = make_report(make_initiation(), [(PDNG, None, None)], group_status=PDNG)
    v10 = build_pain002(report, message=PAIN002_V10)
    v03 = build_pain002(report, message=PAIN002_V03)
    assert valid(v10.replace(b"<GrpSts>PDNG", b"<GrpSts>ZZZZ")).valid  # external code: length only
    assert not valid(v10.replace(b"<GrpSts>PDNG", b"<GrpSts>ACCEPTED")).valid
    assert not valid(v03.replace(b"<GrpSts>PDNG", b"<GrpSts>ZZZZ")).valid  # closed enum


def test_assert_valid_raises_with_the_errors():
    broken = PAIN001_09.replace(b"<NbOfTxs>1</NbOfTxs>", b"<NbOfTxs>x</NbOfTxs>", 1)
    with pytest.raises(Iso20022ValidationError) as excinfo:
        assert_valid(broken, schema_dir=SHARED_ISO)
    assert excinfo.value.errors and "NbOfTxs" in excinfo.value.errors[0]
    assert assert_valid(PAIN001_09, schema_dir=SHARED_ISO) == PAIN001_V09


def test_message_is_read_from_the_namespace():
    assert message_of(parse(PAIN001_03)) == PAIN001_V03
    with pytest.raises(ValueError):
        message_of(etree.fromstring(b"<Document/>"))


def test_expected_message_mismatch_is_an_error():
    result = validate(PAIN001_03, message=PAIN001_V09, schema_dir=SHARED_ISO)
    assert not result.valid and "expected pain.001.001.09" in result.errors[0]


def test_schemas_are_compiled_once():
    assert load_schema(PAIN001_V09, SHARED_ISO) is load_schema(PAIN001_V09, SHARED_ISO)


def _sha256s_in_sources() -> dict[str, str]:
    rows = re.findall(
        r"\| (pain\.\d{3}\.\d{3}\.\d{2}\.xsd) \|.*?\| ([0-9a-f]{64}) \|",
        (SHARED_ISO / "SOURCES.md").read_text(),
    )
    return dict(rows)


@pytest.mark.parametrize("name", ["pain.001.001.09", "pain.001.001.03", "pain.002.001.10", "pain.002.001.03"])
def test_shipped_schemas_are_the_official_files(name):
    shipped = (validation.SCHEMA_DIR / f"{name}.xsd").read_bytes()
    official = (SHARED_ISO / f"{name}.xsd").read_bytes()
    assert shipped == official
    assert hashlib.sha256(shipped).hexdigest() == _sha256s_in_sources()[f"{name}.xsd"]


def test_default_schema_dir_validates_too():
    assert validate(PAIN001_09).valid
