"""Gateway call metrics: latency and errors by gateway and outcome ("ok" or the GatewayError code).

Goes through the project-wide `paytrust.metrics.gateway_call_observed` (multiprocess-aware, served at /metrics);
if that module is missing, falls back to local prometheus_client collectors with distinct names.
"""

from __future__ import annotations

import logging

logger = logging.getLogger("paytrust.gateways")

try:
    from paytrust.metrics import gateway_call_observed as _shared_observe
except ImportError:  # pragma: no cover - only without the shared metrics module
    _shared_observe = None
    from prometheus_client import Counter, Histogram

    _LATENCY = Histogram(
        "paytrust_gateway_call_seconds", "Latency of calls to payment gateways.", ["gateway", "outcome"]
    )
    _ERRORS = Counter("paytrust_gateway_call_errors_total", "Failed gateway calls.", ["gateway", "outcome"])


def observe_call(*, gateway: str, operation: str, outcome: str, seconds: float) -> None:
    """outcome: "ok" or the GatewayError code ("gateway_timeout", "gateway_server_error", …). Never raises."""
    try:
        if _shared_observe is not None:
            _shared_observe(gateway, seconds, outcome)
            return
        _LATENCY.labels(gateway, outcome).observe(seconds)
        if outcome != "ok":
            _ERRORS.labels(gateway, outcome).inc()
    except Exception:  # noqa: BLE001 - metrics must never break a payment
        logger.warning("gateway metrics failed", exc_info=True)
