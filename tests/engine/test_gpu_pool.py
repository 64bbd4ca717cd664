"""GpuPool: slots per GPU, priority to later stages, least-loaded dispatch, affinity,
unhealthy GPUs skipped and probed after their cooldown, and cancellation."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import trio

from cofid.backends.health import CircuitBreaker
from cofid.engine.gpus import Gpu, GpuPool


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def gpu(name: str, slots: int, clock: Clock, threshold: int = 2, cooldown: float = 30.0) -> Gpu:
    breaker = CircuitBreaker(failure_threshold=threshold, cooldown_s=cooldown, clock=clock)
    return Gpu(name, slots, SimpleNamespace(needs_affinity=False), breaker)


async def hold(pool: GpuPool, got: list, release: trio.Event, priority: int = 0,
               preferred: str | None = None, tag=None, task_status=trio.TASK_STATUS_IGNORED):
    task_status.started()
    async with pool.slot(priority, preferred) as g:
        got.append((tag, g.name))
        await release.wait()


async def test_later_stages_get_a_free_slot_first():
    clock = Clock()
    pool = GpuPool([gpu("g", 1, clock)])
    got: list = []
    release = {p: trio.Event() for p in ("first", 0, 1, 2, 5)}
    async with trio.open_nursery() as n:
        await n.start(hold, pool, got, release["first"], 0, None, "first")
        await trio.testing.wait_all_tasks_blocked()
        for p in (0, 2, 1, 5):  # queued in this order, behind the busy slot
            await n.start(hold, pool, got, release[p], p, None, p)
            await trio.testing.wait_all_tasks_blocked()
        assert got == [("first", "g")]
        for tag in ("first", 5, 2, 1, 0):
            release[tag].set()
            await trio.testing.wait_all_tasks_blocked()
    assert [tag for tag, _ in got] == ["first", 5, 2, 1, 0]
    assert pool.gpus[0].in_use == 0


async def test_same_priority_is_first_come_first_served():
    clock = Clock()
    pool = GpuPool([gpu("g", 1, clock)])
    got: list = []
    release = trio.Event()
    async with trio.open_nursery() as n:
        for tag in ("a", "b", "c"):
            await n.start(hold, pool, got, release, 3, None, tag)
            await trio.testing.wait_all_tasks_blocked()
        release.set()
    assert [tag for tag, _ in got] == ["a", "b", "c"]


async def test_least_loaded_healthy_gpu_takes_the_slot():
    clock = Clock()
    a, b = gpu("a", 2, clock), gpu("b", 4, clock)
    pool = GpuPool([a, b])
    got: list = []
    release = trio.Event()
    async with trio.open_nursery() as n:
        for i in range(6):
            await n.start(hold, pool, got, release, 0, None, i)
            await trio.testing.wait_all_tasks_blocked()
        # a (0/2) → b (0/4, a is at 1/2) → b (1/4 < 1/2) → a (tie 1/2: first listed)
        # → b (2/4 < 2/2) → b; loads by fraction of slots, never over the slots.
        assert [name for _, name in got] == ["a", "b", "b", "a", "b", "b"]
        assert (a.in_use, b.in_use) == (2, 4)
        release.set()
    assert (a.in_use, b.in_use) == (0, 0)


async def test_affinity_waits_for_its_gpu_while_others_are_free():
    clock = Clock()
    a, b = gpu("a", 1, clock), gpu("b", 1, clock)
    pool = GpuPool([a, b])
    got: list = []
    rel_b, rel_waiter, rel_other = trio.Event(), trio.Event(), trio.Event()
    async with trio.open_nursery() as n:
        await n.start(hold, pool, got, rel_b, 0, "b", "holder")
        await trio.testing.wait_all_tasks_blocked()
        assert got == [("holder", "b")]  # preferred over the idle, equally loaded a
        await n.start(hold, pool, got, rel_waiter, 0, "b", "waiter")
        await trio.testing.wait_all_tasks_blocked()
        assert len(got) == 1 and a.in_use == 0  # a is free, but the file lives on b
        # A file without affinity queued behind it is not held up: it gets a.
        await n.start(hold, pool, got, rel_other, 0, None, "other")
        await trio.testing.wait_all_tasks_blocked()
        assert got[-1] == ("other", "a") and ("waiter", "b") not in got
        rel_b.set()
        await trio.testing.wait_all_tasks_blocked()
        assert ("waiter", "b") in got
        rel_waiter.set()
        rel_other.set()
    assert (a.in_use, b.in_use) == (0, 0)


async def test_unhealthy_gpu_is_skipped_then_probed_after_cooldown():
    clock = Clock()
    a, b = gpu("a", 1, clock, threshold=2, cooldown=30.0), gpu("b", 1, clock)
    pool = GpuPool([a, b])
    a.record(False, 0.1)
    a.record(False, 0.1)
    assert not a.healthy
    got: list = []
    rel_1, rel_2 = trio.Event(), trio.Event()
    async with trio.open_nursery() as n:
        # Affinity to an unhealthy GPU moves the file to a healthy one.
        await n.start(hold, pool, got, rel_1, 0, "a", "moved")
        await trio.testing.wait_all_tasks_blocked()
        assert got == [("moved", "b")]
        # b is full and a is cooling down: the next file waits rather than go to a.
        await n.start(hold, pool, got, rel_2, 0, None, "probe")
        await trio.testing.wait_all_tasks_blocked()
        assert len(got) == 1
        clock.now = 29.9
        pool.kick()
        await trio.testing.wait_all_tasks_blocked()
        assert len(got) == 1
        clock.now = 30.0  # cooldown over: a gets one probe
        pool.kick()
        await trio.testing.wait_all_tasks_blocked()
        assert got[-1] == ("probe", "a")
        assert a.breaker.state == "half_open"
        a.record(True, 0.1)  # the probe answered: a is healthy again
        assert a.healthy
        rel_1.set()
        rel_2.set()
    assert (a.in_use, b.in_use) == (0, 0)


async def test_only_one_probe_while_half_open():
    clock = Clock()
    a = gpu("a", 4, clock, threshold=1, cooldown=10.0)
    pool = GpuPool([a])
    a.record(False, 0.1)
    clock.now = 10.0
    got: list = []
    release = trio.Event()
    async with trio.open_nursery() as n:
        for i in range(3):
            await n.start(hold, pool, got, release, 0, None, i)
            await trio.testing.wait_all_tasks_blocked()
        assert got == [(0, "a")]  # the probe; the others wait for its outcome
        a.record(True, 0.1)
        pool.kick()
        await trio.testing.wait_all_tasks_blocked()
        # Both granted in one dispatch; trio may wake the two tasks in either order.
        assert got[0] == (0, "a") and sorted(t for t, _ in got) == [0, 1, 2]
        release.set()
    assert a.in_use == 0


async def test_cancelled_waiter_takes_nothing():
    clock = Clock()
    g = gpu("g", 1, clock)
    pool = GpuPool([g])
    got: list = []
    release = trio.Event()
    async with trio.open_nursery() as n:
        await n.start(hold, pool, got, release, 0, None, "holder")
        with trio.move_on_after(0.01) as scope:
            async with pool.slot(5):
                pytest.fail("granted while the only slot is held")
        assert scope.cancelled_caught
        assert g.in_use == 1
        release.set()
    assert g.in_use == 0
    async with pool.slot(0) as again:  # the cancelled waiter left no claim behind
        assert again is g and g.in_use == 1
    assert g.in_use == 0


async def test_cancel_racing_a_grant_releases_exactly_once():
    """The waiter is cancelled and, before it runs again, granted the slot being freed:
    its cancellation handler must give that slot back once, and the holder's release
    must not be counted twice."""
    clock = Clock()
    g = gpu("g", 1, clock)
    pool = GpuPool([g])
    outcome: list = []

    async def waiter(scope_box, task_status=trio.TASK_STATUS_IGNORED):
        with trio.CancelScope() as scope:
            scope_box.append(scope)
            task_status.started()
            async with pool.slot(1):
                outcome.append("ran")
        outcome.append("cancelled" if scope.cancelled_caught else "done")

    g.in_use = 1  # a holder outside the pool's view, released by hand below
    box: list = []
    async with trio.open_nursery() as n:
        await n.start(waiter, box)
        await trio.testing.wait_all_tasks_blocked()
        # No checkpoint between these two: the grant lands on a waiter already cancelled.
        box[0].cancel()
        pool._release(g)
        assert g.in_use == 1  # granted to the waiter...
    assert outcome == ["cancelled"]
    assert g.in_use == 0  # ...and given back exactly once
    assert not pool._waiters


def test_model_errors_count_as_failed_requests_but_keep_the_host_healthy():
    # A weak model's refused replies (cut off, off-schema) come from a server that works:
    # they show in the error rate, never open the breaker.
    clock = Clock()
    a = gpu("a", 1, clock, threshold=2, cooldown=30.0)
    for _ in range(5):
        a.record(False, 0.2, answered=True)
    assert a.healthy and a.breaker.consecutive_failures == 0
    assert a.requests_failed == 5 and a.error_rate() == 1.0
    a.record(False, 0.1)
    a.record(False, 0.1)  # two transport failures in a row still open it
    assert not a.healthy
