"""A merchant's risk rules compiled for scoring, cached per (merchant, mode), and the pure scoring itself.

Cache: one compiled `Rules` per (merchant, mode) and process, tagged with the settings row's `updated_at`. Every
evaluation reads that `updated_at` in the query it makes anyway (risk/velocity.py), so a change made by another
process or instance is picked up by the very next evaluation; the process that saves drops its entry at once.

Scoring weights (docs/adr/0053-risk-scoring.md, README "Risk"):
- hard signals score 100 (always >= any block threshold): a block-list hit (e-mail, e-mail domain, IP or CIDR,
  device id) and a velocity limit that this attempt would exceed (per e-mail / IP / device, last hour / day);
- soft signals: a payment above the currency's amount threshold (60), a new customer's first payment above the
  currency's new-customer threshold (55). Several soft signals: the highest weight + 10 per other one (cap 100);
- decision: score >= block_threshold -> block; >= review_threshold -> review; else allow.
"""

from __future__ import annotations

import ipaddress
import threading
from dataclasses import dataclass, field
from datetime import datetime

from risk.models import DEFAULTS, RiskSettings

HARD = 100
WEIGHT_AMOUNT = 60
WEIGHT_NEW_CUSTOMER = 55
SOFT_EXTRA = 10
ENGINE_ERROR_SCORE = 50

KINDS = ("email", "ip", "device")
KIND_LABEL = {"email": "customer e-mail", "ip": "customer IP address", "device": "device"}


class Decision:
    ALLOW = "allow"
    REVIEW = "review"
    BLOCK = "block"


@dataclass(frozen=True)
class Reason:
    code: str
    message: str

    def as_dict(self) -> dict:
        return {"code": self.code, "message": self.message}


@dataclass(frozen=True)
class RiskAssessment:
    score: int
    reasons: tuple[Reason, ...]
    decision: str

    @property
    def blocked(self) -> bool:
        return self.decision == Decision.BLOCK

    @property
    def flagged(self) -> bool:
        return self.decision == Decision.REVIEW

    def reasons_json(self) -> list[dict]:
        return [reason.as_dict() for reason in self.reasons]


def engine_error_assessment() -> RiskAssessment:
    return RiskAssessment(
        score=ENGINE_ERROR_SCORE,
        reasons=(
            Reason("risk_engine_error", "The risk check could not run; the payment is flagged for review."),
        ),
        decision=Decision.REVIEW,
    )


@dataclass(frozen=True)
class RiskContext:
    """What is known of one payment attempt, normalised (e-mail lowercased, IP canonical)."""

    merchant_id: str
    mode: str
    currency: str
    amount_minor: int
    email: str = ""
    customer_ip: str = ""
    device_id: str = ""

    @property
    def email_domain(self) -> str:
        return self.email.rpartition("@")[2] if "@" in self.email else ""

    def velocity_keys(self) -> dict[str, str]:
        """{kind: key} for the identities this attempt carries."""
        values = {"email": self.email, "ip": self.customer_ip, "device": self.device_id}
        return {kind: f"{kind}:{value}" for kind, value in values.items() if value}


@dataclass(frozen=True)
class Rules:
    version: datetime | None
    review_threshold: int
    block_threshold: int
    limits: dict[str, tuple[int | None, int | None]]  # kind -> (per hour, per day)
    amount_thresholds: dict[str, int]
    new_customer_thresholds: dict[str, int]
    blocked_emails: frozenset[str] = frozenset()
    blocked_email_domains: frozenset[str] = frozenset()
    blocked_addresses: frozenset = frozenset()
    blocked_networks: tuple = ()
    blocked_device_ids: frozenset[str] = frozenset()
    has_limits: bool = field(default=False)

    def decide(self, score: int) -> str:
        if score >= self.block_threshold:
            return Decision.BLOCK
        if score >= self.review_threshold:
            return Decision.REVIEW
        return Decision.ALLOW


def compile_rules(values: dict, *, version: datetime | None) -> Rules:
    """Rules from a settings dict (a row's fields, or DEFAULTS). Raises on malformed stored data (the engine then
    answers `risk_engine_error`)."""
    addresses, networks = set(), []
    for entry in values["blocked_ips"]:
        if "/" in entry:
            networks.append(ipaddress.ip_network(entry))
        else:
            addresses.add(ipaddress.ip_address(entry))
    limits = {kind: (values[f"velocity_{kind}_hour"], values[f"velocity_{kind}_day"]) for kind in KINDS}
    return Rules(
        version=version,
        review_threshold=int(values["review_threshold"]),
        block_threshold=int(values["block_threshold"]),
        limits=limits,
        amount_thresholds={cur: int(v) for cur, v in values["amount_thresholds"].items()},
        new_customer_thresholds={cur: int(v) for cur, v in values["new_customer_thresholds"].items()},
        blocked_emails=frozenset(values["blocked_emails"]),
        blocked_email_domains=frozenset(values["blocked_email_domains"]),
        blocked_addresses=frozenset(addresses),
        blocked_networks=tuple(networks),
        blocked_device_ids=frozenset(values["blocked_device_ids"]),
        has_limits=any(limit is not None for pair in limits.values() for limit in pair),
    )


