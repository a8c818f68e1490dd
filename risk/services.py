"""Risk writes: `risk_evaluate` (score one payment attempt, recording it in the velocity log when it passes) and
`risk_settings_update` (the API's PATCH and the admin's form). docs/adr/0053-risk-scoring.md.
"""

from __future__ import annotations

import ipaddress
import logging
import re

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import transaction

from apikeys.models import AuditLog
from apikeys.services import Actor, audit_record
from paytrust import metrics, money
from paytrust.errors import Unprocessable, ValidationError
from risk import velocity
from risk.models import DEFAULTS, RiskSettings
from risk.rules import (
    RiskAssessment,
    RiskContext,
    Rules,
    assess,
    blocklist_reasons,
    engine_error_assessment,
    rules_cached,
    rules_for,
    rules_invalidate,
    rules_peek,
    soft_reasons,
    velocity_reasons,
)
from risk.selectors import risk_settings_values

logger = logging.getLogger("paytrust.risk")

DEVICE_ID_MAX_LENGTH = 128
BLOCKLIST_MAX_ENTRIES = 1000


def risk_evaluate(
    *,
    merchant_id: str,
    mode: str,
    currency: str,
    amount_minor: int,
    email: str = "",
    customer_ip: str | None = None,
    device_id: str | None = None,
) -> RiskAssessment:
    """Score one payment attempt (0-100, reasons, allow/review/block). Never raises: if anything fails the answer
    is score 50, `risk_engine_error`, review (the exception is logged).

    Call it inside the transaction that records the payment (payments' phase 1): on the PostgreSQL backend the
    velocity keys stay locked until that transaction commits, so a concurrent attempt of the same e-mail, IP or
    device counts this one. Its database work is one call of `paytrust_risk_check`, which rolls back its own
    errors (a subtransaction inside the function), and on a rules-cache miss one read inside a savepoint: a failure
    leaves the caller's transaction usable (then: score 50, flagged).
    An attempt that passes (allow/review) is recorded in the velocity log; a blocked one is not.
    """
    try:
        ctx = RiskContext(
            merchant_id=merchant_id,
            mode=mode,
            currency=currency,
            amount_minor=amount_minor,
            email=(email or "").strip().lower(),
            customer_ip=str(ipaddress.ip_address(customer_ip)) if customer_ip else "",
            device_id=device_id or "",
        )
        if transaction.get_connection().in_atomic_block:
            # No savepoint on the common path (it would cost two round trips of a budget of 2 ms): the velocity
            # function rolls back its own errors, and the rules are read from the database only on a cache miss,
            # inside a savepoint (`_rules`). Either way a database error leaves the caller's transaction usable.
            assessment = _evaluate(ctx, raw_email=email or "")
        else:
            with transaction.atomic():  # called on its own: the key locks last until this commits
                assessment = _evaluate(ctx, raw_email=email or "")
    except Exception:  # noqa: BLE001 - the engine must never stop a payment (SPEC §13)
        logger.exception("risk engine failed; payment proceeds flagged", extra={"merchant": merchant_id})
        metrics.risk_engine_error()
        return engine_error_assessment()
    metrics.risk_decision(assessment.decision)
    return assessment


def _evaluate(ctx: RiskContext, *, raw_email: str) -> RiskAssessment:
    """Score with the cached rules; if the settings changed meanwhile (the version read differs), score again with
    the new ones (the first call then recorded nothing)."""
    keys = ctx.velocity_keys()
    redis = velocity.use_redis()
    rules = _rules(ctx.merchant_id, ctx.mode)
    for _ in range(2):
        hard = blocklist_reasons(rules, ctx)
        checked = velocity.pg_check(
            ctx, raw_email=raw_email, keys={} if redis else keys, rules=rules, record=not hard
        )
        if checked.version != rules.version:
            rules = _rules(ctx.merchant_id, ctx.mode, checked.version)
            continue
        soft = soft_reasons(rules, ctx, new_customer=not checked.paid_before)
        if hard or not keys:
            return assess(rules, hard=hard, soft=soft)
        counts = checked.counts
        if redis:
            counts, _recorded = velocity.redis_reserve(ctx, keys, rules)
        return assess(rules, hard=velocity_reasons(rules, counts), soft=soft)
    raise RuntimeError("the risk settings changed twice during one evaluation")


_ANY_VERSION = object()


def _rules(merchant_id: str, mode: str, version: object = _ANY_VERSION) -> Rules:
    """The cached rules (no query), or — on a miss or another version — read them inside a savepoint: a database
    error there (a timeout, a dropped connection) rolls back to it, not the caller's whole transaction."""
    cached = rules_peek(merchant_id, mode)
    if cached is not None and (version is _ANY_VERSION or cached.version == version):
        return cached
    with transaction.atomic():
        if version is _ANY_VERSION:
            return rules_cached(merchant_id, mode)
        return rules_for(merchant_id, mode, version)


