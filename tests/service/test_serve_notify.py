"""`cofid serve` under a stand-in for systemd: READY=1 once serving, STATUS=, WATCHDOG=1
from the event loop, and on SIGTERM STOPPING=1 then exit 0 (Type=notify, WatchdogSec=)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import trio

ROOT = Path(__file__).resolve().parents[2]


def write_config(tmp_path: Path) -> tuple[Path, Path]:
    data = tmp_path / "data"
    batches = tmp_path / "batches"
    batches.mkdir()
    grpc_sock = tmp_path / "cofid.sock"
    cfg = tmp_path / "cofid.toml"
    cfg.write_text(f"""\
[paths]
data = "{data}"

[grpc]
listen = ["unix:{grpc_sock}"]
auth = false

[backends]
denoise = "fake"
ivr = "fake"
lid = "fake"
stt = "fake"
chat = "fake"

[watch]
roots = ["{batches}"]
scan_interval_s = 1.0

[service]
shutdown_deadline_s = 5.0
log_level = "INFO"
""", encoding="utf-8")
    return cfg, grpc_sock


async def test_serve_speaks_the_notify_protocol(tmp_path):
    cfg, grpc_sock = write_config(tmp_path)
    raw = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify_path = tmp_path / "notify.sock"
    raw.bind(str(notify_path))
    sock = trio.socket.from_stdlib_socket(raw)
    env = dict(os.environ, NOTIFY_SOCKET=str(notify_path), WATCHDOG_USEC="600000",
               PYTHONUNBUFFERED="1")
    env.pop("WATCHDOG_PID", None)
    log_path = tmp_path / "cofid.log"
    received: list[str] = []

    async def until(pred, timeout: float, what: str) -> None:
        try:
            with trio.fail_after(timeout):
                while not pred():
                    data = await sock.recv(4096)
                    received.extend(data.decode().split("\n"))
        except trio.TooSlowError:
            raise AssertionError(
                f"no {what} within {timeout} s; received {received}; log:\n"
                + log_path.read_text(errors="replace")[-3000:]) from None

    with sock, open(log_path, "wb") as log_file:
        proc = await trio.lowlevel.open_process(
            [sys.executable, "-m", "cofid.cli", "--config", str(cfg), "serve"],
            cwd=str(ROOT), env=env, stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file)
        try:
            await until(lambda: "READY=1" in received, 15, "READY=1")
            # READY means serving: the control socket is already there.
            assert grpc_sock.exists()
            await until(lambda: received.count("WATCHDOG=1") >= 2, 3, "periodic WATCHDOG=1")
            await until(lambda: any(m.startswith("STATUS=") for m in received), 10, "STATUS=")
            assert "STOPPING=1" not in received
            proc.send_signal(signal.SIGTERM)
            await until(lambda: "STOPPING=1" in received, 10, "STOPPING=1 after SIGTERM")
            with trio.fail_after(15):
                rc = await proc.wait()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    assert rc == 0, log_path.read_text(errors="replace")[-3000:]
    assert received.index("READY=1") < received.index("STOPPING=1")
