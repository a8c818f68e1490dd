"""Circuit breaker: opens after N consecutive transient failures, fails fast, half-opens after the cool-down."""

import threading

import pytest

from gateways.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker, breaker_for
from gateways.registry import gateway_for_account
from paytrust.errors import GatewayError
from tests.gateways.test_xendit import make_request


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def transient():
    raise GatewayError("boom", code="gateway_server_error", retryable=True)


def test_opens_after_threshold_and_fails_fast_without_calling():
    clock = FakeClock()
    breaker = CircuitBreaker("t", failure_threshold=3, reset_seconds=30, clock=clock)
    for _ in range(3):
        with pytest.raises(GatewayError):
            breaker.call(transient)
    assert breaker.state == OPEN
    calls = []
    with pytest.raises(GatewayError) as exc:
        breaker.call(lambda: calls.append(1))
    assert calls == []
    assert exc.value.code == "gateway_unavailable" and exc.value.retryable is True


def test_permanent_errors_and_successes_reset_the_count():
    breaker = CircuitBreaker("t", failure_threshold=2, reset_seconds=30, clock=FakeClock())
    with pytest.raises(GatewayError):
        breaker.call(transient)

    def rejected():
        raise GatewayError("bad request", code="gateway_rejected", retryable=False)

    with pytest.raises(GatewayError):
        breaker.call(rejected)  # the gateway answered: it is up
    with pytest.raises(GatewayError):
        breaker.call(transient)
    assert breaker.state == CLOSED


def test_half_open_after_cool_down_success_closes_failure_reopens():
    clock = FakeClock()
    breaker = CircuitBreaker("t", failure_threshold=1, reset_seconds=30, clock=clock)
    with pytest.raises(GatewayError):
        breaker.call(transient)
    clock.now += 29
    with pytest.raises(GatewayError) as exc:
        breaker.call(lambda: "never")
    assert exc.value.code == "gateway_unavailable"
    clock.now += 1
    assert breaker.state == HALF_OPEN
    with pytest.raises(GatewayError) as exc:
        breaker.call(transient)  # the trial fails -> open again for a new cool-down
    assert exc.value.code == "gateway_server_error"
    assert breaker.state == OPEN
    clock.now += 30
    assert breaker.call(lambda: "ok") == "ok"
    assert breaker.state == CLOSED


def test_half_open_admits_exactly_one_trial_across_threads():
    clock = FakeClock()
    breaker = CircuitBreaker("t", failure_threshold=1, reset_seconds=30, clock=clock)
    with pytest.raises(GatewayError):
        breaker.call(transient)
    clock.now += 30
    started, release = threading.Event(), threading.Event()
    trial_calls = []

    def slow_trial():
        trial_calls.append(1)
        started.set()
        release.wait(10)
        return "ok"

    trial = threading.Thread(target=breaker.call, args=(slow_trial,))
    trial.start()
    assert started.wait(10)
    results = []

    def other():
        try:
            breaker.call(lambda: trial_calls.append(1))
            results.append("admitted")
        except GatewayError as exc:
            results.append(exc.code)

    others = [threading.Thread(target=other) for _ in range(8)]
    for thread in others:
        thread.start()
    for thread in others:
        thread.join(10)
    release.set()
    trial.join(10)
    assert results == ["gateway_unavailable"] * 8
    assert len(trial_calls) == 1
    assert breaker.state == CLOSED


def test_concurrent_failures_open_the_breaker_once():
    breaker = CircuitBreaker("t", failure_threshold=5, reset_seconds=30, clock=FakeClock())
    barrier = threading.Barrier(20)
    outcomes = []

    def worker():
        barrier.wait(10)
        try:
            breaker.call(transient)
        except GatewayError as exc:
            outcomes.append(exc.code)

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert breaker.state == OPEN
    assert len(outcomes) == 20
    assert outcomes.count("gateway_server_error") >= 5


@pytest.mark.django_db
def test_xendit_breaker_stops_calls_to_a_failing_gateway_per_account(xendit_account, xendit_fake, settings):
    settings.GATEWAY_CIRCUIT_FAILURE_THRESHOLD = 3
    settings.GATEWAY_CIRCUIT_RESET_SECONDS = 60
    clock = FakeClock()
    breaker_for("xendit", xendit_account.pk).clock = clock
    gateway = gateway_for_account(xendit_account)
    xendit_fake.behaviour = "error500"
    for _ in range(3):
        with pytest.raises(GatewayError) as exc:
            gateway.create_payment(make_request())
        assert exc.value.code == "gateway_server_error"
    sent = len(xendit_fake.requests)
    with pytest.raises(GatewayError) as exc:
        gateway.create_payment(make_request())
    assert exc.value.code == "gateway_unavailable" and exc.value.retryable
    assert len(xendit_fake.requests) == sent  # failed fast: nothing sent
    assert breaker_for("xendit", "gwa_other_account").state == CLOSED

    xendit_fake.behaviour = "normal"
    clock.now += 60  # cool-down over: one trial goes through and closes the breaker
    assert gateway.create_payment(make_request()).status == "pending"
    assert breaker_for("xendit", xendit_account.pk).state == CLOSED
