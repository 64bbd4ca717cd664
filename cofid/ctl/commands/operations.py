"""cofictl tasks, resume, gpus: finding work, resuming it, and the GPU hosts."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from cofid.ctl import output as out
from cofid.ctl.commands import MakeParser, SubParsers
from cofid.ctl.commands.tasks import add_wait, finish
from cofid.ctl.connect import EXIT_OK, Connection
from cofid.ctl.paging import paged
from protos.cofi.v1 import cofi_pb2 as pb

STATES = ("queued", "running", "completed", "failed", "cancelled")
KINDS = ("batch", "upload", "reaudit")


def _list(value: str, known: tuple[str, ...], flag: str) -> list[str]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    bad = [v for v in items if v not in known]
    if bad or not items:
        raise argparse.ArgumentTypeError(
            f"{flag}: {', '.join(bad) or 'empty'}: choose from {', '.join(known)}"
        )
    return items


def iter_tasks(
    conn: Connection, states: list[str], kinds: list[str], limit: int
) -> Iterator[pb.Task]:
    """Newest first, a page at a time; at most `limit` (0: all)."""
    req = pb.ListTasksRequest(states=states, kinds=kinds)
    return paged(conn, "ListTasks", req, "tasks", limit)


def _progress(t: pb.Task) -> str:
    """The last stage's done+failed+skipped of its total: how far the task got."""
    if not t.stages:
        return ""
    s = t.stages[-1]
    return f"{s.done + s.failed + s.skipped}/{s.total}"


def cmd_tasks(conn: Connection, args: argparse.Namespace) -> int:
    rows = iter_tasks(conn, args.state or [], args.kind or [], args.limit)
    if args.json:
        out.print_json({"tasks": [out.to_dict(t) for t in rows]})
        return EXIT_OK
    out.table(
        ["task", "kind", "state", "batch", "progress", "created", "updated", "error"],
        [
            (
                t.task_id,
                t.kind,
                t.state,
                t.batch_id or "",
                _progress(t),
                out.ts_text(t.created_at),
                out.ts_text(t.updated_at),
                t.error,
            )
            for t in rows
        ],
    )
    return EXIT_OK


def cmd_resume(conn: Connection, args: argparse.Namespace) -> int:
    ref = conn.call("ResumeTask", pb.ResumeTaskRequest(task_id=args.task))
    lead = f"task {ref.task_id} {ref.state}: resumes {args.task}" + (
        f" (batch {ref.batch_id})" if ref.batch_id else ""
    )
    return finish(conn, args, out.to_dict(ref), ref.task_id, lead)


def cmd_gpus(conn: Connection, args: argparse.Namespace) -> int:
    reply = conn.call("ListGpus", pb.ListGpusRequest())
    if args.json:
        out.print_json(out.to_dict(reply))
        return EXIT_OK
    out.table(
        [
            "gpu",
            "url",
            "healthy",
            "slots",
            "in use",
            "assigned",
            "done",
            "p50 ms",
            "p95 ms",
            "failures",
        ],
        [
            (
                g.name,
                g.url,
                "yes" if g.healthy else "NO",
                g.slots,
                g.slots_in_use,
                g.files_assigned,
                g.files_done,
                g.latency_ms_p50,
                g.latency_ms_p95,
                g.consecutive_failures,
            )
            for g in reply.gpus
        ],
    )
    return EXIT_OK


def register(sub: SubParsers, common: argparse.ArgumentParser, make: MakeParser) -> None:
    p = make(
        sub,
        "tasks",
        "list tasks, newest first (batch, upload, reaudit)",
        """examples:
  cofictl tasks
  cofictl tasks --state running,queued
  cofictl tasks --kind reaudit --state cancelled --limit 0 --json""",
        common,
    )
    p.add_argument(
        "--state",
        type=lambda v: _list(v, STATES, "--state"),
        help="comma-separated: " + ",".join(STATES),
    )
    p.add_argument(
        "--kind",
        type=lambda v: _list(v, KINDS, "--kind"),
        help="comma-separated: " + ",".join(KINDS),
    )
    p.add_argument("--limit", type=int, default=50, help="at most this many (0: all)")
    p.set_defaults(func=cmd_tasks)

    p = make(
        sub,
        "resume",
        "resume a cancelled task as a new task",
        """examples:
  cofictl resume 5f0c2a8e-1b7d-4c1e-9d0f-0a4b1c2d3e4f
  cofictl resume 5f0c2a8e-1b7d-4c1e-9d0f-0a4b1c2d3e4f --wait""",
        common,
    )
    p.add_argument("task", help="the cancelled task's id")
    add_wait(p)
    p.set_defaults(func=cmd_resume)

    p = make(
        sub,
        "gpus",
        "the GPU hosts: health, slots, latency",
        """example:
  cofictl gpus --json""",
        common,
    )
    p.set_defaults(func=cmd_gpus)
