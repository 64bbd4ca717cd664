"""Pipeline throughput in real time on instant backends, against a raw bulk load of its rows.

`python -m bench.throughput --files N --db sqlite|mariadb [--segments 50 --answers 30]`

Phase 1 runs the batch plan end to end — prepare_batch (distribution) and run_batch
(denoise, ivr, lid, stt, llm1, llm2) through the engine, the group-commit writer and the
store — on instant FakeBackends: every call is English, 120 s long, with `--segments`
transcript segments; LLM1/LLM2 answer as the deterministic rules engine does — a configured
[[audit.question_sets]] of `--answers` questions (the 3 trade kinds, then "keywords"
questions) — but instantly (InstantBackends: one reply per distinct prompt, reused). There are no CSVs, so callmetadata, trademetadata and triaging do not run.
The N audio files are empty placeholders (the fake backends never read them).

Phase 2, the reference: the fair raw load (bench/fair_load.py). Every write the pipeline
makes — inserts, updates, deletes, events, the batch-level steps — is recorded in commit
order during a second run of the same batch into a database of its own (the recording
keeps every op and event alive: its memory and garbage-collector cost would otherwise be
counted as the pipeline's; that run's CPU is `tapped_pipeline_cpu_s`), then replayed into
a fresh database of the same kind through the raw DB-API driver (sqlite3 / PyMySQL, no
SQLAlchemy): well-batched statements
(executemany / multi-row INSERT, UPDATE ... WHERE key IN (...)), one transaction per 50
files per stage. Its end state is compared with the recorded run's row for row
(`fair_load.end_state`). `ratio_to_fair_load` = pipeline_s / fair_load_s (wall), and
`cpu_ratio_to_fair_load` = CPU seconds of both sides, this process's plus, for MariaDB,
the mariadbd process's (utime + stime from /proc/<pid>/stat, read before and after each
phase and a 1 s settle after it, so the server's deferred work is counted where it fell).

Phase 3 (kept for comparison with older figures): `ratio_to_bulk`, a copy of the final
rows only (every table, processing_logs and events included) by executemany of INSERTs in
chunks of 1,000, one transaction — no updates, no deletes, no commit boundaries.

Peak RSS is /proc/self/status VmHWM read right after phase 1, before the recorded run.

`--resume` measures resuming instead (bench.resume): the same batch killed half way, then
a new daemon's start to its first new result (`resume_first_result_s`) and its RSS sampled
every 0.5 s over the resumed run (`peak_rss_mb`).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import trio

from bench import fair_load as fl
from bench import workload as w
from cofid.backends.fake import FakeBackends, FakeCall
from cofid.backends.health import CircuitBreaker
from cofid.config import parse_config
from cofid.engine.gpus import Gpu
from cofid.service.app import freeze_startup_heap, open_app
from cofid.store import tables as t
from cofid.store.db import create_engine
from cofid.store.migrate import upgrade


class InstantBackends(FakeBackends):
    """FakeBackends whose chat and transcription are instant too: the rules engine's
    reply to a prompt, and the transcript of a call of a given script and name length
    (all the fake transcriber's segments depend on), are made once and reused (every call
    here has the same script), so the figures measure cofi — prompts, engine, writer,
    store — not the stand-ins for the model servers. Denoise and IVR still write their
    derived file (a hard link), as cofid does with a remote server's reply."""

    def __init__(self, script) -> None:
        super().__init__(script=script)
        self._replies: dict[tuple[str, str], Any] = {}
        self._transcripts: dict[tuple[Any, ...], Any] = {}

    async def transcribe(self, audio, language):
        key = (self.script(audio.name), len(audio.name), language)
        result = self._transcripts.get(key)
        if result is None:
            result = self._transcripts[key] = await super().transcribe(audio, language)
        else:
            self._enter("stt", audio.name)
            await trio.lowlevel.checkpoint()
        return replace(result, request={"file": audio.name, "language": language})

    async def complete(self, request):
        key = (request.purpose, request.user)
        reply = self._replies.get(key)
        if reply is None:
            reply = self._replies[key] = await super().complete(request)
        else:
            await trio.lowlevel.checkpoint()
        return reply

