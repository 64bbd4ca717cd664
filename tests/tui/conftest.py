"""A real cofid (fake GPU backends, SQLite) on a unix socket that survives restarts, and a
way to drive the Textual app from a trio test: the app runs under asyncio in a worker
thread (`run_app`), and calls back into trio (stop / restart the daemon) with `in_trio`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import trio

from cofid.backends.fake import FakeBackends
from cofid.testing.daemon import InProcessDaemon
from tests.api.conftest import OP, VIEW, make_cfg, write_batch_dir

__all__ = ["OP", "VIEW", "write_batch_dir", "Daemon", "run_app", "in_trio"]


class Daemon(InProcessDaemon):
    """cofid.testing.daemon's InProcessDaemon with the unix socket the app connects to."""

    def __init__(self, cfg: Any, fake: FakeBackends, nursery: trio.Nursery, target: str) -> None:
        super().__init__(cfg, fake, nursery)
        self.target = target


@pytest.fixture
async def daemon(tmp_path, nursery):
    sock = tmp_path / "cofid.sock"
    cfg = make_cfg(tmp_path / "srv", f"sqlite:///{tmp_path / 'cofi.db'}",
                   {"listen": [f"unix:{sock}"]})
    d = Daemon(cfg, FakeBackends(latency_s=0.05), nursery, f"unix:{sock}")
    await d.start()
    yield d
    if not d.finished.is_set():
        await d.shutdown()


async def run_app(scenario: Callable[[], Awaitable[Any]]) -> Any:
    """Run an asyncio coroutine (a Textual pilot session) in a thread; trio keeps serving."""
    return await trio.to_thread.run_sync(lambda: asyncio.run(scenario()))


async def in_trio(d: Daemon, fn: Callable[[], Awaitable[Any]]) -> Any:
    """From the app's asyncio thread: run `fn` in the daemon's trio loop and wait for it
    without blocking the asyncio loop."""
    return await asyncio.to_thread(trio.from_thread.run, fn, trio_token=d.token)


async def wait_until(pilot, cond: Callable[[], bool], timeout: float = 30.0,
                     what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


def batch_dir(tmp: Path, n: int, prefix: str = "c") -> Path:
    return write_batch_dir(tmp / f"batch-{prefix}", [f"{prefix}{i:03d}.wav" for i in range(n)])
