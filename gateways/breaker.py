"""Circuit breaker per (gateway, gateway account), shared by all threads of a process.

closed --N consecutive transient failures--> open --cool-down elapsed--> half-open (ONE trial call)
half-open --trial succeeds--> closed;  half-open --trial fails--> open (new cool-down).

While open (or while the half-open trial is in flight) calls fail fast with
GatewayError(code="gateway_unavailable", retryable=True) and nothing is sent to the gateway.

Only transient failures count (GatewayError with retryable=True: timeouts, connection errors, 5xx, garbage,
429). A permanent 4xx answer proves the gateway is up, so it counts as a success.

Scope: per process (each gunicorn worker / job worker learns on its own). With W processes a dead gateway sees
at most W × N calls before every breaker is open; that is acceptable for a fail-fast guard and needs no shared
store. Settings: GATEWAY_CIRCUIT_FAILURE_THRESHOLD (default 5), GATEWAY_CIRCUIT_RESET_SECONDS (default 30).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

from django.conf import settings

from paytrust.errors import GatewayError

T = TypeVar("T")

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half_open"


class CircuitBreaker:
    def __init__(
        self,
        key: str,
        *,
        failure_threshold: int,
        reset_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.key = key
        self.failure_threshold = max(1, failure_threshold)
        self.reset_seconds = reset_seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._state = CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._trial_in_flight = False

    @property
    def state(self) -> str:
        with self._lock:
            if self._state == OPEN and self.clock() - self._opened_at >= self.reset_seconds:
                return HALF_OPEN
            return self._state

    def _reject(self) -> GatewayError:
        return GatewayError(
            f"The payment gateway is unavailable (circuit open after {self.failure_threshold} consecutive "
            "failures); retry later.",
            code="gateway_unavailable",
            retryable=True,
        )

    def before_call(self) -> None:
        """Admit a call or raise gateway_unavailable. Pair every admitted call with record_success/failure."""
        with self._lock:
            if self._state == CLOSED:
                return
            if self._state == OPEN:
                if self.clock() - self._opened_at < self.reset_seconds:
                    raise self._reject()
                self._state = HALF_OPEN
                self._trial_in_flight = False
            # HALF_OPEN: exactly one trial at a time.
            if self._trial_in_flight:
                raise self._reject()
            self._trial_in_flight = True

    def record_success(self) -> None:
        with self._lock:
            self._state = CLOSED
            self._failures = 0
            self._trial_in_flight = False

    def record_failure(self) -> None:
        with self._lock:
            if self._state == HALF_OPEN:
                self._state = OPEN
                self._opened_at = self.clock()
                self._trial_in_flight = False
                return
            self._failures += 1
            if self._failures >= self.failure_threshold:
                self._state = OPEN
                self._opened_at = self.clock()

    def call(self, fn: Callable[[], T]) -> T:
        self.before_call()
        try:
            result = fn()
        except GatewayError as exc:
            if exc.retryable:
                self.record_failure()
            else:
                self.record_success()
            raise
        except BaseException:
            self.record_failure()
            raise
        self.record_success()
        return result


_breakers: dict[str, CircuitBreaker] = {}
_breakers_lock = threading.Lock()


def breaker_for(gateway: str, account_id: str) -> CircuitBreaker:
    key = f"{gateway}:{account_id}"
    breaker = _breakers.get(key)
    if breaker is not None:
        return breaker
    with _breakers_lock:
        breaker = _breakers.get(key)
        if breaker is None:
            breaker = CircuitBreaker(
                key,
                failure_threshold=getattr(settings, "GATEWAY_CIRCUIT_FAILURE_THRESHOLD", 5),
                reset_seconds=getattr(settings, "GATEWAY_CIRCUIT_RESET_SECONDS", 30.0),
            )
            _breakers[key] = breaker
        return breaker


def reset_breakers() -> None:
    """Forget every breaker (tests; or an operator after fixing a gateway outage in a shell)."""
    with _breakers_lock:
        _breakers.clear()
