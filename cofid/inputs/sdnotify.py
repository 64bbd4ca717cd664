"""systemd's notify protocol (sd_notify(3)) without a dependency, and the status line.

The protocol: newline-separated VAR=VALUE assignments in one datagram to the unix socket
named by $NOTIFY_SOCKET ("@name" is an abstract socket). `Type=notify` waits for READY=1;
`WatchdogSec=` expects WATCHDOG=1 more often than $WATCHDOG_USEC; STATUS= is the line
`systemctl status` shows. Without NOTIFY_SOCKET (a terminal, a test) every call is a no-op.

The watchdog pings come from a trio task (watchdog_loop), so a blocked event loop stops
pinging and systemd restarts the daemon (Restart=on-failure treats it as a failure).

A send never blocks the loop (the socket is non-blocking; a full queue drops that one
message) and never raises: a vanished socket is logged once.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import partial
from typing import TYPE_CHECKING, Any

import trio

from cofid.store import batches as batch_rows

if TYPE_CHECKING:
    from cofid.service.app import App

log = logging.getLogger("cofid.sdnotify")


def socket_address(value: str | None) -> str | bytes | None:
    """$NOTIFY_SOCKET as a sendto() address: a path, or b"\\0name" for "@name"."""
    if not value:
        return None
    if value.startswith("@"):
        return b"\0" + value[1:].encode()
    if value.startswith("/"):
        return value
    log.warning("NOTIFY_SOCKET=%r is not a unix socket address; not notifying systemd", value)
    return None


class Notifier:
    def __init__(self, address: str | None) -> None:
        self.address = address or None
        self._addr = socket_address(address)
        self._sock: socket.socket | None = None
        self._warned = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *,
                 unset_environment: bool = False) -> Notifier:
        """From $NOTIFY_SOCKET. unset_environment removes NOTIFY_SOCKET, WATCHDOG_USEC and
        WATCHDOG_PID from os.environ so child processes do not inherit them (call
        watchdog_interval() first)."""
        env = os.environ if env is None else env
        n = cls(env.get("NOTIFY_SOCKET"))
        if unset_environment:
            for k in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
                os.environ.pop(k, None)
        return n

    @property
    def enabled(self) -> bool:
        return self._addr is not None

    def notify(self, *assignments: str) -> bool:
        """Send VAR=VALUE lines in one datagram; False when not sent."""
        if self._addr is None:
            return False
        data = "\n".join(assignments).encode("utf-8")
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.setblocking(False)
            self._sock.sendto(data, self._addr)
        except BlockingIOError:
            return False
        except OSError as e:
            if not self._warned:
                self._warned = True
                log.warning("cannot notify systemd at %s: %s", self.address, e)
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        lines = ["READY=1"]
        if status is not None:
            lines.append(_status(status))
        return self.notify(*lines)

    def status(self, text: str) -> bool:
        return self.notify(_status(text))

    def stopping(self, status: str | None = None) -> bool:
        return self.notify("STOPPING=1", *([_status(status)] if status is not None else []))

    def reloading(self) -> bool:
        """RELOADING=1 (send ready() when the reload is done). MONOTONIC_USEC is what
        systemd ≥ 253's Type=notify-reload wants; older versions ignore it."""
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.notify("RELOADING=1", f"MONOTONIC_USEC={usec}")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def extend_timeout(self, seconds: float) -> bool:
        """Ask for more time to start or stop (a long drain), from now."""
        return self.notify(f"EXTEND_TIMEOUT_USEC={int(seconds * 1_000_000)}")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _status(text: str) -> str:
    return "STATUS=" + " ".join(text.split())


def watchdog_interval(env: Mapping[str, str] | None = None) -> float | None:
    """$WATCHDOG_USEC in seconds, when the watchdog is on and meant for this process."""
    env = os.environ if env is None else env
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if pid and (not pid.isdigit() or int(pid) != os.getpid()):
        return None
    if not usec.isdigit() or int(usec) == 0:
        return None
    return int(usec) / 1_000_000


