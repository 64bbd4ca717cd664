"""`cofid run-batch DIR`: one batch to the end, with live progress and a summary."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import trio

from cofid.backends.probe import ProbeResult
from cofid.config import Config
from cofid.engine.plan_run import PlanRun
from cofid.service import batches
from cofid.service.app import freeze_startup_heap, open_app
from cofid.service.errors import BatchInputError
from cofid.store import batches as batch_rows
from cofid.store import verdicts as verdict_rows
from cofid.store.batches import BatchRecord
from cofid.store.db import DatabaseUnavailable, is_connection_error
from cofid.store.types import DatabaseError

EXIT_OK, EXIT_FATAL = 0, 1


def progress_lines(run: PlanRun, now: float) -> list[str]:
    lines = []
    for stage, c in run.counters.items():
        processed = c.done + c.failed + c.skipped
        pct = 100.0 * processed / c.total if c.total else 100.0
        lines.append(
            f"  {stage.value:<8} {c.status:<10} {processed:>6}/{c.total:<6} {pct:5.1f}%  "
            f"done {c.done:<6} failed {c.failed:<4} skipped {c.skipped:<5} "
            f"{c.rate_per_minute(now):7.1f}/min"
        )
    return lines


def summary(batch: BatchRecord, run: PlanRun, seconds: float,
            call_counts: dict[str, int],
            verdict_counts: dict[str, int] | None = None) -> dict[str, Any]:
    return {
        "batch_id": batch.id,
        "batch_date": batch.batch_date.isoformat(),
        "batch_number": batch.batch_number,
        "status": batch.status,
        "total_files": batch.total_files,
        "duration_s": round(seconds, 3),
        "stages": {
            s.value: {"status": c.status, "done": c.done, "failed": c.failed, "skipped": c.skipped}
            for s, c in run.counters.items()
        },
        "call_status": call_counts,
        # Booked trades per verdict (cofid.domain.verdicts), every verdict named.
        "trade_verdicts": verdict_counts or {},
        "failures": [{"audio_name": a, "stage": s, "error": e} for a, s, e in run.failures],
    }


async def _run(cfg: Config, directory: Path, as_json: bool,
               probe_results: Sequence[ProbeResult] = ()) -> dict[str, Any]:
    tty = sys.stderr.isatty() and not as_json
    t0 = time.monotonic()
    async with open_app(cfg, probe_results=probe_results) as app:
        batch_id = await batches.prepare_batch(app, directory)
        shown = {"lines": 0, "last": 0.0}

        def draw(run: PlanRun, force: bool = False) -> None:
            now = time.monotonic()
            if not force and now - shown["last"] < (0.25 if tty else 10.0):
                return
            shown["last"] = now
            lines = progress_lines(run, now)
            if tty:
                if shown["lines"]:
                    sys.stderr.write(f"\x1b[{shown['lines']}F")
                sys.stderr.write("".join(f"\x1b[2K{line}\n" for line in lines))
                shown["lines"] = len(lines)
            elif not as_json:
                sys.stderr.write(f"batch {batch_id} progress:\n" + "\n".join(lines) + "\n")
            sys.stderr.flush()

        run = await batches.run_batch(app, batch_id, on_change=draw)
        if not as_json:
            draw(run, force=True)
        rec = await app.db.read(lambda c: batch_rows.get(c, batch_id))
        assert rec is not None
        call_counts = await app.db.read(lambda c: batch_rows.call_status_counts(c, batch_id))
        verdicts = await app.db.read(lambda c: verdict_rows.verdict_counts(c, batch_id))
        return summary(rec, run, time.monotonic() - t0, call_counts, verdicts)


def print_summary(s: dict[str, Any]) -> None:
    print(f"batch {s['batch_id']} ({s['batch_date']} #{s['batch_number']}): {s['status']}, "
          f"{s['total_files']} files in {s['duration_s']:.1f} s")
    print(f"  {'stage':<9}{'status':<11}{'done':>6}{'failed':>8}{'skipped':>9}")
    for name, st in s["stages"].items():
        print(f"  {name:<9}{st['status']:<11}{st['done']:>6}{st['failed']:>8}{st['skipped']:>9}")
    print("  calls: " + ", ".join(f"{k} {v}" for k, v in sorted(s["call_status"].items())))
    print("  " + verdict_line(s.get("trade_verdicts") or {}))
    for f in s["failures"]:
        print(f"  failed: {f['audio_name']} at {f['stage']}: {f['error']}")


def verdict_line(counts: dict[str, int]) -> str:
    """'trades: confirmed 3, mismatch 1, ...' (in the verdicts' order), or that there are
    none (a batch without a trade file)."""
    if not sum(counts.values()):
        return "trades: none"
    return "trades: " + ", ".join(f"{k} {v}" for k, v in counts.items())


def _one(e: BaseException) -> BaseException:
    """The single exception inside (nested) one-member exception groups: open_app's
    nursery wraps a refusal raised inside it, which must still read as one message."""
    while isinstance(e, BaseExceptionGroup) and len(e.exceptions) == 1:
        e = e.exceptions[0]
    return e


def run_batch_command(cfg: Config, directory: Path, *, as_json: bool,
                      probe_results: Sequence[ProbeResult] = ()) -> int:
    try:
        try:
            freeze_startup_heap()
            s = trio.run(_run, cfg, directory, as_json, probe_results)
        except BaseExceptionGroup as group:
            raise _one(group) from None
    except BatchInputError as e:
        print(f"cofid: {e}", file=sys.stderr)
        return EXIT_FATAL
    except (DatabaseUnavailable, DatabaseError) as e:
        if not isinstance(e, DatabaseUnavailable) and not is_connection_error(e):
            print(f"cofid: database error: {getattr(e, 'orig', e)}", file=sys.stderr)
            return EXIT_FATAL
        print(f"cofid: database unreachable ({cfg.database_url.split('@')[-1]}): {getattr(e, 'orig', e)}",
              file=sys.stderr)
        return EXIT_FATAL
    except KeyboardInterrupt:
        print("cofid: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    if as_json:
        print(json.dumps(s, default=str))
    else:
        print_summary(s)
    return EXIT_OK
