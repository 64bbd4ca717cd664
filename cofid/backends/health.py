"""Whether a GPU host is worth sending work to: a circuit breaker, with no I/O.

The engine asks `allow_request()` before it sends a file to a host and reports every
outcome with `record_success()` / `record_failure()`. The clock is injected, so the state
machine runs the same under trio, in a thread, or in a test with a fake clock.

Rules:

1. closed (healthy): every request is allowed. A success resets the failure count; a
   failure adds one. `failure_threshold` consecutive failures open the breaker.
2. open (unhealthy): no request is allowed until `cooldown_s` has passed since it opened.
3. half_open: once the cooldown has passed, `allow_request()` lets exactly one probe
   through and refuses the rest until that probe's outcome is recorded.
4. A recorded success in any state closes the breaker (the host answered). A recorded
   failure while half_open (the probe failed) opens it again for a new cooldown; a
   failure while already open (a request sent before it opened) changes nothing.
5. A timeout (`record_timeout()`: the host took the request and never answered in time —
   hung, SIGSTOPped, swapping) opens a closed breaker at once, whatever the count: the
   host is suspect. Waiting for `failure_threshold` of them would cost that many
   timeouts while retries keep choosing the host with the free slots (the hung one)
   and a healthy host idles. Recovery is the usual probe after `cooldown_s`; a host
   answering slowly but within its timeout is never suspect.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

BreakerState = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    def __init__(
        self,
        *,
        failure_threshold: int = 5,
        cooldown_s: float = 30.0,
        clock: Callable[[], float],
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        if cooldown_s < 0:
            raise ValueError("cooldown_s must not be negative")
        self.failure_threshold = failure_threshold
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._open = False
        self._opened_at = 0.0
        self._probe_in_flight = False
        self.consecutive_failures = 0

    @property
    def state(self) -> BreakerState:
        if not self._open:
            return "closed"
        if self._probe_in_flight or self._clock() - self._opened_at >= self.cooldown_s:
            return "half_open"
        return "open"

    @property
    def healthy(self) -> bool:
        return not self._open

    def allow_request(self) -> bool:
        state = self.state
        if state == "closed":
            return True
        if state == "half_open" and not self._probe_in_flight:
            self._probe_in_flight = True
            return True
        return False

    def record_success(self) -> None:
        self._open = False
        self._probe_in_flight = False
        self.consecutive_failures = 0

    def record_failure(self) -> None:
        self.consecutive_failures += 1
        if self._probe_in_flight or (
            not self._open and self.consecutive_failures >= self.failure_threshold
        ):
            self._open = True
            self._opened_at = self._clock()
            self._probe_in_flight = False

    def record_timeout(self) -> None:
        """Rule 5: a failure that opens a closed breaker (or a probing one) at once."""
        self.consecutive_failures += 1
        if not self._open or self._probe_in_flight:
            self._open = True
            self._opened_at = self._clock()
            self._probe_in_flight = False

    def __repr__(self) -> str:
        return (
            f"CircuitBreaker(state={self.state!r}, "
            f"consecutive_failures={self.consecutive_failures})"
        )
