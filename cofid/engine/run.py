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

import cofid.stages  # noqa: F401  (fills the stage registry)
from cofid.backends.base import BackendError, ModelOutputError, PermanentBackendError
from cofid.domain.events import Event
from cofid.domain.model import EventStatus, EventType, Stage
from cofid.domain.ops import WriteSet
from cofid.domain.pipeline import FileState, needs_stage
from cofid.domain.ports import host_answered
from cofid.domain.questions import QuestionSet
from cofid.engine.channels import hand_on
from cofid.engine.gpus import Gpu, GpuPool
from cofid.engine.plan_run import PlanRun, RetryPolicy
from cofid.engine.reporting import StageReporting, processing_log
from cofid.engine.verdicts import verdicts_after
from cofid.engine.writer import Submitted, Writer, committed
from cofid.stages.base import FileStage, StageEnv, StageInputs, Summary, stage_for
from cofid.store.db import Database, DatabaseUnavailable
from cofid.store.stage_inputs import StoreStageInputs

log = logging.getLogger("cofid.engine")

PAGE = 500

# The backend capability each stage calls: it decides the lane of slots the call takes
# (a `[[gpus]]` entry with separate speech and chat servers has one lane per server).
CAPABILITY: dict[Stage, str] = {
    Stage.DENOISE: "denoise", Stage.IVR: "ivr", Stage.LID: "lid", Stage.STT: "stt",
    Stage.LLM1: "chat", Stage.LLM2: "chat",
}  # fmt: skip


# A file on its way from a stage's worker to its committer: with its result as queued for
# the writer and the attempt it took, or None when the worker settled it (skip, gate, fail).
_Settling = tuple[FileState, "tuple[Submitted, int] | None"]


class HostProbeFailed(Exception):
    """A file's request was an unhealthy host's probe and the host failed it: it does not
    count against the file's retries (a dead host's probes used to fail files for good)."""

    def __init__(self, cause: BackendError) -> None:
        super().__init__(str(cause))
        self.cause = cause


