"""One daemon harness for tests and benchmarks: a real cofid, three ways to hold it.

- `InProcessDaemon`: `serve_main` on the caller's trio loop, in a nursery the caller owns,
  with fake GPUs; it can be shut down and started again on the same configuration (a
  daemon restart, same socket, same database).
- `ThreadedDaemon`: the same in a thread running its own trio loop, so that a test can be
  a plain synchronous function (cofictl's tests call the real `main(argv)`).
- `DaemonProcess`: `python -m cofid.cli --config CFG serve` as a subprocess, its output
  appended to a log file: what SIGKILL and SIGTERM tests need.

Test folders keep their own fixtures and configuration shapes; only the lifecycle lives
here.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import grpc
import trio

from cofid.backends.fake import FakeBackends
from cofid.backends.health import CircuitBreaker
from cofid.config import Config
from cofid.daemon import serve_main
from cofid.engine.gpus import Gpu
from protos.cofi.v1 import cofi_pb2_grpc

T = TypeVar("T")

GPU_NAMES = ("gpu-a", "gpu-b")


def fake_gpus(fake: FakeBackends, names: Sequence[str] = GPU_NAMES, slots: int = 2) -> list[Gpu]:
    """One Gpu per name, all served by the same fake backends (shared counters)."""
    return [Gpu(n, slots, fake.backends(), CircuitBreaker(clock=time.monotonic)) for n in names]


def wait_for(pred: Callable[[], T], timeout: float, what: str, step: float = 0.02) -> T:
    """Poll `pred` until it returns something true (returned); AssertionError on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class InProcessDaemon:
    """`serve_main(cfg)` with fake GPUs as a task of `nursery`.

    After `start()`: `service`, `bound` (the addresses it listens on) and `token` (the trio
    loop's, for calls from other threads). `stop` and `finished` are fresh events per start.
    """

    def __init__(self, cfg: Config, fake: FakeBackends, nursery: trio.Nursery) -> None:
        self.cfg = cfg
        self.fake = fake
        self.nursery = nursery
        self.service: Any = None
        self.bound: list[str] = []
        self.stop = trio.Event()
        self.finished = trio.Event()
        self.token: trio.lowlevel.TrioToken | None = None

    @property
    def app(self) -> Any:
        return self.service.app

    async def start(self) -> None:
        gpus = fake_gpus(self.fake)
        self.stop, self.finished = trio.Event(), trio.Event()
        stop, finished = self.stop, self.finished

        async def runner(task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
            try:
                await serve_main(self.cfg, gpus=gpus, stop=stop, handle_signals=False,
                                 task_status=task_status)
            finally:
                finished.set()

        self.service, _plane, self.bound = await self.nursery.start(runner)
        self.token = trio.lowlevel.current_trio_token()

    async def shutdown(self, timeout: float = 20.0) -> None:
        """Stop serving (the drain runs) and wait until `serve_main` returned."""
        self.stop.set()
        with trio.fail_after(timeout):
            await self.finished.wait()

    async def restart(self) -> None:
        await self.shutdown()
        await self.start()


class ThreadedDaemon:
    """An `InProcessDaemon` in a thread of its own, running its own trio loop."""

    def __init__(self, cfg: Config, fake: FakeBackends) -> None:
        self.cfg = cfg
        self.fake = fake
        self.daemon: InProcessDaemon | None = None
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    @property
    def service(self) -> Any:
        return None if self.daemon is None else self.daemon.service

    @property
    def token(self) -> trio.lowlevel.TrioToken | None:
        return None if self.daemon is None else self.daemon.token

    @property
    def bound(self) -> list[str]:
        return [] if self.daemon is None else self.daemon.bound

    def start_thread(self, timeout: float = 30.0) -> None:
        """Start the thread; returns once the daemon serves (RuntimeError if it did not)."""
        self._ready.clear()
        self._error = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout) or self._error is not None:
            raise RuntimeError(f"cofid did not start: {self._error!r}")

    def _run(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as e:  # noqa: BLE001 - reported by start_thread()
            self._error = e
            self._ready.set()

    async def _main(self) -> None:
        async with trio.open_nursery() as nursery:
            self.daemon = InProcessDaemon(self.cfg, self.fake, nursery)
            await self.daemon.start()
            self._ready.set()

    def stop_thread(self, timeout: float = 30.0) -> bool:
        """Stop the daemon and join its thread; False when it was not running."""
        if self._thread is None:
            return False
        if self.daemon is not None:
            with contextlib.suppress(trio.RunFinishedError):
                trio.from_thread.run_sync(self.daemon.stop.set, trio_token=self.daemon.token)
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "cofid did not stop"
        self._thread = None
        return True

    def run(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run `await fn(*args)` on the daemon's trio loop, from this (another) thread."""
        return trio.from_thread.run(fn, *args, trio_token=self.token)


class DaemonProcess:
    """One `cofid serve --config CFG` at a time, its output appended to `log`."""

    def __init__(self, cfg: Path, log: Path, sock: Path, *, cwd: Path | None = None,
                 env: Mapping[str, str] | None = None) -> None:
        self.cfg, self.log, self.sock = cfg, log, sock
        self.cwd = cwd
        self.env = dict(env) if env is not None else dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> subprocess.Popen[bytes]:
        assert self.proc is None or self.proc.poll() is not None
        with open(self.log, "ab") as out:
            out.write(b"---- start ----\n")
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "cofid.cli", "--config", str(self.cfg), "serve"],
                stdout=out, stderr=subprocess.STDOUT, cwd=self.cwd, env=self.env)
        return self.proc

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> bool:
        """SIGKILL; True when it hit a live process."""
        assert self.proc is not None
        if self.proc.poll() is not None:
            return False
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        return self.proc.returncode == -signal.SIGKILL

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM and wait: the exit code, or None (not started, or killed after `timeout`)."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None

    def serving_count(self) -> int:
        return self.log_text().count("cofid serving on")

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_serving(self, before: int, timeout: float = 60) -> None:
        """Until this start logged "serving on" (`before`: the count before the start)."""
        wait_for(lambda: self.serving_count() > before or not self.alive(), timeout,
                 "the daemon to serve")
        assert self.alive(), self.log_text()[-3000:]

    def stub(self) -> tuple[grpc.Channel, cofi_pb2_grpc.CofiStub]:
        ch = grpc.insecure_channel(f"unix:{self.sock}")
        return ch, cofi_pb2_grpc.CofiStub(ch)