def risk_velocity_purge() -> int:
    """Delete velocity rows that left the day window (the `risk.purge_velocity` job). Returns how many."""
    return velocity.pg_purge()


# ---- settings ------------------------------------------------------------------------------------------------

_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


def _list(value: object, param: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValidationError(f"{param} must be a list of strings.", param=param)
    if len(value) > BLOCKLIST_MAX_ENTRIES:
        raise ValidationError(f"{param} holds at most {BLOCKLIST_MAX_ENTRIES} entries.", param=param)
    return [v.strip() for v in value]


def _normalise_blocklist(name: str, value: object) -> list[str]:
    entries = _list(value, name)
    out: list[str] = []
    for index, entry in enumerate(entries):
        param = f"{name}.{index}"
        if name == "blocked_emails":
            entry = entry.lower()
            try:
                validate_email(entry)
            except DjangoValidationError:
                raise ValidationError(f"{entry!r} is not an e-mail address.", param=param) from None
        elif name == "blocked_email_domains":
            entry = entry.lower().lstrip("@")
            if not _DOMAIN.match(entry):
                raise ValidationError(f"{entry!r} is not a domain name.", param=param)
        elif name == "blocked_ips":
            try:
                entry = str(ipaddress.ip_network(entry)) if "/" in entry else str(ipaddress.ip_address(entry))
            except ValueError as exc:
                raise ValidationError(
                    f"{entry!r} is not an IP address or CIDR block ({exc}).", param=param
                ) from None
        elif not entry or len(entry) > DEVICE_ID_MAX_LENGTH:
            raise ValidationError(f"A device id has 1 to {DEVICE_ID_MAX_LENGTH} characters.", param=param)
        if entry not in out:
            out.append(entry)
    return out


def _thresholds(name: str, value: object) -> dict[str, int]:
    if not isinstance(value, dict):
        raise ValidationError(f"{name} must be an object of currency: amount.", param=name)
    out = {}
    for currency, amount in value.items():
        money.get_currency(currency, param=f"{name}.{currency}")
        if amount is None or isinstance(amount, bool):
            raise ValidationError("The amount must be a decimal string.", param=f"{name}.{currency}")
        out[currency] = money.to_minor(amount, currency, param=f"{name}.{currency}", allow_zero=False)
    return out


def _limit(name: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1_000_000:
        raise ValidationError(f"{name} must be an integer from 1 to 1000000, or null (no limit).", param=name)
    return value


def _threshold(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100:
        raise ValidationError(f"{name} must be an integer from 1 to 100.", param=name)
    return value


def risk_settings_normalise(changes: dict) -> dict:
    """Validate and normalise a partial update (field -> value). Raises ValidationError (400, `param` set)."""
    out = {}
    for name, value in changes.items():
        if name not in DEFAULTS:
            raise ValidationError(f"Unknown field {name!r}.", code="parameter_unknown", param=name)
        if name.startswith("blocked_"):
            out[name] = _normalise_blocklist(name, value)
        elif name.endswith("_thresholds"):
            out[name] = _thresholds(name, value)
        elif name.startswith("velocity_"):
            out[name] = _limit(name, value)
        else:
            out[name] = _threshold(name, value)
    return out


def risk_settings_update(*, merchant, mode: str, changes: dict, actor: Actor) -> dict:
    """Apply a partial update to (merchant, mode)'s rules (creating its row from the defaults on first use);
    review_threshold must stay below block_threshold (422 `risk_thresholds_invalid`). Audited (`risk_settings.update`, with the new values).
    Returns the settings' values (risk.selectors.risk_settings_values)."""
    normalised = risk_settings_normalise(changes)
    with transaction.atomic():
        row, _ = RiskSettings.objects.select_for_update().get_or_create(merchant=merchant, mode=mode)
        for name, value in normalised.items():
            setattr(row, name, value)
        if row.review_threshold >= row.block_threshold:
            # Each value is valid alone; together they cannot work (422, like every cross-field rule).
            raise Unprocessable(
                f"review_threshold ({row.review_threshold}) must be lower than block_threshold "
                f"({row.block_threshold}).",
                code="risk_thresholds_invalid",
                param="review_threshold" if "review_threshold" in normalised else "block_threshold",
            )
        row.save()
        audit_record(
            action=AuditLog.Action.ADMIN_ACTION,
            actor=actor,
            merchant=merchant,
            mode=mode,
            action_name="risk_settings.update",
            changes={name: normalised[name] for name in sorted(normalised)},
        )
        transaction.on_commit(lambda: rules_invalidate(merchant.pk, mode))
    return risk_settings_values(merchant=merchant, mode=mode)
