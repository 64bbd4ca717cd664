"""The upload use case: files a client sent become a batch of the seed's upload pipeline.

The transport stores the files (cofid.api.uploads checks names, sizes and audio); the
application decides:

1. :func:`reserve_upload` — the question set exists (UnknownQuestionSet), no name is
   being uploaded right now (UploadConflict), none was uploaded before unless
   ``replace`` (UploadConflict naming them). The names stay reserved until
   :func:`release_upload`, whatever happens in between.
2. :func:`finish_upload` — Steps 2–3 of the upload plan (:func:`prepare_upload`): a new
   batch for today (next number, race-free) and its distribution, in ONE transaction
   with the task row: a crash leaves the upload either fully registered or not at all.
   No CSVs, triaging, denoise or IVR. Then the batch runs as the task.

``replace`` lets a name uploaded before be uploaded again as a new batch; the earlier
batch's file stays where it is (its rows refer to it).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from cofid.domain.events import Event
from cofid.plans import batch as bp
from cofid.plans import upload as upload_plan
from cofid.service import batches
from cofid.service.batches import batch_task_body, retry_unique
from cofid.service.context import AppContext, ServiceContext
from cofid.service.errors import UnknownQuestionSet, UploadConflict
from cofid.service.tasks import LiveTask
from cofid.store import batches as batch_rows
from cofid.store.types import Connection

AlsoInTransaction = Callable[[Connection, int], None]


async def prepare_upload(app: AppContext, stored: list[Path], process_id: int,
                         category_mapping_id: int, *,
                         also: AlsoInTransaction | None = None) -> int:
    """The upload plan's Steps 2–3 with `also(conn, batch_id)` (the task row) in the same
    transaction; the new batch's id."""
    app.question_set_for(process_id, category_mapping_id)
    up = app.cfg.pipelines.upload
    pipeline = upload_plan.upload_pipeline(up.llm1, up.llm2)
    bi = upload_plan.upload_input(stored, process_id, category_mapping_id)
    created: list[int] = []

    def step(conn: Connection) -> list[Event]:
        batch_id = batch_rows.create(
            conn, batch_date=bp.today(), source="upload", source_dir=str(stored[0].parent),
            process_id=process_id, category_mapping_id=category_mapping_id, pipeline=pipeline,
        )
        events = batches.distribution_step(conn, batch_id, bi, app.next_gpu, app.total_slots)
        if also is not None:
            also(conn, batch_id)
        created[:] = [batch_id]
        return events

    await retry_unique(lambda: app.writer.run_step(step))
    return created[0]


async def reserve_upload(svc: ServiceContext, names: list[str], replace: bool, process_id: int,
                         category_mapping_id: int) -> None:
    if (process_id, category_mapping_id) not in svc.app.known_question_sets():
        raise UnknownQuestionSet(f"no audit question set for process_id={process_id}, "
                                 f"category_mapping_id={category_mapping_id}")
    if not replace:
        busy = sorted(set(names) & svc.uploading_names)
        if busy:
            raise UploadConflict(f"being uploaded right now: {', '.join(busy[:20])}")
        done = sorted(await svc.app.db.read(lambda c: batch_rows.uploaded_names(c, names)))
        if done:
            raise UploadConflict(
                f"uploaded before: {', '.join(done[:20])}"
                + (f" and {len(done) - 20} more" if len(done) > 20 else "")
                + " (set replace to upload them again)")
    svc.uploading_names |= set(names)


async def release_upload(svc: ServiceContext, names: list[str]) -> None:
    svc.uploading_names -= set(names)


async def finish_upload(svc: ServiceContext, task_id: str, paths: list[str], process_id: int,
                        category_mapping_id: int, request: dict[str, Any]) -> int:
    """Register the stored files as a batch and its task, then run it; the batch id."""
    rec = svc.tasks.new_record("upload", request, task_id=task_id)

    def register(conn: Connection, batch_id: int) -> None:
        rec.batch_id = batch_id
        svc.tasks.insert(conn, rec)

    # The batch, its distribution and the task commit together: nothing half-made is
    # left if this fails or the daemon dies before the reply.
    batch_id = await prepare_upload(svc.app, [Path(p) for p in paths], process_id,
                                    category_mapping_id, also=register)
    svc.tasks.live[rec.id] = LiveTask()
    svc.runner.spawn(rec, lambda live: batch_task_body(svc, rec, live, directory=None,
                                                       batch_id=batch_id))
    return batch_id