class Engine(StageReporting):
    def __init__(
        self,
        *,
        db: Database,
        writer: Writer,
        pool: GpuPool,
        env: StageEnv,
        retry: RetryPolicy,
        question_set_for: Callable[[int, int], QuestionSet],
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
        # GPU name -> why the start probe found it unusable (cofid.service.start_probe).
        self.start_problems: dict[str, str] = {}
        slots = sum(g.total_slots for g in pool.gpus)
        self.workers_per_stage = slots + 2
        # Files of a stage whose result waits for its commit (see _workers): results pile
        # up while a group commits, so the next group carries several times more files
        # (fewer statements, commits and thread hand-offs per file).
        self.committers_per_stage = 4 * slots

    # ---- the run -------------------------------------------------------------------------

    async def run(self, run: PlanRun) -> None:
        await self._report_start_problems(run)
        n = len(run.stages)
        cap = max(2, sum(g.total_slots for g in self.pool.gpus))
        channels = [trio.open_memory_channel[FileState](cap) for _ in range(n)]
        # One per run: batch-level facts (triaged, question sets) are read once per run.
        inputs = StoreStageInputs(self.db, self.question_set_for)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._feed, run, channels[0][0])
            for i, stage in enumerate(run.stages):
                out = channels[i + 1][0] if i + 1 < n else None
                nursery.start_soon(self._stage_group, run, i, stage, inputs, channels[i][1], out)

    async def _report_start_problems(self, run: PlanRun) -> None:
        """One error event per host the start probe found unusable and still unhealthy:
        the run's log says why that host does no work."""
        stage = next((s for s in run.stages if s in CAPABILITY), run.stages[0] if run.stages else None)
        events = [
            Event(batch_id=run.batch_id, stage=stage.value, event_type=EventType.ERROR,
                  status=EventStatus.FAILED, gpu=name, error_message=msg,
                  metadata={"gpu_healthy": False, "start_probe": True})
            for name, msg in self.start_problems.items()
            if stage is not None and name in self.pool.by_name and not self.pool.by_name[name].healthy
        ]  # fmt: skip
        if events:
            await self.writer.post([], events)

    async def _feed(self, run: PlanRun, send: trio.MemorySendChannel[FileState]) -> None:
        async with send:
            after = 0
            while not run.draining:
                page: list[FileState] = await run.load_page(after, PAGE)
                if not page:
                    return
                for f in page:
                    if run.draining:
                        return
                    await send.send(f)
                after = page[-1].fd_id

    async def _stage_group(
        self, run: PlanRun, index: int, stage: Stage, inputs: StageInputs,
        receive: trio.MemoryReceiveChannel[FileState], send: trio.MemorySendChannel[FileState] | None,
    ) -> None:
        async with receive:
            if send is None:
                await self._workers(run, index, stage, inputs, receive, None)
            else:
                async with send:
                    await self._workers(run, index, stage, inputs, receive, send)
        await self._stage_finished(run, stage)

    async def _workers(
        self, run: PlanRun, index: int, stage: Stage, inputs: StageInputs,
        receive: trio.MemoryReceiveChannel[FileState], send: trio.MemorySendChannel[FileState] | None,
    ) -> None:
        """The stage's workers take a file, get it a slot and its result, queue the result
        for the writer and take the next file; its committers wait for each result's commit
        and hand the file on. A file waiting for its commit holds no worker, so a stage
        never has more files waiting for a slot than it has workers (slots + 2: the feed
        order's starts hold) while the writer's next group gathers the results of up to
        `committers_per_stage` files per stage."""
        settle_send, settle_receive = trio.open_memory_channel[_Settling](0)
        async with trio.open_nursery() as nursery, settle_send, settle_receive:
            for _ in range(self.workers_per_stage):
                nursery.start_soon(self._worker, run, index, stage, inputs, receive.clone(),
                                   settle_send.clone())
            for _ in range(self.committers_per_stage):
                nursery.start_soon(self._committer, run, stage, settle_receive.clone(),
                                   send.clone() if send else None)

    async def _worker(
        self, run: PlanRun, index: int, stage: Stage, inputs: StageInputs,
        receive: trio.MemoryReceiveChannel[FileState],
        settle: trio.MemorySendChannel[_Settling],
    ) -> None:
        async with receive, settle:
            async for f in receive:
                if run.draining:
                    continue
                await hand_on(settle, (f, await self._process(run, index, stage, inputs, f)))

    async def _committer(
        self, run: PlanRun, stage: Stage,
        settle: trio.MemoryReceiveChannel[_Settling],
        send: trio.MemorySendChannel[FileState] | None,
    ) -> None:
        async with settle:
            try:
                async for f, submitted in settle:
                    if submitted is not None:
                        await self._settle(run, stage, f, *submitted)
                    # Failed files travel on too (later stages count them as skipped), so
                    # every stage's done + failed + skipped adds up to the run's files.
                    if send is not None and not run.draining:
                        await hand_on(send, f)
            finally:
                if send is not None:
                    await send.aclose()

    # ---- one file at one stage -------------------------------------------------------------

    async def _process(
        self, run: PlanRun, index: int, stage: Stage, inputs: StageInputs, f: FileState
    ) -> tuple[Submitted, int] | None:
        """Run `stage` for `f` up to its result, queued for the writer: (the queued write
        set, the attempt) for `_settle`, or None when the file is settled here (skipped,
        gated, failed, or left for a restart)."""
        c = run.counters[stage]
        if not needs_stage(f, stage, run.stages):
            c.skipped += 1
            # For stage_complete's status over the whole stage, a restart included: a
            # file that failed this stage before, or that needs nothing (more) of it.
            if f.failed_stage == stage.value:
                c.failed_before += 1
            elif f.failed_stage is None:
                c.skipped_ok += 1
            self._changed(run)
            return None
        await self._enter(run, stage)
        st = stage_for(stage)
        gated = st.gate(self.env, f)
        if gated is not None:
            ev = self._file_event(run, f, stage, EventType.FILE_COMPLETE, EventStatus.SUCCESS,
                                  response={"status": f.call_status})
            await self.writer.commit(gated.ops, [ev],
                                     after=verdicts_after(self.env, f, stage, "gated"))
            c.skipped += 1
            c.gated += 1
            await self._progress(run, stage)
            return None
        try:
            ctx = await st.load(f, inputs)
        except (trio.Cancelled, DatabaseUnavailable):
            raise
        except Exception as exc:  # e.g. no question set for the call's process
            await self._fail(run, stage, f, exc, 0)
            return None
        attempt = 0  # requests sent (processing_logs numbers them)
        probes = 0  # of those, failed probes of an unhealthy host: not the file's tries
        f.model_refusal = None
        while True:
            attempt += 1
            if run.draining:
                return None
            try:
                ws, summary, gpu_name, ms = await self._attempt(run, index, st, f, ctx, attempt)
                break
            except (trio.Cancelled, DatabaseUnavailable):
                raise
            except HostProbeFailed as probe:
                probes += 1
                await self._log_retry(run, stage, f, probe.cause, attempt)
                await trio.sleep(self.retry.delay(1, self.rng))
            except PermanentBackendError as exc:
                await self._fail(run, stage, f, exc, attempt)
                return None
            except BackendError as exc:
                if attempt - probes >= self.retry.attempts:
                    f.model_refusal = None
                    await self._fail(run, stage, f, exc, attempt)
                    return None
                # The retry tells the model why its reply was refused (a new request,
                # not the same greedy decode again).
                f.model_refusal = str(exc) if isinstance(exc, ModelOutputError) else None
                await self._log_retry(run, stage, f, exc, attempt)
                await trio.sleep(self.retry.delay(attempt, self.rng))
            except Exception as exc:  # a bug or an unexpected reply: this file only
                log.exception("%s failed on %s", stage, f.audio_name)
                await self._fail(run, stage, f, exc, attempt)
                return None
        f.model_refusal = None
        ws.ops.append(processing_log(f, stage, "success", attempt, duration_ms=ms,
                                     details={"gpu": gpu_name} if gpu_name else None))
        ev = self._file_event(run, f, stage, EventType.FILE_COMPLETE, EventStatus.SUCCESS,
                              payload=summary.get("request"), response=summary.get("response"),
                              gpu=gpu_name)
        if "moved_from" in summary:
            ev.metadata = {"moved_from": summary["moved_from"]}
        submitted = await self.writer.submit(ws.ops, [ev],
                                             after=verdicts_after(self.env, f, stage, "done"))
        return submitted, attempt

    async def _settle(self, run: PlanRun, stage: Stage, f: FileState, submitted: Submitted,
                      attempt: int) -> None:
        """Wait for the commit of `f`'s result at `stage` and count it done."""
        try:
            await committed(submitted)
        except DatabaseUnavailable:
            raise
        except Exception as exc:  # the database refused this result (e.g. a value too long)
            log.error("%s result for %s could not be stored: %s", stage, f.audio_name, exc)
            await self._fail(run, stage, f, RuntimeError(f"result could not be stored: {exc}"), attempt)
            return
        run.counters[stage].done += 1
        await self._progress(run, stage)

    async def _call(self, st: FileStage[Any, Any], f: FileState, gpu: Gpu, ctx: Any) -> Any:
        """The one backend request of an attempt (a seam the schedule benchmark times)."""
        return await st.call(self.env, f, gpu.backends, ctx)

    async def _attempt(
        self, run: PlanRun, index: int, st: FileStage[Any, Any], f: FileState, ctx: Any, attempt: int
    ) -> tuple[WriteSet, Summary, str, int]:
        stage = st.stage
        preferred = f.gpu if self.pool.needs_affinity else None
        capability = CAPABILITY.get(stage)
        async with self.pool.slot(priority=index, preferred=preferred, capability=capability) as gpu:
            # An unhealthy host gets a slot only as its breaker's one probe (GpuPool._pick).
            probe = not gpu.healthy
            request_summary = {"audio": f.audio_name, "attempt": attempt, "gpu": gpu.name}
            if self.file_start_events:
                await self.writer.post([], [self._file_event(
                    run, f, stage, EventType.FILE_START, EventStatus.PROCESSING,
                    payload=request_summary, gpu=gpu.name)])
            t0 = time.monotonic()
            try:
                result = await self._call(st, f, gpu, ctx)
            except BackendError as exc:
                await self._record(run, stage, gpu, False, time.monotonic() - t0, exc)
                if probe and not host_answered(exc) and self.pool.healthy_gpus():
                    # The host is still down: the probe tested it, not the file, whose next
                    # try goes to a healthy one (with every host down, tries count as usual,
                    # so files fail instead of waiting forever).
                    raise HostProbeFailed(exc) from exc
                raise
            dt = time.monotonic() - t0
            await self._record(run, stage, gpu, True, dt, None)
        ws, summary = st.writes(f, result, ctx)
        if gpu.name != f.gpu:
            # gpu_ip names the GPU that did the file's latest GPU stage; when the file left
            # an unhealthy GPU the result's event says where it came from.
            previous = self.pool.by_name.get(f.gpu or "")
            if previous is not None and not previous.healthy:
                summary = {**summary, "moved_from": previous.name}
            ws.update("file_distribution", "id", f.fd_id, gpu_ip=gpu.name)
            f.gpu = gpu.name
        return ws, summary, gpu.name, int(dt * 1000)
