"""CircuitBreaker, driven by a fake clock: each numbered rule of cofid.backends.health."""

from __future__ import annotations

import pytest

from cofid.backends.health import CircuitBreaker


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def breaker(clock, threshold=3, cooldown=10.0) -> CircuitBreaker:
    return CircuitBreaker(failure_threshold=threshold, cooldown_s=cooldown, clock=clock)


def test_starts_closed_and_allows_requests(clock):
    b = breaker(clock)
    assert b.state == "closed" and b.healthy and b.allow_request()


def test_opens_after_threshold_consecutive_failures(clock):
    b = breaker(clock)
    b.record_failure()
    b.record_failure()
    assert b.state == "closed" and b.allow_request()
    b.record_failure()
    assert b.state == "open" and not b.healthy and not b.allow_request()


def test_a_success_resets_the_count(clock):
    b = breaker(clock)
    for _ in range(2):
        b.record_failure()
    b.record_success()
    for _ in range(2):
        b.record_failure()
    assert b.state == "closed" and b.consecutive_failures == 2


def test_half_open_after_cooldown_lets_exactly_one_probe(clock):
    b = breaker(clock)
    for _ in range(3):
        b.record_failure()
    clock.now += 9.9
    assert not b.allow_request() and b.state == "open"
    clock.now += 0.1
    assert b.state == "half_open" and not b.healthy
    assert b.allow_request()
    assert not b.allow_request()  # the probe is still out
    assert b.state == "half_open"


def test_probe_success_closes(clock):
    b = breaker(clock)
    for _ in range(3):
        b.record_failure()
    clock.now += 10
    assert b.allow_request()
    b.record_success()
    assert b.state == "closed" and b.healthy and b.allow_request()
    assert b.consecutive_failures == 0


def test_probe_failure_reopens_for_a_new_cooldown(clock):
    b = breaker(clock)
    for _ in range(3):
        b.record_failure()
    clock.now += 10
    assert b.allow_request()
    b.record_failure()
    assert b.state == "open" and not b.allow_request()
    clock.now += 9
    assert not b.allow_request()
    clock.now += 1
    assert b.allow_request()


def test_late_failures_while_open_do_not_extend_the_cooldown(clock):
    b = breaker(clock)
    for _ in range(3):
        b.record_failure()
    clock.now += 5
    b.record_failure()  # a request sent before the breaker opened
    clock.now += 5
    assert b.allow_request()


def test_invalid_settings_are_refused(clock):
    with pytest.raises(ValueError):
        CircuitBreaker(failure_threshold=0, clock=clock)
    with pytest.raises(ValueError):
        CircuitBreaker(cooldown_s=-1, clock=clock)
