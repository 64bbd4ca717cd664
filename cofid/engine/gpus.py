"""GPU slots: bounded concurrency per GPU host, shared by every stage and every plan.

A stage worker asks for a slot with a priority (its position in the pipeline) and, when
the backend keeps files on the host's disk, the GPU the file lives on. Free slots go to
the highest priority waiter first — later stages first, so files already deep in the
pipeline finish before new ones start — and, among GPUs, to the least loaded healthy one.
A GPU whose circuit breaker opened takes no new work; files that had affinity to it move
to a healthy GPU (the caller records the move).
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import trio

from cofid.backends.base import Backends
from cofid.backends.health import CircuitBreaker


@dataclass
class Gpu:
    name: str
    slots: int
    backends: Backends
    breaker: CircuitBreaker
    in_use: int = 0
    assigned: int = 0
    done: int = 0
    latencies_ms: deque[float] = field(default_factory=lambda: deque(maxlen=200))

    @property
    def healthy(self) -> bool:
        return self.breaker.healthy

    def record(self, ok: bool, seconds: float) -> None:
        if ok:
            self.breaker.record_success()
            self.done += 1
            self.latencies_ms.append(seconds * 1000.0)
        else:
            self.breaker.record_failure()

    def latency_percentile(self, q: float) -> float:
        if not self.latencies_ms:
            return 0.0
        xs = sorted(self.latencies_ms)
        return xs[min(len(xs) - 1, int(q * len(xs)))]


@dataclass(order=True)
class _Waiter:
    sort_key: tuple[int, int]
    preferred: str | None = field(compare=False)
    event: trio.Event = field(compare=False)
    granted: Gpu | None = field(compare=False, default=None)
    cancelled: bool = field(compare=False, default=False)


def _load(g: Gpu) -> float:
    return g.in_use / g.slots


class GpuPool:
    def __init__(self, gpus: list[Gpu], *, clock: Callable[[], float] = time.monotonic) -> None:
        if not gpus:
            raise ValueError("a GPU pool needs at least one GPU (or the CPU)")
        self.gpus = gpus
        self.by_name = {g.name: g for g in gpus}
        self._waiters: list[_Waiter] = []
        self._seq = itertools.count()
        self._rr = itertools.cycle(range(len(gpus)))
        self.clock = clock

    @property
    def needs_affinity(self) -> bool:
        return any(g.backends.needs_affinity for g in self.gpus)

    def healthy_gpus(self) -> list[Gpu]:
        return [g for g in self.gpus if g.healthy]

    def round_robin(self) -> Gpu:
        """The seed's distribution: the next GPU in turn (healthy ones first)."""
        for _ in range(len(self.gpus)):
            g = self.gpus[next(self._rr)]
            if g.healthy:
                g.assigned += 1
                return g
        g = self.gpus[next(self._rr)]
        g.assigned += 1
        return g

    def _pick(self, preferred: str | None) -> Gpu | None:
        if preferred is not None:
            g = self.by_name.get(preferred)
            if g is not None and g.healthy:
                return g if g.in_use < g.slots else None
            # The preferred GPU is gone or unhealthy: any healthy one may take the file.
        best = None
        for g in self.gpus:
            if g.in_use < g.slots and g.healthy and (best is None or _load(g) < _load(best)):
                best = g
        if best is None:
            # No healthy GPU has room: an unhealthy one past its cooldown gets one probe.
            for g in self.gpus:
                if g.in_use < g.slots and not g.healthy and g.breaker.allow_request():
                    return g
        return best

    @asynccontextmanager
    async def slot(self, priority: int, preferred: str | None = None) -> AsyncIterator[Gpu]:
        gpu = self._pick(preferred) if not self._waiters else None
        if gpu is None:
            waiter = _Waiter((-priority, next(self._seq)), preferred, trio.Event())
            heapq.heappush(self._waiters, waiter)
            self._dispatch()
            try:
                await waiter.event.wait()
            except BaseException:
                waiter.cancelled = True
                if waiter.granted is not None:
                    self._release(waiter.granted)
                raise
            gpu = waiter.granted
            assert gpu is not None
        else:
            gpu.in_use += 1
        try:
            yield gpu
        finally:
            self._release(gpu)

    def _release(self, gpu: Gpu) -> None:
        gpu.in_use -= 1
        self._dispatch()

    def _dispatch(self) -> None:
        """Hand free slots to waiters in priority order."""
        skipped: list[_Waiter] = []
        while self._waiters:
            w = heapq.heappop(self._waiters)
            if w.cancelled:
                continue
            g = self._pick(w.preferred)
            if g is None:
                skipped.append(w)
                if not any(x.in_use < x.slots for x in self.gpus):
                    break
                continue
            g.in_use += 1
            w.granted = g
            w.event.set()
        for w in skipped:
            heapq.heappush(self._waiters, w)

    def kick(self) -> None:
        """Re-dispatch after a health change (a GPU came back)."""
        self._dispatch()
