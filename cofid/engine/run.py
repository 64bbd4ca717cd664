"""The streaming engine: stage workers joined by bounded channels.

One PlanRun pushes its files through its file stages. Each stage has a group of workers
reading from a bounded channel and writing to the next stage's; a file moves on as soon as
its result is committed, so there is no barrier between stages, and the channel bounds
hold memory flat (files are also read from the database page by page). GPU slots — shared
with every other run — bound the real concurrency; later stages get free slots first.

A stage's status becomes InProgress when the first file enters it and Complete when the
last one has left it (its input channel closed and drained).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import trio

from cofid.backends.base import BackendError, PermanentBackendError
from cofid.domain.events import Event
from cofid.domain.model import EventStatus, EventType, Stage, StageStatus
from cofid.domain.ops import WriteSet
from cofid.domain.pipeline import STATUS_COLUMN, FileState, needs_stage, overall_status
from cofid.engine.gpus import Gpu, GpuPool
from cofid.engine.writer import Writer
from cofid.stages import file_stages as fs
from cofid.store.db import Database, DatabaseUnavailable

log = logging.getLogger("cofid.engine")

PAGE = 500


@dataclass
class StageCounters:
    total: int = 0
    entered: int = 0
    done: int = 0
    failed: int = 0
    skipped: int = 0
    status: str = StageStatus.PENDING
    started_at: float | None = None
    finished_at: float | None = None

    def rate_per_minute(self, now: float) -> float:
        if self.started_at is None:
            return 0.0
        span = (self.finished_at or now) - self.started_at
        return 60.0 * self.done / span if span > 0 else 0.0


@dataclass
class RetryPolicy:
    attempts: int = 3
    backoff_s: float = 1.0
    max_backoff_s: float = 30.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        base = min(self.max_backoff_s, self.backoff_s * 2 ** (attempt - 1))
        return base * rng.uniform(0.5, 1.5)


@dataclass
class PlanRun:
    """One plan's pass over its files."""

    kind: str  # batch | upload | reaudit
    batch_id: int  # 0 for a reaudit (its files may span batches)
    stages: tuple[Stage, ...]
    total_files: int
    load_page: Callable[[int, int], Any]  # (after_fd_id, limit) -> awaitable list[FileState]
    update_batch: bool = True
    batch_statuses: dict[Stage, Any] = field(default_factory=dict)  # current batchStatus values
    enabled: tuple[Stage, ...] = ()  # every stage of the batch plan (for the overall status)
    counters: dict[Stage, StageCounters] = field(default_factory=dict)
    failures: list[tuple[str, str, str]] = field(default_factory=list)  # (audio, stage, reason)
    draining: bool = False
    started: float = field(default_factory=time.monotonic)
    on_change: Callable[[], None] | None = None

    def __post_init__(self) -> None:
        for s in self.stages:
            self.counters.setdefault(s, StageCounters(total=self.total_files))


