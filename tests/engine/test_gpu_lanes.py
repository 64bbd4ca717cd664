"""GpuPool lanes: a GPU entry with a separate chat server has a lane of slots per server;
a GPU without lanes keeps one set of slots for every capability."""

from __future__ import annotations

from types import SimpleNamespace

import trio

from cofid.backends.health import CircuitBreaker
from cofid.engine.gpus import Gpu, GpuPool

CHAT = "http://chat:8080/v1"


def gpu(
    slots: int, lanes: dict[str, int] | None = None, lane_of: dict[str, str] | None = None
) -> Gpu:
    breaker = CircuitBreaker(failure_threshold=2, cooldown_s=30.0, clock=lambda: 0.0)
    return Gpu("g", slots, SimpleNamespace(needs_affinity=False), breaker,
               lanes=lanes or {}, lane_of=lane_of or {})  # fmt: skip


async def hold(pool: GpuPool, capability: str, got: list, release: trio.Event, priority: int = 0,
               task_status=trio.TASK_STATUS_IGNORED):  # fmt: skip
    task_status.started()
    async with pool.slot(priority, capability=capability):
        got.append(capability)
        await release.wait()


async def test_a_held_chat_slot_does_not_stop_stt_on_its_own_lane():
    g = gpu(1, {CHAT: 1}, {"chat": CHAT})
    pool = GpuPool([g])
    got: list = []
    release = {c: trio.Event() for c in ("chat", "chat2", "stt")}
    async with trio.open_nursery() as n:
        await n.start(hold, pool, "chat", got, release["chat"], 9)
        await trio.testing.wait_all_tasks_blocked()
        await n.start(hold, pool, "chat", got, release["chat2"], 9)  # waits: chat lane full
        await n.start(hold, pool, "stt", got, release["stt"], 1)  # lower priority, own lane
        await trio.testing.wait_all_tasks_blocked()
        assert got == ["chat", "stt"]
        assert (g.in_use, g.used(""), g.used(CHAT), g.total_slots) == (2, 1, 1, 2)
        release["chat"].set()
        await trio.testing.wait_all_tasks_blocked()
        assert got == ["chat", "stt", "chat"]
        release["chat2"].set()
        release["stt"].set()
    assert (g.in_use, g.lane_in_use) == (0, {CHAT: 0})


async def test_without_lanes_every_capability_shares_the_slots():
    g = gpu(1)
    pool = GpuPool([g])
    got: list = []
    release = {c: trio.Event() for c in ("chat", "stt")}
    async with trio.open_nursery() as n:
        await n.start(hold, pool, "chat", got, release["chat"], 9)
        await trio.testing.wait_all_tasks_blocked()
        await n.start(hold, pool, "stt", got, release["stt"], 1)
        await trio.testing.wait_all_tasks_blocked()
        assert got == ["chat"]  # the stt call waits for the one slot, as before lanes
        release["chat"].set()
        await trio.testing.wait_all_tasks_blocked()
        assert got == ["chat", "stt"]
        release["stt"].set()
    assert g.in_use == 0 and g.total_slots == 1
