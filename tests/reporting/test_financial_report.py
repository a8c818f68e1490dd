"""GET /v1/reports/financial over payments made through the real services (initiation + the gateway's success
applied by the webhook code path) in two currencies (IDR, USD) and two gateways (sandbox, xendit).

Every expected figure below was computed by hand from the SPEC's rules (worked out in the docstring of the
`payments` fixture in tests/reporting/conftest.py and in the comments), not by the
code under test.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from reporting.selectors import financial_report
from tests.reporting.conftest import xendit_account_for
from tests.reporting.helpers import END, START, URL, invoice, pay, q, record_refund

pytestmark = pytest.mark.django_db

EXPECTED_IDR_XENDIT = {
    "payments_count": 3,
    "gross_collected": "1687599",  # 446599 + 200000 + 1041000
    "tax_collected": "143000",  # 33000 + 19281 + 90719
    "service_fees": "44600",  # 13600 + 5433 + 25567
    "net_to_merchant": "1596400",  # 1687599 − 44600 − 46599
    "refunds": "46599",
}
EXPECTED_IDR_SANDBOX = {
    "payments_count": 1,
    "gross_collected": "56500",
    "tax_collected": "5500",
    "service_fees": "1000",
    "net_to_merchant": "55500",
    "refunds": "0",
}
EXPECTED_USD_XENDIT = {
    "payments_count": 2,
    "gross_collected": "153.90",  # 13390 + 2000 cents
    "tax_collected": "11.76",  # 1000 + 176
    "service_fees": "4.53",  # 390 + 63
    "net_to_merchant": "149.37",  # 15390 − 453
    "refunds": "0.00",
}
EXPECTED = {
    "start": START.isoformat().replace("+00:00", "Z"),
    "end": END.isoformat().replace("+00:00", "Z"),
    "currencies": [
        {
            "currency": "IDR",
            "payments_count": 4,
            "gross_collected": "1744099",
            "tax_collected": "148500",
            "service_fees": "45600",
            "net_to_merchant": "1651900",  # 1744099 − 45600 − 46599
            "refunds": "46599",
            "by_gateway": [
                {"gateway": "sandbox", **EXPECTED_IDR_SANDBOX},
                {"gateway": "xendit", **EXPECTED_IDR_XENDIT},
            ],
            "by_tax_rate": [
                {"tax_rate": "0.0", "taxable": "99999", "tax_collected": "0"},
                # 300000 (A) + 175286 (B1) + 824714 (B2) + 50000 (C); 33000 + 19281 + 90719 + 5500
                {"tax_rate": "0.11", "taxable": "1350000", "tax_collected": "148500"},
            ],
        },
        {
            "currency": "USD",
            **EXPECTED_USD_XENDIT,
            "by_gateway": [{"gateway": "xendit", **EXPECTED_USD_XENDIT}],
            "by_tax_rate": [
                {"tax_rate": "0.0", "taxable": "20.00", "tax_collected": "0.00"},
                {
                    "tax_rate": "0.1",
                    "taxable": "117.61",
                    "tax_collected": "11.76",
                },  # 10000 + 1761; 1000 + 176
            ],
        },
    ],
}


def test_report_gives_the_hand_computed_figures_per_currency_gateway_and_tax_rate(api, payments):
    response = api.get(URL, q())

    assert response.status_code == 200, response.content
    assert response.json() == EXPECTED


def test_each_currency_stands_alone_its_figures_equal_the_single_currency_report(api, payments):
    full = api.get(URL, q()).json()["currencies"]

    for entry in full:
        alone = api.get(URL, q(currency=entry["currency"])).json()["currencies"]
        assert alone == [entry]
    # a gateway filter gives that gateway's line of each currency (and only its tax)
    xendit = {c["currency"]: c for c in api.get(URL, q(gateway="xendit")).json()["currencies"]}
    assert {k: v for k, v in xendit["IDR"].items() if k not in ("by_gateway", "by_tax_rate", "currency")} == (
        EXPECTED_IDR_XENDIT
    )
    assert xendit["IDR"]["by_tax_rate"] == [
        {"tax_rate": "0.0", "taxable": "99999", "tax_collected": "0"},
        {"tax_rate": "0.11", "taxable": "1300000", "tax_collected": "143000"},
    ]
    assert api.get(URL, q(gateway="sandbox", currency="USD")).json()["currencies"] == []


def test_no_figure_adds_two_currencies(merchant, payments):
    report = financial_report(merchant=merchant, mode="test", start=START, end=END)
    per_currency = {
        cur.currency: financial_report(
            merchant=merchant, mode="test", start=START, end=END, currency=cur.currency
        )
        for cur in report.currencies
    }
    assert set(per_currency) == {"IDR", "USD"}
    for cur in report.currencies:
        assert per_currency[cur.currency].currencies == [cur]
        # the currency line is the sum of its own gateway lines, never of another currency's
        assert cur.figures.gross_minor == sum(line.figures.gross_minor for line in cur.by_gateway)
    assert (
        report.currencies[0].figures.gross_minor == 1744099
        and report.currencies[1].figures.gross_minor == 15390
    )


def test_csv_gives_the_same_figures_as_json(api, payments):
    json_body = api.get(URL, q()).json()
    response = api.get(URL, q(format="csv"))

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="financial-report_')
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [r["section"] for r in rows] == [
        "currency", "gateway", "gateway", "tax_rate", "tax_rate",
        "currency", "gateway", "tax_rate", "tax_rate",
    ]  # fmt: skip
    figures = (
        "payments_count",
        "gross_collected",
        "tax_collected",
        "service_fees",
        "net_to_merchant",
        "refunds",
    )
    rebuilt = {"start": rows[0]["start"], "end": rows[0]["end"], "currencies": []}
    for row in rows:
        assert (row["start"], row["end"]) == (json_body["start"], json_body["end"])
        if row["section"] != "tax_rate":
            values = {k: int(row[k]) if k == "payments_count" else row[k] for k in figures}
        if row["section"] == "currency":
            rebuilt["currencies"].append(
                {"currency": row["currency"], **values, "by_gateway": [], "by_tax_rate": []}
            )
        elif row["section"] == "gateway":
            rebuilt["currencies"][-1]["by_gateway"].append({"gateway": row["gateway"], **values})
        else:
            rebuilt["currencies"][-1]["by_tax_rate"].append(
                {
                    "tax_rate": row["tax_rate"],
                    "taxable": row["taxable"],
                    "tax_collected": row["tax_collected"],
                }
            )
    assert rebuilt == json_body == EXPECTED


def test_empty_period_gives_no_currencies_and_a_csv_with_only_the_header(api, payments):
    far = START - timedelta(days=100)
    assert api.get(URL, q(start=far, end=far + timedelta(days=1))).json()["currencies"] == []
    body = api.get(URL, q(start=far, end=far + timedelta(days=1), format="csv")).content.decode()
    assert body.splitlines() == [
        "start,end,section,currency,gateway,tax_rate,payments_count,gross_collected,tax_collected,service_fees,"
        "net_to_merchant,refunds,taxable"
    ]


def test_dates_mean_midnight_utc_and_offsets_are_honoured(api, payments):
    as_dates = api.get(URL, {"start": START.date().isoformat(), "end": END.date().isoformat()}).json()
    assert as_dates == EXPECTED
    # 07:00+07:00 is midnight UTC: the same period written in Jakarta time
    wib = {
        "start": START.strftime("%Y-%m-%dT07:00:00+07:00"),
        "end": END.strftime("%Y-%m-%dT07:00:00+07:00"),
    }
    assert api.get(URL, wib).json() == EXPECTED


def test_without_start_and_end_the_report_covers_the_current_utc_month(api):
    now = timezone.now().astimezone(UTC)
    body = api.get(URL).json()

    first = datetime(now.year, now.month, 1, tzinfo=UTC)
    following = datetime(now.year + (now.month == 12), now.month % 12 + 1, 1, tzinfo=UTC)
    assert (body["start"], body["end"]) == (
        first.isoformat().replace("+00:00", "Z"),
        following.isoformat().replace("+00:00", "Z"),
    )


@pytest.mark.parametrize(
    ("params", "param", "code"),
    [
        ({"start": "yesterday", "end": "2026-01-02"}, "start", "parameter_invalid"),
        ({"start": "2026-01-01", "end": "2026-13-01"}, "end", "parameter_invalid"),
        ({"start": "2026-01-01T25:00:00Z", "end": "2026-01-02"}, "start", "parameter_invalid"),
        ({"start": "2026-01-01"}, "end", "parameter_missing"),
        ({"end": "2026-01-01"}, "start", "parameter_missing"),
        ({"start": "2026-02-01", "end": "2026-01-01"}, "end", "parameter_invalid"),
        ({"start": "2026-01-01", "end": "2026-01-01"}, "end", "parameter_invalid"),
        ({"start": "2025-01-01", "end": "2026-01-03"}, "end", "report_period_too_long"),
        ({"start": "2026-01-01", "end": "2026-01-02", "currency": "XXX"}, "currency", "currency_invalid"),
        ({"start": "2026-01-01", "end": "2026-01-02", "gateway": "worldpay"}, "gateway", "parameter_invalid"),
        ({"start": "2026-01-01", "end": "2026-01-02", "format": "xml"}, "format", "parameter_invalid"),
        ({"start": "2026-01-01", "end": "2026-01-02", "currncy": "USD"}, "currncy", "parameter_unknown"),
    ],
)
def test_bad_input_gets_400_with_the_param(api, params, param, code):
    response = api.get(URL, params)

    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", param, code)


def test_span_limit_follows_the_setting(api, settings):
    settings.REPORT_MAX_DAYS = 31
    assert api.get(URL, {"start": "2026-01-01", "end": "2026-02-01"}).status_code == 200
    response = api.get(URL, {"start": "2026-01-01", "end": "2026-02-01T00:00:01Z"})
    assert response.status_code == 400 and response.json()["error"]["param"] == "end"


def test_requires_an_api_key(client):
    response = client.get(URL, q())
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"


def test_tenant_isolation_other_merchant_and_other_mode_see_only_their_own(
    api, payments, merchant, other_merchant, client_for
):
    other = client_for(make_key(other_merchant))
    theirs = other.get(URL, q()).json()["currencies"]
    # 123456 @ 11 % = tax 13580; their sandbox has no fee
    assert [
        (c["currency"], c["payments_count"], c["gross_collected"], c["tax_collected"]) for c in theirs
    ] == [("IDR", 1, "137036", "13580")]

    live_key = client_for(make_key(merchant, mode="live"))
    assert live_key.get(URL, q()).json()["currencies"] == []
    live_account = xendit_account_for(merchant, mode="live")
    live = invoice(merchant, live_account, currency="IDR", lines=[("Live", 1, "10000", "0")], mode="live")
    pay(live, amount_minor=None, at=START + timedelta(days=1))
    assert [c["gross_collected"] for c in live_key.get(URL, q()).json()["currencies"]] == [
        "12290"
    ]  # +290 +2000
    assert api.get(URL, q()).json() == EXPECTED


def make_key(merchant, mode: str = "test") -> str:
    from tests.factories import make_api_key

    return make_api_key(merchant, mode=mode)[1]


def test_report_is_three_queries_whatever_the_number_of_payments(
    merchant, payments, django_assert_num_queries
):
    with django_assert_num_queries(3):
        financial_report(merchant=merchant, mode="test", start=START, end=END)


def _plans(**scope) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        financial_report(**scope)
    plans = []
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        for query in captured.captured_queries:
            cursor.execute(f"EXPLAIN {query['sql']}")
            plans.append("\n".join(row[0] for row in cursor.fetchall()))
    return plans


def test_each_report_query_can_use_its_report_index(merchant, payments):
    """EXPLAIN the selector's own queries. With sequential and bitmap scans disabled the planner must find a plain
    index path; it must be the rollup's key for whole days (docs/adr/0040) and the facts' report index for the
    parts of days cut by start/end (at scale it is chosen anyway: bench/report_bench.py)."""
    whole_days = _plans(merchant=merchant, mode="test", start=START, end=END, currency="IDR")
    assert len(whole_days) == 3
    for plan, index in zip(
        whole_days, ("collected_day_key", "refund_day_key", "collected_day_tax_key"), strict=True
    ):
        assert f"using {index} on" in plan, plan

    cut = _plans(
        merchant=merchant,
        mode="test",
        start=START + timedelta(hours=5),
        end=END - timedelta(hours=5),
        currency="IDR",
    )
    assert len(cut) == 9  # per figure: the rollup's whole days, then the two cut edges from the facts
    # The edges: the tenant's report index, or the all-merchants one (mode, time) - on a few rows either will do.
    facts = ("payment_application_report", "payment_application_all_report")
    refunds = ("refund_report", "refund_all_report")
    taxes = ("payment_application_tax_report", "payment_application_tax_all")
    indexes = [("collected_day_key",), facts, facts, ("refund_day_key",), refunds, refunds]
    indexes += [("collected_day_tax_key",), taxes, taxes]
    for plan, allowed in zip(cut, indexes, strict=True):
        assert any(f"using {index} on" in plan for index in allowed), plan


def _refunds(merchant, start=START, end=END) -> dict[tuple[str, str], int]:
    report = financial_report(merchant=merchant, mode="test", start=start, end=end)
    return {
        (cur.currency, line.gateway): line.figures.refunds_minor
        for cur in report.currencies
        for line in cur.by_gateway
    }


def test_refunds_count_in_the_period_they_were_paid_out_whatever_the_payment_period(
    merchant, xendit_account, payments
):
    """ADR 0049: a period's refunds are the refunds paid out in it (like a bank statement)."""
    early = invoice(merchant, xendit_account, currency="IDR", lines=[("Old", 1, "20000", "0")])
    paid_early = pay(early, amount_minor=None, at=START - timedelta(days=30))  # long before the period
    record_refund(paid_early, 5000, at=START + timedelta(days=5))  # paid out inside it: counts
    record_refund(paid_early, 1000, at=END)  # paid out at `end`: the next period's
    inside = invoice(merchant, xendit_account, currency="USD", lines=[("New", 1, "10.00", "0")])
    paid_inside = pay(inside, amount_minor=None, at=START + timedelta(days=1))
    record_refund(paid_inside, 300, at=END + timedelta(days=1))  # refunded after the period: not in it
    record_refund(paid_inside, 200, at=START + timedelta(days=6), chargeback=True)  # a chargeback counts

    assert _refunds(merchant) == {
        ("IDR", "sandbox"): 0,
        ("IDR", "xendit"): 46599 + 5000,
        ("USD", "xendit"): 200,
    }
    assert _refunds(merchant, start=END, end=END + timedelta(days=2)) == {
        ("IDR", "xendit"): 1000,  # no payment in that period: the line shows the refund alone
        ("USD", "xendit"): 300,
    }
    idr = financial_report(merchant=merchant, mode="test", start=START, end=END, currency="IDR").currencies[0]
    assert idr.figures.net_minor == 1744099 - 45600 - (46599 + 5000)  # gross − fees − refunds


def test_a_period_s_refunds_never_change_after_it_closed(merchant, xendit_account, payments):
    before = financial_report(merchant=merchant, mode="test", start=START, end=END)
    a_payment = payments_of(merchant, gateway="xendit", currency="IDR")[0]

    record_refund(a_payment, 1000, at=END + timedelta(hours=1))

    assert financial_report(merchant=merchant, mode="test", start=START, end=END) == before


def payments_of(merchant, *, gateway: str, currency: str):
    from payments.models import Payment

    return list(
        Payment.objects.filter(
            merchant=merchant,
            gateway=gateway,
            currency=currency,
            succeeded_at__gte=START,
            succeeded_at__lt=END,
        ).order_by("succeeded_at")
    )
