"""deploy/grafana/paytrust.json and deploy/prometheus/alerts.yml only use metrics PayTrust really exports (with
labels they really have), cover what the issue asks for, and are valid PromQL / Prometheus rules: checked by
promtool (Debian's `prometheus` package) when it is installed, and by the YAML-schema checks here always."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from paytrust import metrics

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "paytrust.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
ALERT_TESTS = ROOT / "deploy" / "prometheus" / "alerts.test.yml"

# Labels Prometheus adds to every scraped series.
TARGET_LABELS = {"instance", "job"}
_METRIC = re.compile(r"\b(paytrust_[a-zA-Z0-9_]+)\b")
_SELECTOR = re.compile(r"\b(paytrust_[a-zA-Z0-9_]+)\s*\{([^}]*)\}")
_MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
_GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
_DURATION = re.compile(r"^\d+[smhdwy]$")


def exported_series() -> dict[str, set[str]]:
    """Every series name /metrics can show (histogram and counter suffixes included) -> its label names, read from
    paytrust/metrics.py's collectors and its scrape-time collectors."""
    series: dict[str, set[str]] = {}
    for value in vars(metrics).values():
        if not isinstance(value, MetricWrapperBase):
            continue
        labels = set(value._labelnames)
        suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}
        for suffix in suffixes[value._type]:
            series[value._name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    for collector in (metrics.JobQueueCollector(), metrics.LedgerCheckCollector()):
        for family in collector.collect():
            series[family.name] = set(family._labelnames)
    return series


def problems(expr: str, series: dict[str, set[str]]) -> list[str]:
    """What in a PromQL expression names a series or a label PayTrust does not export."""
    found = []
    names = set(_METRIC.findall(expr))
    if not names:
        found.append(f"no PayTrust metric in {expr!r}")
    for name in names - set(series):
        found.append(f"unknown metric {name}")
    for name, matchers in _SELECTOR.findall(expr):
        for label in _MATCHER.findall(matchers):
            if name in series and label not in series[name] | TARGET_LABELS:
                found.append(f"{name} has no label {label}")
    known_labels = set().union(*(series.get(name, set()) for name in names)) | TARGET_LABELS
    for grouping in _GROUPING.findall(expr):
        for label in filter(None, (part.strip() for part in grouping.split(","))):
            if label not in known_labels:
                found.append(f"grouping by unknown label {label} in {expr!r}")
    return found


@pytest.fixture(scope="module")
def series() -> dict[str, set[str]]:
    # The scrape-time collectors read the database; without it (blocked here) they still name their family.
    return exported_series()


def dashboard_panels() -> list[dict]:
    panels = []
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))  # collapsed rows keep their panels inside
    return [panel for panel in panels if panel["type"] != "row"]


def dashboard_exprs() -> list[str]:
    return [target["expr"] for panel in dashboard_panels() for target in panel["targets"]]


def alert_rules() -> list[dict]:
    return [rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]]


def test_the_checker_refuses_unknown_metrics_and_labels(series):
    assert problems("rate(paytrust_http_request_duration_seconds_count[5m])", series) == []
    assert problems("rate(paytrust_http_requests_total[5m])", series) == [
        "unknown metric paytrust_http_requests_total"
    ]
    assert problems('paytrust_jobs_waiting{queue="x",gateway="y"}', series) == [
        "paytrust_jobs_waiting has no label gateway"
    ]
    assert problems("sum by (merchant) (paytrust_jobs_waiting)", series)
    assert problems("up", series) == ["no PayTrust metric in 'up'"]


def test_every_dashboard_panel_queries_exported_metrics_and_labels(series):
    panels = dashboard_panels()
    assert len(panels) >= 10
    for panel in panels:
        assert panel["targets"], panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}"  # the data source is chosen on import
    found = [problem for expr in dashboard_exprs() for problem in problems(expr, series)]
    assert found == []


def test_dashboard_covers_what_the_on_call_needs():
    used = {name for expr in dashboard_exprs() for name in _METRIC.findall(expr)}
    assert {
        "paytrust_http_request_duration_seconds_count",  # request rate by route
        "paytrust_http_request_duration_seconds_bucket",  # latency by route
        "paytrust_gateway_request_duration_seconds_bucket",  # gateway latency
        "paytrust_gateway_errors_total",  # gateway errors
        "paytrust_jobs_waiting",  # webhook queue depth, jobs waiting
        "paytrust_webhook_deliveries_total",  # deliveries
        "paytrust_rate_limited_total",  # rate-limited requests
        "paytrust_db_pool_connections_in_use",
    } <= used
    exprs = dashboard_exprs()
    assert any("by (le, route)" in expr for expr in exprs)
    assert any('paytrust_jobs_waiting{queue="outbound_webhooks"}' in expr for expr in exprs)


def test_alert_rules_have_the_required_shape_and_exported_metrics(series):
    rules = alert_rules()
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations", "keep_firing_for"}, rule
        assert re.fullmatch(r"PayTrust[A-Za-z0-9]+", rule["alert"])
        assert _DURATION.match(rule["for"]), rule["for"]
        assert rule["labels"]["severity"] in {"page", "ticket"}
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        assert problems(rule["expr"], series) == [], rule["alert"]
    assert len({rule["alert"] for rule in rules}) == len(rules)


@pytest.mark.parametrize(
    ("alert", "threshold", "duration"),
    [
        ("PayTrustHighErrorRate", "> 0.01", "5m"),  # error rate > 1 % for 5 min
        ("PayTrustHighLatencyP99", "> 2", "5m"),  # p99 > 2 s for 5 min
        ("PayTrustQueueBacklog", "> 1000", "10m"),  # queue depth > 1,000 for 10 min
        ("PayTrustWebhookFailureRate", "> 0.05", "15m"),  # webhook failure rate > 5 % for 15 min
        ("PayTrustDbPoolSaturated", "> 0.8", "5m"),  # DB pool > 80 %
    ],
)
def test_the_issues_alerts_exist_with_their_thresholds(alert, threshold, duration):
    (rule,) = [rule for rule in alert_rules() if rule["alert"] == alert]
    assert rule["expr"].strip().endswith(threshold)
    assert rule["for"] == duration


promtool = pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool not installed (apt-get install prometheus)"
)


def _promtool(*args: str, cwd: Path = ROOT) -> None:
    result = subprocess.run(
        ["promtool", *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


@promtool
def test_promtool_accepts_the_alert_rules():
    _promtool("check", "rules", str(ALERTS))


@promtool
def test_promtool_unit_tests_fire_each_alert_above_its_threshold_only():
    _promtool("test", "rules", ALERT_TESTS.name, cwd=ALERT_TESTS.parent)


@promtool
def test_promtool_parses_every_dashboard_expression(tmp_path):
    """Each panel query as a recording rule (Grafana's variables given values), so promtool parses its PromQL."""
    rules = [
        {"record": f"paytrust:dashboard_panel_{number}", "expr": expr.replace("$__rate_interval", "5m")
         .replace("$instance", ".*")}
        for number, expr in enumerate(dashboard_exprs())
    ]  # fmt: skip
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    _promtool("check", "rules", str(path))
