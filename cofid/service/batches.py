"""The batch use case: a directory becomes a batch and runs to the end.

`cofid run-batch`, the directory watcher and the StartBatch RPC all come here:
:func:`prepare_batch` (Steps 1–4 and 9, idempotent) and :func:`run_batch` (Steps 5–13) for
the command line, :func:`start_batch` (the same two as a background task, with the rules
below) for the daemon.

StartBatch rules:
* a directory being started (queued or running) is refused (BatchExists);
* a directory that already is a Completed batch, or whose batch is running, is refused
  (BatchExists) naming the batch;
* a directory outside the batch roots once resolved, a root itself, or a name that
  cofid.service.intake refuses is refused (InvalidRequest); the resolved path is the batch;
* a directory that cannot become a batch is refused (BatchInputError; UnknownQuestionSet
  for a question set the configuration lacks), before anything is written;
* a directory whose batch is unfinished and not running is resumed by a new task; the
  directory is read again only while its distribution or a CSV step is not done
  (cofid.plans.batch.reads_directory).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import trio

from cofid.domain import csv_ingest
from cofid.domain.events import Event
from cofid.domain.evidence_bundle import FileDigest
from cofid.domain.model import Stage
from cofid.domain.pipeline import FileState
from cofid.domain.questions import QuestionSet
from cofid.domain.triaging import TriagingRule
from cofid.domain.verdict_fields import VerdictRules
from cofid.domain.verdicts import DEFAULT_RULES
from cofid.engine.plan_run import PlanRun
from cofid.plans import batch as bp
from cofid.service import cancel, intake
from cofid.service.batch_dir import read_batch_dir
from cofid.service.context import AppContext, ServiceContext
from cofid.service.digests import digests_of
from cofid.service.errors import BatchExists, BatchInputError, InvalidRequest
from cofid.service.tasks import LiveTask, TaskRecord
from cofid.store import batches as batch_rows
from cofid.store import pending
from cofid.store import verdicts as verdict_rows
from cofid.store.types import Connection, DuplicateKey
from cofid.store.writes import utcnow

log = logging.getLogger("cofid")

T = TypeVar("T")
BatchStep = Callable[[Connection], list[Event]]


@dataclass(frozen=True)
class TaskRef:
    """A task accepted: its id, its state, its batch (0 until it has one)."""

    task_id: str
    state: str
    batch_id: int


async def read_batch(app: AppContext, directory: Path, process_id: int | None = None,
                     category_mapping_id: int | None = None) -> bp.BatchInput:
    """The directory checked and its CSVs parsed (in a thread); BatchInputError if it
    cannot become a batch."""
    cfg = app.cfg
    known = app.known_question_sets()
    target = intake.resolved(directory)
    if target is None:
        raise BatchInputError(f"{intake.shown(str(directory))}: a symlink loop")
    return await trio.to_thread.run_sync(
        lambda: read_batch_dir(
            target,
            default_zone=cfg.stages.default_zone,
            process_id=process_id or cfg.audit.default_process_id,
            category_mapping_id=category_mapping_id or cfg.audit.default_category_mapping_id,
            known_sets=known,
            # Looked up at each read: a token file replaced on SIGHUP counts at once.
            secrets=intake.identities(intake.secret_paths(cfg)),
        )
    )


async def retry_unique(attempt: Callable[[], Awaitable[T]], attempts: int = 20) -> T:
    """Run `attempt()` (a transaction that takes the day's next batchNumber) again when
    a concurrent one took the same number (the unique key refused it)."""
    for i in range(attempts):
        try:
            return await attempt()
        except DuplicateKey:
            if i == attempts - 1:
                raise
            await trio.sleep(0.01 * (i + 1))
    raise AssertionError("unreachable")


async def _batch_step(app: AppContext, batch_id: int, step: BatchStep) -> None:
    """Run a batch-level step, its status flag, the overall status and its events in
    one transaction (through the writer, which numbers the events)."""

    def step_and_status(conn: Connection) -> list[Event]:
        return step(conn) + walk_status(conn, batch_id)

    await app.writer.run_step(step_and_status)


def walk_status(conn: Connection, batch_id: int) -> list[Event]:
    """batchStatus.status through every value now due (cofid.plans.batch.batch_walk),
    'Completed' excepted (the run's end writes it), an event for each."""
    rec = batch_rows.get(conn, batch_id)
    assert rec is not None
    events = []
    for status in bp.batch_walk(rec):
        batch_rows.set_status(conn, batch_id, status)
        events.append(bp.status_event(batch_id, status))
    return events


# The batch-level steps: each runs inside one transaction (the writer's run_step), does
# what the plan says with the rows the store spells, and returns the events to commit.


def distribution_step(conn: Connection, batch_id: int, bi: bp.BatchInput,
                      gpu_for_file: Callable[[], str], total_slots: int = 1, *,
                      file_start_events: bool = True,
                      digests: Mapping[str, FileDigest] | None = None) -> list[Event]:
    """Step 2: fileDistribution and call rows for every file, in distribution order, and
    the recordingDigest of each file `digests` holds (hashed before the transaction)."""
    d = bp.distribution(batch_id, bi, gpu_for_file, total_slots,
                        file_start_events=file_start_events)
    batch_rows.distribute(conn, batch_id, d.files, process_id=bi.process_id,
                          category_mapping_id=bi.category_mapping_id, refused=d.refused,
                          digests=digests)
    # Entries refused at intake are not part of the batch: reported after stage_start.
    refused = [intake.refused_event(batch_id, n, why) for n, why in bi.refused]
    return d.events[:1] + refused + d.events[1:]


def callmetadata_step(conn: Connection, batch_id: int,
                      parsed: csv_ingest.ParsedCsv[csv_ingest.CallMetaRow]) -> list[Event]:
    """Step 3: callMetadata.csv's rows and refused lines."""
    batch_rows.insert_call_metadata(conn, batch_id, parsed, bp.CALL_CSV)
    return [bp.csv_event(batch_id, Stage.CALLMETADATA, parsed)]


def trademetadata_step(conn: Connection, batch_id: int,
                       parsed: csv_ingest.ParsedCsv[csv_ingest.TradeRow],
                       rules: VerdictRules = DEFAULT_RULES) -> list[Event]:
    """Step 4: tradeMetadata.csv's rows and refused lines; every trade's verdict row
    (pending until triaging maps it; a batch without a trade file gets none)."""
    batch_rows.insert_trade_metadata(conn, batch_id, parsed, bp.TRADE_CSV)
    verdict_rows.recompute(conn, batch_id, rules)
    return [bp.csv_event(batch_id, Stage.TRADEMETADATA, parsed)]


def triaging_step(conn: Connection, batch_id: int, rule: TriagingRule,
                  question_set: QuestionSet, rules: VerdictRules = DEFAULT_RULES) -> list[Event]:
    """Step 9 (Rule Engine Step 1): trades mapped to calls, 'No trade data found', and
    every trade's verdict (no_call, or its call's: pending until the call decides it)."""
    got = batch_rows.triaging_input(conn, batch_id)
    tr = bp.triage(batch_id, got.calls, got.trades, got.call_ids, rule, question_set)
    batch_rows.write_triaging(conn, batch_id, mappings=tr.mappings,
                              trades_by_audio=tr.trades_by_audio, answers=tr.answers)
    verdict_rows.recompute(conn, batch_id, rules)
    return tr.events


async def prepare_batch(app: AppContext, directory: Path, process_id: int | None = None,
                        category_mapping_id: int | None = None, *,
                        batch_input: bp.BatchInput | None = None) -> int:
    """Steps 1–4 and 9 (idempotent): the batch row, distribution, CSVs, triaging.

    Returns the batch id. A directory that already became a batch is resumed; once its
    distribution and CSV steps are done the directory is not read again
    (cofid.plans.batch.reads_directory): the batch is the files its distribution took, and
    the file stages list them from the database.
    `batch_input` is the directory as read_batch read it, when the caller has it.
    """
    directory = directory.resolve()
    existing = await app.db.read(lambda c: batch_rows.by_source(c, str(directory)))
    bi = batch_input
    if bi is None and (existing is None or bp.reads_directory(existing)):
        bi = await read_batch(app, directory, process_id, category_mapping_id)
    elif bi is None and not await trio.to_thread.run_sync(directory.is_dir):
        raise BatchInputError(f"{directory}: no such directory")
    if existing is None:
        assert bi is not None
        pipeline = bp.batch_pipeline(app.cfg.pipelines.batch, bi)

        def create(conn: Connection) -> int:
            return batch_rows.create(
                conn, batch_date=bp.business_day(app.cfg.stages.default_zone, utcnow()),
                source="batch", source_dir=str(directory),
                process_id=bi.process_id, category_mapping_id=bi.category_mapping_id,
                pipeline=pipeline,
            )

        batch_id = await retry_unique(lambda: app.db.write(create))
        log.info("batch %d created for %s (%d files)", batch_id, directory, len(bi.audio))
    else:
        batch_id = existing.id
        log.info("resuming batch %d for %s", batch_id, directory)
    rec = await app.db.read(lambda c: batch_rows.get(c, batch_id))
    assert rec is not None
    pipeline = rec.pipeline
    # The steps are looked up when they run (a crash test wraps them to kill mid-batch).
    if rec.db_insertion_status != "Complete":
        assert bi is not None  # reads_directory
        # The recordings as first taken in: hashed in worker threads, outside the step's
        # transaction; written with the distribution (recordingDigest, never replaced).
        digests = await digests_of(bi.audio)
        await _batch_step(app, batch_id, lambda c: distribution_step(
            c, batch_id, bi, app.next_gpu, app.total_slots,
            file_start_events=app.cfg.stages.file_start_events, digests=digests))
    if pipeline.get("callmetadata") and not rec.callmetadata_status:
        assert bi is not None
        call_rows = _still_there(bi.call_rows, directory, bp.CALL_CSV)
        await _batch_step(app, batch_id, lambda c: callmetadata_step(c, batch_id, call_rows))
    if pipeline.get("trademetadata") and not rec.trademetadata_status:
        assert bi is not None
        trade_rows = _still_there(bi.trade_rows, directory, bp.TRADE_CSV)
        await _batch_step(app, batch_id, lambda c: trademetadata_step(
            c, batch_id, trade_rows, app.cfg.stages.verdicts.rules()))
    if pipeline.get("triaging") and rec.triaging_status != "Complete":
        rule = TriagingRule(**vars(app.cfg.stages.triaging))
        qs = app.question_set_for(rec.process_id, rec.category_mapping_id)
        vr = app.cfg.stages.verdicts.rules()
        await _batch_step(app, batch_id, lambda c: triaging_step(c, batch_id, rule, qs, vr))
    return batch_id


def _still_there(parsed: T | None, directory: Path, name: str) -> T:
    """A CSV the batch was created with, read again on resume."""
    if parsed is None:
        raise BatchInputError(f"{directory}: {name} is gone, but the batch was created "
                              f"with it; put it back to resume")
    return parsed


async def run_batch(app: AppContext, batch_id: int,
                    on_change: Callable[[PlanRun], None] | None = None, *,
                    task_id: str = "", kind: str = "batch") -> PlanRun:
    """Steps 5–13: stream the files through the file stages to the end. The batch is
    claimed for task `task_id` meanwhile (CallsBusy while a reaudit holds one of its
    calls: cofid.service.reservations)."""
    rec = await app.db.read(lambda c: batch_rows.get(c, batch_id))
    assert rec is not None, f"no batch {batch_id}"

    async def load_page(after: int, limit: int) -> list[FileState]:
        return await app.db.read(lambda c: pending.load_pending(
            c, batch_id, run.stages, after_fd_id=after, limit=limit))

    run = bp.batch_run(rec, load_page)
    # Files no stage needs any more (finished before a restart) are counted, not fed:
    # the engine only streams the files that still have work (cofid.store.pending).
    finished = await app.db.read(lambda c: pending.finished_counts(c, batch_id, run.stages))
    if run.count_unfed(finished):
        log.info("batch %d: %d of %d files need no more work", batch_id, run.unfed,
                 run.total_files)
    run.on_change = on_change
    if on_change is not None:
        on_change(run)
    # A batch begun before the verdict table existed gets its trades' verdicts first.
    rules = app.cfg.stages.verdicts.rules()
    await app.db.write(lambda c: verdict_rows.backfill(c, batch_id, rules))
    with app.reservations.batch_running(batch_id, task_id, kind):
        app.runs[batch_id] = run
        try:
            await app.engine.run(run)
        finally:
            app.runs.pop(batch_id, None)
    if not run.draining:
        await _finish_batch(app, batch_id, run)
    return run


async def _finish_batch(app: AppContext, batch_id: int, run: PlanRun) -> None:
    # Every failed file of the batch, a restart included (a file that failed before it
    # counts as failed_before at its stage): the last word says how many failed.
    failed = sum(c.failed + c.failed_before for c in run.counters.values())

    def finish(conn: Connection) -> list[Event]:
        rec = batch_rows.get(conn, batch_id)
        assert rec is not None
        if rec.completed_at is not None:
            return []  # finished before (a resumed run of a completed batch)
        events = []
        status = rec.status
        for status in bp.batch_walk(rec, to_completed=True):
            done = status == "Completed"
            batch_rows.set_status(conn, batch_id, status, completed_at=utcnow() if done else None)
            if not done:
                events.append(bp.status_event(batch_id, status))
        return [*events, bp.finished_event(batch_id, status, run.total_files, failed)]

    await app.writer.run_step(finish)


# ---- the daemon's form: a background task -----------------------------------------------


async def batch_task_body(svc: ServiceContext, rec: TaskRecord, live: LiveTask, *,
                          directory: str | None, batch_id: int | None,
                          batch_input: bp.BatchInput | None = None) -> PlanRun:
    """A batch or upload task's work: prepare (a directory), then run to the end."""
    app = svc.app
    known = batch_id
    try:
        if known is None and directory is not None:
            existing = await app.db.read(
                lambda c: batch_rows.by_source(c, str(Path(directory))))
            known = existing.id if existing is not None else None
        if known is not None:
            # Before prepare touches the batch (the accepting call claimed it already).
            with app.reservations.batch_running(known, rec.id, rec.kind):
                await cancel.uncancel(app, known, rec.id)
        if batch_id is None or directory is not None:
            assert directory is not None
            batch_id = await prepare_batch(app, Path(directory), batch_input=batch_input)
            batch_input = None  # the run reads its files from the database, not this
            await svc.tasks.update(rec.id, batch_id=batch_id)

        def on_change(run: PlanRun) -> None:
            live.run = run

        return await run_batch(app, batch_id, on_change=on_change, task_id=rec.id,
                               kind=rec.kind)
    finally:
        for held in (known, batch_id):
            if held is not None:
                app.reservations.release_batch(held, rec.id)  # the accepting call's claim


async def start_batch(svc: ServiceContext, directory: str, process_id: int | None,
                      category_mapping_id: int | None) -> TaskRef:
    """StartBatch (rules in the module docstring): a queued task, or a ServiceError."""
    app = svc.app
    problem = intake.directory_problem(directory, app.cfg.watch.roots)
    if problem is not None:
        raise InvalidRequest(problem)
    # The resolved path is the batch's identity (batchStatus.sourceKey): a symlink and
    # its target are one batch.
    target = intake.resolved(Path(directory))
    if target is None:
        raise InvalidRequest(f"directory '{intake.shown(directory)}' is a symlink loop")
    directory = str(target)
    if directory in svc.starting_dirs:
        tid = svc.starting_dirs[directory]
        raise BatchExists(f"{directory}: a batch for this directory is already queued "
                          f"or running (task_id {tid})")
    existing = await app.db.read(lambda c: batch_rows.by_source(c, directory))
    if existing is not None and existing.status == "Completed":
        raise BatchExists(f"{directory}: already processed as batch_id {existing.id} "
                          f"(status Completed)")
    if existing is not None and existing.id in app.reservations.batches:
        raise BatchExists(f"{directory}: batch_id {existing.id} is running")
    if existing is not None:
        app.reservations.check_batch(existing.id)  # a reaudit holds one of its calls
    batch_input = None  # a batch past its directory's steps resumes from the database
    if existing is None or bp.reads_directory(existing):
        batch_input = await read_batch(app, Path(directory), process_id, category_mapping_id)
    if directory in svc.starting_dirs:  # raced while reading the directory
        raise BatchExists(f"{directory}: a batch for this directory is already queued "
                          f"(task_id {svc.starting_dirs[directory]})")
    request = {"directory": directory, "process_id": process_id,
               "category_mapping_id": category_mapping_id}
    rec = svc.tasks.new_record("batch", request,
                               batch_id=existing.id if existing is not None else None)
    if existing is not None:  # claimed before the row exists: a refusal leaves no task
        app.reservations.hold_batch(existing.id, rec.id, "batch")
    try:
        await svc.tasks.add(rec)
    except BaseException:
        if existing is not None:
            app.reservations.release_batch(existing.id, rec.id)
        raise
    svc.starting_dirs[directory] = rec.id
    # Handed over, not captured: the task keeps its body to the end, and a 100,000-file
    # listing (its Paths) is ~40 MB the run does not need once distributed.
    handed = [batch_input]
    svc.runner.spawn(rec, lambda live: batch_task_body(
        svc, rec, live, directory=directory, batch_id=None, batch_input=handed.pop()))
    return TaskRef(task_id=rec.id, state=rec.state, batch_id=rec.batch_id or 0)