class Engine:
    def __init__(
        self,
        *,
        db: Database,
        writer: Writer,
        pool: GpuPool,
        env: fs.StageEnv,
        retry: RetryPolicy,
        question_set_for: Callable[[int, int], Any],
        file_start_events: bool = True,
        progress_every_files: int = 50,
        progress_every_s: float = 2.0,
        seed: int | None = None,
    ) -> None:
        self.db = db
        self.writer = writer
        self.pool = pool
        self.env = env
        self.retry = retry
        self.question_set_for = question_set_for
        self.file_start_events = file_start_events
        self.progress_every_files = progress_every_files
        self.progress_every_s = progress_every_s
        self.rng = random.Random(seed)
        self.workers_per_stage = sum(g.slots for g in pool.gpus) + 2

    # ---- the run -------------------------------------------------------------------------

    async def run(self, run: PlanRun) -> None:
        n = len(run.stages)
        cap = max(2, sum(g.slots for g in self.pool.gpus))
        channels = [trio.open_memory_channel[FileState](cap) for _ in range(n)]
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._feed, run, channels[0][0])
            for i, stage in enumerate(run.stages):
                out = channels[i + 1][0] if i + 1 < n else None
                nursery.start_soon(self._stage_group, run, i, stage, channels[i][1], out)

    async def _feed(self, run: PlanRun, send: trio.MemorySendChannel) -> None:
        async with send:
            after = 0
            while not run.draining:
                page = await run.load_page(after, PAGE)
                if not page:
                    return
                for f in page:
                    if run.draining:
                        return
                    await send.send(f)
                after = page[-1].fd_id

    async def _stage_group(self, run, index, stage, receive, send) -> None:
        async with receive:
            if send is None:
                await self._workers(run, index, stage, receive, None)
            else:
                async with send:
                    await self._workers(run, index, stage, receive, send)
        await self._stage_finished(run, stage)

    async def _workers(self, run, index, stage, receive, send) -> None:
        async with trio.open_nursery() as nursery:
            for _ in range(self.workers_per_stage):
                nursery.start_soon(
                    self._worker, run, index, stage, receive.clone(), send.clone() if send else None
                )

    async def _worker(self, run: PlanRun, index: int, stage: Stage, receive, send) -> None:
        async with receive:
            try:
                async for f in receive:
                    if run.draining:
                        continue
                    await self._process(run, index, stage, f)
                    # Failed files travel on too (later stages count them as skipped), so
                    # every stage's done + failed + skipped adds up to the run's files.
                    if send is not None and not run.draining:
                        await send.send(f)
            finally:
                if send is not None:
                    await send.aclose()

    # ---- one file at one stage -------------------------------------------------------------

    async def _process(self, run: PlanRun, index: int, stage: Stage, f: FileState) -> bool:
        """Run `stage` for `f`; False when the file failed (or was left for a restart)."""
        c = run.counters[stage]
        if not needs_stage(f, stage, run.stages):
            c.skipped += 1
            self._changed(run)
            return f.failed_stage is None
        await self._enter(run, stage)
        if stage is Stage.STT:
            gated = fs.gate_stt(self.env, f)
            if gated is not None:
                ev = self._file_event(run, f, stage, EventType.FILE_COMPLETE, EventStatus.SUCCESS,
                                      response={"status": f.call_status})
                await self.writer.commit(gated.ops, [ev])
                c.skipped += 1
                await self._progress(run, stage)
                return True
        ctx = None
        if stage in (Stage.LLM1, Stage.LLM2):
            try:
                ctx = await self._llm_context(f, stage)
            except (trio.Cancelled, DatabaseUnavailable):
                raise
            except Exception as exc:  # e.g. no question set for the call's process
                await self._fail(run, stage, f, exc, 0)
                return False
        attempt = 0
        while True:
            attempt += 1
            if run.draining:
                return False
            try:
                outcome, gpu_name, ms = await self._attempt(run, index, stage, f, ctx, attempt)
                break
            except (trio.Cancelled, DatabaseUnavailable):
                raise
            except PermanentBackendError as exc:
                await self._fail(run, stage, f, exc, attempt)
                return False
            except BackendError as exc:
                if attempt >= self.retry.attempts:
                    await self._fail(run, stage, f, exc, attempt)
                    return False
                await self._log_retry(run, stage, f, exc, attempt)
                await trio.sleep(self.retry.delay(attempt, self.rng))
            except Exception as exc:  # a bug or an unexpected reply: this file only
                log.exception("%s failed on %s", stage, f.audio_name)
                await self._fail(run, stage, f, exc, attempt)
                return False
        ws, summary = outcome
        ws.insert("processing_logs", fs.success_log(f, stage, attempt, ms, gpu_name))
        ev = self._file_event(run, f, stage, EventType.FILE_COMPLETE, EventStatus.SUCCESS,
                              payload=summary.get("request"), response=summary.get("response"),
                              gpu=gpu_name)
        if "moved_from" in summary:
            ev.metadata = {"moved_from": summary["moved_from"]}
        try:
            await self.writer.commit(ws.ops, [ev])
        except DatabaseUnavailable:
            raise
        except Exception as exc:  # the database refused this result (e.g. a value too long)
            log.error("%s result for %s could not be stored: %s", stage, f.audio_name, exc)
            await self._fail(run, stage, f, RuntimeError(f"result could not be stored: {exc}"), attempt)
            return False
        c.done += 1
        await self._progress(run, stage)
        return True

    async def _attempt(self, run, index, stage, f, ctx, attempt):
        preferred = f.gpu if self.pool.needs_affinity else None
        async with self.pool.slot(priority=index, preferred=preferred) as gpu:
            request_summary = {"audio": f.audio_name, "attempt": attempt, "gpu": gpu.name}
            if self.file_start_events:
                await self.writer.post([], [self._file_event(
                    run, f, stage, EventType.FILE_START, EventStatus.PROCESSING,
                    payload=request_summary, gpu=gpu.name)])
            t0 = time.monotonic()
            try:
                result = await self._call(stage, f, gpu, ctx)
            except BackendError as exc:
                await self._record(run, stage, gpu, False, time.monotonic() - t0, exc)
                raise
            dt = time.monotonic() - t0
            await self._record(run, stage, gpu, True, dt, None)
        ws, response = self._writes(stage, f, result, ctx)
        if gpu.name != f.gpu:
            # gpuIp names the GPU that did the file's latest GPU stage; when the file left
            # an unhealthy GPU the result's event says where it came from.
            previous = self.pool.by_name.get(f.gpu or "")
            if previous is not None and not previous.healthy:
                response = {**response, "moved_from": previous.name}
            ws.update("fileDistribution", "id", f.fd_id, gpuIp=gpu.name)
            f.gpu = gpu.name
        return (ws, response), gpu.name, int(dt * 1000)

    async def _record(self, run: PlanRun, stage: Stage, gpu: Gpu, ok: bool, seconds: float,
                      exc: BaseException | None) -> None:
        """Feed the GPU's circuit breaker; a GPU going unhealthy or coming back is an event
        (and a log line) an operator sees."""
        was = gpu.healthy
        gpu.record(ok, seconds)
        if was == gpu.healthy:
            return
        if gpu.healthy:
            msg = f"GPU {gpu.name} is healthy again"
            log.warning(msg)
            ev = Event(batch_id=run.batch_id, stage=stage.value, event_type=EventType.INFO,
                       status=EventStatus.SUCCESS, gpu=gpu.name, metadata={"gpu_healthy": True})
        else:
            msg = (f"GPU {gpu.name} marked unhealthy after {gpu.breaker.consecutive_failures} "
                   f"failures in a row ({exc}); its files go to healthy GPUs")
            log.warning(msg)
            ev = Event(batch_id=run.batch_id, stage=stage.value, event_type=EventType.ERROR,
                       status=EventStatus.FAILED, gpu=gpu.name, error_message=msg,
                       metadata={"gpu_healthy": False})
        await self.writer.post([], [ev])

    async def _call(self, stage: Stage, f: FileState, gpu: Gpu, ctx) -> Any:
        b = gpu.backends
        if stage is Stage.DENOISE:
            return await fs.call_denoise(self.env, f, b)
        if stage is Stage.IVR:
            return await fs.call_ivr(self.env, f, b)
        if stage is Stage.LID:
            return await fs.call_lid(self.env, f, b)
        if stage is Stage.STT:
            return await fs.call_stt(self.env, f, b)
        if stage is Stage.LLM1:
            return await fs.call_llm1(self.env, f, b, ctx)
        return await fs.call_llm2(self.env, f, b, ctx)

    def _writes(self, stage: Stage, f: FileState, result: Any, ctx) -> tuple[WriteSet, dict]:
        if stage is Stage.DENOISE:
            return fs.writes_denoise(f, result), _summary(result)
        if stage is Stage.IVR:
            return fs.writes_ivr(f, result), _summary(result)
        if stage is Stage.LID:
            return fs.writes_lid(f, result), _summary(result)
        if stage is Stage.STT:
            f.carried["transcript"] = fs.transcript_dicts(result)
            return fs.writes_stt(f, result), _summary(result)
        if stage is Stage.LLM1:
            f.carried["extracted_trades"] = fs.extracted_dicts(result)
            return fs.writes_llm1(f, result), _summary(result)
        f.carried.clear()  # the last stage: nothing further needs it
        return fs.writes_llm2(f, result, ctx), _summary(result)

    async def _llm_context(self, f: FileState, stage: Stage) -> fs.LlmContext:
        """The LLM stages' inputs: carried over from this run's earlier stages where they
        ran, read from the database otherwise (a resumed file, a reaudit of llm1/llm2)."""
        from cofid.store import repo

        carried = f.carried

        def load(conn):
            if "transcript" not in carried:
                carried["transcript"] = repo.transcript_of(conn, f.call_id)
            if "call_metadata" not in carried:
                carried["call_metadata"] = repo.call_metadata_of(conn, f.batch_id, f.audio_name)
                carried["trades"] = repo.mapped_trades_of(conn, f.batch_id, f.audio_name)
            if stage is Stage.LLM2:
                if "extracted_trades" not in carried:
                    carried["extracted_trades"] = repo.extracted_trades_of(conn, f.call_id)
                if "triaged" not in carried:
                    carried["triaged"] = repo.batch_triaged(conn, f.batch_id)

        needed = ("transcript", "call_metadata") + (
            ("extracted_trades", "triaged") if stage is Stage.LLM2 else ())
        if any(k not in carried for k in needed):
            await self.db.read(load)
        ctx = fs.LlmContext(
            transcript=carried["transcript"],
            call_metadata=carried["call_metadata"],
            trades=carried["trades"],
        )
        if stage is Stage.LLM2:
            ctx.extracted_trades = carried["extracted_trades"]
            ctx.question_set = self.question_set_for(f.process_id, f.category_mapping_id)
            ctx.no_trade_answers = not ctx.trades and carried["triaged"]
        return ctx

    # ---- failures -------------------------------------------------------------------------

    async def _fail(self, run: PlanRun, stage: Stage, f: FileState, exc: BaseException, attempt: int) -> None:
        reason = f"{type(exc).__name__}: {exc}" if not isinstance(exc, BackendError) else str(exc)
        details = getattr(exc, "details", None) or {}
        ws = WriteSet()
        ws.update("fileDistribution", "id", f.fd_id, failedStage=stage.value, failureReason=reason[:2000])
        ws.insert("processing_logs", {
            "batch_id": f.batch_id, "call_id": f.call_id, "file_name": f.audio_name,
            "stage_name": stage.value, "status": "failed", "attempt": attempt,
            "error_message": reason[:4000], "details": details or None, "duration_ms": None,
        })
        ev = self._file_event(run, f, stage, EventType.ERROR, EventStatus.FAILED,
                              response=details or None)
        ev.error_message = reason
        await self.writer.commit(ws.ops, [ev])
        f.failed_stage = stage.value
        run.counters[stage].failed += 1
        run.failures.append((f.audio_name, stage.value, reason))
        log.warning("%s failed for %s after %d attempt(s): %s", stage, f.audio_name, attempt, reason)
        await self._progress(run, stage)

    async def _log_retry(self, run, stage, f, exc, attempt) -> None:
        await self.writer.post([fs_retry_op(f, stage, exc, attempt)], [])

    # ---- stage status and events ------------------------------------------------------------

    async def _enter(self, run: PlanRun, stage: Stage) -> None:
        c = run.counters[stage]
        c.entered += 1
        if c.status != StageStatus.PENDING:
            return
        c.status = StageStatus.IN_PROGRESS
        c.started_at = time.monotonic()
        ws = WriteSet()
        if run.update_batch and run.batch_statuses.get(stage) != StageStatus.COMPLETE:
            run.batch_statuses[stage] = StageStatus.IN_PROGRESS
            ws.update("batchStatus", "id", run.batch_id, **{STATUS_COLUMN[stage]: StageStatus.IN_PROGRESS})
        ev = self._stage_event(run, stage, EventType.STAGE_START, EventStatus.PROCESSING)
        await self.writer.commit(ws.ops, [ev])
        self._changed(run)

    async def _stage_finished(self, run: PlanRun, stage: Stage) -> None:
        c = run.counters[stage]
        if run.draining:
            return
        c.status = StageStatus.COMPLETE
        c.finished_at = time.monotonic()
        if c.started_at is None:
            c.started_at = c.finished_at
        if run.update_batch and run.batch_statuses.get(stage) == StageStatus.COMPLETE:
            return  # completed before a restart: its status and event are already written
        ws = WriteSet()
        if run.update_batch:
            run.batch_statuses[stage] = StageStatus.COMPLETE
            status = overall_status(run.batch_statuses, run.enabled)
            ws.update("batchStatus", "id", run.batch_id,
                      **{STATUS_COLUMN[stage]: StageStatus.COMPLETE}, status=status)
        ev = self._stage_event(run, stage, EventType.STAGE_COMPLETE, EventStatus.SUCCESS)
        ev.metadata = {"done": c.done, "failed": c.failed, "skipped": c.skipped}
        await self.writer.commit(ws.ops, [ev])
        self._changed(run)

    async def _progress(self, run: PlanRun, stage: Stage) -> None:
        c = run.counters[stage]
        self._changed(run)
        processed = c.done + c.failed + c.skipped
        now = time.monotonic()
        last = getattr(c, "_last_progress", 0.0)
        if processed % self.progress_every_files and now - last < self.progress_every_s:
            return
        c._last_progress = now  # type: ignore[attr-defined]
        ev = self._stage_event(run, stage, EventType.STAGE_PROGRESS, EventStatus.PROCESSING)
        ev.metadata = {"done": c.done, "failed": c.failed, "skipped": c.skipped}
        await self.writer.post([], [ev])

    def _changed(self, run: PlanRun) -> None:
        if run.on_change is not None:
            run.on_change()

    def _stage_event(self, run: PlanRun, stage: Stage, etype: str, status: str) -> Event:
        c = run.counters[stage]
        return Event(
            batch_id=run.batch_id, stage=stage.value, event_type=etype, status=status,
            total_files=c.total, processed_files=c.done + c.failed + c.skipped,
        )

    def _file_event(self, run, f: FileState, stage: Stage, etype: str, status: str, *,
                    payload=None, response=None, gpu=None) -> Event:
        return Event(
            batch_id=f.batch_id, stage=stage.value, event_type=etype, status=status,
            file_name=f.audio_name, gpu=gpu or f.gpu, payload=payload, response=response,
        )


def _summary(result: Any) -> dict[str, Any]:
    if result is None:
        return {}
    out = {}
    for key in ("request", "response"):
        v = getattr(result, key, None)
        if v:
            out[key] = v
    return out


def fs_retry_op(f: FileState, stage: Stage, exc: BaseException, attempt: int):
    from cofid.domain.ops import Insert

    return Insert("processing_logs", ({
        "batch_id": f.batch_id, "call_id": f.call_id, "file_name": f.audio_name,
        "stage_name": stage.value, "status": "retry", "attempt": attempt,
        "error_message": str(exc)[:4000], "details": getattr(exc, "details", None) or None,
        "duration_ms": None,
    },))

