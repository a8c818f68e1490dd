"""Property tests: whatever the names, amounts and installment counts, the documents validate."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iso20022.builders import build_pain001, build_pain002
from iso20022.statuses import group_status
from iso20022.types import PAIN001_V03, PAIN001_V09, PAIN002_V03, PAIN002_V10
from paytrust.money import CURRENCIES
from tests.iso20022.helpers import decimal_sum, make_initiation, make_report, parse, text, texts, valid

# Any code point: controls, private use, unassigned, and lone surrogates (hypothesis never draws those itself).
any_char = st.one_of(st.characters(exclude_categories=[]), st.integers(0xD800, 0xDFFF).map(chr))
any_text = st.text(alphabet=any_char, max_size=300)
currencies = st.sampled_from(["IDR", "MYR", "USD", "JPY", "KWD"])
amount_lists = st.lists(st.integers(min_value=1, max_value=10**13), min_size=1, max_size=12)
codes = st.sampled_from(
    [("ACSC", None, None), ("ACSP", None, "part"), ("PDNG", None, None), ("RJCT", "AM04", None)]
)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(
    name=any_text,
    external_id=any_text,
    amounts=amount_lists,
    currency=currencies,
    message=st.sampled_from([PAIN001_V09, PAIN001_V03]),
)
def test_pain001_always_valid(name, external_id, amounts, currency, message):
    initiation = make_initiation(
        currency=currency, amounts=amounts, debtor_name=name, external_id=external_id
    )
    document = build_pain001(initiation, message=message)
    result = valid(document, message)
    assert result.valid, result.errors
    root = parse(document)
    instructed = texts(root, "//p:InstdAmt")
    exponent = CURRENCIES[currency].exponent
    assert [Decimal(a) for a in instructed] == [Decimal(a).scaleb(-exponent) for a in amounts]
    assert all(len(a.partition(".")[2]) == exponent for a in instructed)
    assert Decimal(text(root, "//p:GrpHdr/p:CtrlSum")) == decimal_sum(instructed)


@SETTINGS
@given(
    amounts=amount_lists,
    currency=currencies,
    data=st.data(),
    message=st.sampled_from([PAIN002_V10, PAIN002_V03]),
    info=any_text,
)
def test_pain002_always_valid(amounts, currency, data, message, info):
    initiation = make_initiation(currency=currency, amounts=amounts)
    statuses = [data.draw(codes) for _ in amounts]
    statuses[0] = (statuses[0][0], statuses[0][1], info)
    report = make_report(initiation, statuses, group_status=group_status([c for c, _, _ in statuses]))
    document = build_pain002(report, message=message)
    result = valid(document, message)
    assert result.valid, result.errors
