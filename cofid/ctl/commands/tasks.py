"""cofictl start-batch, reaudit, status, cancel — and waiting for a task to finish."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from cofid.ctl import output as out
from cofid.ctl.commands import MakeParser, SubParsers
from cofid.ctl.connect import (
    EXIT_OK,
    EXIT_TASK_FAILED,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    Connection,
    CtlError,
    is_unavailable,
)
from cofid.ctl.escape import terminal_text as terminal
from protos.cofi.v1 import cofi_pb2 as pb

ACTIVE = ("queued", "running")
REAUDIT_STAGES = ("lid", "stt", "llm1", "llm2")


# ---- rendering ------------------------------------------------------------------------


def task_exit(task: pb.Task) -> int:
    return EXIT_TASK_FAILED if task.state in ("failed", "cancelled") else EXIT_OK


def print_task(task: pb.Task) -> None:
    pairs = [("task", task.task_id), ("kind", task.kind), ("state", task.state),
             ("batch", task.batch_id or "-"), ("created", out.ts_text(task.created_at)),
             ("updated", out.ts_text(task.updated_at))]
    if task.error:
        pairs.append(("error", task.error))
    out.fields(pairs)
    if task.stages:
        print()
        out.table(["stage", "status", "total", "done", "failed", "skipped"],
                  [(s.stage, s.status, s.total, s.done, s.failed, s.skipped)
                   for s in task.stages])
    if task.failures:
        print(f"\nfailures ({len(task.failures)}):")
        out.table(["audio", "stage", "error"],
                  [(f.audio_name, f.stage, f.error) for f in task.failures])
    if task.left_alone:
        print(f"\nleft alone ({len(task.left_alone)}):")
        out.table(["audio", "batch", "reason"],
                  [(a.audio_name, a.batch_id, a.reason) for a in task.left_alone])


def stage_info(s: pb.StageProgress) -> str:
    extra = "".join(f", {n} {k}" for k, n in (("failed", s.failed), ("skipped", s.skipped)) if n)
    return f"{s.status} {s.done}/{s.total}{extra}"


# ---- waiting --------------------------------------------------------------------------


def wait_task(conn: Connection, task_id: str, *, poll_s: float = 0.5,
              unavailable_s: float = 60.0, progress: bool = True) -> pb.Task:
    """Poll GetTask until the task is final, showing per-stage progress on stderr. A daemon
    restart in between is ridden out (batch and upload tasks resume after a restart) for
    up to `unavailable_s` seconds without an answer."""
    down_since: float | None = None
    delay = 0.2
    with out.Progress(enabled=progress) as bars:
        while True:
            try:
                task = conn.raw("GetTask", pb.GetTaskRequest(task_id=task_id), timeout=10)
            except Exception as e:
                if not is_unavailable(e):
                    raise conn.error(e) from None
                now = time.monotonic()
                if down_since is None:
                    down_since = now
                    out.say(f"daemon unavailable ({e.code().name}); retrying")
                if now - down_since > unavailable_s:
                    raise CtlError(f"UNAVAILABLE: cofid at {conn.target} did not come back "
                                   f"within {unavailable_s:.0f} s; task {task_id} goes on "
                                   f"without us", EXIT_UNREACHABLE, "UNAVAILABLE") from None
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
                conn.open()
                continue
            if down_since is not None:
                out.say("daemon is back")
            down_since, delay = None, 0.2
            final = task.state not in ACTIVE
            for s in task.stages:
                bars.update(s.stage, s.done + s.failed + s.skipped, s.total, stage_info(s),
                            final=final)
            if final:
                return task
            time.sleep(poll_s)


def finish(conn: Connection, args: argparse.Namespace, reply_doc: dict[str, Any], task_id: str,
           lead: str) -> int:
    """Print the reply (and the final task when --wait); the exit code."""
    if not args.wait:
        if args.json:
            out.print_json(reply_doc)
        else:
            print(lead)
        return EXIT_OK
    if not args.json:
        out.say(f"{lead}; waiting for it to finish")
    task = wait_task(conn, task_id, poll_s=args.poll, progress=not args.json)
    if args.json:
        out.print_json({**reply_doc, "task": out.to_dict(task)})
    else:
        print_task(task)
    if task.state != "completed":
        out.say(f"task {task.task_id} {task.state}" + (f": {task.error}" if task.error else ""))
    return task_exit(task)


# ---- commands -------------------------------------------------------------------------


def cmd_status(conn: Connection, args: argparse.Namespace) -> int:
    if args.wait:
        task = wait_task(conn, args.task, poll_s=args.poll, progress=not args.json)
    else:
        task = conn.call("GetTask", pb.GetTaskRequest(task_id=args.task))
    if args.json:
        out.print_json(out.to_dict(task))
    else:
        print_task(task)
    if task_exit(task) != EXIT_OK:
        out.say(f"task {task.task_id} {task.state}" + (f": {task.error}" if task.error else ""))
    return task_exit(task)


def cmd_cancel(conn: Connection, args: argparse.Namespace) -> int:
    task = conn.call("CancelTask", pb.CancelTaskRequest(task_id=args.task))
    if args.json:
        out.print_json(out.to_dict(task))
    else:
        print_task(task)
    return EXIT_OK


def cmd_start_batch(conn: Connection, args: argparse.Namespace) -> int:
    directory = os.path.abspath(args.directory)
    req = pb.StartBatchRequest(directory=directory)
    if args.process_id is not None:
        req.process_id = args.process_id
    if args.category_mapping_id is not None:
        req.category_mapping_id = args.category_mapping_id
    ref = conn.call("StartBatch", req)
    lead = f"task {ref.task_id} {ref.state}" + (f" (batch {ref.batch_id})" if ref.batch_id else "")
    return finish(conn, args, out.to_dict(ref), ref.task_id, lead)


def read_names(source: str) -> list[str]:
    """Audio names, one a line, from a file or '-' (stdin); blank lines and # comments are
    skipped."""
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as e:
        raise CtlError(f"cannot read {source}: {e.strerror}", EXIT_USAGE) from None
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]


def cmd_reaudit(conn: Connection, args: argparse.Namespace) -> int:
    names: list[str] = []
    for n in args.audio:
        names.extend(read_names("-") if n == "-" else [n])
    for f in args.from_file or []:
        names.extend(read_names(f))
    names = list(dict.fromkeys(names))
    if not names:
        raise CtlError("no audio name given (AUDIO..., --from-file FILE or - for stdin)",
                       EXIT_USAGE)
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    bad = [s for s in stages if s not in REAUDIT_STAGES]
    if bad or not stages:
        raise CtlError(f"--stages: {', '.join(bad) or 'empty'}: choose from "
                       f"{', '.join(REAUDIT_STAGES)}", EXIT_USAGE)
    reply = conn.call("Reaudit", pb.ReauditRequest(audio_names=names, stages=stages))
    if reply.unknown_audio_names:
        out.say(f"warning: {len(reply.unknown_audio_names)} unknown audio name(s), not "
                f"re-audited: {', '.join(reply.unknown_audio_names)}")
    for a in reply.left_alone:
        out.say(f"left alone: {terminal(a.audio_name)} (batch {a.batch_id}): "
                f"{terminal(a.reason)}")
    lead = (f"task {reply.task_id}: re-auditing "
            f"{reply.matched_calls - len(reply.left_alone)} call(s), stages "
            f"{','.join(stages)}")
    return finish(conn, args, out.to_dict(reply), reply.task_id, lead)


# ---- parsers --------------------------------------------------------------------------


def add_wait(p: argparse.ArgumentParser) -> None:
    p.add_argument("--wait", action="store_true",
                   help="follow the task to its end (progress on stderr); exit 1 if it "
                        "fails or is cancelled")
    p.add_argument("--poll", type=float, default=0.5, metavar="SECONDS",
                   help="how often --wait asks for progress (default 0.5)")


def register(sub: SubParsers, common: argparse.ArgumentParser, make: MakeParser) -> None:
    p = make(sub, "start-batch", "start processing a batch directory on the daemon's host",
             """examples:
  cofictl start-batch /srv/cofi/batches/2026-11-22
  cofictl start-batch /srv/cofi/batches/2026-11-22 --wait --json > result.json""", common)
    p.add_argument("directory", help="the batch directory (a relative path is made absolute)")
    p.add_argument("--process-id", type=int)
    p.add_argument("--category-mapping-id", type=int)
    add_wait(p)
    p.set_defaults(func=cmd_start_batch)

    p = make(sub, "reaudit", "re-run stages (lid, stt, llm1, llm2) for existing calls",
             """examples:
  cofictl reaudit --stages stt,llm2 20240611_101502_AG17_C4411.wav
  cofictl reaudit --stages llm2 --from-file names.txt --wait
  grep C4411 names.txt | cofictl reaudit --stages llm1,llm2 -""", common)
    p.add_argument("audio", nargs="*", help="call.audioName values; - reads names from stdin")
    p.add_argument("--stages", required=True, help="comma-separated: lid,stt,llm1,llm2")
    p.add_argument("--from-file", action="append", metavar="FILE",
                   help="names, one a line (- for stdin); may be repeated")
    add_wait(p)
    p.set_defaults(func=cmd_reaudit)

    p = make(sub, "status", "a task's state and per-stage progress",
             """examples:
  cofictl status 5f0c2a8e-1b7d-4c1e-9d0f-0a4b1c2d3e4f
  cofictl status 5f0c2a8e-1b7d-4c1e-9d0f-0a4b1c2d3e4f --wait --json""", common)
    p.add_argument("task", help="task id")
    add_wait(p)
    p.set_defaults(func=cmd_status)

    p = make(sub, "cancel", "cancel a queued or running task",
             """example:
  cofictl cancel 5f0c2a8e-1b7d-4c1e-9d0f-0a4b1c2d3e4f""", common)
    p.add_argument("task", help="task id")
    p.set_defaults(func=cmd_cancel)
