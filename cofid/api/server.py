"""The gRPC control plane: the cofi.v1.Cofi servicer and the server's lifecycle.

Two halves:

* :class:`Service` lives in trio. It owns the task registry and the nursery background
  tasks run in, and offers one coroutine per RPC that validates against the database and
  calls the App / plan functions (no stage or status rule lives here).
* :class:`CofiServicer` runs in grpcio's handler threads. A handler validates the message,
  calls the matching Service coroutine through :class:`~cofid.api.bridge.TrioBridge`
  (``trio.from_thread.run`` with the run's token: the trio loop is never blocked) and
  translates the result with :mod:`cofid.api.convert`. Errors are raised as ApiError and
  become ``context.abort(code, message)``.

:class:`ControlPlane` builds the grpc.server (thread pool, maximum_concurrent_rpcs,
AuthInterceptor, grpc.health.v1, reflection), binds the listen addresses (unix sockets,
TCP, TLS) and stops it in the documented order.

Decisions:
* StartBatch on a directory that already is a batch answers ALREADY_EXISTS naming the
  batch (and its task when one is active), unless the batch is unfinished and no task
  works on it: then it is resumed by a new task.
* UploadAudit stores files under ``<uploads>/<task_id>/``; names are checked, never
  rewritten (a bad name is INVALID_ARGUMENT). ``replace`` lets a name uploaded before
  be uploaded again as a new batch; the earlier batch's file stays where it is (its rows
  refer to it).
* WatchEvents allows ``max_workers - 4`` concurrent streams (each holds a pool thread);
  more get RESOURCE_EXHAUSTED, so unary RPCs always find a thread.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import ipaddress
import json
import logging
import os
import shutil
import threading
import time
import unicodedata
from concurrent import futures
from datetime import date
from pathlib import Path
from typing import Any

import grpc
import soundfile as sf
import sqlalchemy as sa
import trio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from cofid.api import convert
from cofid.api.auth import AuthInterceptor, TokenTable
from cofid.api.bridge import (
    ApiError,
    TrioBridge,
    already_exists,
    exhausted,
    invalid,
    not_found,
    precondition,
    rpc,
    rpc_stream,
)
from cofid.domain.model import PIPELINE_ORDER, Stage
from cofid.domain.pipeline import FLAG_COLUMN, FLAG_STATUS_COLUMN, STATUS_COLUMN
from cofid.domain.reaudit import ReauditRequestError
from cofid.engine.bus import EventFilter, replay
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
from protos.cofi.v1 import cofi_pb2_grpc as pb_grpc

log = logging.getLogger("cofid.api")

MAX_CHUNK = 1024 * 1024
DEFAULT_PAGE, MAX_PAGE = 50, 500
EVENT_STAGES = frozenset({s.value for s in Stage} | {"reaudit", "pipeline"})
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Cofi"].full_name


# ---------------------------------------------------------------------------------------
# The trio side


class Service:
    """Everything the handlers need from trio; one instance per daemon run."""

    def __init__(self, app, nursery: trio.Nursery) -> None:
        self.app = app
        self.cfg = app.cfg
        self.nursery = nursery
        self.tasks = TaskRegistry(app.db)
        self.subs: dict[int, Any] = {}  # id(subscription) -> subscription
        self.closing = False
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
                                        error=live_error(live))
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
                          batch_id: int | None, pid: int | None = None,
                          cmid: int | None = None):
        if batch_id is None or directory is not None:
            batch_id = await self.app.prepare_batch(Path(directory), pid, cmid)
            await self.tasks.update(rec.id, batch_id=batch_id)

        def on_change() -> None:
            if live.run is None:
                live.run = self.app.runs.get(batch_id)

        run_task = self.app.run_batch(batch_id, on_change=on_change)
        return await run_task

    async def resume_unfinished(self) -> list[int]:
        """Restart: apply the task rule, then resume every unfinished batch."""
        counts = await self.tasks.recover()
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
        cfg = self.cfg
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
        known = self.app.known_question_sets()
        try:
            await trio.to_thread.run_sync(lambda: bp.read_batch_dir(
                Path(directory), default_zone=cfg.stages.default_zone,
                process_id=pid or cfg.audit.default_process_id,
                category_mapping_id=cmid or cfg.audit.default_category_mapping_id,
                known_sets=known))
        except bp.BatchInputError as e:
            if "no audit question set" in str(e):
                raise invalid(str(e)) from None
            raise precondition(str(e)) from None
        if directory in self.starting_dirs:  # raced while reading the directory
            raise already_exists(f"{directory}: a batch for this directory is already queued "
                                 f"(task_id {self.starting_dirs[directory]})")
        request = {"directory": directory, "process_id": pid, "category_mapping_id": cmid}
        rec = await self.tasks.create("batch", request,
                                      batch_id=existing.id if existing is not None else None)
        self.starting_dirs[directory] = rec.id
        self._spawn(rec, lambda live: self._batch_body(rec, live, directory=directory,
                                                        batch_id=None, pid=pid, cmid=cmid))
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
        rec = await self.tasks.create("upload", request, task_id=task_id)
        try:
            batch_id = await self.app.prepare_upload([Path(p) for p in paths], pid, cmid)
        except BaseException as e:
            with trio.CancelScope(shield=True):
                self.tasks.live.pop(rec.id, None)
                await self.tasks.update(rec.id, state=FAILED, error=str(e) or type(e).__name__)
            raise
        rec.batch_id = batch_id
        await self.tasks.update(rec.id, batch_id=batch_id)
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
            await self.tasks.update(task_id, state=CANCELLED, error="cancelled by request")
        rec = await self.tasks.get(task_id)
        return self._task_message(rec)

    # ---- batches and calls -------------------------------------------------------------

    async def list_batches(self, date_from: date | None, date_to: date | None, size: int,
                           after: tuple[date, int] | None) -> tuple[list, bool]:
        bs = t.batch_status

        def q(conn):
            stmt = sa.select(bs)
            if date_from is not None:
                stmt = stmt.where(bs.c.batchDate >= date_from)
            if date_to is not None:
                stmt = stmt.where(bs.c.batchDate <= date_to)
            if after is not None:
                d, n = after
                stmt = stmt.where(sa.or_(bs.c.batchDate < d,
                                         sa.and_(bs.c.batchDate == d, bs.c.batchNumber < n)))
            stmt = stmt.order_by(bs.c.batchDate.desc(), bs.c.batchNumber.desc()).limit(size + 1)
            return list(conn.execute(stmt))

        rows = await self.app.db.read(q)
        return rows[:size], len(rows) > size

    async def get_batch(self, batch_id: int) -> pb.Batch:
        fd, c = t.file_distribution, t.call

        def q(conn):
            row = repo.get_batch(conn, batch_id)
            if row is None:
                return None
            flags = conn.execute(sa.select(
                sa.func.count(),
                *[sa.func.coalesce(sa.func.sum(fd.c[col]), 0) for col in FLAG_COLUMN.values()],
            ).where(fd.c.batchId == batch_id)).one()
            failed = dict(conn.execute(
                sa.select(fd.c.failedStage, sa.func.count()).where(
                    fd.c.batchId == batch_id, fd.c.failedStage.is_not(None))
                .group_by(fd.c.failedStage)).all())
            calls = dict(conn.execute(
                sa.select(c.c.status, sa.func.count()).where(c.c.batchId == batch_id)
                .group_by(c.c.status)).all())
            return row, flags, failed, calls

        got = await self.app.db.read(q)
        if got is None:
            raise not_found(f"no batch {batch_id}")
        row, flags, failed, calls = got
        m = row._mapping
        enabled = set(bp.enabled_stages(row.pipeline or {}))
        done_of = dict(zip(FLAG_COLUMN, list(flags)[1:], strict=True))
        total = int(m["totalFiles"])
        run = self.app.runs.get(batch_id)
        now = time.monotonic()
        msg = pb.Batch(summary=convert.batch_summary(row), process_id=m["processId"],
                       category_mapping_id=m["categoryMappingId"],
                       source_dir=(m["sourceDir"] or "") if m["source"] == "batch" else "")
        for stage in PIPELINE_ORDER:
            if stage not in enabled:
                msg.stages.append(pb.StageState(stage=stage.value, status="Complete"))
                continue
            if stage in FLAG_STATUS_COLUMN:
                status = "Complete" if m[FLAG_STATUS_COLUMN[stage]] else "Pending"
            else:
                status = str(m[STATUS_COLUMN[stage]])
            st = pb.StageState(stage=stage.value, status=status, total=total)
            if run is not None and stage in run.counters:
                cnt = run.counters[stage]
                st.status = str(cnt.status) if status != "Complete" else status
                st.done, st.failed, st.skipped = cnt.done, cnt.failed, cnt.skipped
                st.files_per_minute = cnt.rate_per_minute(now) if cnt.finished_at is None else 0.0
            elif stage in FLAG_COLUMN:
                st.done = int(done_of[stage])
                st.failed = int(failed.get(stage.value, 0))
                if status == "Complete":
                    st.skipped = max(0, total - st.done - st.failed)
            elif status == "Complete":
                st.done = total
            msg.stages.append(st)
        for k, v in calls.items():
            msg.call_status_counts[k] = int(v)
        return msg

    async def get_call(self, audio_name: str, batch_id: int) -> pb.Call:
        c, fd, tam, tm = t.call, t.file_distribution, t.trade_audio_mapping, t.trade_metadata

        def q(conn):
            stmt = sa.select(c).where(c.c.audioName == audio_name)
            if batch_id:
                stmt = stmt.where(c.c.batchId == batch_id)
            row = conn.execute(stmt.order_by(c.c.batchId.desc()).limit(1)).first()
            if row is None:
                return None
            f = conn.execute(sa.select(fd).where(fd.c.batchId == row.batchId,
                                                 fd.c.file == audio_name)).first()
            tr = list(conn.execute(sa.select(t.transcript).where(t.transcript.c.callId == row.id)
                                   .order_by(t.transcript.c.segmentIndex)))
            cc = list(conn.execute(sa.select(t.call_conversation)
                                   .where(t.call_conversation.c.callId == row.id)
                                   .order_by(t.call_conversation.c.tradeIndex)))
            mapped = list(conn.execute(
                sa.select(tm).select_from(tam.join(tm, sa.and_(tm.c.batchId == tam.c.batchId,
                                                               tm.c.tradeId == tam.c.tradeId)))
                .where(tam.c.batchId == row.batchId, tam.c.audioName == audio_name)
                .order_by(tm.c.tradeTime, tm.c.tradeId)))
            ans = list(conn.execute(sa.select(t.audit_answer)
                                    .where(t.audit_answer.c.callId == row.id)
                                    .order_by(t.audit_answer.c.questionOrder)))
            return row, f, tr, cc, mapped, ans

        got = await self.app.db.read(q)
        if got is None:
            where = f" in batch {batch_id}" if batch_id else ""
            raise not_found(f"no call {audio_name!r}{where}")
        row, f, tr, cc, mapped, ans = got
        return convert.call(row, fd=f, transcript=tr, conversations=cc, mapped=mapped,
                            answers=ans)

    def list_gpus(self) -> pb.ListGpusReply:
        urls = {g.name: g.url for g in self.cfg.gpus}
        return pb.ListGpusReply(gpus=[convert.gpu_state(g, urls.get(g.name, ""))
                                      for g in self.app.pool.gpus])

    # ---- WatchEvents -----------------------------------------------------------------

    async def subscribe(self, flt: EventFilter):
        if self.closing:
            raise ApiError(grpc.StatusCode.UNAVAILABLE, "cofid is shutting down")
        limit = max(1, self.cfg.grpc.max_workers - 4)
        if len(self.subs) >= limit:
            raise exhausted(f"too many event subscribers ({limit}); try again later")
        sub = self.app.bus.subscribe(flt, self.cfg.grpc.subscriber_buffer)
        self.subs[id(sub)] = sub
        return sub, self.app.bus.last_id

    def unsubscribe(self, sub) -> None:
        self.subs.pop(id(sub), None)
        self.app.bus.unsubscribe(sub)

    async def oldest_event_id(self) -> int:
        return await self.app.db.read(lambda c: c.execute(
            sa.select(sa.func.min(t.batch_execution_log.c.id))).scalar() or 0)

    async def replay_page(self, flt: EventFilter, after: int, upto: int) -> list:
        return await replay(self.app.db, flt, after, upto, limit=2000)

    async def next_events(self, sub, timeout: float) -> tuple[str, list, int]:
        if sub.fell_behind:
            return "fell_behind", [], self.app.bus.last_id
        if self.closing:
            return "shutting_down", [], self.app.bus.last_id
        with trio.move_on_after(timeout):
            try:
                first = await sub.receive.receive()
            except (trio.EndOfChannel, trio.ClosedResourceError):
                why = ("fell_behind" if sub.fell_behind else
                       "shutting_down" if self.closing else "closed")
                return why, [], self.app.bus.last_id
            out = [first]
            while len(out) < 500:
                try:
                    out.append(sub.receive.receive_nowait())
                except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                    break
            return "events", out, self.app.bus.last_id
        return "timeout", [], self.app.bus.last_id

    def close_subscriptions(self) -> None:
        self.closing = True
        for sub in list(self.subs.values()):
            self.unsubscribe(sub)


def live_error(live: LiveTask) -> str:
    return "cancelled by request"


# ---------------------------------------------------------------------------------------
# Validation helpers (pure)


def _check_name(name: str, seen: set[str]) -> None:
    if not name:
        raise invalid("empty file name")
    if "/" in name or "\\" in name or "\x00" in name:
        raise invalid(f"file name {name!r} contains a path separator")
    if name in (".", "..") or ".." in name:
        raise invalid(f"file name {name!r} contains '..'")
    if name.startswith("."):
        raise invalid(f"file name {name!r} is hidden (starts with '.')")
    if len(name.encode("utf-8")) > 255:
        raise invalid(f"file name {name[:40]!r}… is longer than 255 bytes")
    for ch in name:
        if ch.isascii():
            if not (ch.isalnum() or ch in "._ -"):
                raise invalid(f"file name {name!r} contains {ch!r} (allowed: letters, digits, "
                              f"'.', '_', '-', space)")
        elif unicodedata.category(ch)[0] not in ("L", "M", "N"):
            raise invalid(f"file name {name!r} contains {ch!r} (allowed: letters, digits, "
                          f"'.', '_', '-', space)")
    if Path(name).suffix.lower() not in bp.AUDIO_SUFFIXES:
        raise invalid(f"file name {name!r} has no audio extension "
                      f"({', '.join(bp.AUDIO_SUFFIXES)})")
    if name in seen:
        raise invalid(f"file name {name!r} given twice")
    seen.add(name)


def _parse_date(value: str, what: str) -> date:
    try:
        if len(value) != 10:
            raise ValueError
        return date.fromisoformat(value)
    except ValueError:
        raise invalid(f"{what} {value!r} is not a date (YYYY-MM-DD)") from None


def _filter_key(date_from: str | None, date_to: str | None, size: int) -> str:
    return hashlib.sha256(f"{date_from}|{date_to}|{size}".encode()).hexdigest()[:12]


def _page_token(last, key: str) -> str:
    raw = json.dumps({"d": last.batchDate.isoformat(), "n": last.batchNumber, "f": key})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _read_page_token(token: str, key: str) -> tuple[date, int]:
    try:
        raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if raw["f"] != key:
            raise ValueError
        return date.fromisoformat(raw["d"]), int(raw["n"])
    except (ValueError, KeyError, TypeError):
        raise invalid("page_token was not issued by this server for these filters") from None


def _opt(msg, name: str) -> Any:
    return getattr(msg, name) if msg.HasField(name) else None


class _IdleWatch:
    """Cancels an upload whose client sends nothing for `timeout` seconds."""

    def __init__(self, context: grpc.ServicerContext, timeout: float) -> None:
        self.context, self.timeout = context, timeout
        self.last = time.monotonic()
        self.stopped = threading.Event()
        self.fired = False
        threading.Thread(target=self._run, daemon=True, name="cofid-upload-idle").start()

    def _run(self) -> None:
        while not self.stopped.wait(min(1.0, self.timeout / 4)):
            if time.monotonic() - self.last > self.timeout:
                self.fired = True
                log.warning("upload idle for %.0f s: cancelled", self.timeout)
                self.context.cancel()
                return

    def touch(self) -> None:
        self.last = time.monotonic()

    def stop(self) -> None:
        self.stopped.set()


# ---------------------------------------------------------------------------------------
# The grpc side


class CofiServicer(pb_grpc.CofiServicer):
    def __init__(self, service: Service, bridge: TrioBridge) -> None:
        self.s = service
        self.b = bridge
        self.cfg = service.cfg

    @rpc
    def StartBatch(self, request, context):
        d = request.directory
        if not d:
            raise invalid("directory is empty")
        if not os.path.isabs(d):
            raise invalid(f"directory {d!r} is not absolute")
        if os.path.normpath(d) != d:
            raise invalid(f"directory {d!r} is not normalised (expected {os.path.normpath(d)!r})")
        roots = [os.path.normpath(r) for r in self.cfg.watch.roots]
        if roots and not any(d == r or d.startswith(r.rstrip("/") + "/") for r in roots):
            raise invalid(f"directory {d!r} is outside the batch roots ({', '.join(roots)})")
        pid, cmid = _opt(request, "process_id"), _opt(request, "category_mapping_id")
        for name, v in (("process_id", pid), ("category_mapping_id", cmid)):
            if v is not None and v <= 0:
                raise invalid(f"{name} must be > 0, got {v}")
        if not os.path.exists(d):
            raise not_found(f"{d}: no such directory")
        if not os.path.isdir(d):
            raise not_found(f"{d}: not a directory")
        return self.b.run(self.s.start_batch, d, pid, cmid)

    @rpc
    def UploadAudit(self, request_iterator, context):
        g = self.cfg.grpc
        idle = _IdleWatch(context, g.upload_idle_timeout_s)
        reserved: list[str] = []
        task_dir: Path | None = None
        try:
            first = next(request_iterator, None)
            idle.touch()
            if first is None or first.WhichOneof("msg") != "header":
                raise invalid("the first message must be a header")
            h = first.header
            if not h.files:
                raise invalid("the header lists no files")
            if len(h.files) > g.max_upload_files:
                raise exhausted(f"{len(h.files)} files in one upload; the limit is "
                                f"{g.max_upload_files}")
            seen: set[str] = set()
            total = 0
            for f in h.files:
                _check_name(f.name, seen)
                if f.size_bytes < 0:
                    raise invalid(f"{f.name}: size_bytes must be ≥ 0")
                if f.size_bytes > g.max_file_bytes:
                    raise exhausted(f"{f.name}: {f.size_bytes} bytes is over the per-file limit "
                                    f"of {g.max_file_bytes}")
                if f.HasField("sha256") and (
                        len(f.sha256) != 64 or any(c not in "0123456789abcdefABCDEF"
                                                   for c in f.sha256)):
                    raise invalid(f"{f.name}: sha256 is not 64 hex digits")
                total += f.size_bytes
            if total > g.max_upload_bytes:
                raise exhausted(f"upload of {total} bytes is over the limit of "
                                f"{g.max_upload_bytes}")
            pid = _opt(h, "process_id") or self.cfg.audit.default_process_id
            cmid = _opt(h, "category_mapping_id") or self.cfg.audit.default_category_mapping_id
            names = [f.name for f in h.files]
            uploads = self.cfg.uploads_dir
            uploads.mkdir(parents=True, exist_ok=True)
            free = shutil.disk_usage(uploads).free
            if total > free:
                raise exhausted(f"upload storage is full ({free} bytes free, {total} needed)")
            self.b.run(self.s.reserve_upload, names, h.replace, pid, cmid)
            reserved = names
            import uuid

            task_id = str(uuid.uuid4())
            task_dir = uploads / task_id
            task_dir.mkdir()
            parts = [task_dir / f".{i}.part" for i in range(len(names))]
            handles = [open(p, "wb") for p in parts]  # noqa: SIM115 - closed in finally
            received = [0] * len(names)
            digests = [hashlib.sha256() for _ in names]
            try:
                for msg in request_iterator:
                    idle.touch()
                    if msg.WhichOneof("msg") != "chunk":
                        raise invalid("a second header (only chunks may follow the header)")
                    ch = msg.chunk
                    i = ch.file_index
                    if i >= len(names):
                        raise invalid(f"chunk for unknown file_index {i} "
                                      f"({len(names)} files in the header)")
                    if len(ch.data) > MAX_CHUNK:
                        raise invalid(f"{names[i]}: chunk of {len(ch.data)} bytes is over 1 MiB")
                    if ch.offset != received[i]:
                        raise invalid(f"{names[i]}: chunk offset {ch.offset} does not continue "
                                      f"the file (expected {received[i]})")
                    if received[i] + len(ch.data) > h.files[i].size_bytes:
                        raise invalid(f"{names[i]}: more bytes than size_bytes "
                                      f"({h.files[i].size_bytes})")
                    handles[i].write(ch.data)
                    digests[i].update(ch.data)
                    received[i] += len(ch.data)
            finally:
                for fh in handles:
                    fh.close()
            if not context.is_active():
                raise ApiError(grpc.StatusCode.CANCELLED, "the client went away")
            for i, f in enumerate(h.files):
                if received[i] != f.size_bytes:
                    raise invalid(f"{f.name}: received {received[i]} bytes, size_bytes says "
                                  f"{f.size_bytes} (stream ended early?)")
                if f.HasField("sha256") and digests[i].hexdigest() != f.sha256.lower():
                    raise invalid(f"{f.name}: sha256 mismatch (received "
                                  f"{digests[i].hexdigest()})")
                try:
                    sf.info(str(parts[i]))
                except Exception as e:  # noqa: BLE001 - libsndfile's error, for the client
                    raise invalid(f"{f.name}: not decodable audio ({e})") from None
            final = [task_dir / n for n in names]
            for p, q in zip(parts, final, strict=True):
                os.replace(p, q)
            request = {"process_id": pid, "category_mapping_id": cmid, "replace": h.replace,
                       "files": [{"name": f.name, "size_bytes": f.size_bytes} for f in h.files]}
            batch_id = self.b.run(self.s.finish_upload, task_id, [str(p) for p in final],
                                  pid, cmid, request)
            task_dir = None  # kept
            return pb.UploadReply(status="queued", task_id=task_id, batch_id=batch_id,
                                  stored_names=names)
        except grpc.RpcError:
            raise ApiError(grpc.StatusCode.CANCELLED, "the client went away") from None
        finally:
            idle.stop()
            if task_dir is not None:
                shutil.rmtree(task_dir, ignore_errors=True)
            if reserved:
                with contextlib.suppress(ApiError):
                    self.b.run(self.s.release_upload, reserved)

    @rpc
    def Reaudit(self, request, context):
        return self.b.run(self.s.reaudit, list(request.audio_names), list(request.stages))

    @rpc
    def GetTask(self, request, context):
        if not request.task_id:
            raise invalid("task_id is empty")
        return self.b.run(self.s.get_task, request.task_id)

    @rpc
    def CancelTask(self, request, context):
        if not request.task_id:
            raise invalid("task_id is empty")
        return self.b.run(self.s.cancel_task, request.task_id)

    @rpc
    def ListBatches(self, request, context):
        df, dt = _opt(request, "date_from"), _opt(request, "date_to")
        d_from = _parse_date(df, "date_from") if df is not None else None
        d_to = _parse_date(dt, "date_to") if dt is not None else None
        if d_from and d_to and d_from > d_to:
            raise invalid(f"date_from {df} is after date_to {dt}")
        if request.page_size < 0:
            raise invalid(f"page_size must be ≥ 0, got {request.page_size}")
        size = min(request.page_size or DEFAULT_PAGE, MAX_PAGE)
        key = _filter_key(df, dt, size)
        after = _read_page_token(request.page_token, key) if request.page_token else None
        rows, more = self.b.run(self.s.list_batches, d_from, d_to, size, after)
        reply = pb.ListBatchesReply(batches=[convert.batch_summary(r) for r in rows])
        if more and rows:
            reply.next_page_token = _page_token(rows[-1], key)
        return reply

    @rpc
    def GetBatch(self, request, context):
        if request.batch_id <= 0:
            raise invalid(f"batch_id must be > 0, got {request.batch_id}")
        return self.b.run(self.s.get_batch, request.batch_id)

    @rpc
    def GetCall(self, request, context):
        if not request.audio_name:
            raise invalid("audio_name is empty")
        if request.batch_id < 0:
            raise invalid(f"batch_id must be ≥ 0, got {request.batch_id}")
        return self.b.run(self.s.get_call, request.audio_name, request.batch_id)

    @rpc
    def ListGpus(self, request, context):
        return self.b.run_sync(self.s.list_gpus)

    @rpc_stream
    def WatchEvents(self, request, context):
        if request.batch_id < 0:
            raise invalid(f"batch_id must be ≥ 0, got {request.batch_id}")
        bad = [s for s in request.stages if s not in EVENT_STAGES]
        if bad:
            raise invalid(f"unknown stage {bad[0]!r} (known: {', '.join(sorted(EVENT_STAGES))})")
        bad = [e for e in request.event_types if e not in t.EVENT_TYPES]
        if bad:
            raise invalid(f"unknown event type {bad[0]!r} (known: {', '.join(t.EVENT_TYPES)})")
        start = _opt(request, "from_event_id")
        if start is not None and start < 0:
            raise invalid(f"from_event_id must be ≥ 0, got {start}")
        flt = EventFilter(batch_id=request.batch_id, stages=frozenset(request.stages),
                          event_types=frozenset(request.event_types),
                          errors_only=request.errors_only)
        sub, upto = self.b.run(self.s.subscribe, flt)
        context.add_callback(lambda: self.b.call_soon(self.s.unsubscribe, sub))
        try:
            yield from self._watch(sub, flt, start, upto, context)
        finally:
            self.b.call_soon(self.s.unsubscribe, sub)

    def _watch(self, sub, flt: EventFilter, start: int | None, upto: int, context):
        last = upto
        if start is not None:
            oldest = self.b.run(self.s.oldest_event_id)
            if oldest and oldest > start + 1:
                yield pb.WatchMessage(notice=pb.Notice(
                    code="gap", message=f"events {start + 1}..{oldest - 1} are no longer "
                                        f"retained; continuing from {oldest}"))
            after = start
            while after < upto:
                page = self.b.run(self.s.replay_page, flt, after, upto)
                if not page:
                    break
                for e in page:
                    yield pb.WatchMessage(event=convert.event(e))
                after = page[-1].id
        heartbeat = self.cfg.grpc.heartbeat_s
        while context.is_active():
            why, events, last_id = self.b.run(self.s.next_events, sub, heartbeat)
            if why == "events":
                for e in events:
                    if e.id <= last:
                        continue
                    last = e.id
                    yield pb.WatchMessage(event=convert.event(e))
            elif why == "timeout":
                hb = pb.Heartbeat(last_event_id=last_id)
                hb.server_time.GetCurrentTime()
                yield pb.WatchMessage(heartbeat=hb)
            elif why == "fell_behind":
                yield pb.WatchMessage(notice=pb.Notice(
                    code="fell_behind",
                    message=f"the subscriber buffer ({self.cfg.grpc.subscriber_buffer} events) "
                            f"overflowed; resume with from_event_id = the last id received"))
                raise exhausted("fell behind: subscriber buffer overflowed; reconnect with "
                                "from_event_id")
            elif why == "shutting_down":
                yield pb.WatchMessage(notice=pb.Notice(code="shutting_down",
                                                       message="cofid is stopping"))
                raise ApiError(grpc.StatusCode.UNAVAILABLE,
                               "cofid is shutting down; reconnect with from_event_id")
            else:  # closed: the client went away
                return


# ---------------------------------------------------------------------------------------
# Lifecycle


class ListenError(ValueError):
    """A listen address cannot be used as configured."""


def _is_loopback(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def server_credentials(cfg) -> grpc.ServerCredentials | None:
    """TLS credentials from grpc.tls, or None; refuses (ListenError) a non-loopback TCP
    address without TLS when tls.require_for_remote."""
    tls = cfg.grpc.tls
    creds = None
    if tls.cert_file or tls.key_file:
        if not (tls.cert_file and tls.key_file):
            raise ListenError("grpc.tls needs both cert_file and key_file")
        try:
            creds = grpc.ssl_server_credentials(
                [(Path(tls.key_file).read_bytes(), Path(tls.cert_file).read_bytes())])
        except OSError as e:
            raise ListenError(f"grpc.tls: cannot read {e.filename}: {e.strerror}") from None
    for a in cfg.listen_addresses:
        if a.startswith("unix:"):
            continue
        host = a.rpartition(":")[0]
        if creds is None and tls.require_for_remote and not _is_loopback(host):
            raise ListenError(
                f"refusing to listen on {a} without TLS (non-loopback address; set "
                f"grpc.tls.cert_file/key_file or grpc.tls.require_for_remote = false)")
    return creds


class ControlPlane:
    """The grpc.server with cofi.v1, health and reflection on the configured addresses."""

    def __init__(self, service: Service, token: trio.lowlevel.TrioToken) -> None:
        cfg = service.cfg
        self.service = service
        self.bridge = TrioBridge(token)
        self.addresses = tuple(cfg.listen_addresses)
        g = cfg.grpc
        self.creds = server_credentials(cfg)
        tokens = TokenTable.from_config(g.tokens) if g.auth else None
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=g.max_workers,
                                       thread_name_prefix="cofid-grpc"),
            interceptors=[AuthInterceptor(tokens, auth_enabled=g.auth)],
            maximum_concurrent_rpcs=g.max_concurrent_rpcs,
            options=[("grpc.max_receive_message_length", 2 * MAX_CHUNK + 4096)],
        )
        pb_grpc.add_CofiServicer_to_server(CofiServicer(service, self.bridge), self.server)
        self.health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), self.server)
        self.bound: list[str] = []

    def start(self) -> list[str]:
        for a in self.addresses:
            if a.startswith("unix:"):
                Path(a[5:]).parent.mkdir(parents=True, exist_ok=True)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(a[5:])
                self.server.add_insecure_port(a)
                self.bound.append(a)
                continue
            port = (self.server.add_secure_port(a, self.creds) if self.creds is not None
                    else self.server.add_insecure_port(a))
            if port == 0:
                raise ListenError(f"cannot listen on {a}")
            self.bound.append(f"{a.rpartition(':')[0]}:{port}")
        self.server.start()
        for name in ("", SERVICE_NAME):
            self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        return self.bound

    async def stop(self, grace: float) -> None:
        """Health NOT_SERVING, close subscriptions, stop the server while trio runs."""
        self.health.enter_graceful_shutdown()
        self.service.close_subscriptions()
        await trio.to_thread.run_sync(lambda: self.server.stop(grace).wait())
        self.bridge.closing = True


async def serve_main(cfg, *, watch: bool = False, on_ready=None, gpus=None,
                     stop: trio.Event | None = None, handle_signals: bool = True,
                     task_status=trio.TASK_STATUS_IGNORED) -> None:
    """The daemon: App, resumed batches, gRPC server; returns after a clean shutdown."""
    from cofid.app import open_app

    stop = stop if stop is not None else trio.Event()
    server_credentials(cfg)  # refuse bad listen settings before touching the database
    async with open_app(cfg, gpus=gpus) as app, trio.open_nursery() as outer:
        if handle_signals:
            import signal

            async def signals() -> None:
                with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as rx:
                    async for signum in rx:
                        log.info("signal %s: shutting down", signal.Signals(signum).name)
                        stop.set()
                        return

            outer.start_soon(signals)
        async with trio.open_nursery() as work:
            service = Service(app, work)
            plane = ControlPlane(service, trio.lowlevel.current_trio_token())
            await service.resume_unfinished()
            if watch and cfg.watch.roots:
                log.info("batch root watching is not part of this build; use StartBatch")
            bound = await trio.to_thread.run_sync(plane.start)
            log.info("cofid serving on %s", ", ".join(bound))
            if on_ready is not None:
                on_ready(bound)
            task_status.started((service, plane, bound))
            await stop.wait()
            log.info("shutting down: stopping the gRPC server")
            await plane.stop(grace=min(5.0, cfg.service.shutdown_deadline_s))
            service.closing = True
            for run in list(app.runs.values()):
                run.draining = True
            with trio.move_on_after(cfg.service.shutdown_deadline_s):
                for live in list(service.tasks.live.values()):
                    await live.done.wait()
            if service.tasks.live:
                log.warning("shutdown deadline passed: cancelling %d task(s)",
                            len(service.tasks.live))
            work.cancel_scope.cancel()
        outer.cancel_scope.cancel()
    log.info("cofid stopped")
