"""Wiring: one App holds the database, event bus, writer, GPU pool and engine.

`cofid run-batch` and `cofid serve` both open an App; plans (batch, upload, reaudit) run
over its single engine, so every plan shares the GPU slots and the group-commit writer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from cofid.backends.factory import build_gpus
from cofid.config import Config
from cofid.domain.triaging import TriagingRule
from cofid.engine.bus import EventBus
from cofid.engine.gpus import GpuPool
from cofid.engine.plan_run import PlanRun, RetryPolicy
from cofid.engine.run import Engine
from cofid.engine.writer import Writer
from cofid.plans import batch as bp
from cofid.stages.file_stages import StageEnv
from cofid.store import repo
from cofid.store.db import Database
from cofid.store.migrate import upgrade

log = logging.getLogger("cofid")


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
    # Calls some task is working on (reaudits) and batches with a running plan: a reaudit
    # touching either is refused, unrelated work runs side by side.
    busy_calls: set[int] = field(default_factory=set)
    busy_batches: set[int] = field(default_factory=set)

    def question_set_for(self, process_id: int, category_mapping_id: int):
        qs = self.cfg.question_set(process_id, category_mapping_id)
        if qs is None:
            raise LookupError(
                f"no audit question set for process_id={process_id}, "
                f"category_mapping_id={category_mapping_id}"
            )
        return qs

    def known_question_sets(self) -> set[tuple[int, int]]:
        return {(q.process_id, q.category_mapping_id) for q in self.cfg.all_question_sets()}

    # ---- the batch plan ----------------------------------------------------------------

    async def read_batch(self, directory: Path, process_id: int | None = None,
                         category_mapping_id: int | None = None) -> bp.BatchInput:
        """The directory checked and its CSVs parsed (in a thread); BatchInputError if it
        cannot become a batch."""
        cfg = self.cfg
        return await trio.to_thread.run_sync(
            lambda: bp.read_batch_dir(
                directory.resolve(),
                default_zone=cfg.stages.default_zone,
                process_id=process_id or cfg.audit.default_process_id,
                category_mapping_id=category_mapping_id or cfg.audit.default_category_mapping_id,
                known_sets=self.known_question_sets(),
            )
        )

    async def prepare_batch(self, directory: Path, process_id: int | None = None,
                            category_mapping_id: int | None = None, *,
                            batch_input: bp.BatchInput | None = None) -> int:
        """Steps 1–4 and 9 (idempotent): the batch row, distribution, CSVs, triaging.

        Returns the batch id. A directory that already became a batch is resumed.
        `batch_input` is the directory as read_batch read it, when the caller has it.
        """
        cfg = self.cfg
        directory = directory.resolve()
        bi = batch_input or await self.read_batch(directory, process_id, category_mapping_id)
        existing = await self.db.read(lambda c: repo.batch_by_source(c, str(directory)))
        if existing is None:
            pipeline = bp.batch_pipeline(cfg, bi)

            def create(conn):
                return repo.create_batch(
                    conn, batch_date=bp.today(), source="batch", source_dir=str(directory),
                    process_id=bi.process_id, category_mapping_id=bi.category_mapping_id,
                    pipeline=pipeline,
                )

            batch_id = await self._retry_unique(lambda: self.db.write(create))
            log.info("batch %d created for %s (%d files)", batch_id, directory, len(bi.audio))
        else:
            batch_id = existing.id
            log.info("resuming batch %d for %s", batch_id, directory)
        row = await self.db.read(lambda c: repo.get_batch(c, batch_id))
        pipeline = row.pipeline or {}
        if row.dbInsertionStatus != "Complete":
            await self._batch_step(batch_id, lambda c: bp.distribution_step(c, batch_id, bi, self._next_gpu, self.total_slots))
        if pipeline.get("callmetadata") and not row.callmetadataStatus:
            await self._batch_step(batch_id, lambda c: bp.callmetadata_step(c, batch_id, bi.call_rows))
        if pipeline.get("trademetadata") and not row.trademetadataStatus:
            await self._batch_step(batch_id, lambda c: bp.trademetadata_step(c, batch_id, bi.trade_rows))
        if pipeline.get("triaging") and row.triagingStatus != "Complete":
            rule = TriagingRule(**vars(cfg.stages.triaging))
            qs = self.question_set_for(bi.process_id, bi.category_mapping_id)
            await self._batch_step(batch_id, lambda c: bp.triaging_step(c, batch_id, rule, qs))
        return batch_id

    @property
    def total_slots(self) -> int:
        return sum(g.slots for g in self.pool.gpus)

    def _next_gpu(self) -> str:
        return self.pool.round_robin().name

    async def _retry_unique(self, attempt, attempts: int = 20):
        """Run `attempt()` (a transaction that takes the day's next batchNumber) again when
        a concurrent one took the same number (the unique key refused it)."""
        import sqlalchemy as sa

        for i in range(attempts):
            try:
                return await attempt()
            except sa.exc.IntegrityError:
                if i == attempts - 1:
                    raise
                await trio.sleep(0.01 * (i + 1))
        raise AssertionError("unreachable")

    async def _batch_step(self, batch_id: int, step) -> None:
        """Run a batch-level step, its status flag, the overall status and its events in
        one transaction (through the writer, which numbers the events)."""

        def step_and_status(conn):
            events = step(conn)
            row = repo.get_batch(conn, batch_id)
            repo.update_batch(conn, batch_id, status=bp.batch_state(row))
            return events

        await self.writer.run_step(step_and_status)

    async def prepare_upload(self, stored: list[Path], process_id: int, category_mapping_id: int,
                             *, also=None) -> int:
        """The upload plan's Steps 2–3: a new batch for today (next number, race-free) and
        its distribution, in ONE transaction with `also(conn, batch_id)` (the task row): a
        crash leaves the upload either fully registered or not at all. No CSVs, triaging,
        denoise or IVR (the seed's upload pipeline)."""
        self.question_set_for(process_id, category_mapping_id)
        pipeline = {"llm1": self.cfg.pipelines.upload.llm1, "llm2": self.cfg.pipelines.upload.llm2}
        bi = bp.BatchInput(stored[0].parent, list(stored), process_id, category_mapping_id)
        created: list[int] = []

        def step(conn):
            batch_id = repo.create_batch(
                conn, batch_date=bp.today(), source="upload", source_dir=str(stored[0].parent),
                process_id=process_id, category_mapping_id=category_mapping_id, pipeline=pipeline,
            )
            events = bp.distribution_step(conn, batch_id, bi, self._next_gpu, self.total_slots)
            if also is not None:
                also(conn, batch_id)
            created[:] = [batch_id]
            return events

        await self._retry_unique(lambda: self.writer.run_step(step))
        return created[0]

    def reserve_calls(self, req) -> None:
        """Claim a reaudit's calls, or raise CallsBusy naming those another task holds."""
        from cofid.plans.reaudit import CallsBusy

        busy = set(req.call_ids) & self.busy_calls
        if busy or set(req.batch_ids) & self.busy_batches:
            raise CallsBusy(
                sorted({req.name_of_call[i] for i in busy}) if busy else req.matched_names
            )
        self.busy_calls |= set(req.call_ids)

    def release_calls(self, req) -> None:
        self.busy_calls -= set(req.call_ids)

    async def run_batch(self, batch_id: int, on_change=None) -> PlanRun:
        """Steps 5–13: stream the files through the file stages to the end."""
        row = await self.db.read(lambda c: repo.get_batch(c, batch_id))

        async def load_page(after: int, limit: int):
            return await self.db.read(
                lambda c: repo.load_files(c, batch_id, after_fd_id=after, limit=limit)
            )

        run = bp.batch_run(row, bp.statuses_of(row), load_page)
        run.on_change = on_change
        self.runs[batch_id] = run
        self.busy_batches.add(batch_id)
        try:
            await self.engine.run(run)
        finally:
            self.runs.pop(batch_id, None)
            self.busy_batches.discard(batch_id)
        if not run.draining:
            await self._finish_batch(batch_id, run)
        return run

    async def _finish_batch(self, batch_id: int, run: PlanRun) -> None:
        from cofid.domain.events import Event
        from cofid.engine.writer import utcnow

        failed = sum(c.failed for c in run.counters.values())

        def finish(conn):
            row = repo.get_batch(conn, batch_id)
            status = bp.batch_state(row)
            if row.completedAt is not None:
                return []  # finished before (a resumed run of a completed batch)
            values: dict[str, Any] = {"status": status}
            if status == "Completed":
                values["completedAt"] = utcnow()
            repo.update_batch(conn, batch_id, **values)
            return [Event(
                batch_id=batch_id, stage="pipeline", event_type="info",
                status="success" if status == "Completed" else "processing",
                total_files=run.total_files, processed_files=run.total_files,
                metadata={"status": status, "failed_files": failed},
            )]

        await self.writer.run_step(finish)


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
    )


@asynccontextmanager
async def open_app(cfg: Config, *, gpus=None, inline_db: bool = False, seed: int | None = None) -> AsyncIterator[App]:
    """Migrate, build and start everything; on exit drain the writer and close backends."""
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
    gpu_list = gpus if gpus is not None else build_gpus(cfg, clock=time.monotonic)
    pool = GpuPool(gpu_list)
    retry = RetryPolicy(cfg.stages.retry.attempts, cfg.stages.retry.backoff_s, cfg.stages.retry.max_backoff_s)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(writer.run)
            ticker = trio.CancelScope()

            async def tick() -> None:
                with ticker:
                    await _health_ticker(pool)

            nursery.start_soon(tick)
            app = App(cfg, db, bus, writer, pool, None, nursery)  # type: ignore[arg-type]
            app.engine = Engine(
                db=db, writer=writer, pool=pool, env=stage_env(cfg), retry=retry,
                question_set_for=app.question_set_for,
                file_start_events=cfg.stages.file_start_events,
                progress_every_files=cfg.stages.progress_every_files,
                progress_every_s=cfg.stages.progress_every_s, seed=seed,
            )
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
