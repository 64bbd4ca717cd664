"""`cofid serve` as ops run it: a watched root, SIGTERM mid-batch, restart, SIGHUP.

- A batch dropped into a watched root (marker file) starts by itself; SIGTERM in the
  middle drains and exits 0; after a restart the batch completes with exactly the rows of
  an uninterrupted run.
- SIGHUP reloads the gRPC tokens without a restart.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import sqlalchemy as sa
import trio

from cofid.config import parse_config
from cofid.service.app import open_app
from cofid.store import tables as t
from cofid.testing.batches import fake_config, to_toml, write_fixture_batch
from cofid.testing.dbdump import diff_dumps, normalized_dump
from protos.cofi.v1 import cofi_pb2, cofi_pb2_grpc


def serve_config(tmp_path: Path, db_url: str, *, tokens: list[tuple[str, str, str]] | None = None) -> Path:
    cfg = fake_config(db_url, tmp_path / "data", latency_s=0.03)
    cfg["grpc"] = {"listen": [f"unix:{tmp_path / 'cofid.sock'}"], "auth": bool(tokens)}
    if tokens:
        cfg["grpc"]["tokens"] = [{"name": n, "role": r, "token": v} for n, r, v in tokens]
    cfg["watch"] = {"roots": [str(tmp_path / "root")], "scan_interval_s": 0.5}
    cfg["service"] = {"shutdown_deadline_s": 10.0, "log_level": "INFO"}
    path = tmp_path / "cofid.toml"
    path.write_text(to_toml(cfg))
    return path


def start(cfg: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "cofid.cli", "--config", str(cfg), "serve"],
                            stdout=open(log, "ab"), stderr=subprocess.STDOUT,  # noqa: SIM115
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))


def batch_state(url: str) -> tuple[str | None, int]:
    e = sa.create_engine(url)
    try:
        with e.connect() as c:
            if not sa.inspect(c).has_table("batchStatus"):
                return None, 0
            status = c.execute(sa.select(t.batch_status.c.status)).scalar()
            done = c.execute(sa.select(sa.func.count()).select_from(t.processing_logs)
                             .where(t.processing_logs.c.status == "success")).scalar()
            return status, done
    finally:
        e.dispose()


def wait_for(pred, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def test_sigterm_mid_batch_then_restart_equals_an_uninterrupted_run(tmp_path):
    # The uninterrupted reference, in-process.
    write_fixture_batch(tmp_path / "ref-batch", extra_calls=20)
    ref_url = f"sqlite:///{tmp_path / 'ref.db'}"
    async with open_app(parse_config(fake_config(ref_url, tmp_path / "ref"))) as app:
        await app.run_batch(await app.prepare_batch(tmp_path / "ref-batch"))

    url = f"sqlite:///{tmp_path / 'served.db'}"
    cfg = serve_config(tmp_path, url)
    (tmp_path / "root").mkdir()
    log = tmp_path / "cofid.log"
    proc = start(cfg, log)
    try:
        batch = tmp_path / "root" / "2026-11-22-desk-a"
        (tmp_path / "ref-batch").rename(batch)  # same files, same names
        (batch / ".ready").touch()
        await trio.to_thread.run_sync(wait_for, lambda: batch_state(url)[1] >= 30, 60, "progress")
        proc.send_signal(signal.SIGTERM)
        assert await trio.to_thread.run_sync(lambda: proc.wait(60)) == 0
        status, _ = batch_state(url)
        assert status != "Completed", "the batch finished before SIGTERM; make it longer"
        proc = start(cfg, log)
        await trio.to_thread.run_sync(wait_for, lambda: batch_state(url)[0] == "Completed", 90,
                                      "the resumed batch to complete")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    text = log.read_text(errors="replace")
    assert "shutting down" in text
    # Paths differ (the reference read ref-batch): compare everything else.
    diff = diff_dumps(_without_paths(normalized_dump(ref_url)), _without_paths(normalized_dump(url)))
    assert not diff, "\n".join(diff)
    # Dropping the same directory again starts nothing.
    (batch / ".ready").touch()
    e = sa.create_engine(url)
    with e.connect() as c:
        assert c.execute(sa.select(sa.func.count()).select_from(t.batch_status)).scalar() == 1
    e.dispose()


def _without_paths(dump):
    for rows in dump.values():
        for r in rows:
            for k in ("filePath", "sourceDir", "sourceKey"):
                r.pop(k, None)
    return dump


def test_sighup_reloads_tokens(tmp_path):
    url = f"sqlite:///{tmp_path / 'cofi.db'}"
    (tmp_path / "root").mkdir()
    cfg = serve_config(tmp_path, url, tokens=[("ops", "operator", "old-token-123")])
    log = tmp_path / "cofid.log"
    proc = start(cfg, log)
    try:
        sock = tmp_path / "cofid.sock"
        wait_for(lambda: sock.exists() and "serving on" in log.read_text(errors="replace"), 60, "serving")

        def list_batches(token: str) -> grpc.StatusCode:
            with grpc.insecure_channel(f"unix:{sock}") as ch:
                stub = cofi_pb2_grpc.CofiStub(ch)
                try:
                    stub.ListBatches(cofi_pb2.ListBatchesRequest(), timeout=10,
                                     metadata=(("authorization", f"Bearer {token}"),))
                    return grpc.StatusCode.OK
                except grpc.RpcError as e:
                    return e.code()

        assert list_batches("old-token-123") == grpc.StatusCode.OK
        assert list_batches("new-token-456") == grpc.StatusCode.UNAUTHENTICATED
        serve_config(tmp_path, url, tokens=[("ops", "operator", "new-token-456")])
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "SIGHUP: reloaded" in log.read_text(errors="replace"), 30, "the reload")
        assert list_batches("new-token-456") == grpc.StatusCode.OK
        assert list_batches("old-token-123") == grpc.StatusCode.UNAUTHENTICATED
        assert proc.poll() is None, "SIGHUP must not stop the daemon"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    assert "old-token-123" not in log.read_text(errors="replace")
