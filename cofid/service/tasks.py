"""Background tasks (batch, upload, reaudit), persisted in the `task` table.

A task row is created `queued` when a request is accepted, becomes `running` when the
work starts, and ends `completed`, `failed` or `cancelled`. Its `result` holds the
per-stage counters and file failures of the finished run, so GetTask answers the same
after a restart. While a task runs, the registry also holds its live side in memory: the
trio CancelScope (CancelTask) and the PlanRun (live progress).

Restart rule (applied by :meth:`TaskRegistry.recover` when the daemon starts):

* a ``batch`` or ``upload`` task found ``queued``/``running`` whose batch row exists and
  is not Completed stays ``running``: the daemon resumes every unfinished batch at start
  and re-attaches the task to that run, so it completes as if nothing happened;
* a ``reaudit`` task found ``queued``/``running`` stays ``running`` and is resumed
  (cofid.plans.reaudit step 6: the chosen stages, for the recorded calls not yet done),
  then ends with its closing event like an uninterrupted one;
* a ``batch`` task whose row names no batch but whose directory became one (killed
  between the two commits) is given that batch and follows the first rule;
* an upload/batch task whose batch row was never created is marked ``failed`` with
  error "interrupted by a daemon restart";
* an unfinished batch whose newest task was ``cancelled`` is not resumed (ResumeTask, or
  StartBatch on the same directory, resumes it).

A task interrupted by shutdown resumes at the next start (its task stays running).

Cancel rule: a cancelled task's row says ``cancelled`` ("cancelled by request"), and the
hooks in :attr:`TaskRunner.on_cancelled` record it in the tables before the row does
(cofid.service.cancel: batchStatus and a closing event).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import trio

from cofid.engine.plan_run import PlanRun
from cofid.service.errors import TaskFinished, TaskNotFound
from cofid.store import tasks as task_rows
from cofid.store.db import Database
from cofid.store.tasks import TaskRecord
from cofid.store.types import Connection
from cofid.store.writes import utcnow

__all__ = ["ACTIVE", "CANCELLED", "CANCELLED_BY_REQUEST", "COMPLETED", "FAILED", "FINAL",
           "INTERRUPTED", "KINDS", "QUEUED", "RUNNING", "LiveTask", "TaskRecord",
           "TaskRegistry", "TaskRunner", "TaskView", "run_result"]

log = logging.getLogger("cofid.service")

KINDS = ("batch", "upload", "reaudit")
QUEUED, RUNNING, COMPLETED, FAILED, CANCELLED = (
    "queued", "running", "completed", "failed", "cancelled")
ACTIVE = (QUEUED, RUNNING)
FINAL = (COMPLETED, FAILED, CANCELLED)
INTERRUPTED = "interrupted by a daemon restart"
CANCELLED_BY_REQUEST = "cancelled by request"


@dataclass
class LiveTask:
    """The in-memory side of a queued or running task."""

    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    run: PlanRun | None = None
    done: trio.Event = field(default_factory=trio.Event)
    cancelled_by_user: bool = False


@dataclass(frozen=True)
class TaskView:
    """A task as GetTask shows it: its record and the stage counters and failures of its
    run (live while it runs, as stored once it ended)."""

    record: TaskRecord
    stages: list[dict[str, Any]]
    failures: list[dict[str, Any]]
    left_alone: list[dict[str, Any]] = field(default_factory=list)  # a reaudit's


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
        **run.extra,
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
    def insert(conn: Connection, rec: TaskRecord) -> None:
        """The task row, inside a caller's transaction (an upload's batch and its task
        commit together)."""
        task_rows.insert(conn, rec)

    async def create(self, kind: str, request: dict[str, Any], *, batch_id: int | None = None,
                     task_id: str | None = None, state: str = QUEUED) -> TaskRecord:
        rec = self.new_record(kind, request, batch_id=batch_id, task_id=task_id, state=state)
        await self.add(rec)
        return rec

    async def add(self, rec: TaskRecord) -> None:
        """Insert a record made by new_record and give it its live side."""
        await self.db.write(lambda conn: task_rows.insert(conn, rec))
        self.live[rec.id] = LiveTask()

    async def page(self, states: tuple[str, ...], kinds: tuple[str, ...], limit: int,
                   after: tuple[Any, str] | None) -> tuple[list[TaskRecord], bool]:
        """Tasks newest first, filtered; (page, whether more follow)."""
        return await self.db.read(
            lambda conn: task_rows.page(conn, states, kinds, limit, after))

    async def update(self, task_id: str, **values: Any) -> None:
        """Set any of state, batch_id, result, error (and updated_at)."""
        row: dict[str, Any] = {k: values[k] for k in ("state", "batch_id", "result", "error")
                               if k in values}
        unknown = set(values) - set(row)
        if unknown:
            raise TypeError(f"not a task field: {sorted(unknown)[0]}")
        row["updated_at"] = utcnow()
        with trio.CancelScope(shield=True):
            await self.db.write(lambda conn: task_rows.update(conn, task_id, row))

    async def get(self, task_id: str) -> TaskRecord | None:
        return await self.db.read(lambda conn: task_rows.get(conn, task_id))

    async def for_batch(self, batch_id: int) -> TaskRecord | None:
        """The newest batch/upload task of a batch."""
        return await self.db.read(
            lambda conn: task_rows.newest_for_batch(conn, batch_id, ("batch", "upload")))

    async def recover(self) -> dict[str, int]:
        """Apply the restart rule (module docstring) to tasks left active."""
        def fix(conn: Connection) -> dict[str, int]:
            kept = failed = 0
            now = utcnow()
            for r in task_rows.in_states(conn, ACTIVE):
                status = None
                directory = r.request.get("directory")
                if r.batch_id is None and r.kind == "batch" and directory:
                    # Killed after its batch row committed, before the task row named it.
                    r.batch_id = task_rows.batch_of_directory(conn, str(directory))
                    if r.batch_id is not None:
                        task_rows.update(conn, r.id, {"batch_id": r.batch_id})
                if r.kind in ("batch", "upload") and r.batch_id is not None:
                    status = task_rows.batch_status_of(conn, r.batch_id)
                if r.kind == "reaudit":
                    task_rows.update(conn, r.id, {"state": RUNNING, "updated_at": now})
                    kept += 1
                elif status == "Completed":
                    # The batch committed Completed and the daemon died before the task
                    # row followed: the work is done, the task is too.
                    task_rows.update(conn, r.id, {"state": COMPLETED, "updated_at": now})
                    kept += 1
                elif status is not None:
                    task_rows.update(conn, r.id, {"state": RUNNING, "updated_at": now})
                    kept += 1
                else:
                    task_rows.update(conn, r.id, {"state": FAILED, "error": INTERRUPTED,
                                                  "updated_at": now})
                    failed += 1
            return {"resumed": kept, "failed": failed}

        return await self.db.write(fix)


TaskBody = Callable[[LiveTask], Awaitable[PlanRun | None]]


class TaskRunner:
    """Runs task bodies in a nursery and moves their rows through the states."""

    def __init__(self, registry: TaskRegistry, nursery: trio.Nursery,
                 runs: dict[int, PlanRun]) -> None:
        self.registry = registry
        self.nursery = nursery
        self.runs = runs  # the App's running plans by batch id (a batch task's live run)
        self.on_done: list[Callable[[TaskRecord], None]] = []
        # Run (shielded) when a task is cancelled, before its row says so.
        self.on_cancelled: list[Callable[[TaskRecord, PlanRun | None], Awaitable[None]]] = []

    def spawn(self, rec: TaskRecord, body: TaskBody) -> LiveTask:
        live = self.registry.live.setdefault(rec.id, LiveTask())
        self.nursery.start_soon(self._run_task, rec, live, body)
        return live

    async def _run_task(self, rec: TaskRecord, live: LiveTask, body: TaskBody) -> None:
        tasks = self.registry
        run = None
        try:
            with live.scope:
                await tasks.update(rec.id, state=RUNNING)
                run = await body(live)
            if live.cancelled_by_user:
                await self._record_cancel(rec, live.run)
                # Without a run the row keeps its result (a reaudit's record of its calls,
                # which ResumeTask reads).
                kept = {"result": run_result(live.run)} if live.run is not None else {}
                await tasks.update(rec.id, state=CANCELLED, error=CANCELLED_BY_REQUEST, **kept)
            elif live.scope.cancelled_caught or (run is not None and run.draining):
                # Shutdown: the task stays running and resumes at the next start.
                if live.run is not None:
                    await tasks.update(rec.id, result=run_result(live.run))
            else:
                await tasks.update(rec.id, state=COMPLETED, result=run_result(run))
        except Exception as e:  # noqa: BLE001 - the task fails, the daemon goes on
            log.exception("task %s (%s) failed", rec.id, rec.kind)
            await tasks.update(rec.id, state=FAILED, result=run_result(live.run),
                               error=str(e) or type(e).__name__)
        finally:
            live.done.set()
            tasks.live.pop(rec.id, None)
            for hook in self.on_done:
                hook(rec)

    async def _record_cancel(self, rec: TaskRecord, run: PlanRun | None) -> None:
        with trio.CancelScope(shield=True):
            for hook in self.on_cancelled:
                await hook(rec, run)

    # ---- GetTask / CancelTask ---------------------------------------------------------

    def view(self, rec: TaskRecord) -> TaskView:
        live = self.registry.live.get(rec.id)
        run = None
        if live is not None:
            run = live.run or (self.runs.get(rec.batch_id) if rec.batch_id else None)
        if rec.state in ACTIVE and run is not None:
            res = run_result(run)
        else:
            res = rec.result or {"stages": [], "failures": []}
        if "left_alone" not in res and rec.result:  # a reaudit not yet in its run
            res = {**res, "left_alone": rec.result.get("left_alone", [])}
        return TaskView(rec, list(res.get("stages", [])), list(res.get("failures", [])),
                        list(res.get("left_alone", [])))

    async def get(self, task_id: str) -> TaskView:
        rec = await self.registry.get(task_id)
        if rec is None:
            raise TaskNotFound(f"no task {task_id}")
        return self.view(rec)

    async def cancel(self, task_id: str) -> TaskView:
        tasks = self.registry
        rec = await tasks.get(task_id)
        if rec is None:
            raise TaskNotFound(f"no task {task_id}")
        if rec.state in (COMPLETED, FAILED):
            raise TaskFinished(f"task {task_id} already {rec.state}; nothing to cancel")
        if rec.state == CANCELLED:
            return self.view(rec)
        live = tasks.live.get(task_id)
        if live is not None:
            live.cancelled_by_user = True
            live.scope.cancel()
            await live.done.wait()
        else:
            await self._record_cancel(rec, None)
            await tasks.update(task_id, state=CANCELLED, error=CANCELLED_BY_REQUEST)
        rec = await tasks.get(task_id)
        if rec is None:
            raise TaskNotFound(f"no task {task_id}")
        return self.view(rec)
