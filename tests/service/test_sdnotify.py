"""The notify protocol against a real unix datagram socket, and the status line."""

from __future__ import annotations

import os
import socket
import time
from datetime import date

import pytest
import trio

from cofid.inputs.sdnotify import (
    Notifier,
    RunProgress,
    batch_label,
    run_progress,
    run_systemd,
    socket_address,
    status_line,
    watchdog_interval,
    watchdog_loop,
)


class Listener:
    """A bound datagram socket standing in for systemd's notify socket."""

    def __init__(self, sock: socket.socket, address: str) -> None:
        self.raw = sock
        self.sock = trio.socket.from_stdlib_socket(sock)
        self.address = address

    async def recv(self, timeout: float = 2.0) -> set[str]:
        with trio.fail_after(timeout):
            data = await self.sock.recv(4096)
        return set(data.decode().split("\n"))

    async def drain(self) -> list[set[str]]:
        out = []
        while True:
            try:
                data = self.raw.recv(4096, socket.MSG_DONTWAIT)  # no checkpoint
            except BlockingIOError:
                return out
            out.append(set(data.decode().split("\n")))


@pytest.fixture(params=["path", "abstract"])
async def listener(request, tmp_path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if request.param == "path":
        address = str(tmp_path / "notify.sock")
        sock.bind(address)
    else:
        name = f"cofi-test-{os.getpid()}-{id(sock)}"
        sock.bind(b"\0" + name.encode())
        address = "@" + name
    with sock:
        yield Listener(sock, address)


async def test_ready_status_stopping_reloading(listener, monkeypatch):
    monkeypatch.setenv("NOTIFY_SOCKET", listener.address)
    n = Notifier.from_env()
    assert n.enabled
    assert n.ready("starting up")
    assert await listener.recv() == {"READY=1", "STATUS=starting up"}
    assert n.status("batch 2026-11-22#3: stt 4031/10000,\n2 GPUs healthy")
    assert await listener.recv() == {"STATUS=batch 2026-11-22#3: stt 4031/10000, 2 GPUs healthy"}
    n.reloading()
    msg = await listener.recv()
    assert "RELOADING=1" in msg and any(m.startswith("MONOTONIC_USEC=") for m in msg)
    n.stopping()
    assert await listener.recv() == {"STOPPING=1"}
    n.extend_timeout(12.5)
    assert await listener.recv() == {"EXTEND_TIMEOUT_USEC=12500000"}
    n.close()


async def test_periodic_watchdog_from_the_trio_loop(listener, monkeypatch):
    monkeypatch.setenv("NOTIFY_SOCKET", listener.address)
    monkeypatch.setenv("WATCHDOG_USEC", "200000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert watchdog_interval() == 0.2
    n = Notifier.from_env()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(watchdog_loop, n)
        start = trio.current_time()
        for _ in range(4):
            assert await listener.recv(timeout=1.0) == {"WATCHDOG=1"}
        # every interval/2: four pings in about 0.3 s
        assert 0.2 <= trio.current_time() - start < 1.0
        nursery.cancel_scope.cancel()


async def test_a_blocked_loop_stops_the_pings(listener):
    n = Notifier(listener.address)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(watchdog_loop, n, 0.1)
        await listener.recv()
        time.sleep(0.3)  # the loop is stuck: no task runs, nothing is sent
        assert await listener.drain() == []
        await listener.recv()  # pinging again once the loop runs
        nursery.cancel_scope.cancel()


async def test_run_systemd_sends_watchdog_and_changed_status(listener):
    n = Notifier(listener.address)
    texts = iter(["a", "a", "b"])
    last = {"t": "a"}

    def describe() -> str:
        last["t"] = next(texts, last["t"])
        return last["t"]

    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: run_systemd(n, describe, watchdog_s=10.0, status_every_s=0.05))
        await trio.sleep(0.4)
        nursery.cancel_scope.cancel()
    got = [m for ms in await listener.drain() for m in ms]
    assert got.count("WATCHDOG=1") == 1
    assert [m for m in got if m.startswith("STATUS=")] == ["STATUS=a", "STATUS=b"]


async def test_no_socket_is_a_no_op(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    n = Notifier.from_env()
    assert not n.enabled
    assert not n.ready() and not n.watchdog() and not n.stopping()
    with trio.fail_after(1):
        await watchdog_loop(n, 0.1)  # returns at once
        await run_systemd(n, lambda: "x")


async def test_a_vanished_socket_never_raises(tmp_path, caplog):
    n = Notifier(str(tmp_path / "gone.sock"))
    assert not n.ready()
    assert not n.watchdog()
    assert sum("cannot notify systemd" in r.message for r in caplog.records) == 1


def test_from_env_can_unset_the_environment(monkeypatch):
    monkeypatch.setenv("NOTIFY_SOCKET", "/run/systemd/notify")
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    n = Notifier.from_env(unset_environment=True)
    assert n.address == "/run/systemd/notify"
    assert "NOTIFY_SOCKET" not in os.environ and "WATCHDOG_USEC" not in os.environ


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        ({"WATCHDOG_USEC": "30000000"}, 30.0),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, None),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "x"}, None),
        ({"WATCHDOG_USEC": "500000", "WATCHDOG_PID": str(os.getpid())}, 0.5),
    ],
)
def test_watchdog_interval(env, expected):
    assert watchdog_interval(env) == expected


def test_socket_address():
    assert socket_address("@sd") == b"\0sd"
    assert socket_address("/run/systemd/notify") == "/run/systemd/notify"
    assert socket_address("") is None and socket_address(None) is None
    assert socket_address("vsock:2:1234") is None


def test_status_line():
    run = RunProgress(batch_label("batch", date(2026, 11, 22), 3), "stt", 4031, 10000)
    assert status_line([run], gpus_healthy=2) == "batch 2026-11-22#3: stt 4031/10000, 2 GPUs healthy"
    assert status_line([run], gpus_healthy=1, gpus_total=2) == (
        "batch 2026-11-22#3: stt 4031/10000, 1/2 GPUs healthy")
    assert status_line([], gpus_healthy=1, gpus_total=1) == "idle, 1 GPU healthy"
    assert status_line([], gpus_healthy=0, gpus_total=2, state="shutting down") == (
        "shutting down, 0/2 GPUs healthy")
    three = [RunProgress(f"batch 2026-11-22#{i}", "lid", i, 10) for i in (1, 2, 3)]
    assert status_line(three, gpus_healthy=2) == (
        "batch 2026-11-22#1: lid 1/10; batch 2026-11-22#2: lid 2/10; +1 more, 2 GPUs healthy")
    assert batch_label("reaudit", None, None) == "reaudit"


def test_run_progress_shows_the_front_stage():
    stages = [("denoise", 10, 10, 10), ("lid", 9, 8, 10), ("stt", 4, 3, 10), ("llm1", 0, 0, 10)]
    assert run_progress("batch x", stages) == RunProgress("batch x", "stt", 3, 10)
    assert run_progress("batch x", [("lid", 0, 0, 5)]) == RunProgress("batch x", "lid", 0, 5)