SETTINGS_FIELDS = tuple(DEFAULTS)

_cache: dict[tuple[str, str], Rules] = {}
_cache_lock = threading.Lock()


def rules_for(merchant_id: str, mode: str, version: datetime | None) -> Rules:
    """The compiled rules of (merchant, mode) whose settings row has `updated_at` == `version` (None: no row, the
    defaults). Loads and compiles them on a miss or a version change (one query)."""
    key = (merchant_id, mode)
    cached = _cache.get(key)
    if cached is not None and cached.version == version:
        return cached
    values = DEFAULTS
    if version is not None:
        row = RiskSettings.objects.filter(merchant_id=merchant_id, mode=mode).values(
            *SETTINGS_FIELDS, "updated_at"
        )
        row = row.first()
        if row is not None:
            version = row.pop("updated_at")
            values = row
        else:
            version = None
    rules = compile_rules(values, version=version)
    with _cache_lock:
        _cache[key] = rules
    return rules


def rules_cached(merchant_id: str, mode: str) -> Rules:
    """The cached rules of (merchant, mode), loaded on a miss (one query). The caller checks their version against
    the one its evaluation reads and reloads with `rules_for` when it changed."""
    cached = _cache.get((merchant_id, mode))
    if cached is not None:
        return cached
    row = RiskSettings.objects.filter(merchant_id=merchant_id, mode=mode).values_list("updated_at", flat=True)
    return rules_for(merchant_id, mode, row.first())


def rules_peek(merchant_id: str, mode: str) -> Rules | None:
    """The cached rules of (merchant, mode), or None: never a query."""
    return _cache.get((merchant_id, mode))


def rules_invalidate(merchant_id: str, mode: str) -> None:
    with _cache_lock:
        _cache.pop((merchant_id, mode), None)


# ---- scoring (pure) ------------------------------------------------------------------------------------------


def _ip_blocked(rules: Rules, address: str) -> bool:
    if not address or not (rules.blocked_addresses or rules.blocked_networks):
        return False
    ip = ipaddress.ip_address(address)
    return ip in rules.blocked_addresses or any(
        ip.version == net.version and ip in net for net in rules.blocked_networks
    )


def blocklist_reasons(rules: Rules, ctx: RiskContext) -> list[Reason]:
    reasons = []
    if ctx.email and ctx.email in rules.blocked_emails:
        reasons.append(Reason("email_blocked", "The customer's e-mail address is on the block list."))
    if ctx.email_domain and ctx.email_domain in rules.blocked_email_domains:
        reasons.append(Reason("email_domain_blocked", "The customer's e-mail domain is on the block list."))
    if _ip_blocked(rules, ctx.customer_ip):
        reasons.append(Reason("ip_blocked", "The customer's IP address is on the block list."))
    if ctx.device_id and ctx.device_id in rules.blocked_device_ids:
        reasons.append(Reason("device_blocked", "The customer's device is on the block list."))
    return reasons


def soft_reasons(rules: Rules, ctx: RiskContext, *, new_customer: bool) -> list[tuple[int, Reason]]:
    found = []
    limit = rules.amount_thresholds.get(ctx.currency)
    if limit is not None and ctx.amount_minor > limit:
        found.append(
            (
                WEIGHT_AMOUNT,
                Reason("amount_over_threshold", f"The amount is above the {ctx.currency} threshold."),
            )
        )
    limit = rules.new_customer_thresholds.get(ctx.currency)
    if new_customer and limit is not None and ctx.amount_minor > limit:
        found.append(
            (
                WEIGHT_NEW_CUSTOMER,
                Reason(
                    "new_customer_large_payment",
                    f"A new customer's first payment is above the {ctx.currency} new-customer threshold.",
                ),
            )
        )
    return found


def velocity_reasons(rules: Rules, counts: dict[str, tuple[int, int]]) -> list[Reason]:
    """Reasons for each limit this attempt would exceed, given the attempts already counted {kind: (hour, day)}."""
    reasons = []
    for kind, (hour, day) in counts.items():
        per_hour, per_day = rules.limits[kind]
        for used, limit, window in ((hour, per_hour, "hour"), (day, per_day, "day")):
            if limit is not None and used + 1 > limit:
                reasons.append(
                    Reason(
                        f"velocity_{kind}_{window}",
                        f"Too many payments for this {KIND_LABEL[kind]} in the last {window} (limit {limit}).",
                    )
                )
    return reasons


def assess(rules: Rules, *, hard: list[Reason], soft: list[tuple[int, Reason]]) -> RiskAssessment:
    if hard:
        score = HARD
    elif soft:
        score = min(100, max(weight for weight, _ in soft) + SOFT_EXTRA * (len(soft) - 1))
    else:
        score = 0
    reasons = tuple(hard) + tuple(reason for _, reason in soft)
    return RiskAssessment(score=score, reasons=reasons, decision=rules.decide(score))
