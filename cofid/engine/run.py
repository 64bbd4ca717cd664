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
from typing import Any

import trio

from cofid.backends.base import BackendError, PermanentBackendError
from cofid.domain.model import EventStatus, EventType, Stage
from cofid.domain.ops import WriteSet
from cofid.domain.pipeline import FileState, needs_stage
from cofid.engine.gpus import Gpu, GpuPool
from cofid.engine.plan_run import PlanRun, RetryPolicy
from cofid.engine.reporting import StageReporting
from cofid.engine.writer import Writer
from cofid.stages import file_stages as fs
from cofid.store.db import Database, DatabaseUnavailable

log = logging.getLogger("cofid.engine")

PAGE = 500


class Engine(StageReporting):
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


def _summary(result: Any) -> dict[str, Any]:
    if result is None:
        return {}
    out = {}
    for key in ("request", "response"):
        v = getattr(result, key, None)
        if v:
            out[key] = v
    return out
