"""Background tasks (batch, upload, reaudit), persisted in the `task` table.

A task row is created `queued` when an RPC accepts work, becomes `running` when the work
starts, and ends `completed`, `failed` or `cancelled`. Its `result` holds the per-stage
counters and file failures of the finished run, so GetTask answers the same after a
restart. While a task runs, the registry also holds its live side in memory: the trio
CancelScope (CancelTask) and the PlanRun (live progress).

Restart rule (applied by :meth:`TaskRegistry.recover` when the daemon starts):

* a ``batch`` or ``upload`` task found ``queued``/``running`` whose batch row exists and
  is not Completed stays ``running``: the daemon resumes every unfinished batch at start
  and re-attaches the task to that run, so it completes as if nothing happened;
* every other task found ``queued``/``running`` (a reaudit — its calls were reset and
  may be half re-processed; run the reaudit again — or an upload/batch task whose batch
  row was never created) is marked ``failed`` with error "interrupted by a daemon
  restart";
* an unfinished batch whose newest task was ``cancelled`` is not resumed (StartBatch on
  the same directory resumes it).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
import trio

from cofid.engine.plan_run import PlanRun
from cofid.store import tables as t
from cofid.store.db import Database

KINDS = ("batch", "upload", "reaudit")
QUEUED, RUNNING, COMPLETED, FAILED, CANCELLED = (
    "queued", "running", "completed", "failed", "cancelled")
ACTIVE = (QUEUED, RUNNING)
FINAL = (COMPLETED, FAILED, CANCELLED)
INTERRUPTED = "interrupted by a daemon restart"


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass
class TaskRecord:
    id: str
    kind: str
    state: str
    batch_id: int | None
    request: dict[str, Any]
    result: dict[str, Any] | None = None
    error: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass
class LiveTask:
    """The in-memory side of a queued or running task."""

    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    run: PlanRun | None = None
    done: trio.Event = field(default_factory=trio.Event)
    cancelled_by_user: bool = False


def _record(row: sa.Row) -> TaskRecord:
    m = row._mapping
    return TaskRecord(id=m["id"], kind=m["kind"], state=m["state"], batch_id=m["batchId"],
                      request=m["request"] or {}, result=m["result"], error=m["error"],
                      created_at=m["createdAt"], updated_at=m["updatedAt"])


def run_result(run: PlanRun | None) -> dict[str, Any]:
    """What a finished PlanRun leaves in task.result (GetTask reads it back)."""
    if run is None:
        return {"stages": [], "failures": []}
    return {
        "stages": [
            {"stage": str(s), "status": str(c.status), "total": c.total, "done": c.done,
             "failed": c.failed, "skipped": c.skipped}
            for s, c in run.counters.items()
        ],
        "failures": [{"audio_name": a, "stage": str(s), "error": e}
                     for a, s, e in run.failures[-1000:]],
        "draining": run.draining,
    }


class TaskRegistry:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.live: dict[str, LiveTask] = {}

    def new_record(self, kind: str, request: dict[str, Any], *, batch_id: int | None = None,
                   task_id: str | None = None, state: str = QUEUED) -> TaskRecord:
        if kind not in KINDS:
            raise ValueError(f"unknown task kind {kind!r}")
        now = utcnow()
        return TaskRecord(id=task_id or str(uuid.uuid4()), kind=kind, state=state,
                          batch_id=batch_id, request=request, created_at=now, updated_at=now)

    @staticmethod
    def insert(conn, rec: TaskRecord) -> None:
        """The task row, inside a caller's transaction (an upload's batch and its task
        commit together)."""
        conn.execute(sa.insert(t.task).values(
            id=rec.id, kind=rec.kind, state=rec.state, batchId=rec.batch_id, request=rec.request,
            createdAt=rec.created_at, updatedAt=rec.updated_at))

    async def create(self, kind: str, request: dict[str, Any], *, batch_id: int | None = None,
                     task_id: str | None = None, state: str = QUEUED) -> TaskRecord:
        rec = self.new_record(kind, request, batch_id=batch_id, task_id=task_id, state=state)
        await self.db.write(lambda conn: self.insert(conn, rec))
        self.live[rec.id] = LiveTask()
        return rec

    async def update(self, task_id: str, **values: Any) -> None:
        """Set any of state, batch_id, result, error (and updatedAt)."""
        cols = {"state": "state", "batch_id": "batchId", "result": "result", "error": "error"}
        row = {cols[k]: v for k, v in values.items()}
        row["updatedAt"] = utcnow()

        def upd(conn):
            conn.execute(sa.update(t.task).where(t.task.c.id == task_id).values(**row))

        with trio.CancelScope(shield=True):
            await self.db.write(upd)

    async def get(self, task_id: str) -> TaskRecord | None:
        def q(conn):
            r = conn.execute(sa.select(t.task).where(t.task.c.id == task_id)).first()
            return None if r is None else _record(r)

        return await self.db.read(q)

    async def for_batch(self, batch_id: int) -> TaskRecord | None:
        """The newest batch/upload task of a batch."""
        def q(conn):
            r = conn.execute(
                sa.select(t.task).where(t.task.c.batchId == batch_id,
                                        t.task.c.kind.in_(("batch", "upload")))
                .order_by(t.task.c.createdAt.desc(), t.task.c.id).limit(1)).first()
            return None if r is None else _record(r)

        return await self.db.read(q)

    async def recover(self) -> dict[str, int]:
        """Apply the restart rule (module docstring) to tasks left active."""
        def fix(conn):
            tk, bs = t.task, t.batch_status
            rows = list(conn.execute(sa.select(tk).where(tk.c.state.in_(ACTIVE))))
            kept = failed = 0
            now = utcnow()
            for r in rows:
                resumable = finished = False
                if r.kind in ("batch", "upload") and r.batchId is not None:
                    b = conn.execute(sa.select(bs.c.status).where(bs.c.id == r.batchId)).first()
                    resumable = b is not None and b.status != "Completed"
                    # The batch committed Completed and the daemon died before the task
                    # row followed: the work is done, the task is too.
                    finished = b is not None and b.status == "Completed"
                if finished:
                    conn.execute(sa.update(tk).where(tk.c.id == r.id)
                                 .values(state=COMPLETED, updatedAt=now))
                    kept += 1
                elif resumable:
                    conn.execute(sa.update(tk).where(tk.c.id == r.id)
                                 .values(state=RUNNING, updatedAt=now))
                    kept += 1
                else:
                    conn.execute(sa.update(tk).where(tk.c.id == r.id)
                                 .values(state=FAILED, error=INTERRUPTED, updatedAt=now))
                    failed += 1
            return {"resumed": kept, "failed": failed}

        return await self.db.write(fix)
