"""`cofictl watch` (a real subprocess) keeps going across a daemon restart on the same
unix socket and SQLite database: the ids it prints are exactly the batchExecutionLog ids
written meanwhile — no duplicate, no gap. Also a real `cofid serve` subprocess found
through --config, driven by real cofictl subprocesses."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

from cofid.testing.batches import fake_config, to_toml
from protos.cofi.v1 import cofi_pb2 as pb
from tests.api.conftest import write_batch_dir
from tests.ctl.conftest import OP, REPO, VIEW, Ctl, Daemon, short_root


class Reader:
    """Collects a pipe's lines in a thread."""

    def __init__(self, stream) -> None:
        self.lines: list[str] = []
        self._t = threading.Thread(target=self._run, args=(stream,), daemon=True)
        self._t.start()

    def _run(self, stream) -> None:
        for line in stream:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, pred, timeout: float = 20.0) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if pred(list(self.lines)):
                return
            time.sleep(0.05)
        raise AssertionError(f"timed out; lines: {self.lines[-20:]}")

    def join(self) -> None:
        self._t.join(10)


def test_watch_survives_daemon_restart(tmp_path):
    root = short_root()
    d = Daemon(root, latency_s=0.04).start()
    d2 = None
    proc = None
    try:
        ctl = Ctl(d, tmp_path / "xdg")
        before = d.event_ids()
        proc = ctl.popen("watch", "--json", token=VIEW)
        out, err = Reader(proc.stdout), Reader(proc.stderr)
        err.wait_for(lambda ls: any("watching" in ln for ln in ls))  # connected, cursor set
        bdir = write_batch_dir(tmp_path / "b", [f"r{i:02d}.wav" for i in range(16)])
        ref = d.rpc("StartBatch", pb.StartBatchRequest(directory=str(bdir)))
        out.wait_for(lambda ls: len(ls) >= 20)
        d.stop()  # mid-batch: the run drains, writing events while the stream is down
        time.sleep(0.5)
        d2 = Daemon(root, latency_s=0.0).start()  # same socket, same SQLite database
        task = d2.wait_task(ref.task_id)
        assert task.state == "completed"
        ids = [i for i in d2.event_ids() if i not in set(before)]
        out.wait_for(lambda ls: ls and json.loads(ls[-1])["id"] >= ids[-1])
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
        out.join()
        err.join()
        printed = [json.loads(ln)["id"] for ln in out.lines]
        assert printed == ids  # every event, once, in order
        assert len(ids) > 60
        assert any("connection lost" in ln for ln in err.lines)
        assert sum("watching" in ln for ln in err.lines) >= 2
        assert any("resume with --from-event-id" in ln for ln in err.lines)
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
        for x in (d, d2):
            if x is not None:
                x.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_real_cofid_serve_and_cofictl_subprocesses(tmp_path):
    root = short_root()
    sock = root / "cofid.sock"
    raw = fake_config(f"sqlite:///{root / 'cofi.db'}", root / "data")
    text = to_toml(raw) + (f'[grpc]\nlisten = ["unix:{sock}"]\nheartbeat_s = 0.2\n'
                           f'[[grpc.tokens]]\nname = "op"\nrole = "operator"\n'
                           f'token = "{OP}"\n')
    cfg = tmp_path / "cofid.toml"
    cfg.write_text(text)
    env = {k: v for k, v in os.environ.items() if not k.startswith("COFI")}
    env.update(XDG_CONFIG_HOME=str(tmp_path / "xdg"), COFID_CONFIG=str(cfg))
    daemon = subprocess.Popen([sys.executable, "-m", "cofid.cli", "serve", "--no-watch"],
                              cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    try:
        end = time.monotonic() + 30
        while not sock.exists():
            assert daemon.poll() is None and time.monotonic() < end, daemon.stderr.read()
            time.sleep(0.05)

        def ctl(*argv: str, token: str | None = OP) -> subprocess.CompletedProcess:
            e = dict(env, COFI_TOKEN=token) if token else env
            return subprocess.run([sys.executable, "-m", "cofid.ctl", *argv], cwd=REPO, env=e,
                                  capture_output=True, text=True, timeout=60)

        bdir = write_batch_dir(tmp_path / "batch", ["s1.wav", "s2.wav", "s3.wav"])
        r = ctl("start-batch", str(bdir), "--wait", "--json")  # target from $COFID_CONFIG
        assert r.returncode == 0, r.stderr
        doc = json.loads(r.stdout)
        assert doc["task"]["state"] == "completed"
        r = ctl("batch", str(doc["task"]["batch_id"]))
        assert r.returncode == 0 and "Completed" in r.stdout and "RATE/MIN" in r.stdout
        r = ctl("call", "s2.wav", "--json")
        assert r.returncode == 0 and json.loads(r.stdout)["status"] == "Complete"
        r = ctl("batches", token="bad")
        assert r.returncode == 4 and "UNAUTHENTICATED" in r.stderr
        r = ctl("reaudit", "--stages", "stt", "missing.wav")
        assert r.returncode == 5 and "NOT_FOUND" in r.stderr
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            assert daemon.wait(20) == 0
        finally:
            if daemon.poll() is None:
                daemon.kill()
    r = subprocess.run([sys.executable, "-m", "cofid.ctl", "batches"], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 3 and "UNAVAILABLE" in r.stderr and "Traceback" not in r.stderr
    shutil.rmtree(root, ignore_errors=True)
