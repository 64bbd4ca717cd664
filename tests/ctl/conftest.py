"""A real cofid (serve_main with fake backends) in a background thread running its own
trio loop, listening on a unix socket, and helpers that run cofictl in-process
(main(argv), stdout/stderr captured) or as a real subprocess.

The daemon is cofid.testing.daemon's ThreadedDaemon (the same config shape and fake GPUs
as tests/api/conftest.py): it runs in its own thread so tests are plain synchronous
functions and can stop it and start another on the same socket and data directory (a
daemon restart).
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
import sqlalchemy as sa

from cofid.backends.fake import FakeBackends
from cofid.config import parse_config
from cofid.store import tables as t
from cofid.testing.batches import write_fixture_batch
from cofid.testing.daemon import ThreadedDaemon
from protos.cofi.v1 import cofi_pb2 as pb
from protos.cofi.v1 import cofi_pb2_grpc as pb_grpc

OP, VIEW = "ctl-op-token", "ctl-view-token"
REPO = Path(__file__).resolve().parents[2]


def make_cfg(root: Path, sock: Path, db_url: str | None = None) -> Any:
    return parse_config({
        **({"database": {"url": db_url}} if db_url else {}),
        "paths": {"data": str(root / "data")},
        "grpc": {
            "listen": [f"unix:{sock}"],
            "tokens": [{"name": "op", "role": "operator", "token": OP},
                       {"name": "view", "role": "viewer", "token": VIEW}],
            "heartbeat_s": 0.2,
        },
        "stages": {"retry": {"attempts": 2, "backoff_s": 0.01, "max_backoff_s": 0.02}},
        "service": {"shutdown_deadline_s": 5.0},
    })


class Daemon(ThreadedDaemon):
    """serve_main in a thread (cofid.testing.daemon); `root` holds the data directory and
    the socket; the database is SQLite in the data directory unless `db_url` names one."""

    def __init__(self, root: Path, latency_s: float = 0.0, db_url: str | None = None) -> None:
        self.root = root
        self.sock = root / "d.sock"
        self.target = f"unix:{self.sock}"
        super().__init__(make_cfg(root, self.sock, db_url), FakeBackends(latency_s=latency_s))

    def start(self) -> Daemon:
        self.start_thread()
        self.channel = grpc.insecure_channel(self.target)
        self.stub = pb_grpc.CofiStub(self.channel)
        return self

    def stop(self) -> None:
        if self.stop_thread():
            self.channel.close()

    # ---- direct access for checks ----------------------------------------------------

    def rpc(self, method: str, request, token: str = OP):
        return getattr(self.stub, method)(request, metadata=(("authorization",
                                                               f"Bearer {token}"),), timeout=30)

    def wait_task(self, task_id: str, timeout: float = 30.0) -> pb.Task:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            task = self.rpc("GetTask", pb.GetTaskRequest(task_id=task_id))
            if task.state not in ("queued", "running"):
                return task
            time.sleep(0.05)
        raise TimeoutError(task_id)

    def query(self, fn: Callable):
        return self.run(self.service.app.db.read, fn)

    def event_ids(self, *where) -> list[int]:
        tbl = t.batch_execution_log
        return self.query(lambda c: list(c.execute(
            sa.select(tbl.c.id).where(*where).order_by(tbl.c.id)).scalars()))

    def count(self, table, *where) -> int:
        return self.query(lambda c: c.execute(
            sa.select(sa.func.count()).select_from(table).where(*where)).scalar())


def short_root(prefix: str = "cofictl") -> Path:
    """A short directory (unix socket paths are limited to ~107 bytes)."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


@dataclass
class Result:
    code: int
    out: str
    err: str


class Ctl:
    """Runs cofictl against a daemon with COFI_TARGET / COFI_TOKEN set."""

    def __init__(self, daemon: Daemon, home: Path) -> None:
        self.daemon = daemon
        self.home = home  # XDG_CONFIG_HOME: no stray ~/.config/cofi/token

    def env(self, token: str | None = OP, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if k not in ("COFI_TARGET", "COFI_TOKEN", "COFID_CONFIG")}
        env.update(COFI_TARGET=self.daemon.target, XDG_CONFIG_HOME=str(self.home))
        if token:
            env["COFI_TOKEN"] = token
        env.update(extra)
        return env

    def __call__(self, *argv: str, token: str | None = OP, stdin: str = "",
                 env: dict[str, str] | None = None) -> Result:
        """In-process: main(argv) with the environment and std streams swapped."""
        from cofid.ctl.main import main

        saved = dict(os.environ)
        os.environ.clear()
        os.environ.update(env if env is not None else self.env(token))
        out, err = io.StringIO(), io.StringIO()
        old = sys.stdin
        sys.stdin = io.StringIO(stdin)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = main(list(argv))
        finally:
            sys.stdin = old
            os.environ.clear()
            os.environ.update(saved)
        return Result(code, out.getvalue(), err.getvalue())

    def run(self, *argv: str, token: str | None = OP, stdin: str = "", timeout: float = 60,
            env: dict[str, str] | None = None) -> Result:
        """A real subprocess: `python -m cofid.ctl ...`."""
        p = subprocess.run([sys.executable, "-m", "cofid.ctl", *argv], input=stdin,
                           capture_output=True, text=True, timeout=timeout, cwd=REPO,
                           env=env if env is not None else self.env(token))
        return Result(p.returncode, p.stdout, p.stderr)

    def popen(self, *argv: str, token: str | None = VIEW) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-u", "-m", "cofid.ctl", *argv],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                cwd=REPO, env=self.env(token))


@dataclass
class World:
    daemon: Daemon
    ctl: Ctl
    batch_id: int
    task_id: str
    batch_dir: Path
    expected: dict


def _world(batches: Path, xdg: Path, db_url: str | None = None):
    """A daemon with a completed fixture batch; stopped and removed after the yield."""
    root = short_root()
    d = Daemon(root, db_url=db_url).start()
    try:
        bdir = batches / "fixture"
        expected = write_fixture_batch(bdir, extra_calls=3, first_stage="ivr")
        ref = d.rpc("StartBatch", pb.StartBatchRequest(directory=str(bdir)))
        task = d.wait_task(ref.task_id)
        assert task.state == "completed", task
        yield World(d, Ctl(d, xdg), task.batch_id, ref.task_id, bdir, expected)
    finally:
        d.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def world(tmp_path_factory):
    """One daemon for the read-mostly tests, with a completed fixture batch."""
    yield from _world(tmp_path_factory.mktemp("batches"), tmp_path_factory.mktemp("xdg"))


@pytest.fixture
def zoned_world(tmp_path, zoned_db_url):
    """`world` on its own database: SQLite, then MariaDB with the server zone at +05:30."""
    yield from _world(tmp_path / "batches", tmp_path / "xdg", zoned_db_url)


@pytest.fixture
def slow_daemon(tmp_path, zoned_db_url):
    """A daemon whose fake models take 0.1 s, on SQLite and on MariaDB at +05:30."""
    root = short_root()
    d = Daemon(root, latency_s=0.1, db_url=zoned_db_url).start()
    yield d
    d.stop()
    shutil.rmtree(root, ignore_errors=True)
