"""What the daemon does at start: finish what the last run left.

1. Apply the task restart rule (cofid.service.tasks).
2. Remove the directories that killed uploads left: an upload killed before its batch
   committed leaves its directory under the uploads root (the cleanup in a `finally`
   never ran). At start nothing is being uploaded, so every directory no batch refers
   to is such a leftover.
3. Resume every reaudit task left running (cofid.plans.reaudit step 6), claiming its
   calls first, so that a batch resumed next cannot take one of them (one owner per
   call: cofid.service.reservations).
4. Resume every unfinished batch, directory and upload batches alike, each as a task
   (its own when it is still active, a new one otherwise) — except a batch whose newest
   task was cancelled (ResumeTask, or StartBatch on the same directory, resumes it), and
   a batch one of whose calls a resumed reaudit holds (its task is marked failed, naming
   the holder; ResumeTask or StartBatch resumes it once the reaudit ended).

:func:`resume_task` is ResumeTask: a cancelled task resumed as a new task (rules in
cofid.service.cancel).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import trio

from cofid.engine.plan_run import PlanRun
from cofid.service import cancel, reaudit
from cofid.service.batches import TaskRef, batch_task_body
from cofid.service.context import ServiceContext
from cofid.service.errors import CallsBusy
from cofid.service.tasks import ACTIVE, CANCELLED, FAILED, LiveTask, TaskBody, TaskRecord
from cofid.store import batches as batch_rows
from cofid.store import tasks as task_rows

log = logging.getLogger("cofid.service")


async def remove_orphan_uploads(svc: ServiceContext) -> list[str]:
    """Step 2; the names of the directories removed."""
    root = svc.app.cfg.uploads_dir
    if not root.is_dir():
        return []
    known = await svc.app.db.read(batch_rows.upload_source_dirs)
    removed = []
    for d in sorted(root.iterdir()):
        if d.is_dir() and str(d) not in known:
            await trio.to_thread.run_sync(_remove_tree, d)
            removed.append(d.name)
    if removed:
        log.warning("removed %d upload(s) left by an interrupted daemon: %s",
                    len(removed), ", ".join(removed[:10]))
    return removed


def _resume_body(svc: ServiceContext, rec: TaskRecord, directory: str | None,
                 batch_id: int) -> TaskBody:
    async def body(live: LiveTask) -> PlanRun:
        return await batch_task_body(svc, rec, live, directory=directory, batch_id=batch_id)

    return body


def _remove_tree(d: Path) -> None:
    shutil.rmtree(d, ignore_errors=True)


async def resume_reaudits(svc: ServiceContext) -> list[str]:
    """Step 3; the ids of the reaudit tasks resumed."""
    active = await svc.app.db.read(lambda c: task_rows.in_states(c, ACTIVE))
    resumed = []
    for rec in sorted(active, key=lambda r: (str(r.created_at), r.id)):
        if rec.kind != "reaudit":
            continue
        try:
            await reaudit.resume_reaudit(svc, rec)
        except Exception as e:  # noqa: BLE001 - one task's refusal must not stop the start
            log.error("reaudit task %s not resumed: %s", rec.id, e)
            await svc.tasks.update(rec.id, state=FAILED, error=f"not resumed: {e}")
            continue
        resumed.append(rec.id)
    if resumed:
        log.info("resumed %d reaudit task(s): %s", len(resumed), ", ".join(resumed))
    return resumed


async def resume_unfinished(svc: ServiceContext) -> list[int]:
    """Steps 1–4; the ids of the batches resumed."""
    counts = await svc.tasks.recover()
    await remove_orphan_uploads(svc)
    if counts["failed"] or counts["resumed"]:
        log.info("tasks after restart: %d resumed, %d marked failed (interrupted)",
                 counts["resumed"], counts["failed"])
    await resume_reaudits(svc)
    batches = await svc.app.db.read(batch_rows.unfinished)
    resumed = []
    for b in batches:
        rec = await svc.tasks.for_batch(b.id)
        if rec is not None and rec.state == CANCELLED:
            log.info("batch %d not resumed: its task %s was cancelled", b.id, rec.id)
            continue
        try:
            svc.app.reservations.check_batch(b.id)
        except CallsBusy as e:
            log.warning("batch %d not resumed: %s", b.id, e.message)
            if rec is not None and rec.state in ACTIVE:
                await svc.tasks.update(rec.id, state=FAILED, error=f"not resumed: {e.message}")
            continue
        if rec is None or rec.state not in ACTIVE:
            rec = await svc.tasks.create(
                b.source if b.source in ("batch", "upload") else "batch",
                {"resume": True, "batch_id": b.id, "directory": b.source_dir or ""},
                batch_id=b.id)
        # At start nothing else claims (the control plane is not serving yet).
        svc.app.reservations.hold_batch(b.id, rec.id, rec.kind)
        directory = b.source_dir if b.source == "batch" else None
        if directory:
            svc.starting_dirs[directory] = rec.id
        svc.runner.spawn(rec, _resume_body(svc, rec, directory, b.id))
        resumed.append(b.id)
    return resumed


async def resume_task(svc: ServiceContext, task_id: str) -> TaskRef:
    """ResumeTask (cofid.service.cancel rule 4): the new task."""
    old = await cancel.resumable(svc, task_id)
    if old.kind == "reaudit":
        req, cleaned = await reaudit.request_of(svc.app, old)
        rec = svc.tasks.new_record("reaudit", {**old.request, "resumes": old.id})
        svc.app.reservations.reserve(req, rec.id)
        try:
            await svc.tasks.add(rec)
            if cleaned:  # the new task carries the record of the calls its cleanup covered
                await svc.tasks.update(rec.id, result=reaudit.recorded(req))
        except BaseException:
            svc.app.reservations.release(req)
            raise
        reaudit.spawn(svc, rec, req, cleaned=cleaned)
        return TaskRef(task_id=rec.id, state=rec.state, batch_id=0)
    assert old.batch_id is not None
    batch_id = old.batch_id
    b = await svc.app.db.read(lambda c: batch_rows.get(c, batch_id))
    assert b is not None
    directory = b.source_dir if b.source == "batch" else None
    rec = svc.tasks.new_record(old.kind, {"resume": True, "batch_id": batch_id,
                                          "directory": b.source_dir or "",
                                          "resumes": old.id}, batch_id=batch_id)
    # Claimed as it is accepted (before the row exists: a refusal leaves no task).
    svc.app.reservations.hold_batch(batch_id, rec.id, old.kind)
    try:
        await svc.tasks.add(rec)
    except BaseException:
        svc.app.reservations.release_batch(batch_id, rec.id)
        raise
    if directory:
        svc.starting_dirs[directory] = rec.id
    svc.runner.spawn(rec, _resume_body(svc, rec, directory, batch_id))
    return TaskRef(task_id=rec.id, state=rec.state, batch_id=batch_id)
