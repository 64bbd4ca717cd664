"""Wiring: one App holds the database, event bus, writer, GPU pool and engine.

`cofid run-batch` and `cofid serve` both open an App; the plans (batch, upload, reaudit)
run over its single engine, so every plan shares the GPU slots and the group-commit
writer. The use cases live beside this module (batches, uploads, reaudit, tasks, resume);
App.prepare_batch and App.run_batch are the batch use case's functions, bound.
"""

from __future__ import annotations

import gc
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from cofid.backends.factory import build_hosts
from cofid.backends.probe import ProbeResult
from cofid.config import Config
from cofid.domain.questions import QuestionSet
from cofid.engine.bus import EventBus
from cofid.engine.gpus import Gpu, GpuPool
from cofid.engine.plan_run import PlanRun, RetryPolicy
from cofid.engine.run import Engine
from cofid.engine.writer import Writer
from cofid.plans.batch import BatchInput
from cofid.service import batches
from cofid.service.errors import UnknownQuestionSet
from cofid.service.reservations import CallReservations
from cofid.service.start_probe import mark_unusable
from cofid.stages.base import StageEnv
from cofid.store import repo
from cofid.store.db import Database
from cofid.store.migrate import upgrade


@dataclass
class App:
    cfg: Config
    db: Database
    bus: EventBus
    writer: Writer
    pool: GpuPool
    engine: Engine
    nursery: trio.Nursery
    runs: dict[int, PlanRun] = field(default_factory=dict)
    reservations: CallReservations = field(default_factory=CallReservations)

    @property
    def busy_calls(self) -> set[int]:
        """Calls some task (a reaudit) is working on."""
        return set(self.reservations.calls)

    @property
    def busy_batches(self) -> set[int]:
        """Batches with a running plan."""
        return set(self.reservations.batches)

    def question_set_for(self, process_id: int, category_mapping_id: int) -> QuestionSet:
        qs = self.cfg.question_set(process_id, category_mapping_id)
        if qs is None:
            raise UnknownQuestionSet(
                f"no audit question set for process_id={process_id}, "
                f"category_mapping_id={category_mapping_id}"
            )
        return qs

    def known_question_sets(self) -> set[tuple[int, int]]:
        return {(q.process_id, q.category_mapping_id) for q in self.cfg.all_question_sets()}

    @property
    def total_slots(self) -> int:
        return sum(g.total_slots for g in self.pool.gpus)

    def next_gpu(self) -> str:
        return self.pool.round_robin().name

    # ---- the batch use case, bound (cofid.service.batches) ------------------------------

    async def read_batch(self, directory: Path, process_id: int | None = None,
                         category_mapping_id: int | None = None) -> BatchInput:
        return await batches.read_batch(self, directory, process_id, category_mapping_id)

    async def prepare_batch(self, directory: Path, process_id: int | None = None,
                            category_mapping_id: int | None = None, *,
                            batch_input: BatchInput | None = None) -> int:
        return await batches.prepare_batch(self, directory, process_id, category_mapping_id,
                                           batch_input=batch_input)

    async def run_batch(self, batch_id: int,
                        on_change: Callable[[PlanRun], None] | None = None) -> PlanRun:
        return await batches.run_batch(self, batch_id, on_change=on_change)


async def _health_ticker(pool: GpuPool) -> None:
    """Re-offer slots every second: a GPU whose breaker cooled down gets its probe even
    when no request finishes to trigger a dispatch (every GPU was unhealthy)."""
    while True:
        await trio.sleep(1.0)
        pool.kick()


def stage_env(cfg: Config) -> StageEnv:
    return StageEnv(
        work_dir=str(cfg.work_dir),
        min_duration_s=cfg.stages.min_duration_s,
        allowed_languages=cfg.stages.allowed_languages,
        templates=dict(cfg.audit.prompts) or None,
        verdict_rules=cfg.stages.verdicts.rules(),
    )


def _build_engine(cfg: Config, app: App, seed: int | None) -> Engine:
    r = cfg.stages.retry
    return Engine(
        db=app.db, writer=app.writer, pool=app.pool, env=stage_env(cfg),
        retry=RetryPolicy(r.attempts, r.backoff_s, r.max_backoff_s),
        question_set_for=app.question_set_for,
        file_start_events=cfg.stages.file_start_events,
        progress_every_files=cfg.stages.progress_every_files,
        progress_every_s=cfg.stages.progress_every_s, seed=seed,
    )


def build_gpus(cfg: Config, *, clock: Callable[[], float]) -> list[Gpu]:
    """The engine's GPUs: one per configured host (the CPU when nothing is remote), with a
    lane of slots per capability server the host names besides its main `url`."""
    return [Gpu(h.name, h.slots, h.backends, h.breaker, lanes=dict(h.lanes), lane_of=dict(h.lane_of))
            for h in build_hosts(cfg, clock=clock)]


def freeze_startup_heap() -> None:
    """Take every object that exists now — modules, classes, the config, SQLAlchemy's
    tables — out of the garbage collector's full passes, for the process's life: they
    live as long as it does, and each full pass walked all of them again (~50 ms each,
    2–3 per 1,000 files on instant backends). Called once, by `cofid serve` and `cofid
    run-batch`, before the App opens; what is made after is collected as before."""
    gc.collect()
    gc.freeze()


@asynccontextmanager
async def open_app(cfg: Config, *, gpus: Sequence[Gpu] | None = None, inline_db: bool = False,
                   seed: int | None = None,
                   probe_results: Sequence[ProbeResult] = ()) -> AsyncIterator[App]:
    """Migrate, build and start everything; on exit drain the writer and close backends.
    `probe_results` (the start probe's, cofid.backends.probe) mark failing hosts unhealthy."""
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(
        cfg.database_url,
        pool_size=cfg.database.pool_size,
        connect_timeout_s=cfg.database.connect_timeout_s,
        unavailable_retry_s=cfg.database.unavailable_retry_s,
        inline=inline_db,
    )
    # At start an unreachable database is an error at once (systemd restarts the daemon);
    # once running, cofid waits up to database.unavailable_retry_s for it to come back.
    await db.run(upgrade, db.engine, retry_s=0)
    await db.write(lambda c: repo.sync_question_sets(c, cfg.all_question_sets()))
    bus = EventBus()
    writer = Writer(db, bus)
    await writer.start()
    gpu_list = list(gpus) if gpus is not None else build_gpus(cfg, clock=time.monotonic)
    pool = GpuPool(gpu_list)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(writer.run)
            ticker = trio.CancelScope()

            async def tick() -> None:
                with ticker:
                    await _health_ticker(pool)

            nursery.start_soon(tick)
            engine: Any = None  # the engine needs the App's question_set_for
            app = App(cfg, db, bus, writer, pool, engine, nursery)
            app.engine = _build_engine(cfg, app, seed)
            app.engine.start_problems = mark_unusable(gpu_list, probe_results)
            try:
                yield app
            finally:
                ticker.cancel()
                with trio.CancelScope(shield=True):
                    await writer.drain()
    finally:
        for g in gpu_list:
            with trio.CancelScope(shield=True):
                await g.backends.aclose()
        db.dispose()