KEYWORDS = ("recorded", "client code", "confirm", "market price", "thank you", "order",
            "shares", "buy", "sell", "limit")


def question_set(n: int) -> dict[str, Any]:
    if n < 3:
        raise SystemExit("--answers must be at least 3 (the three trade questions)")
    qs: list[dict[str, Any]] = [
        {"id": "TRD_INSTRUMENT", "text": "Which instrument did the client trade?",
         "kind": "trade_instrument"},
        {"id": "TRD_SIDE_QTY", "text": "Buy or sell, and what quantity?",
         "kind": "trade_side_quantity"},
        {"id": "TRD_PRICE", "text": "At what price and order type?", "kind": "trade_price"},
    ]
    for i in range(n - 3):
        qs.append({"id": f"KW_{i + 1:02d}", "text": f"Keyword check {i + 1}?", "kind": "keywords",
                   "keywords": [KEYWORDS[i % len(KEYWORDS)], KEYWORDS[(i + 3) % len(KEYWORDS)]]})
    return {"process_id": 1, "category_mapping_id": 1, "questions": qs}


def bench_config(db_url: str, data_dir: Path, answers: int, file_start_events: bool) -> dict:
    cfg = w.fake_pipeline_config(db_url, data_dir, file_start_events=file_start_events)
    cfg["audit"] = {"question_sets": [question_set(answers)]}
    return cfg


