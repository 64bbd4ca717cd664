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

Idempotency: a client may name its upload with an idempotency key (1–128 characters of
letters, digits and ``._:-``). The task id is derived from the key (:func:`task_id_for_key`,
a UUID5), so the batch, its task and the key commit in the one transaction of step 2.
:func:`replay_or_claim` runs before step 1: a key whose task exists answers with that
task's reply (task id, batch id, names) and nothing new is stored — the retry after a lost
reply gets the first result, with or without ``replace``; the same key for other files
or ids, or while the first upload with it is still streaming, is an UploadConflict.
"""

from __future__ import annotations

import string
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cofid.domain.events import Event
from cofid.domain.evidence_bundle import FileDigest
from cofid.plans import batch as bp
from cofid.plans import upload as upload_plan
from cofid.service import batches
from cofid.service.batches import batch_task_body, retry_unique
from cofid.service.context import AppContext, ServiceContext
from cofid.service.digests import digests_of
from cofid.service.errors import InvalidRequest, UnknownQuestionSet, UploadConflict
from cofid.service.tasks import LiveTask
from cofid.store import batches as batch_rows
from cofid.store.types import Connection
from cofid.store.writes import utcnow

AlsoInTransaction = Callable[[Connection, int], None]


async def prepare_upload(app: AppContext, stored: list[Path], process_id: int,
                         category_mapping_id: int, *,
                         also: AlsoInTransaction | None = None,
                         digests: Mapping[str, FileDigest] | None = None) -> int:
    """The upload plan's Steps 2–3 with `also(conn, batch_id)` (the task row) in the same
    transaction; the new batch's id. `digests` (audio name -> size and SHA-256) are the
    files' as received; without them the stored files are hashed here."""
    app.question_set_for(process_id, category_mapping_id)
    if digests is None:
        digests = await digests_of(stored)
    up = app.cfg.pipelines.upload
    pipeline = upload_plan.upload_pipeline(up.llm1, up.llm2)
    bi = upload_plan.upload_input(stored, process_id, category_mapping_id)
    created: list[int] = []

    def step(conn: Connection) -> list[Event]:
        batch_id = batch_rows.create(
            conn, batch_date=bp.business_day(app.cfg.stages.default_zone, utcnow()),
            source="upload", source_dir=str(stored[0].parent),
            process_id=process_id, category_mapping_id=category_mapping_id, pipeline=pipeline,
        )
        events = batches.distribution_step(conn, batch_id, bi, app.next_gpu, app.total_slots,
                                           file_start_events=app.cfg.stages.file_start_events,
                                           digests=digests)
        events += batches.walk_status(conn, batch_id)
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


async def release_upload(svc: ServiceContext, names: list[str], task_id: str = "") -> None:
    svc.uploading_names -= set(names)
    svc.uploading_tasks.discard(task_id)


# A fixed namespace: the same key gives the same task id on every daemon and every start.
KEY_NAMESPACE = uuid.UUID("6f1c5a52-9a43-4d2e-8a3e-2c6b8f0d4e17")
KEY_CHARS = frozenset(string.ascii_letters + string.digits + "._:-")
MAX_KEY_CHARS = 128


@dataclass(frozen=True)
class UploadReplay:
    """The reply of the upload a key named first."""

    task_id: str
    batch_id: int
    names: list[str]


def check_key(key: str) -> None:
    if not 1 <= len(key) <= MAX_KEY_CHARS or not set(key) <= KEY_CHARS:
        raise InvalidRequest(f"idempotency_key must be 1–{MAX_KEY_CHARS} characters of "
                             f"letters, digits and ._:- (got {len(key)} characters)")


def task_id_for_key(key: str) -> str:
    check_key(key)
    return str(uuid.uuid5(KEY_NAMESPACE, key))


async def replay_or_claim(svc: ServiceContext, task_id: str, request: dict[str, Any]
                          ) -> UploadReplay | None:
    """The first reply for this key's task, or None after claiming the key for this
    upload (released by release_upload); UploadConflict as the module docstring says."""
    if task_id in svc.uploading_tasks:
        raise UploadConflict("an upload with this idempotency_key is being received right "
                             "now; retry once it ended")
    rec = await svc.tasks.get(task_id)
    if rec is None:
        svc.uploading_tasks.add(task_id)
        return None
    same = all(rec.request.get(k) == request.get(k)
               for k in ("process_id", "category_mapping_id", "files"))
    if rec.kind != "upload" or not same:
        raise UploadConflict(f"idempotency_key was used for a different upload (task "
                             f"{task_id}); use a new key")
    return UploadReplay(task_id, rec.batch_id or 0,
                        [str(f["name"]) for f in rec.request.get("files", [])])


async def finish_upload(svc: ServiceContext, task_id: str, paths: list[str], process_id: int,
                        category_mapping_id: int, request: dict[str, Any],
                        digests: Mapping[str, FileDigest] | None = None) -> int:
    """Register the stored files as a batch and its task, then run it; the batch id.
    `digests`: the files' sizes and SHA-256 as received (recordingDigest)."""
    rec = svc.tasks.new_record("upload", request, task_id=task_id)

    def register(conn: Connection, batch_id: int) -> None:
        rec.batch_id = batch_id
        svc.tasks.insert(conn, rec)

    # The batch, its distribution and the task commit together: nothing half-made is
    # left if this fails or the daemon dies before the reply.
    batch_id = await prepare_upload(svc.app, [Path(p) for p in paths], process_id,
                                    category_mapping_id, also=register, digests=digests)
    svc.tasks.live[rec.id] = LiveTask()
    svc.app.reservations.hold_batch(batch_id, rec.id, "upload")  # a new batch: nobody else
    svc.runner.spawn(rec, lambda live: batch_task_body(svc, rec, live, directory=None,
                                                       batch_id=batch_id))
    return batch_id
