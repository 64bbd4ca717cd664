"""Pipeline throughput in real time on instant backends, against a raw bulk load of its rows.

`python -m bench.throughput --files N --db sqlite|mariadb [--segments 50 --answers 30]`

Phase 1 runs the batch plan end to end — prepare_batch (distribution) and run_batch
(denoise, ivr, lid, stt, llm1, llm2) through the engine, the group-commit writer and the
store — on instant FakeBackends: every call is English, 120 s long, with `--segments`
transcript segments; LLM1/LLM2 answer as the deterministic rules engine does — a configured
[[audit.question_sets]] of `--answers` questions (the 3 trade kinds, then "keywords"
questions) — but instantly (InstantBackends: one reply per distinct prompt, reused). There are no CSVs, so callmetadata, trademetadata and triaging do not run.
The N audio files are empty placeholders (the fake backends never read them).

Phase 2 copies every row the pipeline left (all tables, schemaVersion aside) into a fresh
database of the same kind through the same DB-API driver (sqlite3 / PyMySQL): executemany
of INSERTs in chunks of 1,000, one transaction. Only the inserts are timed. The ratio
pipeline_s / bulk_load_s says what the engine costs over writing its output at all.

Peak RSS is /proc/self/status VmHWM read right after phase 1 (phase 2 holds a chunk of
rows at a time, but is kept out of the figure anyway).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import trio

from bench import workload as w
from cofid.backends.fake import FakeBackends, FakeCall
from cofid.backends.health import CircuitBreaker
from cofid.config import parse_config
from cofid.engine.gpus import Gpu
from cofid.service.app import open_app
from cofid.store import tables as t
from cofid.store.db import create_engine
from cofid.store.migrate import upgrade


class InstantBackends(FakeBackends):
    """FakeBackends whose chat is instant too: the rules engine's reply to a prompt is
    computed once and reused (every call here has the same transcript), so the figures
    measure cofi — prompts, engine, writer, store — not the offline rules engine."""

    def __init__(self, script) -> None:
        super().__init__(script=script)
        self._replies: dict[tuple[str, str], Any] = {}

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


def run(files: int, db: str, *, segments: int = 50, answers: int = 30, slots: int = 8,
        file_start_events: bool = True) -> dict[str, Any]:
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
            else:
                src_url = f"sqlite:///{tmp / 'data' / 'cofi.db'}"
                dst_url = f"sqlite:///{tmp / 'bulk' / 'bulk.db'}"
            batch_dir = tmp / "batch"
            batch_dir.mkdir()
            for i in range(files):
                (batch_dir / w.file_name(i)).touch()
            cfg = parse_config(bench_config(src_url, tmp / "data", answers, file_start_events))
            p = trio.run(_pipeline, cfg, batch_dir, slots, segments)
            rss_peak = vm_hwm_mb()
            rows = count_rows(src_url)
            total_rows = sum(v for k, v in rows.items() if k != "schemaVersion")
            bulk_s, bulk_cpu_s = bulk_load(src_url, dst_url)
        finally:
            if server is not None:
                server.stop()
    return {
        "benchmark": "throughput", "db": db, "files": files, "segments": segments,
        "answers": answers, "slots": slots, "file_start_events": file_start_events,
        "pipeline_s": round(p["pipeline_s"], 2),
        "prepare_s": round(p["prepare_s"], 2),
        "run_s": round(p["run_s"], 2),
        "files_per_s": round(files / p["pipeline_s"], 1),
        "rows": total_rows,
        "rows_per_s": round(total_rows / p["pipeline_s"], 1),
        "rows_by_table": {k: v for k, v in rows.items() if v and k != "schemaVersion"},
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.throughput",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--db", choices=("sqlite", "mariadb"), default="sqlite")
    ap.add_argument("--segments", type=int, default=50)
    ap.add_argument("--answers", type=int, default=30)
    ap.add_argument("--slots", type=int, default=8, help="concurrency of the one pseudo-GPU")
    ap.add_argument("--no-file-start-events", action="store_true")
    a = ap.parse_args(argv)
    out = run(a.files, a.db, segments=a.segments, answers=a.answers, slots=a.slots,
              file_start_events=not a.no_file_start_events)
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
