"""Invariant 1 for the daemon: `cofid serve` SIGKILLed at seeded random moments and
restarted each time ends with the rows of an uninterrupted run.

Two `cofi-simworker` GPU hosts (subprocesses, same seed: answers depend on the request
only) serve LID, STT and chat over HTTP; IVR and denoise are "fake" (and off in the
pipeline, see test_fake_denoise_and_ivr_feed_a_remote_lid). Only the daemon is killed. The
database is SQLite. A module fixture first runs everything once without a kill (the
reference): the batch dropped in a watched root with a `.ready` marker, then the reaudit
(stt,llm2, then llm1) over its calls, and separately an upload; the crash tests then do
the same on their own databases while killing the daemon:

1. batch: kills during start-up (by time: imports, migrations, the start-up scan), many
   mid-run (when the count of committed file-stage results reaches seeded targets, plus a
   few ms) and one at the last result. Final dump == the reference's, every file in a
   final call status or failed with a reason, batch Completed, its task completed.
2. reaudit: after each kill the restarted daemon resumes the reaudit under the same task
   (cofid.plans.reaudit step 6: the cleanup is not repeated, the chosen stages run for the
   calls not yet done) and the task ends completed with one closing event. Final result
   tables == the reference's; the history tables (processing_logs, batchExecutionLog)
   hold the reference's rows plus repeats of reaudited stages only (files in flight at a
   kill really ran again).
3. upload: kills before the reply (mid-stream, and just after the stream ended) must
   leave no batch row and no task (its own database); kills after the reply (at seeded
   result counts) resume, the dump equals the reference's and the task ends completed.

Kill counts: the default variant kills 20 times in the batch, 6 in the reaudit and 4 in
the upload (every kill is counted only if it hit a live process). COFI_LONG_TESTS=1 adds a
second variant with another seed and 40 / 14 / 8 kills.
"""

from __future__ import annotations

import json
import os
import random
import re
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import sqlalchemy as sa

from cofid.testing.batches import write_fixture_batch
from cofid.testing.dbdump import diff_dumps, normalized_dump
from protos.cofi.v1 import cofi_pb2 as pb
from tests.reliability.daemon import (
    Daemon,
    Probe,
    SimWorkers,
    upload_messages,
    wait_for,
    wav_bytes,
    write_config,
)

LONG = os.environ.get("COFI_LONG_TESTS") == "1"


@dataclass(frozen=True)
class Variant:
    name: str
    seed: int
    batch_kills: int
    reaudit_kills: int
    upload_kills: int


VARIANTS = [Variant("ci", 20261123, 20, 6, 4)] + (
    [Variant("long", 777, 40, 14, 8)] if LONG else [])
EXTRA_CALLS = 30  # 37 calls
TIME_SCALE = 0.02
FINAL_STATUSES = {"Complete", "ShortCall", "UnsupportedLanguage"}
HISTORY = ("processing_logs", "batchExecutionLog")
REAUDITS = (("stt", "llm2"), ("llm1",))
UPLOAD = {"up_a.wav": (7.0, 101), "up_b.wav": (9.0, 102), "up_c.wav": (3.0, 103)}


# ---- normalization ---------------------------------------------------------------------------

