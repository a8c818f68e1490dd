"""Risk reads: a merchant's rules for one mode (its row, or the defaults), and their API representation."""

from __future__ import annotations

from datetime import UTC

from paytrust import money
from risk.models import DEFAULTS, RiskSettings


def risk_settings_values(*, merchant, mode: str) -> dict:
    """{field: value} of (merchant, mode)'s rules (DEFAULTS when it has no row) plus `updated_at` (None then)."""
    row = RiskSettings.objects.filter(merchant=merchant, mode=mode).values(*DEFAULTS, "updated_at").first()
    if row is None:
        return {
            **{
                k: (list(v) if isinstance(v, list) else dict(v) if isinstance(v, dict) else v)
                for k, v in DEFAULTS.items()
            },
            "updated_at": None,
        }
    return row


def risk_settings_representation(values: dict, *, mode: str) -> dict:
    """The `risk_settings` API object: amounts as decimal strings in major units, per currency."""
    updated_at = values["updated_at"]
    out = {"object": "risk_settings", "mode": mode}
    for name in DEFAULTS:
        value = values[name]
        if name.endswith("_thresholds"):
            value = {cur: money.format_amount(minor, cur) for cur, minor in sorted(value.items())}
        out[name] = value
    out["customized"] = updated_at is not None
    out["updated_at"] = updated_at.astimezone(UTC).isoformat().replace("+00:00", "Z") if updated_at else None
    return out
