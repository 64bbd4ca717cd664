"""What the daemon does at start: finish what the last run left.

1. Apply the task restart rule (cofid.service.tasks).
2. Remove the directories that killed uploads left: an upload killed before its batch
   committed leaves its directory under the uploads root (the cleanup in a `finally`
   never ran). At start nothing is being uploaded, so every directory no batch refers
   to is such a leftover.
3. Resume every unfinished batch, directory and upload batches alike, each as a task
   (its own when it is still active, a new one otherwise) — except a batch whose newest
   task was cancelled (StartBatch on the same directory resumes it).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import trio

from cofid.engine.plan_run import PlanRun
from cofid.service.batches import batch_task_body
from cofid.service.context import ServiceContext
from cofid.service.tasks import ACTIVE, CANCELLED, LiveTask, TaskBody, TaskRecord
from cofid.store import batches as batch_rows

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


async def resume_unfinished(svc: ServiceContext) -> list[int]:
    """Steps 1–3; the ids of the batches resumed."""
    counts = await svc.tasks.recover()
    await remove_orphan_uploads(svc)
    if counts["failed"] or counts["resumed"]:
        log.info("tasks after restart: %d resumed, %d marked failed (interrupted)",
                 counts["resumed"], counts["failed"])
    batches = await svc.app.db.read(batch_rows.unfinished)
    resumed = []
    for b in batches:
        rec = await svc.tasks.for_batch(b.id)
        if rec is not None and rec.state == CANCELLED:
            log.info("batch %d not resumed: its task %s was cancelled", b.id, rec.id)
            continue
        if rec is None or rec.state not in ACTIVE:
            rec = await svc.tasks.create(
                b.source if b.source in ("batch", "upload") else "batch",
                {"resume": True, "batch_id": b.id, "directory": b.source_dir or ""},
                batch_id=b.id)
        directory = b.source_dir if b.source == "batch" else None
        if directory:
            svc.starting_dirs[directory] = rec.id
        svc.runner.spawn(rec, _resume_body(svc, rec, directory, b.id))
        resumed.append(b.id)
    return resumed
