"""Each rule of risk_evaluate against the real database: block lists (e-mail, domain, IP, CIDR, device), velocity
per e-mail / IP / device over the last hour and the last day, amount thresholds per currency, a new customer's
first payment, and how the thresholds turn a score into allow / review / block."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from risk.models import VelocityHit
from risk.services import risk_evaluate

pytestmark = pytest.mark.django_db

NO_LIMITS = {f"velocity_{k}_{w}": None for k in ("email", "ip", "device") for w in ("hour", "day")}


def evaluate(merchant, *, amount="150000", currency="IDR", email="budi@example.com", ip=None, device=None):
    from paytrust.money import to_minor

    return risk_evaluate(
        merchant_id=merchant.pk,
        mode="test",
        currency=currency,
        amount_minor=to_minor(amount, currency),
        email=email,
        customer_ip=ip,
        device_id=device,
    )


def codes(assessment) -> list[str]:
    return [reason.code for reason in assessment.reasons]


def test_an_ordinary_payment_is_allowed_with_score_0(merchant):
    assessment = evaluate(merchant, ip="198.51.100.7", device="dev-1")
    assert (assessment.score, assessment.decision, codes(assessment)) == (0, "allow", [])


@pytest.mark.parametrize(
    ("rules", "attempt", "code"),
    [
        ({"blocked_emails": ["Fraud@Example.com"]}, {"email": "fraud@example.COM"}, "email_blocked"),
        (
            {"blocked_email_domains": ["@mailinator.com"]},
            {"email": "x@MAILINATOR.com"},
            "email_domain_blocked",
        ),
        ({"blocked_ips": ["203.0.113.9"]}, {"ip": "203.0.113.9"}, "ip_blocked"),
        ({"blocked_ips": ["203.0.113.0/24"]}, {"ip": "203.0.113.200"}, "ip_blocked"),
        ({"blocked_ips": ["2001:db8::/32"]}, {"ip": "2001:db8:0:0::17"}, "ip_blocked"),
        ({"blocked_device_ids": ["dev-bad"]}, {"device": "dev-bad"}, "device_blocked"),
    ],
)
def test_each_block_list_blocks_with_score_100(merchant, set_rules, rules, attempt, code):
    set_rules(merchant, **rules)
    assessment = evaluate(merchant, **attempt)
    assert (assessment.score, assessment.decision, codes(assessment)) == (100, "block", [code])


def test_block_lists_do_not_catch_neighbours(merchant, set_rules):
    set_rules(
        merchant,
        blocked_emails=["fraud@example.com"],
        blocked_email_domains=["mailinator.com"],
        blocked_ips=["203.0.113.0/24", "2001:db8::/32"],
        blocked_device_ids=["dev-bad"],
    )
    assessment = evaluate(merchant, email="budi@notmailinator.com", ip="203.0.114.1", device="dev-bad2")
    assert assessment.decision == "allow"
    assert evaluate(merchant, ip="2001:db9::1").decision == "allow"


@pytest.mark.parametrize(
    ("kind", "window", "identity"),
    [
        ("email", "hour", {"email": "card-tester@example.com"}),
        ("email", "day", {"email": "card-tester@example.com"}),
        ("ip", "hour", {"email": "", "ip": "198.51.100.1"}),
        ("ip", "day", {"email": "", "ip": "198.51.100.1"}),
        ("device", "hour", {"email": "", "device": "dev-7"}),
        ("device", "day", {"email": "", "device": "dev-7"}),
    ],
)
def test_velocity_limit_blocks_the_attempt_past_it(merchant, set_rules, kind, window, identity):
    set_rules(merchant, **{**NO_LIMITS, f"velocity_{kind}_{window}": 3})
    decisions = [evaluate(merchant, **identity).decision for _ in range(4)]
    assert decisions == ["allow", "allow", "allow", "block"]
    blocked = evaluate(merchant, **identity)
    assert blocked.score == 100 and codes(blocked) == [f"velocity_{kind}_{window}"]
    # The blocked attempts were not counted: 3 passed, 3 rows for the key.
    assert VelocityHit.objects.filter(merchant_id=merchant.pk, key__startswith=f"{kind}:").count() == 3
    # Another identity of the same kind is not affected.
    other = {
        "email": "",
        "ip": None,
        "device": None,
        kind: {"email": "x@y.com", "ip": "198.51.100.2"}.get(kind, "d"),
    }
    assert evaluate(merchant, **other).decision == "allow"


def test_attempts_older_than_an_hour_count_for_the_day_only(merchant, set_rules):
    set_rules(merchant, **{**NO_LIMITS, "velocity_email_hour": 2, "velocity_email_day": 4})
    two_hours_ago = timezone.now() - timedelta(hours=2)
    VelocityHit.objects.bulk_create(
        VelocityHit(
            merchant_id=merchant.pk, mode="test", key="email:budi@example.com", created_at=two_hours_ago
        )
        for _ in range(2)
    )
    # Yesterday's (older than a day) count for nothing.
    VelocityHit.objects.create(
        merchant_id=merchant.pk,
        mode="test",
        key="email:budi@example.com",
        created_at=timezone.now() - timedelta(days=2),
    )
    assert [evaluate(merchant).decision for _ in range(3)] == ["allow", "allow", "block"]
    assert codes(evaluate(merchant)) == ["velocity_email_hour", "velocity_email_day"]


def test_velocity_is_per_merchant_and_mode(merchant, other_merchant, set_rules):
    set_rules(merchant, **{**NO_LIMITS, "velocity_email_hour": 1})
    set_rules(other_merchant, **{**NO_LIMITS, "velocity_email_hour": 1})
    assert evaluate(merchant).decision == "allow"
    assert evaluate(other_merchant).decision == "allow"
    assert evaluate(merchant).decision == "block"


def test_amount_threshold_is_per_currency(merchant, set_rules):
    set_rules(merchant, amount_thresholds={"IDR": "1000000", "USD": "500.00"}, new_customer_thresholds={})
    assert evaluate(merchant, amount="1000000").decision == "allow"  # at the threshold: not above it
    high = evaluate(merchant, amount="1000001")
    assert (high.score, high.decision, codes(high)) == (60, "review", ["amount_over_threshold"])
    assert evaluate(merchant, amount="500.01", currency="USD").decision == "review"
    assert evaluate(merchant, amount="500.00", currency="USD").decision == "allow"
    assert evaluate(merchant, amount="999999.00", currency="MYR").decision == "allow"  # no MYR threshold


def test_new_customer_first_payment_threshold(merchant, set_rules):
    set_rules(merchant, amount_thresholds={}, new_customer_thresholds={"IDR": "500000"})
    first = evaluate(merchant, amount="500001", email="new@example.com")
    assert (first.score, first.decision, codes(first)) == (55, "review", ["new_customer_large_payment"])
    assert evaluate(merchant, amount="500000", email="new@example.com").decision == "allow"


def test_a_customer_with_a_paid_invoice_is_not_new(merchant, set_rules):
    from invoices.models import Invoice
    from tests.payments.factories import make_invoice

    set_rules(merchant, amount_thresholds={}, new_customer_thresholds={"IDR": "500000"})
    invoice = make_invoice(merchant, amount="150000")
    _pay_on_sandbox(merchant, invoice)
    assert Invoice.objects.get(pk=invoice.pk).amount_paid_minor > 0
    assert evaluate(merchant, amount="900000", email="budi@example.com").decision == "allow"
    assert evaluate(merchant, amount="900000", email="someone-else@example.com").decision == "review"


def _pay_on_sandbox(merchant, invoice):
    from django.test import Client

    from gateways.models import SandboxCheckoutSession
    from payments.services import payment_initiate
    from tests.webhooks.inbound_support import process_all

    payment = payment_initiate(merchant=merchant, mode="test", invoice_id=invoice.id).payment
    session = SandboxCheckoutSession.objects.get(payment_id=payment.id)
    path = "/" + payment.payment_url.split("://", 1)[1].split("/", 1)[1]
    response = Client().post(path, {"nonce": session.form_nonce, "action": "pay"})
    assert response.status_code == 200
    assert process_all() == ["processed"]


def test_soft_signals_combine_to_the_highest_plus_10(merchant, set_rules):
    set_rules(merchant, amount_thresholds={"IDR": "1000000"}, new_customer_thresholds={"IDR": "500000"})
    both = evaluate(merchant, amount="2000000", email="new@example.com")
    assert (both.score, both.decision) == (70, "review")
    assert codes(both) == ["amount_over_threshold", "new_customer_large_payment"]


def test_thresholds_decide_between_allow_review_and_block(merchant, set_rules):
    set_rules(merchant, amount_thresholds={"IDR": "1000000"}, new_customer_thresholds={})
    # Score 60: review at the default thresholds (50 / 80) ...
    assert evaluate(merchant, amount="2000000").decision == "review"
    # ... allowed when review starts above it ...
    set_rules(merchant, review_threshold=61, block_threshold=90)
    assert evaluate(merchant, amount="2000000").decision == "allow"
    # ... blocked when the block threshold is at or below it (exactly at: block).
    set_rules(merchant, review_threshold=30, block_threshold=60)
    blocked = evaluate(merchant, amount="2000000")
    assert (blocked.score, blocked.decision) == (60, "block")


def test_a_change_made_elsewhere_is_seen_by_the_next_evaluation(merchant, set_rules):
    """The compiled rules are cached per process; another process's save bumps updated_at, which every
    evaluation reads, so the next one reloads (simulated by writing the row behind the cache's back)."""
    from risk.models import RiskSettings

    set_rules(merchant, blocked_emails=[])
    assert evaluate(merchant).decision == "allow"
    row = RiskSettings.objects.get(merchant=merchant, mode="test")
    row.blocked_emails = ["budi@example.com"]
    row.save()  # not through the service: no invalidation in this process
    assert evaluate(merchant).decision == "block"


def test_the_purge_deletes_only_rows_older_than_a_day(merchant):
    from risk.services import risk_velocity_purge

    now = timezone.now()
    for age in (timedelta(hours=23), timedelta(hours=25)):
        VelocityHit.objects.create(
            merchant_id=merchant.pk, mode="test", key="ip:198.51.100.1", created_at=now - age
        )
    assert risk_velocity_purge() == 1
    assert list(VelocityHit.objects.values_list("created_at", flat=True)) == [now - timedelta(hours=23)]