_ADDR = re.compile(r"0x[0-9a-fA-F]+")
_HOST = re.compile(r"http://127\.0\.0\.1:\d+")
_UUID = re.compile(r"/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _norm(v):
    # The simworker's 400 reply quotes a BytesIO repr (an address) and cofid prefixes the
    # host's URL (which GPU took the file is scheduling); an upload's files live under
    # <uploads>/<task id>/.
    if isinstance(v, str):
        return _HOST.sub("<gpu>", _UUID.sub("/<task>", _ADDR.sub("0x?", v)))
    return v


def dump(url: str, data_dir: Path | None = None) -> dict:
    """normalized_dump, less what depends on scheduling and on where the run lived:
    fileDistribution.gpuIp names the GPU that did the file's latest stage, and the remote
    backends need no affinity (engine/run.py: any GPU with a free slot takes a file), so
    it differs between two uninterrupted runs too; it is checked apart (gpu_names)."""
    out = {}
    for name, rows in normalized_dump(url).items():
        rows = [{k: _norm(v) for k, v in r.items() if (name, k) != ("fileDistribution", "gpuIp")}
                for r in rows]
        if data_dir is not None:
            prefix = str(data_dir)
            rows = [{k: v.replace(prefix, "<data>") if isinstance(v, str) else v
                     for k, v in r.items()} for r in rows]
        out[name] = sorted(rows, key=repr)
    return out


def assert_same(reference: dict, got: dict, context: str = "") -> None:
    assert got == reference, "\n".join(diff_dumps(reference, got)) + f"\n{context}"


def gpu_names(h) -> set[str]:
    return {r.gpuIp for r in h.probe.rows("SELECT gpuIp FROM fileDistribution")}


def sqlite_copy(src_url: str, dst: Path) -> str:
    s = sqlite3.connect(src_url.removeprefix("sqlite:///"))
    d = sqlite3.connect(dst)
    with d:
        s.backup(d)
    s.close()
    d.close()
    return f"sqlite:///{dst}"


# ---- the daemon, the reference -------------------------------------------------------------


class Harness:
    """A daemon on its own database and data directory."""

    def __init__(self, base: Path, url: str, urls: list[str], root: Path | None) -> None:
        base.mkdir(parents=True, exist_ok=True)
        self.base, self.url, self.data = base, url, base / "data"
        cfg = write_config(base / "cofid.toml", db_url=url, data_dir=self.data, urls=urls,
                           root=root)
        self.daemon = Daemon(cfg, base / "cofid.log", self.data / "cofid.sock")
        self.probe = Probe(url)
        self.kills: list[dict] = []

    def start(self, wait: bool = True) -> None:
        before = self.daemon.serving_count()
        self.daemon.start()
        if wait:
            self.daemon.wait_serving(before)

    def kill(self, **info) -> None:
        hit = self.daemon.kill()
        if hit:
            self.kills.append(info)

    def rpc(self, fn: str, request, timeout: float = 20):
        ch, stub = self.daemon.stub()
        try:
            return getattr(stub, fn)(request, timeout=timeout)
        finally:
            ch.close()

    def task(self, task_id: str) -> pb.Task:
        return self.rpc("GetTask", pb.GetTaskRequest(task_id=task_id))

    def wait_task(self, task_id: str, timeout: float = 90) -> pb.Task:
        wait_for(lambda: self.task(task_id).state not in ("queued", "running"), timeout,
                 f"task {task_id}", step=0.05)
        return self.task(task_id)

    def reaudit(self, names: list[str], stages: tuple[str, ...]) -> str:
        return self.rpc("Reaudit", pb.ReauditRequest(audio_names=names,
                                                     stages=list(stages))).task_id

    def event_id(self) -> int:
        return self.probe.scalar("SELECT MAX(id) FROM batchExecutionLog")

    def results_since(self, after: int) -> int:
        return self.probe.scalar(
            "SELECT COUNT(*) FROM batchExecutionLog WHERE id > :a AND eventType IN "
            "('file_complete', 'error')", a=after)

    def close(self) -> None:
        self.daemon.stop()
        self.probe.close()


def make_batch(root: Path) -> list[str]:
    """The fixture batch (CSVs, trades) with real audio of 6–12 s (3 s for the short call;
    the corrupt call stays undecodable), dropped into `root` as b1 with its marker."""
    staging = root / ".staging"
    expected = write_fixture_batch(staging, extra_calls=EXTRA_CALLS)
    for i, name in enumerate(expected["files"]):
        if "corrupt" not in name:
            (staging / name).write_bytes(wav_bytes(3.0 if "short" in name else 6.0 + i % 7, i))
    staging.rename(root / "b1")
    (root / "b1" / ".ready").touch()
    return expected["files"]


def batch_done(h: Harness) -> bool:
    return h.probe.batch_status() == "Completed" and not h.probe.scalar(
        "SELECT COUNT(*) FROM task WHERE state IN ('queued', 'running')")


@dataclass
class Reference:
    root: Path
    names: list[str]
    batch_url: str
    batch: dict
    batch_results: int
    reaudit: dict
    reaudit_results: list[int]
    upload: dict
    upload_results: int


@pytest.fixture(scope="module")
def workers():
    w = SimWorkers(2, time_scale=TIME_SCALE, slots=2)
    yield w
    w.close()


@pytest.fixture(scope="module")
def reference(tmp_path_factory, workers) -> Reference:
    base = tmp_path_factory.mktemp("reference")
    root = base / "root"
    root.mkdir()
    names = make_batch(root)
    h = Harness(base / "batch", f"sqlite:///{base / 'batch.db'}", workers.urls, root)
    try:
        h.start()
        wait_for(lambda: batch_done(h), 90, "the reference batch", step=0.05)
        assert h.daemon.stop() == 0
        batch_url = sqlite_copy(h.url, base / "after-batch.db")
        h.daemon.cfg = write_config(h.daemon.cfg, db_url=h.url, data_dir=h.data,
                                    urls=workers.urls, root=None)
        h.start()
        counts = []
        for stages in REAUDITS:
            before = h.event_id()
            task = h.wait_task(h.reaudit(names, stages))
            assert task.state == "completed", task
            counts.append(h.results_since(before))
    finally:
        h.close()
    u = Harness(base / "upload", f"sqlite:///{base / 'upload.db'}", workers.urls, None)
    try:
        u.start()
        reply = u.rpc("UploadAudit", iter(upload_messages(upload_files())))
        assert u.wait_task(reply.task_id).state == "completed"
    finally:
        u.close()
    return Reference(root, names, batch_url, dump(batch_url), count_results(batch_url),
                     dump(h.url), counts, dump(u.url, u.data), count_results(u.url))


def count_results(url: str) -> int:
    p = Probe(url)
    try:
        return p.results()
    finally:
        p.close()


def upload_files() -> dict[str, bytes]:
    return {n: wav_bytes(s, seed) for n, (s, seed) in UPLOAD.items()}


def settle_jitter(rng: random.Random, hi: float = 0.04) -> None:
    time.sleep(rng.uniform(0, hi))


def wait_results(h: Harness, target: int, after: int = 0, timeout: float = 60) -> int:
    def reached():
        return h.results_since(after) >= target or not h.daemon.alive()

    wait_for(reached, timeout, f"{target} results", step=0.005)
    assert h.daemon.alive(), h.daemon.log_text()[-3000:]
    return h.results_since(after)


# ---- 1. the batch ------------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.name)
def test_batch_killed_at_random_moments_equals_uninterrupted_run(
    variant, reference, workers, tmp_path
):
    rng = random.Random(variant.seed)
    total = reference.batch_results
    h = Harness(tmp_path / "crash", f"sqlite:///{tmp_path / 'crash.db'}", workers.urls,
                reference.root)
    startup = 3
    targets = sorted(rng.sample(range(1, total), variant.batch_kills - startup - 1)) + [total]
    t0 = time.monotonic()
    try:
        for i in range(startup):  # imports, migrations (first start), start-up scan, resume
            h.start(wait=False)
            time.sleep(rng.uniform(0.05, 1.5) if i else 0.6)
            h.kill(kind="startup", results=h.probe.results())
        for target in targets:
            h.start()
            got = wait_results(h, target)
            if target < total:
                settle_jitter(rng)
            h.kill(kind="progress", target=target, results=max(got, h.probe.results()))
        h.start()
        wait_for(lambda: batch_done(h), 90, "the batch to complete", step=0.05)
        assert h.daemon.stop() == 0
        elapsed = time.monotonic() - t0
        kills = h.kills
        assert len(kills) >= variant.batch_kills, kills
        assert any(k["results"] == 0 for k in kills), kills
        assert len({k["results"] for k in kills if 0 < k["results"] < total}) >= 10, kills
        assert any(k["results"] >= total - 1 for k in kills), kills
        assert_same(reference.batch, dump(h.url),
                    f"kills: {kills}\ncrash run {elapsed:.1f} s")
        # Every file accounted for: a final call status, or failed with a reason.
        rows = h.probe.rows(
            "SELECT c.audioName, c.status, fd.failedStage, fd.failureReason FROM call c "
            "JOIN fileDistribution fd ON fd.batchId = c.batchId AND fd.file = c.audioName")
        assert len(rows) == len(reference.names)
        stuck = [r for r in rows if r.status not in FINAL_STATUSES
                 and not (r.failedStage and r.failureReason)]
        assert not stuck, stuck
        assert h.probe.batch_status() == "Completed"
        assert gpu_names(h) <= {"gpu-0", "gpu-1"}
        tasks = h.probe.rows("SELECT kind, state, error FROM task")
        # Fails when the last kill lands after the batch committed Completed and before its
        # task did: see test_restart_after_the_batch_completed_but_before_its_task_did.
        assert tasks and all(t.state == "completed" for t in tasks), (tasks, kills[-1])
    finally:
        h.close()


# ---- 2. the reaudit ------------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.name)
def test_reaudit_killed_then_resumed_equals_uninterrupted_reaudit(
    variant, reference, workers, tmp_path
):
    rng = random.Random(variant.seed + 1)
    url = sqlite_copy(reference.batch_url, tmp_path / "crash.db")
    h = Harness(tmp_path / "crash", url, workers.urls, None)
    names = reference.names
    per_phase = [variant.reaudit_kills - variant.reaudit_kills // 3,
                 variant.reaudit_kills // 3]
    task_ids: list[str] = []
    try:
        for stages, kills, total in zip(REAUDITS, per_phase, reference.reaudit_results,
                                        strict=True):
            plan = [("time", rng.uniform(0.0, 0.3))]  # around the cleanup transaction
            plan += [("progress", k) for k in sorted(rng.sample(range(1, total), kills - 1))]
            h.start()
            before = h.event_id()
            tid = h.reaudit(names, stages)
            task_ids.append(tid)
            for kind, at in plan:
                if kind == "time":
                    time.sleep(at)
                    got = h.results_since(before)
                else:
                    got = wait_results(h, at, before)
                    settle_jitter(rng, 0.02)
                # The restarted daemon resumed the same task (cofid.plans.reaudit step 6).
                task = h.task(tid)
                if task.state != "running":
                    break  # it finished before this kill was due
                h.kill(kind=kind, stages=stages, at=at, results=got)
                h.start()
            task = h.wait_task(tid)
            assert (task.state, task.error) == ("completed", ""), task
            if stages == REAUDITS[0]:
                assert_not_stuck(h, FINAL_STATUSES)
            h.daemon.stop()
        h.start()
        assert [h.task(tid).state for tid in task_ids] == ["completed"] * len(REAUDITS)
        assert h.daemon.stop() == 0
        assert len(h.kills) >= variant.reaudit_kills - len(REAUDITS), h.kills
        closing = h.probe.rows(
            "SELECT metadata FROM batchExecutionLog WHERE batchId = 0 AND stage = 'reaudit'")
        metas = [m if isinstance(m, dict) else json.loads(m) for (m,) in closing]
        for tid in task_ids:  # one cleanup and one closing event per task, however many kills
            mine = [m for m in metas if m.get("task_id") == tid]
            assert sum(1 for m in mine if m.get("completed")) == 1, mine
            assert sum(1 for m in mine if "transcripts_deleted" in m) == 1, mine
        ref, got = reference.reaudit, dump(h.url)
        results = [n for n in ref if n not in HISTORY]
        assert_same({n: ref[n] for n in results}, {n: got[n] for n in results},
                    f"kills: {h.kills}")
        reaudited = {s for stages in REAUDITS for s in stages}
        for name in HISTORY:
            stage_key = "stage_name" if name == "processing_logs" else "stage"
            extra = list(got[name])
            for r in ref[name]:
                assert r in extra, (name, r)
                extra.remove(r)
            assert all(r[stage_key] in reaudited for r in extra), (name, extra[:5])
            assert all(r in ref[name] for r in extra), (name, extra[:5])
        # After the last reaudit (llm1 alone) a call that reached Complete is AuditDone:
        # llm1's end state in the seed's status machine, as in the uninterrupted reaudit.
        assert_not_stuck(h, FINAL_STATUSES | {"AuditDone"})
    finally:
        h.close()


def assert_not_stuck(h: Harness, allowed: set[str]) -> None:
    """Every call in an end status of the plan, or failed with a reason."""
    rows = h.probe.rows(
        "SELECT c.audioName, c.status, fd.failedStage, fd.failureReason FROM call c "
        "JOIN fileDistribution fd ON fd.batchId = c.batchId AND fd.file = c.audioName")
    stuck = [tuple(r) for r in rows
             if r.status not in allowed and not (r.failedStage and r.failureReason)]
    assert rows and not stuck, stuck


# ---- 3. the upload ------------------------------------------------------------------------


def _upload_with_kill(h: Harness, rng: random.Random, mode: str, prefix: str = ""):
    """UploadAudit, with the daemon killed mid-stream or right after the stream ended;
    returns (reply or None, kill info)."""
    msgs = upload_messages({prefix + n: b for n, b in upload_files().items()})
    cut = rng.randrange(1, len(msgs)) if mode == "mid-stream" else len(msgs)
    info: dict = {"kind": mode}
    killer: list[threading.Thread] = []

    def gen():
        yield from msgs[:cut]
        if mode == "mid-stream":
            time.sleep(0.05)  # let the server write what it got
            h.kill(**info)
        else:
            def later():
                time.sleep(rng.uniform(0.0, 0.05))
                h.kill(**info)

            killer.append(threading.Thread(target=later))
            killer[0].start()
        yield from msgs[cut:]

    ch, stub = h.daemon.stub()
    try:
        reply = stub.UploadAudit(gen(), timeout=30)
    except grpc.RpcError as e:
        info["error"] = e.code().name
        reply = None
    finally:
        ch.close()
        for t in killer:
            t.join()
        if h.daemon.alive():
            h.kill(**info)
    info["reply"] = reply is not None
    return reply, info


def _leftovers(uploads: Path, keep: str | None = None) -> list[str]:
    if not uploads.exists():
        return []
    return sorted(str(p.relative_to(uploads)) for p in uploads.rglob("*")
                  if p.is_file() and (keep is None or not p.is_relative_to(uploads / keep)))


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.name)
def test_upload_killed_after_the_reply_resumes_and_completes(
    variant, reference, workers, tmp_path
):
    rng = random.Random(variant.seed + 2)
    h = Harness(tmp_path / "crash", f"sqlite:///{tmp_path / 'crash.db'}", workers.urls, None)
    try:
        h.start()
        reply = h.rpc("UploadAudit", iter(upload_messages(upload_files())))
        total = reference.upload_results
        kills = variant.upload_kills
        targets = [0] + sorted(rng.sample(range(1, total), kills - 2)) + [total]
        for target in targets:
            if not h.daemon.alive():
                h.start()
            got = wait_results(h, target)
            settle_jitter(rng, 0.02 if target < total else 0.0)
            h.kill(kind="after-reply", target=target, results=got)
        h.start()
        task = h.wait_task(reply.task_id)
        assert (task.state, task.kind, task.error) == ("completed", "upload", ""), task
        assert h.daemon.stop() == 0
        assert len(h.kills) >= kills, h.kills
        assert_same(reference.upload, dump(h.url, h.data), f"kills: {h.kills}")
        tasks = h.probe.rows("SELECT id, kind, state, error FROM task")
        assert [(t.id, t.state) for t in tasks] == [(reply.task_id, "completed")], tasks
        assert _leftovers(h.data / "uploads", keep=reply.task_id) == []
    finally:
        h.close()


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.name)
def test_upload_killed_before_the_reply_leaves_no_batch(variant, workers, tmp_path):
    """Kills mid-stream and just after the stream ended (before the reply): after the
    restart there is no batch row and no task — or, when the kill fell in the instant
    between the upload's commit and its reply, the whole upload (batch, distribution and
    task commit in one transaction): never half of it."""
    rng = random.Random(variant.seed + 3)
    h = Harness(tmp_path / "crash", f"sqlite:///{tmp_path / 'crash.db'}", workers.urls, None)
    seen = []
    try:
        for i in range(variant.upload_kills):
            h.start()
            mode = "mid-stream" if i % 2 == 0 else "stream-ended"
            reply, info = _upload_with_kill(h, rng, mode, prefix=f"k{i}_")
            if reply is not None:
                continue  # the reply won the race: a kill after the reply
            h.start()  # what this attempt's files left (an earlier reply's batch may run on)
            info["batches"] = [tuple(r) for r in h.probe.rows(
                "SELECT batchId, file FROM fileDistribution WHERE file LIKE :p",
                p=f"k{i}_%")]
            info["tasks"] = [tuple(r) for r in h.probe.rows(
                "SELECT kind, state, error FROM task WHERE request LIKE :p OR batchId IS NULL",
                p=f"%k{i}_%")]
            seen.append(info)
            h.daemon.stop()
        before_reply = [k for k in h.kills if not k.get("reply")]
        assert len(before_reply) >= variant.upload_kills // 2, h.kills
        for s in seen:
            nothing = not s["batches"] and not s["tasks"]
            whole = bool(s["batches"]) and len(s["tasks"]) == 1 and s["tasks"][0][1] != "failed"
            assert nothing or whole, "\n".join(map(str, seen))
    finally:
        h.close()


