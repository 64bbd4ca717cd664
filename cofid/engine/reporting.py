"""What the engine reports while it works: stage statuses in batchStatus, events (stage
start, progress, completion, file results, failures) and GPU health changes.

A mixin of Engine: it needs `writer`, `pool`, `progress_every_files` and
`progress_every_s`. Status changes commit together with their events; progress and
retry records are posted without waiting.
"""

from __future__ import annotations

import logging
import time

from cofid.backends.base import BackendError
from cofid.domain.events import Event
from cofid.domain.model import EventStatus, EventType, Stage, StageStatus
from cofid.domain.ops import Insert, WriteSet
from cofid.domain.pipeline import STATUS_COLUMN, FileState, overall_status
from cofid.engine.gpus import Gpu
from cofid.engine.plan_run import PlanRun

log = logging.getLogger("cofid.engine")


class StageReporting:
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
            run.on_change(run)

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


def fs_retry_op(f: FileState, stage: Stage, exc: BaseException, attempt: int):
    return Insert("processing_logs", ({
        "batch_id": f.batch_id, "call_id": f.call_id, "file_name": f.audio_name,
        "stage_name": stage.value, "status": "retry", "attempt": attempt,
        "error_message": str(exc)[:4000], "details": getattr(exc, "details", None) or None,
        "duration_ms": None,
    },))


