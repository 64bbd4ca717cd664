"""Resume at scale: a batch whose daemon was SIGKILLed half way, resumed by a new daemon.

`python -m bench.resume --files N [--half 0.5] [--db sqlite|mariadb] [--stop-after K]`
(also `python -m bench.throughput --files N --resume`)

The batch plan of bench.throughput (denoise, ivr, lid, stt, llm1, llm2 on its instant
backends, `--segments` transcript segments and `--answers` audit answers per call, N empty
placeholder files, no CSVs), in three processes:

1. *half*: a daemon's Service takes the directory (StartBatch's use case: a task, the batch
   row, distribution) and runs it; when the `--half` share of the files have their last
   stage (llm2) committed the process SIGKILLs itself — files in flight at the kill are
   left half done, as a real kill leaves them.
2. *resume*: a fresh process starts as `cofid serve` does (open_app: migrations, then
   Service.resume_unfinished: task recovery, then every unfinished batch resumed) and runs
   the batch to the end (or to `--stop-after` new llm2 results). Measured from just before
   open_app (imports excluded; `resume_first_result_process_s` includes them, from the
   process's spawn): the first file-stage result committed (`resume_first_result_s`: the
   first file_complete event of a file stage on the bus), the first call newly Complete
   (`resume_first_complete_s`), resume_unfinished's own time, and the RSS of the process
   sampled from /proc/self/status VmRSS every 0.5 s by a thread (`peak_rss_mb`, with
   VmHWM, the kernel's high-water mark, beside it as `vm_hwm_mb`).
3. the checks, on the database the two left: every call in a final status, exactly one
   success row per file and stage (nothing ran twice), the batch Completed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import trio

from bench import throughput as tp
from bench import workload as w
from cofid.backends.fake import FakeCall
from cofid.backends.health import CircuitBreaker
from cofid.config import parse_config
from cofid.domain.events import Event
from cofid.domain.model import FILE_STAGES, Stage
from cofid.engine.gpus import Gpu
from cofid.service.app import open_app
from cofid.service.core import Service
from cofid.store import tables as t
from cofid.store.db import create_engine

ROOT = Path(__file__).resolve().parents[1]
FILE_STAGE_NAMES = frozenset(s.value for s in FILE_STAGES)


def _status_kb(key: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return float(line.split()[1])
    except OSError:
        pass
    return None


class RssSampler:
    """VmRSS every `every_s` seconds from a thread (it samples while the trio loop is busy);
    the samples also go to `path` (so a process that is killed leaves them)."""

    def __init__(self, every_s: float = 0.5, path: Path | None = None) -> None:
        self.every_s = every_s
        self.path = path
        self.samples: list[tuple[float, float]] = []  # (seconds since start, MB)
        self._stop = threading.Event()
        self._t0 = time.perf_counter()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _sample(self) -> None:
        kb = _status_kb("VmRSS")
        if kb is not None:
            self.samples.append((round(time.perf_counter() - self._t0, 2), round(kb / 1024, 1)))
        if self.path is not None:  # replaced whole: a kill mid-write leaves the last one
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.summary()), encoding="utf-8")
            os.replace(tmp, self.path)

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self._sample()

    def summary(self) -> dict[str, Any]:
        mbs = [mb for _t, mb in self.samples]
        hwm = _status_kb("VmHWM")
        # A handful of points across the run: flat memory shows as a flat series.
        step = max(1, len(self.samples) // 8)
        return {"peak_rss_mb": max(mbs) if mbs else None,
                "rss_start_mb": mbs[0] if mbs else None,
                "rss_end_mb": mbs[-1] if mbs else None,
                "vm_hwm_mb": round(hwm / 1024, 1) if hwm is not None else None,
                "rss_samples": len(mbs),
                "rss_series_mb": self.samples[::step]}


def _gpus(segments: int, slots: int) -> list[Gpu]:
    script = FakeCall(language="en", duration_s=120.0, segments=segments, ivr_offset_s=2.0)
    backends = tp.InstantBackends(lambda _name: script).backends()
    return [Gpu("gpu0", slots, backends, CircuitBreaker(clock=time.monotonic))]


# ---- phase 1: run, then SIGKILL half way ------------------------------------------------


async def _half(cfg: Any, batch_dir: Path, target: int, segments: int, slots: int) -> None:
    done = 0

    def listener(e: Event) -> None:
        nonlocal done
        if e.stage == Stage.LLM2.value and e.event_type == "file_complete":
            done += 1
            if done >= target:  # committed: the writer publishes after the commit
                os.kill(os.getpid(), signal.SIGKILL)

    async with open_app(cfg, gpus=_gpus(segments, slots)) as app:
        app.bus.listeners.append(listener)
        async with trio.open_nursery() as work:
            svc = Service(app, work)
            await svc.start_batch(str(batch_dir), None, None)
    raise SystemExit(f"the batch ended before {target} files were done")


# ---- phase 2: a new daemon resumes ------------------------------------------------------


async def _resume(cfg: Any, segments: int, slots: int, stop_after: int) -> dict[str, Any]:
    t0, t0_wall = time.perf_counter(), time.time()
    first: dict[str, float] = {}
    new_complete = 0
    work_scope: list[trio.CancelScope] = []

    def listener(e: Event) -> None:
        nonlocal new_complete
        if e.event_type != "file_complete" or e.stage not in FILE_STAGE_NAMES:
            return
        now = time.perf_counter() - t0
        first.setdefault("result", now)
        if e.stage == Stage.LLM2.value:
            first.setdefault("complete", now)
            new_complete += 1
            if stop_after and new_complete >= stop_after and work_scope:
                work_scope[0].cancel()

    async with open_app(cfg, gpus=_gpus(segments, slots)) as app:
        app.bus.listeners.append(listener)
        opened = time.perf_counter() - t0
        async with trio.open_nursery() as work:
            work_scope.append(work.cancel_scope)
            svc = Service(app, work)
            resumed = await svc.resume_unfinished()
            resumed_s = time.perf_counter() - t0
        run_s = time.perf_counter() - t0
    return {"started_at": t0_wall, "resumed_batches": resumed, "open_app_s": round(opened, 3),
            "resume_unfinished_s": round(resumed_s, 3),
            "resume_first_result_s": round(first["result"], 3) if "result" in first else None,
            "resume_first_complete_s": (round(first["complete"], 3)
                                        if "complete" in first else None),
            "resume_new_complete": new_complete, "resume_run_s": round(run_s, 2)}


# ---- phase 3: what the two runs left ----------------------------------------------------


def check(url: str) -> dict[str, Any]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            c, pl, bs = t.call, t.processing_logs, t.batch_status
            by_status = dict(conn.execute(sa.select(c.c.status, sa.func.count())
                                          .group_by(c.c.status)).all())
            per = (sa.select(pl.c.file_name, pl.c.stage_name, sa.func.count().label("n"))
                   .where(pl.c.status == "success")
                   .group_by(pl.c.file_name, pl.c.stage_name).subquery())
            twice = conn.execute(sa.select(sa.func.count()).select_from(per)
                                 .where(per.c.n > 1)).scalar_one()
            results = conn.execute(sa.select(sa.func.count()).select_from(per)).scalar_one()
            status = conn.execute(sa.select(bs.c.status)).scalars().all()
    finally:
        engine.dispose()
    return {"calls_by_status": {str(k): int(v) for k, v in by_status.items()},
            "file_stage_results": int(results), "results_twice": int(twice),
            "batch_status": status}


# ---- the three processes ------------------------------------------------------------------


def _config(url: str, data: Path, answers: int) -> Any:
    return parse_config(tp.bench_config(url, data, answers, True))


def _child(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bench.resume", *argv], cwd=ROOT,
                          capture_output=True, text=True, check=False)


def _kept_state(state: Path, db_file: Path) -> bool:
    """--state: the half-done database kept from an earlier run, put back in place (the
    same batch directory, so the same batch); False when there is none yet."""
    kept = state / "half.db"
    if not kept.exists():
        return False
    db_file.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("-wal", "-shm"):
        Path(f"{db_file}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(kept, db_file)
    return True


def _keep_state(state: Path, db_file: Path) -> None:
    with sqlite3.connect(db_file) as conn:  # the killed run's WAL, folded in
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copyfile(db_file, state / "half.db")


def run(files: int, db: str = "sqlite", *, half: float = 0.5, segments: int = 50,
        answers: int = 30, slots: int = 8, stop_after: int = 0,
        state: Path | None = None) -> dict[str, Any]:
    """The three phases. `state` (SQLite only) keeps the batch directory and the
    half-done database there, and a later run with the same `state` resumes a fresh copy
    of it instead of running phase 1 again (to compare two builds on one kill)."""
    wall0 = time.perf_counter()
    target = max(1, int(files * half))
    server = None
    with tempfile.TemporaryDirectory(prefix="cofi-bench-resume-") as tmp_s:
        tmp = state if state is not None else Path(tmp_s)
        tmp.mkdir(parents=True, exist_ok=True)
        try:
            if db == "mariadb":
                if state is not None:
                    raise SystemExit("--state keeps a SQLite database only")
                from tests.mariadb_server import MariaDBServer

                server = MariaDBServer()
                server.start()
                url = server.create_database("bench")
            else:
                url = f"sqlite:///{tmp / 'data' / 'cofi.db'}"
            batch_dir = tmp / "batch"
            common = ["--url", url, "--data", str(tmp / "data"), "--segments", str(segments),
                      "--answers", str(answers), "--slots", str(slots)]
            half_s = None
            if state is None or not _kept_state(state, tmp / "data" / "cofi.db"):
                w.placeholder_batch(batch_dir, files)
                t1 = time.perf_counter()
                p1 = _child(["--phase", "half", "--dir", str(batch_dir), "--target",
                             str(target), "--rss-file", str(tmp / "half_rss.json"), *common])
                half_s = round(time.perf_counter() - t1, 1)
                if p1.returncode != -signal.SIGKILL:
                    raise SystemExit(f"phase 1 ended with {p1.returncode}: {p1.stderr[-2000:]}")
                if state is not None:
                    _keep_state(state, tmp / "data" / "cofi.db")
            half_rss = json.loads((tmp / "half_rss.json").read_text(encoding="utf-8"))
            before = check(url)
            spawn = time.perf_counter()
            p2 = _child(["--phase", "resume", "--stop-after", str(stop_after),
                         "--spawned", repr(time.time()), *common])
            if p2.returncode != 0:
                raise SystemExit(f"phase 2 ended with {p2.returncode}: {p2.stderr[-2000:]}")
            got = json.loads(p2.stdout.strip().splitlines()[-1])
            got["resume_process_s"] = round(time.perf_counter() - spawn, 2)
            after = check(url)
        finally:
            if server is not None:
                server.stop()
    return {
        "benchmark": "resume", "db": db, "files": files, "half": half, "segments": segments,
        "answers": answers, "slots": slots, "stop_after": stop_after,
        "killed_after_s": half_s,  # None: the kept --state was resumed
        "at_kill": {"calls_by_status": before["calls_by_status"],
                    "file_stage_results": before["file_stage_results"],
                    "peak_rss_mb": half_rss["peak_rss_mb"]},
        **got,
        "final": after,
        "wall_s": round(time.perf_counter() - wall0, 1),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.resume",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--db", choices=("sqlite", "mariadb"), default="sqlite")
    ap.add_argument("--half", type=float, default=0.5, help="share of files done at the kill")
    ap.add_argument("--segments", type=int, default=50)
    ap.add_argument("--answers", type=int, default=30)
    ap.add_argument("--slots", type=int, default=8)
    ap.add_argument("--stop-after", type=int, default=0,
                    help="stop the resumed run after K new Complete calls (0: run to the end)")
    ap.add_argument("--state", type=Path,
                    help="keep the half-done batch there; resume a copy of it if kept before")
    # The child processes' own arguments.
    ap.add_argument("--phase", choices=("half", "resume"), help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    ap.add_argument("--dir", help=argparse.SUPPRESS)
    ap.add_argument("--target", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--rss-file", help=argparse.SUPPRESS)
    ap.add_argument("--spawned", type=float, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if a.phase == "half":
        cfg = _config(a.url, Path(a.data), a.answers)
        with RssSampler(path=Path(a.rss_file)):
            trio.run(_half, cfg, Path(a.dir), a.target, a.segments, a.slots)
        return 1
    if a.phase == "resume":
        cfg = _config(a.url, Path(a.data), a.answers)
        with RssSampler() as rss:
            out = trio.run(_resume, cfg, a.segments, a.slots, a.stop_after)
        out.update(rss.summary())
        started = out.pop("started_at")
        if out["resume_first_result_s"] is not None:  # imports and configuration too
            out["resume_first_result_process_s"] = round(
                started - a.spawned + out["resume_first_result_s"], 3)
        json.dump(out, sys.stdout)
        sys.stdout.write("\n")
        return 0
    out = run(a.files, a.db, half=a.half, segments=a.segments, answers=a.answers,
              slots=a.slots, stop_after=a.stop_after, state=a.state)
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