def test_upload_killed_mid_stream_leaves_no_stored_files(workers, tmp_path):
    """UploadAudit writes <uploads>/<task_id>/.<i>.part while the stream comes in and
    removes the directory in a `finally` — which a SIGKILL never runs; at start the daemon
    removes every upload directory no batch refers to (Service.remove_orphan_uploads)."""
    h = Harness(tmp_path / "crash", f"sqlite:///{tmp_path / 'crash.db'}", workers.urls, None)
    try:
        h.start()
        reply, info = _upload_with_kill(h, random.Random(1), "mid-stream")
        assert reply is None, info
        h.start()  # the restart is where orphans would be collected
        assert h.probe.rows("SELECT id FROM batchStatus") == []
        assert _leftovers(h.data / "uploads") == []
    finally:
        h.close()


# ---- findings that need no kill ---------------------------------------------------------------


async def test_fake_denoise_and_ivr_feed_a_remote_lid(workers, tmp_path):
    """Fake denoise/IVR write the audio the next stage reads (derived_audio_path), so a
    real backend after them — a remote LID here — reads a file that exists."""
    from cofid.config import parse_config
    from cofid.service.app import open_app

    batch = tmp_path / "batch"
    write_fixture_batch(batch)
    for i, name in enumerate(sorted(p.name for p in batch.glob("*.wav"))):
        if "corrupt" not in name:
            (batch / name).write_bytes(wav_bytes(6.0, i))
    cfg = parse_config({
        "database": {"url": f"sqlite:///{tmp_path / 'c.db'}"},
        "paths": {"data": str(tmp_path / "data")},
        "gpus": [{"name": "gpu-0", "url": workers.urls[0], "slots": 2}],
        "backends": {"denoise": "fake", "ivr": "fake", "lid": "remote", "stt": "remote",
                     "chat": "remote"},
        "pipelines": {"batch": {"denoise": True, "ivr": True}},
        "stages": {"retry": {"attempts": 2, "backoff_s": 0.01, "max_backoff_s": 0.02}},
    })
    async with open_app(cfg) as app:
        await app.run_batch(await app.prepare_batch(batch))
    engine = sa.create_engine(cfg.database_url)
    with engine.connect() as c:
        failed = c.execute(sa.text(
            "SELECT file, failedStage, failureReason FROM fileDistribution "
            "WHERE failedStage IS NOT NULL AND file NOT LIKE '%corrupt%'")).all()
    engine.dispose()
    assert failed == [], failed[:3]


async def test_restart_after_the_batch_completed_but_before_its_task_did(tmp_path):
    """App._finish_batch commits the batch Completed, then the task row follows in a
    later transaction. A kill in between leaves a running task on a Completed batch; at
    restart recover() marks it completed (its work is done), not failed."""
    from cofid.config import parse_config
    from cofid.service.app import open_app
    from cofid.service.tasks import RUNNING, TaskRegistry
    from cofid.testing.batches import fake_config

    batch = tmp_path / "batch"
    write_fixture_batch(batch)
    cfg = parse_config(fake_config(f"sqlite:///{tmp_path / 'c.db'}", tmp_path / "data"))
    async with open_app(cfg) as app:
        batch_id = await app.prepare_batch(batch)
        reg = TaskRegistry(app.db)
        rec = await reg.create("upload", {}, batch_id=batch_id, state=RUNNING)
        await app.run_batch(batch_id)  # the kill falls here: batch Completed, task running
        reg = TaskRegistry(app.db)  # the restart
        await reg.recover()
        got = await reg.get(rec.id)
    assert (got.state, got.error) == ("completed", None), got