def vm_hwm_mb() -> float:
    """Peak resident set size of this process (VmHWM), in MB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


PIPELINE_STAGES = ("distribution", "denoise", "ivr", "lid", "stt", "llm1", "llm2")


async def _pipeline(cfg, batch_dir: Path, slots: int, segments: int) -> dict[str, Any]:
    script = FakeCall(language="en", duration_s=120.0, segments=segments, ivr_offset_s=2.0)
    backends = InstantBackends(lambda _name: script).backends()
    gpus = [Gpu("gpu0", slots, backends, CircuitBreaker(clock=time.monotonic))]
    async with open_app(cfg, gpus=gpus) as app:
        t0, c0 = time.perf_counter(), time.process_time()
        batch_id = await app.prepare_batch(batch_dir)
        t1 = time.perf_counter()
        run = await app.run_batch(batch_id)
        t2, c2 = time.perf_counter(), time.process_time()
        writer = app.writer
    return {"prepare_s": t1 - t0, "run_s": t2 - t1, "pipeline_s": t2 - t0,
            "pipeline_cpu_s": c2 - c0,
            "failed": sum(c.failed for c in run.counters.values()),
            "writer_groups": writer.groups_committed, "writer_items": writer.items_committed}


def count_rows(url: str) -> dict[str, int]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return {
                tbl.name: conn.execute(sa.select(sa.func.count()).select_from(tbl)).scalar_one()
                for tbl in t.metadata.sorted_tables
            }
    finally:
        engine.dispose()


def bulk_load(src_url: str, dst_url: str, chunk: int = 1000) -> tuple[float, float]:
    """Copy every row of src into the fresh dst through the raw driver.

    Returns (wall seconds, CPU seconds of this process) spent inserting and committing."""
    src, dst = create_engine(src_url), create_engine(dst_url)
    try:
        upgrade(dst)
        q = dst.dialect.identifier_preparer.quote
        mark = "?" if dst.dialect.paramstyle == "qmark" else "%s"
        rsrc, rdst = src.raw_connection(), dst.raw_connection()
        try:
            rc, wc = rsrc.cursor(), rdst.cursor()
            spent = cpu = 0.0
            if dst.dialect.name == "sqlite":
                wc.execute("BEGIN")  # the pysqlite connection is in autocommit mode here
            for tbl in t.metadata.sorted_tables:
                if tbl.name == "schemaVersion":
                    continue
                cols = [c.name for c in tbl.columns]
                rc.execute(f"SELECT {', '.join(q(c) for c in cols)} FROM {q(tbl.name)}")
                sql = (f"INSERT INTO {q(tbl.name)} ({', '.join(q(c) for c in cols)}) "
                       f"VALUES ({', '.join([mark] * len(cols))})")
                while rows := rc.fetchmany(chunk):
                    s, c = time.perf_counter(), time.process_time()
                    wc.executemany(sql, rows)
                    spent += time.perf_counter() - s
                    cpu += time.process_time() - c
            s, c = time.perf_counter(), time.process_time()
            if dst.dialect.name == "sqlite":
                wc.execute("COMMIT")
            else:
                rdst.commit()
            spent += time.perf_counter() - s
            cpu += time.process_time() - c
            return spent, cpu
        finally:
            rsrc.close()
            rdst.close()
    finally:
        src.dispose()
        dst.dispose()


def _server_cpu(server: Any) -> float:
    return fl.process_cpu_s(server.proc.pid) if server is not None else 0.0


def run(files: int, db: str, *, segments: int = 50, answers: int = 30, slots: int = 8,
        file_start_events: bool = True, fair: bool = True) -> dict[str, Any]:
    logging.basicConfig(level=logging.WARNING)
    wall0 = time.perf_counter()
    rss_start = vm_hwm_mb()
    server = None
    with tempfile.TemporaryDirectory(prefix="cofi-bench-") as tmp_s:
        tmp = Path(tmp_s)
        try:
            if db == "mariadb":
                from tests.mariadb_server import MariaDBServer

                server = MariaDBServer()
                server.start()
                src_url, dst_url = server.create_database("bench"), server.create_database("bulk")
                fair_url = server.create_database("fair")
                tapped_url = server.create_database("tapped")
            else:
                src_url = f"sqlite:///{tmp / 'data' / 'cofi.db'}"
                dst_url = f"sqlite:///{tmp / 'bulk' / 'bulk.db'}"
                fair_url = f"sqlite:///{tmp / 'fair' / 'fair.db'}"
                tapped_url = f"sqlite:///{tmp / 'tapped' / 'cofi.db'}"
            batch_dir = w.placeholder_batch(tmp / "batch", files)
            cfg = parse_config(bench_config(src_url, tmp / "data", answers, file_start_events))
            s0 = _server_cpu(server)
            freeze_startup_heap()  # as cofid serve and run-batch do before the App opens
            p = trio.run(_pipeline, cfg, batch_dir, slots, segments)
            rss_peak = vm_hwm_mb()
            time.sleep(1.0)
            p["server_cpu_s"] = _server_cpu(server) - s0
            fair_out = None
            if fair:
                # The record of every write comes from a second, identical run: the tap
                # keeps every op and event alive (more memory, more garbage-collector
                # work), a cost of the instrument, not of the pipeline the ratio is of.
                tap = fl.Tap(str(sa.engine.make_url(tapped_url)), frozenset(PIPELINE_STAGES[1:]))
                tapped_cfg = parse_config(bench_config(tapped_url, tmp / "tapped", answers,
                                                       file_start_events))
                with tap.installed():
                    tapped = trio.run(_pipeline, tapped_cfg, w.placeholder_batch(tmp / "batch2", files),
                                      slots, segments)
                p["tapped_pipeline_cpu_s"] = tapped["pipeline_cpu_s"]
                fair_out = _fair(tap, tapped_url, fair_url, server)
            rows = count_rows(src_url)
            total_rows = sum(v for k, v in rows.items() if k != "schemaVersion")
            bulk_s, bulk_cpu_s = bulk_load(src_url, dst_url)
        finally:
            if server is not None:
                server.stop()
    out = {
        "benchmark": "throughput", "db": db, "files": files, "segments": segments,
        "answers": answers, "slots": slots, "file_start_events": file_start_events,
        "pipeline_s": round(p["pipeline_s"], 2),
        "prepare_s": round(p["prepare_s"], 2),
        "run_s": round(p["run_s"], 2),
        "files_per_s": round(files / p["pipeline_s"], 1),
        "rows": total_rows,
        "rows_per_s": round(total_rows / p["pipeline_s"], 1),
        "rows_by_table": {k: v for k, v in rows.items() if v and k != "schemaVersion"},
        **_fair_figures(p, fair_out),
        "bulk_load_s": round(bulk_s, 2),
        "bulk_rows_per_s": round(total_rows / bulk_s, 1) if bulk_s else None,
        "ratio_to_bulk": round(p["pipeline_s"] / bulk_s, 2) if bulk_s else None,
        # CPU seconds of this process (all threads): steadier than wall time on a shared
        # machine; for MariaDB the server's own work is not in them.
        "pipeline_cpu_s": round(p["pipeline_cpu_s"], 2),
        "bulk_load_cpu_s": round(bulk_cpu_s, 2),
        "cpu_ratio_to_bulk": round(p["pipeline_cpu_s"] / bulk_cpu_s, 2) if bulk_cpu_s else None,
        "failed": p["failed"],
        "writer_groups": p["writer_groups"],
        "writer_items": p["writer_items"],
        "rss_start_mb": round(rss_start, 1),
        "peak_rss_mb": round(rss_peak, 1),
        "wall_s": round(time.perf_counter() - wall0, 2),
    }
    return out


def _fair(tap: fl.Tap, src_url: str, fair_url: str, server: Any) -> dict[str, Any]:
    """Phase 2: replay what the tap recorded into a fresh database; compare end states."""
    src, dst = create_engine(src_url), create_engine(fair_url)
    try:
        upgrade(dst)
        txns = fl.plan(tap.log, PIPELINE_STAGES)
        s0 = _server_cpu(server)
        r = fl.replay(dst, txns)
        time.sleep(1.0)
        r["server_cpu_s"] = _server_cpu(server) - s0
        r["end_state"] = fl.compare(src, dst)
        return r
    finally:
        src.dispose()
        dst.dispose()


def _fair_figures(p: dict[str, Any], f: dict[str, Any] | None) -> dict[str, Any]:
    if f is None:
        return {}
    pipe_cpu = p["pipeline_cpu_s"] + p["server_cpu_s"]
    fair_cpu = f["cpu_s"] + f["server_cpu_s"]
    return {
        "fair_load_s": round(f["wall_s"], 3),
        "ratio_to_fair_load": round(p["pipeline_s"] / f["wall_s"], 2) if f["wall_s"] else None,
        # CPU of both sides: this process, plus the database server's for MariaDB.
        "pipeline_cpu_with_server_s": round(pipe_cpu, 2),
        "fair_load_cpu_with_server_s": round(fair_cpu, 3),
        "cpu_ratio_to_fair_load": round(pipe_cpu / fair_cpu, 2) if fair_cpu else None,
        "server_cpu_s": {"pipeline": round(p["server_cpu_s"], 2),
                         "fair_load": round(f["server_cpu_s"], 3)},
        # The tapped run that recorded the writes (its CPU, for comparison only).
        "tapped_pipeline_cpu_s": round(p["tapped_pipeline_cpu_s"], 2),
        "fair_load": {"transactions": f["transactions"], "statements": f["statements"],
                      "files_per_transaction_per_stage": fl.FILES_PER_TXN,
                      "end_state": f["end_state"]},
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.throughput",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--db", choices=("sqlite", "mariadb"), default="sqlite")
    ap.add_argument("--segments", type=int, default=50)
    ap.add_argument("--answers", type=int, default=30)
    ap.add_argument("--slots", type=int, default=8, help="concurrency of the one pseudo-GPU")
    ap.add_argument("--no-file-start-events", action="store_true")
    ap.add_argument("--no-fair", action="store_true",
                    help="skip the fair raw load (and the tap that records the writes)")
    ap.add_argument("--resume", action="store_true",
                    help="kill the batch half way and time its resume (bench.resume)")
    a = ap.parse_args(argv)
    if a.resume:
        from bench import resume

        res = resume.run(a.files, a.db, segments=a.segments, answers=a.answers, slots=a.slots)
        json.dump(res, sys.stdout)
        sys.stdout.write("\n")
        return 0
    out = run(a.files, a.db, segments=a.segments, answers=a.answers, slots=a.slots,
              file_start_events=not a.no_file_start_events, fair=not a.no_fair)
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
