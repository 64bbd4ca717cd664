"""Helpers for SIGKILL tests of `cofid serve`: simworker GPU hosts, the daemon subprocess,
its gRPC stub, and read-only probes of the database it writes.

The daemon and the simworkers are real subprocesses (`python -m cofid.cli serve`,
`python -m cofid.simworker`); only the daemon is ever killed. The simworkers run
for the whole test, as GPU hosts outlive a cofid restart.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import sqlalchemy as sa

from cofid.testing.batches import to_toml
from cofid.testing.daemon import DaemonProcess, wait_for  # noqa: F401 - wait_for: for the tests
from protos.cofi.v1 import cofi_pb2 as pb

ROOT = Path(__file__).resolve().parents[2]
ENV = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")


def wav_bytes(seconds: float, seed: int, rate: int = 8000) -> bytes:
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(int(seconds * rate)) * 0.05).astype("float32")
    buf = io.BytesIO()
    sf.write(buf, x, rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


# ---- simworkers ----------------------------------------------------------------------------


class SimWorkers:
    """`count` cofi-simworker processes, all with the same seed: a file's transcript and a
    chat reply depend only on the request, never on which host served it."""

    def __init__(self, count: int, *, time_scale: float, slots: int, seed: int = 7) -> None:
        self.procs: list[subprocess.Popen] = []
        self.urls: list[str] = []
        try:
            for _ in range(count):
                p = subprocess.Popen(
                    [sys.executable, "-m", "cofid.simworker", "--listen", "127.0.0.1:0",
                     "--seed", str(seed), "--time-scale", str(time_scale),
                     "--slots", str(slots)],
                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT, env=ENV)
                self.procs.append(p)
            for p in self.procs:
                line = p.stdout.readline().decode().strip()  # "listening on HOST:PORT"
                assert line.startswith("listening on "), line
                self.urls.append("http://" + line.removeprefix("listening on "))
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


# ---- the daemon ----------------------------------------------------------------------------


def write_config(path: Path, *, db_url: str, data_dir: Path, urls: list[str],
                 root: Path | None = None, gpu_slots: int = 2) -> Path:
    """A `cofid serve` configuration: remote LID/STT/chat on the simworkers, fake denoise
    and IVR, a unix-socket control plane without auth, an optional watched root."""
    cfg: dict[str, Any] = {
        "database": {"url": db_url},
        "paths": {"data": str(data_dir)},
        "gpus": [{"name": f"gpu-{i}", "url": u, "slots": gpu_slots} for i, u in enumerate(urls)],
        "backends": {
            "denoise": "fake", "ivr": "fake", "lid": "remote", "stt": "remote",
            "chat": "remote", "fake_latency_s": 0.0,
            "remote": {"timeout_s": 10.0, "connect_timeout_s": 2.0},
        },
        # denoise / ivr stay off in the pipeline: the fake backends write no output file,
        # so a remote LID after them cannot read its input (see test_daemon_crash).
        "pipelines": {"batch": {"denoise": False, "ivr": False, "callmetadata": True,
                                "trademetadata": True, "triaging": True, "llm1": True,
                                "llm2": True}},
        "stages": {"retry": {"attempts": 3, "backoff_s": 0.01, "max_backoff_s": 0.05}},
        "grpc": {"listen": [f"unix:{data_dir / 'cofid.sock'}"], "auth": False},
        "service": {"shutdown_deadline_s": 10.0, "log_level": "INFO"},
    }
    if root is not None:
        cfg["watch"] = {"roots": [str(root)], "scan_interval_s": 0.2}
    path.write_text(to_toml(cfg))
    return path


class Daemon(DaemonProcess):
    """cofid.testing.daemon's DaemonProcess, run from the repository root like the
    simworkers."""

    def __init__(self, cfg: Path, log: Path, sock: Path) -> None:
        super().__init__(cfg, log, sock, cwd=ROOT, env=ENV)


def upload_messages(files: dict[str, bytes], chunk: int = 16384) -> list[pb.UploadRequest]:
    header = pb.UploadHeader()
    for name, data in files.items():
        header.files.append(pb.UploadFile(name=name, size_bytes=len(data),
                                          sha256=hashlib.sha256(data).hexdigest()))
    msgs = [pb.UploadRequest(header=header)]
    for i, data in enumerate(files.values()):
        for off in range(0, len(data), chunk):
            msgs.append(pb.UploadRequest(chunk=pb.UploadChunk(
                file_index=i, data=data[off:off + chunk], offset=off)))
    return msgs


# ---- database probes -----------------------------------------------------------------------


class Probe:
    """Read-only queries on the daemon's database; any error (no schema yet, a lock held
    for a moment) reads as "nothing yet"."""

    def __init__(self, url: str) -> None:
        self.engine = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)

    def scalar(self, sql: str, default: Any = 0, **params: Any) -> Any:
        try:
            with self.engine.connect() as conn:
                v = conn.execute(sa.text(sql), params).scalar()
                return default if v is None else v
        except sa.exc.DBAPIError:
            return default

    def rows(self, sql: str, **params: Any) -> list[sa.Row]:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.text(sql), params))

    def results(self, batch_id: int | None = None) -> int:
        """Committed file-stage results (file_complete and error events commit with them)."""
        where = "" if batch_id is None else " AND batchId = :b"
        return self.scalar("SELECT COUNT(*) FROM batchExecutionLog WHERE eventType IN "
                           f"('file_complete', 'error'){where}", b=batch_id)

    def batch_status(self) -> str | None:
        return self.scalar('SELECT status FROM batchStatus ORDER BY id LIMIT 1', default=None)

    def close(self) -> None:
        self.engine.dispose()
