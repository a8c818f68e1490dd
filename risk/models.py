"""Risk scoring (SPEC §13, docs/adr/0053-risk-scoring.md): a merchant's rules per mode, and the velocity log.

`RiskSettings` is one row per (merchant, mode); a merchant without one is scored with `DEFAULTS` (below, and the
README's "Risk" section). Amount maps are {currency: minor units}; block lists are normalised on write
(risk.services.risk_settings_update): e-mails and domains lowercased, IPs/CIDRs in `ipaddress`'s canonical form.

`VelocityHit` is the PostgreSQL velocity log: one row per (payment attempt that passed the risk check, key), the
key being `email:<address>`, `ip:<address>` or `device:<id>`. Counting and inserting happen under a per-key
transaction advisory lock (risk/velocity.py), so concurrent attempts of one key, from any process or instance,
are counted one after another. Rows older than a day are purged by the `risk.purge_velocity` job. With REDIS_URL
set, the log lives in Redis sorted sets instead (same semantics, one Lua script).
"""

from __future__ import annotations

from django.contrib.postgres.indexes import BrinIndex
from django.db import models
from django.db.models import Q

from paytrust.models import Mode

# The rules of a merchant without its own row (documented in README "Risk" and ADR 0053).
DEFAULTS: dict = {
    "review_threshold": 50,
    "block_threshold": 80,
    # Attempts that passed the check per key (None = no limit). Card testing makes hundreds an hour; an invoicing
    # customer paying a batch of invoices (installments, B2B) makes a few dozen: the defaults stop the first and
    # not the second. An IP may be a shared NAT (offices, mobile carriers): looser than e-mail and device.
    "velocity_email_hour": 30,
    "velocity_email_day": 300,
    "velocity_ip_hour": 100,
    "velocity_ip_day": 1000,
    "velocity_device_hour": 30,
    "velocity_device_day": 300,
    # Minor units per currency: a payment above it scores `amount_over_threshold`.
    "amount_thresholds": {"IDR": 75_000_000, "MYR": 20_000_00, "USD": 5_000_00},
    # A customer (e-mail) with no paid invoice yet at this merchant+mode: a first payment above it scores
    # `new_customer_large_payment`.
    "new_customer_thresholds": {"IDR": 15_000_000, "MYR": 4_000_00, "USD": 1_000_00},
    "blocked_emails": [],
    "blocked_email_domains": [],
    "blocked_ips": [],
    "blocked_device_ids": [],
}


def default_amount_thresholds() -> dict:
    return dict(DEFAULTS["amount_thresholds"])


def default_new_customer_thresholds() -> dict:
    return dict(DEFAULTS["new_customer_thresholds"])


class RiskSettings(models.Model):
    merchant = models.ForeignKey("merchants.Merchant", on_delete=models.CASCADE, related_name="+")
    mode = models.CharField(max_length=4, choices=Mode.choices)
    review_threshold = models.PositiveSmallIntegerField(default=DEFAULTS["review_threshold"])
    block_threshold = models.PositiveSmallIntegerField(default=DEFAULTS["block_threshold"])
    velocity_email_hour = models.PositiveIntegerField(
        null=True, blank=True, default=DEFAULTS["velocity_email_hour"]
    )
    velocity_email_day = models.PositiveIntegerField(
        null=True, blank=True, default=DEFAULTS["velocity_email_day"]
    )
    velocity_ip_hour = models.PositiveIntegerField(
        null=True, blank=True, default=DEFAULTS["velocity_ip_hour"]
    )
    velocity_ip_day = models.PositiveIntegerField(null=True, blank=True, default=DEFAULTS["velocity_ip_day"])
    velocity_device_hour = models.PositiveIntegerField(
        null=True, blank=True, default=DEFAULTS["velocity_device_hour"]
    )
    velocity_device_day = models.PositiveIntegerField(
        null=True, blank=True, default=DEFAULTS["velocity_device_day"]
    )
    amount_thresholds = models.JSONField(default=default_amount_thresholds, blank=True)
    new_customer_thresholds = models.JSONField(default=default_new_customer_thresholds, blank=True)
    blocked_emails = models.JSONField(default=list, blank=True)
    blocked_email_domains = models.JSONField(default=list, blank=True)
    blocked_ips = models.JSONField(default=list, blank=True)
    blocked_device_ids = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Also the cache version: risk_evaluate reloads a merchant's rules when it changed (risk/rules.py).
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "risk settings"
        verbose_name_plural = "risk settings"
        constraints = [
            models.UniqueConstraint(fields=["merchant", "mode"], name="risk_settings_one_per_tenant"),
            models.CheckConstraint(condition=Q(mode__in=[m.value for m in Mode]), name="risk_settings_mode"),
            models.CheckConstraint(
                condition=Q(review_threshold__gte=1, block_threshold__lte=100)
                & Q(review_threshold__lt=models.F("block_threshold")),
                name="risk_settings_thresholds",
            ),
        ]

    def __str__(self) -> str:
        return f"Risk settings of {self.merchant_id} ({self.mode})"


class VelocityHit(models.Model):
    """One attempt of one key that passed the risk check (PostgreSQL velocity backend). Append-only, purged after
    a day. No foreign keys: written on the initiation hot path, read by (merchant, mode, key, time) only."""

    id = models.BigAutoField(primary_key=True)
    merchant_id = models.CharField(max_length=64)
    mode = models.CharField(max_length=4)
    key = models.CharField(max_length=300)
    created_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["merchant_id", "mode", "key", "created_at"], name="risk_velocity_key"),
            BrinIndex(
                fields=["created_at"], name="risk_velocity_created"
            ),  # the purge, by time; cheap to keep
        ]

    def __str__(self) -> str:
        return f"{self.key} at {self.created_at}"
