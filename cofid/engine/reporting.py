"""What the engine reports while it works: stage statuses in batch_status, events (stage
start, progress, completion, file results, failures) and GPU health changes.

A mixin of Engine: it needs `writer`, `pool`, `env`, `progress_every_files` and
`progress_every_s`. Status changes commit together with their events; a stage's start,
progress and retry records are posted without waiting (the writer keeps their order).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import trio

from cofid.backends.base import BackendError
from cofid.domain.events import Event, batch_status_event, stage_outcome
from cofid.domain.model import CallStatus, EventStatus, EventType, Stage, StageStatus
from cofid.domain.ops import Insert, WriteSet
from cofid.domain.pipeline import STAGES, FileState, status_walk
from cofid.domain.ports import BackendTimeout, host_answered
from cofid.engine.gpus import Gpu, GpuPool
from cofid.engine.plan_run import PlanRun
from cofid.engine.verdicts import verdicts_after
from cofid.engine.writer import Writer
from cofid.stages.base import StageEnv

log = logging.getLogger("cofid.engine")


class StageReporting:
    writer: Writer
    pool: GpuPool
    env: StageEnv
    progress_every_files: int
    progress_every_s: float

    async def _record(self, run: PlanRun, stage: Stage, gpu: Gpu, ok: bool, seconds: float,
                      exc: BaseException | None) -> None:
        """Feed the GPU's circuit breaker; a GPU going unhealthy or coming back is an event
        (and a log line) an operator sees."""
        was = gpu.healthy
        timed_out = isinstance(exc, BackendTimeout)
        gpu.record(ok, seconds, timed_out=timed_out, answered=host_answered(exc))
        if was == gpu.healthy:
            return
        if gpu.healthy:
            msg = f"GPU {gpu.name} is healthy again"
            log.warning(msg)
            ev = Event(batch_id=run.batch_id, stage=stage.value, event_type=EventType.INFO,
                       status=EventStatus.SUCCESS, gpu=gpu.name, metadata={"gpu_healthy": True})
        else:
            why = ("a request timed out" if timed_out else
                   f"{gpu.breaker.consecutive_failures} failures in a row")
            msg = (f"GPU {gpu.name} marked unhealthy after {why} ({exc}); its files go to "
                   f"healthy GPUs")
            log.warning(msg)
            ev = Event(batch_id=run.batch_id, stage=stage.value, event_type=EventType.ERROR,
                       status=EventStatus.FAILED, gpu=gpu.name, error_message=msg,
                       metadata={"gpu_healthy": False})
        await self.writer.post([], [ev])

    # ---- failures -------------------------------------------------------------------------

    async def _fail(self, run: PlanRun, stage: Stage, f: FileState, exc: BaseException, attempt: int) -> None:
        reason = f"{type(exc).__name__}: {exc}" if not isinstance(exc, BackendError) else str(exc)
        details = getattr(exc, "details", None) or {}
        ws = WriteSet()
        ws.update("file_distribution", "id", f.fd_id, failed_stage=stage.value, failure_reason=reason[:2000])
        # The failure contract: the call says it failed (failedStage says where), so the
        # seed's per-status count of a finished batch shows no pending work.
        ws.update("call", "id", f.call_id, status=CallStatus.FAILED)
        ws.ops.append(processing_log(f, stage, "failed", attempt, error=reason, details=details))
        # The event's payload is the request that failed, as the backend summarised it
        # (cofid.backends.remote_http.failed_request: URL without credentials, model,
        # status, message, a wrong reply's text); its response the rest of the details.
        request = details.get("request")
        rest = {k: v for k, v in details.items() if k != "request"}
        ev = self._file_event(run, f, stage, EventType.ERROR, EventStatus.FAILED,
                              payload=request or None, response=rest or None)
        ev.error_message = reason
        # The failure and the verdicts it decides (call_unusable) commit together.
        await self.writer.commit(ws.ops, [ev], after=verdicts_after(self.env, f, stage, "failed"))
        f.failed_stage = stage.value
        f.call_status = CallStatus.FAILED
        run.counters[stage].failed += 1
        run.failures.append((f.audio_name, stage.value, reason))
        log.warning("%s failed for %s after %d attempt(s): %s", stage, f.audio_name, attempt, reason)
        await self._progress(run, stage)

    async def _log_retry(self, run: PlanRun, stage: Stage, f: FileState, exc: BaseException,
                         attempt: int) -> None:
        await self.writer.post([processing_log(f, stage, "retry", attempt, error=str(exc),
                                               details=getattr(exc, "details", None))], [])

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
            ws.update("batch_status", "id", run.batch_id,
                      **{STAGES[stage].batch_status: StageStatus.IN_PROGRESS})
        ev = self._stage_event(run, stage, EventType.STAGE_START, EventStatus.PROCESSING)
        # Posted, not waited for: the writer commits in queue order, so the status and its
        # event still land before any result of the stage, and the first file into the
        # stage does not trail the others by a commit (two files meant to reach a host
        # together went one after the other, the second after the host was taken out).
        await self.writer.post(ws.ops, [ev])
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
        ev = self._stage_event(run, stage, EventType.STAGE_COMPLETE,
                               stage_outcome(c.done + c.gated + c.skipped_ok,
                                             c.failed + c.failed_before))
        ev.metadata = {"done": c.done, "failed": c.failed, "skipped": c.skipped}
        if run.status_lock is None:
            run.status_lock = trio.Lock()
        async with run.status_lock:
            ws = WriteSet()
            walk: list[str | None] = [None]
            if run.update_batch:
                run.batch_statuses[stage] = StageStatus.COMPLETE
                ws.update("batch_status", "id", run.batch_id,
                          **{STAGES[stage].batch_status: StageStatus.COMPLETE})
                walk = [*status_walk(run.batch_status, run.batch_statuses, run.enabled,
                                     to_completed=False)] or [None]
            events = [ev]
            # Rule 8: each status value its own commit, in order, so a reader sees lidDone
            # before triagingDone even when both fall due at once.
            for status in walk:
                if status is not None:
                    ws.update("batch_status", "id", run.batch_id, status=status)
                    events.append(batch_status_event(run.batch_id, status))
                await self.writer.commit(ws.ops, events)
                if status is not None:
                    run.batch_status = status
                ws, events = WriteSet(), []
        self._changed(run)

    async def _progress(self, run: PlanRun, stage: Stage) -> None:
        c = run.counters[stage]
        self._changed(run)
        processed = c.done + c.failed + c.skipped
        now = time.monotonic()
        last = c.last_progress
        if processed % self.progress_every_files and now - last < self.progress_every_s:
            return
        c.last_progress = now
        ev = self._stage_event(run, stage, EventType.STAGE_PROGRESS, EventStatus.PROCESSING)
        ev.metadata = {"done": c.done, "failed": c.failed, "skipped": c.skipped}
        await self.writer.post([], [ev])

    def _changed(self, run: PlanRun) -> None:
        if run.on_change is not None:
            run.on_change(run)

    def _stage_event(self, run: PlanRun, stage: Stage, etype: str, status: str) -> Event:
        c = run.counters[stage]
        return Event(
            batch_id=run.batch_id, stage=stage.value, event_type=etype, status=status,
            total_files=c.total, processed_files=c.done + c.failed + c.skipped,
        )

    def _file_event(self, run: PlanRun, f: FileState, stage: Stage, etype: str, status: str, *,
                    payload: Any = None, response: Any = None, gpu: str | None = None) -> Event:
        return Event(
            batch_id=f.batch_id, stage=stage.value, event_type=etype, status=status,
            file_name=f.audio_name, gpu=gpu or f.gpu, payload=payload, response=response,
        )


def processing_log(f: FileState, stage: Stage, status: str, attempt: int, *,
                   error: str | None = None, details: dict[str, Any] | None = None,
                   duration_ms: int | None = None) -> Insert:
    """The processing_logs row of one attempt (success, retry or failure): built here only."""
    return Insert("processing_logs", ({
        "batch_id": f.batch_id, "call_id": f.call_id, "file_name": f.audio_name,
        "stage_name": stage.value, "status": status, "attempt": attempt,
        "error_message": None if error is None else error[:4000],
        "details": details or None, "duration_ms": duration_ms,
    },))