async def watchdog_loop(notifier: Notifier, interval: float | None = None) -> None:
    """WATCHDOG=1 every interval/2 from the trio loop, until cancelled. Returns at once
    when there is no socket or no watchdog."""
    if interval is None:
        interval = watchdog_interval()
    if not notifier.enabled or not interval:
        return
    while True:
        notifier.watchdog()
        await trio.sleep(interval / 2)


async def status_loop(notifier: Notifier, describe: Callable[[], Any],
                      every_s: float = 5.0) -> None:
    """STATUS= from describe() (a str, or an awaitable of one) every every_s, when it
    changed, until cancelled."""
    if not notifier.enabled:
        return
    last = None
    while True:
        text = describe()
        if not isinstance(text, str):
            text = await text
        if text != last:
            notifier.status(text)
            last = text
        await trio.sleep(every_s)


async def run_systemd(notifier: Notifier, describe: Callable[[], Any] | None = None, *,
                      watchdog_s: float | None = None, status_every_s: float = 5.0) -> None:
    """watchdog_loop and status_loop together, until cancelled."""
    async with trio.open_nursery() as n:
        n.start_soon(watchdog_loop, notifier, watchdog_s)
        if describe is not None:
            n.start_soon(status_loop, notifier, describe, status_every_s)


# ---- the status line ---------------------------------------------------------------------


@dataclass(frozen=True)
class RunProgress:
    label: str  # "batch 2026-11-22#3", "upload 2026-11-22#4", "reaudit"
    stage: str
    processed: int
    total: int


def batch_label(kind: str, batch_date: date | str | None, batch_number: int | None) -> str:
    if batch_date is None or batch_number is None:
        return kind
    d = batch_date.isoformat() if isinstance(batch_date, date) else batch_date
    return f"{kind} {d}#{batch_number}"


def status_line(runs: Sequence[RunProgress] = (), *, gpus_healthy: int,
                gpus_total: int | None = None, state: str | None = None,
                max_runs: int = 2) -> str:
    """One line for STATUS=, e.g. "batch 2026-11-22#3: stt 4031/10000, 2 GPUs healthy"."""
    parts = []
    if state:
        parts.append(state)
    shown = [f"{r.label}: {r.stage} {r.processed}/{r.total}" for r in runs[:max_runs]]
    if len(runs) > max_runs:
        shown.append(f"+{len(runs) - max_runs} more")
    if shown:
        parts.append("; ".join(shown))
    elif not state:
        parts.append("idle")
    n = gpus_healthy
    gpus = f"{n}/{gpus_total}" if gpus_total is not None and gpus_total != n else f"{n}"
    noun = "GPU" if (gpus_total if gpus_total is not None else n) == 1 else "GPUs"
    parts.append(f"{gpus} {noun} healthy")
    return ", ".join(parts)


def run_progress(label: str, stages: Sequence[tuple[str, int, int, int]]) -> RunProgress:
    """The stage to show of a run: the last one files have entered (the front), from
    (stage, entered, processed, total) in pipeline order."""
    front = stages[0] if stages else ("-", 0, 0, 0)
    for s in stages:
        if s[1] > 0:
            front = s
    return RunProgress(label, front[0], front[2], front[3])


async def app_status(app: App, *, state: str | None = None,
                     labels: dict[int, str] | None = None) -> str:
    """status_line() of a running cofid.service.app.App: its plan runs and GPU pool.
    `labels` caches batch ids → "batch DATE#N" across calls (one read per new batch)."""
    labels = {} if labels is None else labels
    runs = []
    for batch_id, run in sorted(app.runs.items()):
        if batch_id not in labels:
            if batch_id == 0:
                labels[0] = run.kind
            else:
                rec = await app.db.read(partial(batch_rows.get, batch_id=batch_id))
                labels[batch_id] = batch_label(
                    run.kind, rec.batch_date if rec else None, rec.batch_number if rec else None)
        stages = [(s.value, c.entered, c.done + c.failed + c.skipped, c.total)
                  for s, c in run.counters.items()]
        runs.append(run_progress(labels[batch_id], stages))
    gpus = app.pool.gpus
    return status_line(runs, gpus_healthy=sum(1 for g in gpus if g.healthy),
                       gpus_total=len(gpus), state=state)
