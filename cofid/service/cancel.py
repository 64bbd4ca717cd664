"""Cancels and resumes made visible in the tables (the seed's readers see them too).

Rules:

1. A batch or upload task cancelled before its batch is Completed sets
   ``batchStatus.status`` to 'Cancelled' (cofid.domain.model.BATCH_CANCELLED) and writes
   one event to the batch, in one transaction: stage 'pipeline', eventType 'info', status
   'failed', errorMessage "cancelled by request", metadata ``{"task_id", "cancelled":
   true, "batch_status": "Cancelled", "status_before"}`` (``batch_status`` as on every
   event of the status walk). Work already committed stays (each file-stage result is
   atomic); stage statuses stay as they were. A batch the cancel found Completed, or
   Cancelled already, is left as it is.
2. A reaudit task cancelled writes its closing event (batch 0, stage 'reaudit', status
   'failed', metadata ``cancelled: true``); its calls keep what the chosen stages had
   committed.
3. A batch resumed (ResumeTask, StartBatch on its directory, or the start-up resume)
   leaves 'Cancelled' for the last value of the seed's status walk its stages had
   reached (cofid.domain.pipeline.due_statuses, 'Completed' excepted) and
   writes stage 'pipeline', eventType 'info', status 'processing', metadata
   ``{"task_id", "resumed": true, "batch_status"}``, in one transaction.
4. ResumeTask resumes a cancelled task as a new task of the same kind, whose request
   names the old one (``resumes``): a batch or upload — the newest task of its batch,
   the batch not Completed and not running — runs its batch to the end; a reaudit
   resumes from its record (cofid.plans.reaudit step 6). Refused: an unknown task
   (TaskNotFound), a task that is not cancelled, a batch with a newer task, a Completed or
   running batch (NotResumable), a batch or calls another task holds (CallsBusy).
"""

from __future__ import annotations

from typing import Any

from cofid.domain.events import Event
from cofid.domain.model import BATCH_CANCELLED, BatchState, EventStatus, EventType
from cofid.domain.pipeline import due_statuses
from cofid.engine.plan_run import PlanRun
from cofid.plans import batch as bp
from cofid.plans import reaudit as rp
from cofid.service.context import AppContext, ServiceContext
from cofid.service.errors import NotResumable, TaskNotFound
from cofid.service.tasks import CANCELLED, CANCELLED_BY_REQUEST, TaskRecord
from cofid.store import batches as batch_rows
from cofid.store import tasks as task_rows
from cofid.store.types import Connection


def _event(batch_id: int, status: str, meta: dict[str, Any], error: str | None = None) -> Event:
    return Event(
        batch_id=batch_id,
        stage="pipeline",
        event_type=EventType.INFO,
        status=status,
        error_message=error,
        metadata=meta,
    )


async def batch_of(svc: ServiceContext, rec: TaskRecord) -> int | None:
    """The batch of a batch or upload task: its row's, or (a directory batch cancelled
    while it was being prepared, before the row named it) the batch of its directory."""
    fresh = await svc.tasks.get(rec.id)
    batch_id = (fresh.batch_id if fresh is not None else None) or rec.batch_id
    directory = rec.request.get("directory")
    if batch_id is None and rec.kind == "batch" and directory:
        b = await svc.app.db.read(lambda c: batch_rows.by_source(c, str(directory)))
        if b is not None:
            batch_id = b.id
            # The row names it from now on: the start-up resume, which skips a batch whose
            # newest task was cancelled, finds this task.
            await svc.tasks.update(rec.id, batch_id=batch_id)
    return batch_id


async def record_cancel(svc: ServiceContext, rec: TaskRecord, run: PlanRun | None) -> None:
    """Rules 1–2 for a task being cancelled (a TaskRunner.on_cancelled hook)."""
    app = svc.app
    if rec.kind == "reaudit":
        res = (run.extra if run is not None else None) or (rec.result or {})
        calls = len(res.get("calls", []))
        done = 0
        if run is not None and run.counters:
            last = list(run.counters.values())[-1]
            done = last.done + last.failed + last.skipped
        await app.writer.commit([], [rp.cancelled_event(rec.id, calls, done, CANCELLED_BY_REQUEST)])
        return
    batch_id = await batch_of(svc, rec)
    if batch_id is None:
        return  # cancelled before its batch existed: nothing to record there

    def step(conn: Connection) -> list[Event]:
        b = batch_rows.get(conn, batch_id)
        if b is None or b.status in ("Completed", BATCH_CANCELLED):
            return []
        batch_rows.set_status(conn, batch_id, BATCH_CANCELLED)
        return [
            _event(
                batch_id,
                EventStatus.FAILED,
                {
                    "task_id": rec.id,
                    "cancelled": True,
                    "batch_status": BATCH_CANCELLED,
                    "status_before": b.status,
                },
                CANCELLED_BY_REQUEST,
            )
        ]

    await app.writer.run_step(step)


async def uncancel(app: AppContext, batch_id: int, task_id: str) -> None:
    """Rule 3, before a batch's run starts (nothing when it was not cancelled)."""

    def step(conn: Connection) -> list[Event]:
        b = batch_rows.get(conn, batch_id)
        if b is None or b.status != BATCH_CANCELLED:
            return []
        # Back to the last value of the seed's walk its stages had reached (what it was
        # before the cancel); the run's walk goes on from there.
        due = [
            v
            for v in due_statuses(b.statuses, bp.enabled_stages(b.pipeline))
            if v is not BatchState.COMPLETED
        ]
        status = due[-1] if due else BatchState.PENDING
        batch_rows.set_status(conn, batch_id, status)
        return [
            _event(
                batch_id,
                EventStatus.PROCESSING,
                {"task_id": task_id, "resumed": True, "batch_status": status},
            )
        ]

    await app.writer.run_step(step)


async def resumable(svc: ServiceContext, task_id: str) -> TaskRecord:
    """Rule 4's checks; the cancelled task's record."""
    rec = await svc.tasks.get(task_id)
    if rec is None:
        raise TaskNotFound(f"no task {task_id}")
    if rec.state != CANCELLED:
        raise NotResumable(f"task {task_id} is {rec.state}; only a cancelled task can be resumed")
    if rec.kind == "reaudit":
        return rec
    batch_id = await batch_of(svc, rec)
    if batch_id is None:
        raise NotResumable(f"task {task_id} was cancelled before its batch existed; start it again")
    rec.batch_id = batch_id
    newest = await svc.tasks.for_batch(batch_id)
    if newest is not None and newest.id != rec.id:
        raise NotResumable(
            f"batch {batch_id} has a newer task {newest.id} ({newest.state}); resume that one"
        )
    status = await svc.app.db.read(lambda c: task_rows.batch_status_of(c, batch_id))
    if status == "Completed":
        raise NotResumable(f"batch {batch_id} is Completed; nothing to resume")
    if batch_id in svc.app.reservations.batches:
        raise NotResumable(f"batch {batch_id} is running")
    svc.app.reservations.check_batch(batch_id)
    return rec
