"""GPU slots: bounded concurrency per GPU host, shared by every stage and every plan.

A stage worker asks for a slot with a priority (its position in the pipeline) and, when
the backend keeps files on the host's disk, the GPU the file lives on. Free slots go to
the highest priority waiter first — later stages first, so files already deep in the
pipeline finish before new ones start — and, among GPUs, to the least loaded healthy one.
A GPU whose circuit breaker opened takes no new work; files that had affinity to it move
to a healthy GPU (the caller records the move).

Slots belong to lanes: a `[[gpus]]` entry whose capabilities go to different servers (its
`url` for speech, a `chat_url` for the LLM) has one lane per distinct URL, each with its own
slots, so a file's STT does not wait while another file's LLM call holds the chat server.
A request names its capability; the GPU maps it to a lane (`lane_of`; an unnamed
capability, and every one of a GPU built without lanes, takes the main lane of `slots`).
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import trio

from cofid.backends.base import Backends
from cofid.backends.health import CircuitBreaker

MAIN_LANE = ""


@dataclass
class Gpu:
    name: str
    slots: int  # the main lane's (the entry's `url`)
    backends: Backends
    breaker: CircuitBreaker
    # lane -> its slots, for lanes besides the main one; capability -> lane (unnamed: main).
    lanes: dict[str, int] = field(default_factory=dict)
    lane_of: dict[str, str] = field(default_factory=dict)
    in_use: int = 0  # all lanes together
    assigned: int = 0
    done: int = 0
    latencies_ms: deque[float] = field(default_factory=lambda: deque(maxlen=200))
    # Outcomes of the last requests (True: failed or timed out), for the error rate that
    # ListGpus reports: a host failing half its requests stays "healthy" to the breaker
    # as long as no failures come in a row, but an operator must see it.
    outcomes: deque[bool] = field(default_factory=lambda: deque(maxlen=200))
    requests_failed: int = 0
    # Slots taken in each lane besides the main one (the main lane's: in_use less these).
    lane_in_use: dict[str, int] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        return self.breaker.healthy

    @property
    def total_slots(self) -> int:
        """Slots of every lane together (the main lane's when it has no other)."""
        return self.slots + sum(n for lane, n in self.lanes.items() if lane != MAIN_LANE)

    def lane(self, capability: str | None) -> str:
        return self.lane_of.get(capability, MAIN_LANE) if capability is not None else MAIN_LANE

    def lane_slots(self, lane: str) -> int:
        return self.slots if lane == MAIN_LANE else self.lanes.get(lane, self.slots)

    def used(self, lane: str) -> int:
        if lane == MAIN_LANE:
            return self.in_use - sum(self.lane_in_use.values())
        return self.lane_in_use.get(lane, 0)

    def has_room(self, lane: str) -> bool:
        return self.used(lane) < self.lane_slots(lane)

    def lane_load(self, lane: str) -> float:
        return self.used(lane) / self.lane_slots(lane)

    def take(self, lane: str) -> None:
        self.in_use += 1
        if lane != MAIN_LANE:
            self.lane_in_use[lane] = self.lane_in_use.get(lane, 0) + 1

    def give_back(self, lane: str) -> None:
        self.in_use -= 1
        if lane != MAIN_LANE:
            self.lane_in_use[lane] -= 1

    def any_room(self) -> bool:
        return self.has_room(MAIN_LANE) or any(self.has_room(lane) for lane in self.lanes)

    def record(
        self, ok: bool, seconds: float, *, timed_out: bool = False, answered: bool = False
    ) -> None:
        """Feed the breaker; a timeout makes the host suspect at once (health rule 5), so
        the retry of the file that timed out goes to another host. A failed request the
        host `answered` (domain.ports.host_answered: the model's output, or this one input,
        was refused) counts in the error rate but is a sign of life to the breaker: the
        server works; its model is weak, or the file is bad."""
        self.outcomes.append(not ok)
        if not ok:
            self.requests_failed += 1
        if ok:
            self.breaker.record_success()
            self.done += 1
            self.latencies_ms.append(seconds * 1000.0)
        elif answered:
            self.breaker.record_success()
            self.latencies_ms.append(seconds * 1000.0)
        elif timed_out:
            self.breaker.record_timeout()
        else:
            self.breaker.record_failure()

    def error_rate(self) -> float:
        """Failed share of the last (up to 200) requests; 0 with none."""
        return sum(self.outcomes) / len(self.outcomes) if self.outcomes else 0.0

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
    capability: str | None = field(compare=False, default=None)
    granted: Gpu | None = field(compare=False, default=None)
    cancelled: bool = field(compare=False, default=False)


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

    def _pick(self, preferred: str | None, capability: str | None = None) -> Gpu | None:
        if preferred is not None:
            g = self.by_name.get(preferred)
            if g is not None and g.healthy:
                return g if g.has_room(g.lane(capability)) else None
            # The preferred GPU is gone or unhealthy: any healthy one may take the file.
        best = None
        for g in self.gpus:
            lane = g.lane(capability)
            if g.has_room(lane) and g.healthy and (
                best is None or g.lane_load(lane) < best.lane_load(best.lane(capability))
            ):
                best = g
        if best is None:
            # No healthy GPU has room: an unhealthy one past its cooldown gets one probe.
            for g in self.gpus:
                if g.has_room(g.lane(capability)) and not g.healthy and g.breaker.allow_request():
                    return g
        return best

    def slot(
        self, priority: int, preferred: str | None = None, capability: str | None = None
    ) -> Slot:
        """A slot of the lane that serves `capability` (None: the main lane), for
        `async with`: it yields the GPU and gives the slot back on exit."""
        return Slot(self, priority, preferred, capability)

    async def _acquire(self, priority: int, preferred: str | None, capability: str | None) -> Gpu:
        gpu = self._pick(preferred, capability) if not self._waiters else None
        if gpu is not None:
            gpu.take(gpu.lane(capability))
            return gpu
        waiter = _Waiter((-priority, next(self._seq)), preferred, trio.Event(), capability)
        heapq.heappush(self._waiters, waiter)
        self._dispatch()
        try:
            await waiter.event.wait()
        except BaseException:
            waiter.cancelled = True
            if waiter.granted is not None:
                self._release(waiter.granted, capability)
            raise
        assert waiter.granted is not None
        return waiter.granted

    def _release(self, gpu: Gpu, capability: str | None = None) -> None:
        gpu.give_back(gpu.lane(capability))
        self._dispatch()

    def _dispatch(self) -> None:
        """Hand free slots to waiters in priority order."""
        if not self._waiters or not any(g.any_room() for g in self.gpus):
            # Every slot is taken (the usual case when a request queues): nothing to hand
            # out, and no waiter need leave the heap to find that out.
            return
        skipped: list[_Waiter] = []
        while self._waiters:
            w = heapq.heappop(self._waiters)
            if w.cancelled:
                continue
            g = self._pick(w.preferred, w.capability)
            if g is None:
                skipped.append(w)
                if not any(x.any_room() for x in self.gpus):
                    break
                continue
            g.take(g.lane(w.capability))
            w.granted = g
            w.event.set()
        for w in skipped:
            heapq.heappush(self._waiters, w)

    def kick(self) -> None:
        """Re-dispatch after a health change (a GPU came back)."""
        self._dispatch()


class Slot:
    """One `GpuPool.slot` claim (a class, not an @asynccontextmanager: an async generator
    per GPU request cost trio's generator bookkeeping on every stage of every file)."""

    __slots__ = ("_pool", "_priority", "_preferred", "_capability", "_gpu")

    def __init__(self, pool: GpuPool, priority: int, preferred: str | None,
                 capability: str | None) -> None:
        self._pool, self._priority = pool, priority
        self._preferred, self._capability = preferred, capability
        self._gpu: Gpu | None = None

    async def __aenter__(self) -> Gpu:
        self._gpu = await self._pool._acquire(self._priority, self._preferred, self._capability)
        return self._gpu

    async def __aexit__(self, *exc: object) -> None:
        gpu, self._gpu = self._gpu, None
        if gpu is not None:
            self._pool._release(gpu, self._capability)
