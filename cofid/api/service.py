"""The trio side of the control plane: the task registry and one coroutine per RPC that
starts or changes work (StartBatch, UploadAudit's reserve / finish, Reaudit, GetTask,
CancelTask). The read-only RPCs are in :mod:`cofid.api.queries`, WatchEvents' trio side
in :class:`cofid.api.events_stream.Subscriptions` (``service.events``).

A coroutine validates against the database and calls the App / plan functions; no stage
or status rule lives here. Work runs as a background task in the daemon's nursery: the
task row moves queued → running → completed | failed | cancelled (:mod:`cofid.tasks`).

Decisions:
* StartBatch on a directory that already is a batch answers ALREADY_EXISTS naming the
  batch (and its task when one is active), unless the batch is unfinished and no task
  works on it: then it is resumed by a new task.
* UploadAudit stores files under ``<uploads>/<task_id>/``; ``replace`` lets a name
  uploaded before be uploaded again as a new batch; the earlier batch's file stays where
  it is (its rows refer to it).
* A task interrupted by shutdown: a batch or upload resumes at the next start (its task
  stays running); a reaudit is marked failed (run it again).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import trio

from cofid.api import convert
from cofid.api.bridge import already_exists, invalid, not_found, precondition
from cofid.api.events_stream import Subscriptions
from cofid.domain.reaudit import ReauditRequestError
from cofid.plans import batch as bp
from cofid.plans.reaudit import CallsBusy, resolve, run_reaudit
from cofid.store import repo
from cofid.store import tables as t
from cofid.tasks import (
    ACTIVE,
    CANCELLED,
    COMPLETED,
    FAILED,
    RUNNING,
    LiveTask,
    TaskRecord,
    TaskRegistry,
    run_result,
)
from protos.cofi.v1 import cofi_pb2 as pb

log = logging.getLogger("cofid.api")

CANCELLED_BY_REQUEST = "cancelled by request"


class Service:
    """Everything the handlers need from trio; one instance per daemon run."""

    def __init__(self, app, nursery: trio.Nursery) -> None:
        self.app = app
        self.cfg = app.cfg
        self.nursery = nursery
        self.tasks = TaskRegistry(app.db)
        self.events = Subscriptions(app)
        self.starting_dirs: dict[str, str] = {}  # directory -> task id
        self.uploading_names: set[str] = set()

    # ---- background tasks ------------------------------------------------------------

    def _spawn(self, rec: TaskRecord, body) -> LiveTask:
        live = self.tasks.live.setdefault(rec.id, LiveTask())
        self.nursery.start_soon(self._run_task, rec, live, body)
        return live

    async def _run_task(self, rec: TaskRecord, live: LiveTask, body) -> None:
        run = None
        try:
            with live.scope:
                await self.tasks.update(rec.id, state=RUNNING)
                run = await body(live)
            if live.cancelled_by_user:
                await self.tasks.update(rec.id, state=CANCELLED, result=run_result(live.run),
                                        error=CANCELLED_BY_REQUEST)
            elif live.scope.cancelled_caught or (run is not None and run.draining):
                # Shutdown: a batch/upload resumes at the next start; a reaudit does not.
                if rec.kind == "reaudit":
                    await self.tasks.update(rec.id, state=FAILED, result=run_result(live.run),
                                            error="interrupted by daemon shutdown; run the "
                                                  "reaudit again")
                else:
                    await self.tasks.update(rec.id, result=run_result(live.run))
            else:
                await self.tasks.update(rec.id, state=COMPLETED, result=run_result(run))
        except Exception as e:  # noqa: BLE001 - the task fails, the daemon goes on
            log.exception("task %s (%s) failed", rec.id, rec.kind)
            await self.tasks.update(rec.id, state=FAILED, result=run_result(live.run),
                                    error=str(e) or type(e).__name__)
        finally:
            live.done.set()
            self.tasks.live.pop(rec.id, None)
            for d, tid in list(self.starting_dirs.items()):
                if tid == rec.id:
                    del self.starting_dirs[d]

    async def _batch_body(self, rec: TaskRecord, live: LiveTask, *, directory: str | None,
                          batch_id: int | None, batch_input: bp.BatchInput | None = None):
        if batch_id is None or directory is not None:
            batch_id = await self.app.prepare_batch(Path(directory), batch_input=batch_input)
            await self.tasks.update(rec.id, batch_id=batch_id)

        def on_change(run) -> None:
            live.run = run

        return await self.app.run_batch(batch_id, on_change=on_change)

    async def remove_orphan_uploads(self) -> list[str]:
        """An upload killed before its batch committed leaves its directory under the
        uploads root (the cleanup in a `finally` never ran). At start nothing is being
        uploaded, so every directory no batch refers to is such a leftover."""
        import shutil

        import sqlalchemy as sa

        from cofid.store import tables as t

        root = self.app.cfg.uploads_dir
        if not root.is_dir():
            return []
        known = set(await self.app.db.read(lambda c: c.execute(
            sa.select(t.batch_status.c.sourceDir).where(t.batch_status.c.source == "upload")
        ).scalars().all()))
        removed = []
        for d in sorted(root.iterdir()):
            if d.is_dir() and str(d) not in known:
                await trio.to_thread.run_sync(lambda d=d: shutil.rmtree(d, ignore_errors=True))
                removed.append(d.name)
        if removed:
            log.warning("removed %d upload(s) left by an interrupted daemon: %s",
                        len(removed), ", ".join(removed[:10]))
        return removed

    async def resume_unfinished(self) -> list[int]:
        """Restart: apply the task rule, drop what killed uploads left, then resume every
        unfinished batch."""
        counts = await self.tasks.recover()
        await self.remove_orphan_uploads()
        if counts["failed"] or counts["resumed"]:
            log.info("tasks after restart: %d resumed, %d marked failed (interrupted)",
                     counts["resumed"], counts["failed"])
        rows = await self.app.db.read(repo.unfinished_batches)
        resumed = []
        for row in rows:
            rec = await self.tasks.for_batch(row.id)
            if rec is not None and rec.state == CANCELLED:
                log.info("batch %d not resumed: its task %s was cancelled", row.id, rec.id)
                continue
            if rec is None or rec.state not in ACTIVE:
                rec = await self.tasks.create(
                    row.source if row.source in ("batch", "upload") else "batch",
                    {"resume": True, "batch_id": row.id, "directory": row.sourceDir or ""},
                    batch_id=row.id)
            directory = row.sourceDir if row.source == "batch" else None
            if directory:
                self.starting_dirs[directory] = rec.id
            self._spawn(rec, lambda live, rec=rec, row=row, directory=directory:
                        self._batch_body(rec, live, directory=directory, batch_id=row.id))
            resumed.append(row.id)
        return resumed

    # ---- StartBatch ------------------------------------------------------------------

    async def start_batch(self, directory: str, pid: int | None, cmid: int | None) -> pb.TaskRef:
        if directory in self.starting_dirs:
            tid = self.starting_dirs[directory]
            raise already_exists(f"{directory}: a batch for this directory is already queued "
                                 f"or running (task_id {tid})")
        existing = await self.app.db.read(lambda c: repo.batch_by_source(c, directory))
        if existing is not None and existing.status == "Completed":
            raise already_exists(f"{directory}: already processed as batch_id {existing.id} "
                                 f"(status Completed)")
        if existing is not None and existing.id in self.app.busy_batches:
            raise already_exists(f"{directory}: batch_id {existing.id} is running")
        try:
            batch_input = await self.app.read_batch(Path(directory), pid, cmid)
        except bp.UnknownQuestionSet as e:
            raise invalid(str(e)) from None
        except bp.BatchInputError as e:
            raise precondition(str(e)) from None
        if directory in self.starting_dirs:  # raced while reading the directory
            raise already_exists(f"{directory}: a batch for this directory is already queued "
                                 f"(task_id {self.starting_dirs[directory]})")
        request = {"directory": directory, "process_id": pid, "category_mapping_id": cmid}
        rec = await self.tasks.create("batch", request,
                                      batch_id=existing.id if existing is not None else None)
        self.starting_dirs[directory] = rec.id
        self._spawn(rec, lambda live: self._batch_body(rec, live, directory=directory,
                                                        batch_id=None, batch_input=batch_input))
        return pb.TaskRef(task_id=rec.id, state=rec.state, batch_id=rec.batch_id or 0)

    # ---- UploadAudit -----------------------------------------------------------------

    async def reserve_upload(self, names: list[str], replace: bool, pid: int, cmid: int) -> None:
        if (pid, cmid) not in self.app.known_question_sets():
            raise invalid(f"no audit question set for process_id={pid}, "
                          f"category_mapping_id={cmid}")
        if not replace:
            busy = sorted(set(names) & self.uploading_names)
            if busy:
                raise already_exists(f"being uploaded right now: {', '.join(busy[:20])}")

            def q(conn):
                c, bs = t.call, t.batch_status
                out: set[str] = set()
                for i in range(0, len(names), 500):
                    out |= set(conn.execute(
                        sa.select(c.c.audioName).select_from(c.join(bs, bs.c.id == c.c.batchId))
                        .where(bs.c.source == "upload", c.c.audioName.in_(names[i:i + 500])))
                        .scalars())
                return out

            done = sorted(await self.app.db.read(q))
            if done:
                raise already_exists(
                    f"uploaded before: {', '.join(done[:20])}"
                    + (f" and {len(done) - 20} more" if len(done) > 20 else "")
                    + " (set replace to upload them again)")
        self.uploading_names |= set(names)

    async def release_upload(self, names: list[str]) -> None:
        self.uploading_names -= set(names)

    async def finish_upload(self, task_id: str, paths: list[str], pid: int, cmid: int,
                            request: dict[str, Any]) -> int:
        rec = self.tasks.new_record("upload", request, task_id=task_id)

        def register(conn, batch_id: int) -> None:
            rec.batch_id = batch_id
            self.tasks.insert(conn, rec)

        # The batch, its distribution and the task commit together: nothing half-made is
        # left if this fails or the daemon dies before the reply.
        batch_id = await self.app.prepare_upload([Path(p) for p in paths], pid, cmid,
                                                 also=register)
        self.tasks.live[rec.id] = LiveTask()
        self._spawn(rec, lambda live: self._batch_body(rec, live, directory=None,
                                                        batch_id=batch_id))
        return batch_id

    # ---- Reaudit ---------------------------------------------------------------------

    async def reaudit(self, names: list[str], stages: list[str]) -> pb.ReauditReply:
        try:
            req = await resolve(self.app, names, stages)
        except ReauditRequestError as e:
            raise invalid(str(e)) from None
        if not req.call_ids:
            raise not_found("no call matches any of the audio names: "
                            + ", ".join(req.unknown[:20])
                            + (f" and {len(req.unknown) - 20} more" if len(req.unknown) > 20
                               else ""))
        try:
            self.app.reserve_calls(req)
        except CallsBusy as e:
            raise precondition(str(e)) from None
        try:
            rec = await self.tasks.create(
                "reaudit", {"audio_names": req.names, "stages": [str(s) for s in req.plan.stages]})
        except BaseException:
            self.app.release_calls(req)
            raise

        async def body(live: LiveTask):
            def on_start(run) -> None:
                live.run = run

            try:
                return await run_reaudit(self.app, req, task_id=rec.id, on_start=on_start)
            finally:
                self.app.release_calls(req)

        self._spawn(rec, body)
        return pb.ReauditReply(task_id=rec.id, unknown_audio_names=req.unknown,
                               matched_calls=len(req.call_ids))

    # ---- tasks -----------------------------------------------------------------------

    async def get_task(self, task_id: str) -> pb.Task:
        rec = await self.tasks.get(task_id)
        if rec is None:
            raise not_found(f"no task {task_id}")
        return self._task_message(rec)

    def _task_message(self, rec: TaskRecord) -> pb.Task:
        live = self.tasks.live.get(rec.id)
        run = None
        if live is not None:
            run = live.run or (self.app.runs.get(rec.batch_id) if rec.batch_id else None)
        if rec.state in ACTIVE and run is not None:
            res = run_result(run)
        else:
            res = rec.result or {"stages": [], "failures": []}
        return convert.task(rec, res.get("stages", []), res.get("failures", []))

    async def cancel_task(self, task_id: str) -> pb.Task:
        rec = await self.tasks.get(task_id)
        if rec is None:
            raise not_found(f"no task {task_id}")
        if rec.state in (COMPLETED, FAILED):
            raise precondition(f"task {task_id} already {rec.state}; nothing to cancel")
        if rec.state == CANCELLED:
            return self._task_message(rec)
        live = self.tasks.live.get(task_id)
        if live is not None:
            live.cancelled_by_user = True
            live.scope.cancel()
            await live.done.wait()
        else:
            await self.tasks.update(task_id, state=CANCELLED, error=CANCELLED_BY_REQUEST)
        rec = await self.tasks.get(task_id)
        return self._task_message(rec)

    # ---- WatchEvents -----------------------------------------------------------------

    @property
    def subs(self) -> dict[int, Any]:
        """The open WatchEvents subscriptions."""
        return self.events.subs

    def close_subscriptions(self) -> None:
        self.events.close()
