"""The batch plan: a directory of calls → the seed's Steps 1–13, as a pure spec.

What a batch directory holds, and how it is read and refused, is in
:mod:`cofid.service.batch_dir`. This module says what the plan does with it: which optional
stages the batch runs (frozen in its batchStatus row at creation), the order its files
are distributed in, what each batch-level step (distribution, CSV ingest, triaging)
reports and writes, the PlanRun the engine streams the files through, and the batch's
overall status. It receives plain data and returns plain data; the service layer runs
each step in one transaction (cofid.service.batches) and the store spells the rows
(cofid.store.batches), so a restart skips what was done and the file stages resume by
their flags.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from cofid.domain import csv_ingest
from cofid.domain.events import Event, batch_status_event, stage_outcome
from cofid.domain.model import FILE_STAGES, BatchState, EventStatus, EventType, Stage
from cofid.domain.pipeline import FileState, status_walk
from cofid.domain.questions import QuestionSet
from cofid.domain.triaging import CallWindow, TradeKey, TriagingRule, map_trades
from cofid.engine.plan_run import PlanRun
from cofid.plans.feed_order import feed_order
from cofid.stages.llm2 import no_trade_answer_rows

AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg")
CALL_CSV = "callMetadata.csv"
TRADE_CSV = "tradeMetadata.csv"
MANIFEST = "batch.toml"

LoadPage = Callable[[int, int], Awaitable[list[FileState]]]


@dataclass
class BatchInput:
    """A batch directory as read (cofid.service.batch_dir.read_batch_dir)."""

    directory: Path
    audio: list[Path]
    process_id: int
    category_mapping_id: int
    call_rows: csv_ingest.ParsedCsv[csv_ingest.CallMetaRow] | None = None
    trade_rows: csv_ingest.ParsedCsv[csv_ingest.TradeRow] | None = None
    manifest: dict[str, Any] = field(default_factory=dict)
    # Entries refused at intake (cofid.service.intake): (name, reason), reported as error
    # events with the distribution; the other files make the batch.
    refused: list[tuple[str, str]] = field(default_factory=list)


class BatchPipelineSwitches(Protocol):
    """[pipelines.batch] of the configuration: which optional stages a batch may run."""

    @property
    def callmetadata(self) -> bool: ...
    @property
    def trademetadata(self) -> bool: ...
    @property
    def denoise(self) -> bool: ...
    @property
    def ivr(self) -> bool: ...
    @property
    def triaging(self) -> bool: ...
    @property
    def llm1(self) -> bool: ...
    @property
    def llm2(self) -> bool: ...


class BatchView(Protocol):
    """What the plan reads of a batch (cofid.store.batches.BatchRecord)."""

    @property
    def id(self) -> int: ...
    @property
    def status(self) -> str: ...
    @property
    def total_files(self) -> int: ...
    @property
    def pipeline(self) -> dict[str, bool]: ...
    @property
    def statuses(self) -> dict[Stage, Any]: ...


class PreparedView(Protocol):
    """What reads_directory reads of a batch (cofid.store.batches.BatchRecord)."""

    @property
    def pipeline(self) -> dict[str, bool]: ...
    @property
    def db_insertion_status(self) -> str: ...
    @property
    def callmetadata_status(self) -> int: ...
    @property
    def trademetadata_status(self) -> int: ...


def reads_directory(batch: PreparedView) -> bool:
    """Whether preparing `batch` again needs its directory: its distribution (Step 2) or
    a CSV step of its plan (Steps 3–4) is not done. Once they are, a resume reads nothing
    there: the batch is the files its distribution took (a file added to the directory
    later is not part of it), the file stages list them from the database, and triaging
    reads the CSVs' rows back from the database."""
    p = batch.pipeline
    return (batch.db_insertion_status != "Complete"
            or bool(p.get("callmetadata") and not batch.callmetadata_status)
            or bool(p.get("trademetadata") and not batch.trademetadata_status))


def batch_pipeline(p: BatchPipelineSwitches, bi: BatchInput) -> dict[str, bool]:
    """The optional stages this batch runs, frozen in batchStatus.pipeline at creation."""
    has_calls, has_trades = bi.call_rows is not None, bi.trade_rows is not None
    return {
        "callmetadata": p.callmetadata and has_calls,
        "trademetadata": p.trademetadata and has_trades,
        "denoise": p.denoise,
        "ivr": p.ivr,
        "triaging": p.triaging and p.callmetadata and p.trademetadata and has_calls and has_trades,
        "llm1": p.llm1,
        "llm2": p.llm2,
    }


def enabled_stages(pipeline: Mapping[str, bool]) -> tuple[Stage, ...]:
    always = {Stage.FILE_DISTRIBUTION, Stage.LID, Stage.STT}
    return tuple(s for s in Stage if s in always or pipeline.get(s.value, False))


def file_stages(enabled: tuple[Stage, ...]) -> tuple[Stage, ...]:
    return tuple(s for s in FILE_STAGES if s in enabled)


# ---- batch-level steps ---------------------------------------------------------------


def distribution_order(audio: list[Path], total_slots: int) -> list[Path]:
    """The order files flow in (fileDistribution order): by latest start time, shortest
    first, with size as a proxy for duration (cofid.plans.feed_order argues it)."""

    def size(p: Path) -> int:
        try:
            return p.stat().st_size
        except OSError:
            return 0

    return [audio[i] for i in feed_order([(size(p), p.name) for p in audio], total_slots)]


@dataclass(frozen=True)
class Distribution:
    """Step 2: (audio name, path, gpu) per file, in distribution order, the files refused
    (audio name, reason: they get a processing_logs row and no call), and the events."""

    files: list[tuple[str, str, str]]
    events: list[Event]
    refused: list[tuple[str, str]] = field(default_factory=list)


def _unreadable(p: Path) -> str | None:
    """Why a file cannot be distributed (gone or unreadable since the directory was
    read), or None."""
    try:
        with p.open("rb"):
            return None
    except OSError as exc:
        return f"{p.name}: cannot be read ({exc.strerror or type(exc).__name__})"


def distribution(batch_id: int, bi: BatchInput, gpu_for_file: Callable[[], str],
                 total_slots: int = 1, *, file_start_events: bool = True) -> Distribution:
    """Step 2 (batch) / Step 3 (upload): stage_start, then per file file_start (unless
    switched off, as the engine's) and file_complete, or an error event for a file that
    cannot be read, then stage_complete (cofid.domain.events.stage_outcome)."""
    stage = Stage.FILE_DISTRIBUTION
    ordered = distribution_order(bi.audio, total_slots)
    total = len(ordered)
    events = [Event(batch_id=batch_id, stage=stage, event_type=EventType.STAGE_START,
                    status=EventStatus.PROCESSING, total_files=total, processed_files=0)]
    files: list[tuple[str, str, str]] = []
    refused: list[tuple[str, str]] = []
    for p in ordered:
        why = _unreadable(p)
        gpu = None if why else gpu_for_file()
        if file_start_events:
            events.append(Event(batch_id=batch_id, stage=stage, event_type=EventType.FILE_START,
                                status=EventStatus.PROCESSING, file_name=p.name, gpu=gpu,
                                payload={"audio": p.name, "gpu": gpu}))
        if why is not None or gpu is None:
            refused.append((p.name, why or ""))
            events.append(Event(batch_id=batch_id, stage=stage, event_type=EventType.ERROR,
                                status=EventStatus.FAILED, file_name=p.name, error_message=why))
            continue
        files.append((p.name, str(p.resolve()), gpu))
        events.append(Event(batch_id=batch_id, stage=stage, event_type=EventType.FILE_COMPLETE,
                            status=EventStatus.SUCCESS, file_name=p.name, gpu=gpu))
    events.append(Event(
        batch_id=batch_id, stage=stage, event_type=EventType.STAGE_COMPLETE,
        status=stage_outcome(len(files), len(refused)), total_files=total,
        processed_files=total,
        metadata={"done": len(files), "failed": len(refused), "skipped": 0,
                  "gpus": _count_by_gpu(files)}))
    return Distribution(files, events, refused)


def _count_by_gpu(files: Sequence[tuple[str, str, str]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for _n, _p, g in files:
        out[g] = out.get(g, 0) + 1
    return out


def csv_event(batch_id: int, stage: Stage, parsed: csv_ingest.ParsedCsv[Any]) -> Event:
    """Steps 3–4: what ingesting a metadata CSV reports (a refused row makes it partial,
    not failed: cofid.domain.events.stage_outcome)."""
    ok, bad = len(parsed.rows), len(parsed.errors)
    return Event(
        batch_id=batch_id, stage=stage, event_type=EventType.STAGE_COMPLETE,
        status=stage_outcome(ok, bad), total_files=ok + bad, processed_files=ok + bad,
        error_message=(f"{bad} row(s) refused; first: line {parsed.errors[0].line}: "
                       f"{parsed.errors[0].message}") if parsed.errors else None,
        metadata={"rows": ok, "errors": bad},
    )


@dataclass(frozen=True)
class Triage:
    """Rule Engine Step 1's outcome: what the store writes and the event."""

    mappings: list[tuple[str, str, int | None, float]]  # trade id, audio, call id, distance
    trades_by_audio: dict[str, list[str]]
    answers: list[dict[str, Any]]  # 'No trade data found' for calls without trades
    events: list[Event]


def triage(batch_id: int, calls: list[CallWindow], trades: list[TradeKey],
           call_ids: dict[str, int], rule: TriagingRule, question_set: QuestionSet) -> Triage:
    """Map trades to calls; 'No trade data found' for the first questions of calls without."""
    mapped = map_trades(calls, trades, rule)
    by_audio: dict[str, list[str]] = {}
    for m in mapped:
        by_audio.setdefault(m.audio_name, []).append(m.trade_id)
    without = [cid for name, cid in sorted(call_ids.items()) if name not in by_audio]
    answers = [r for cid in without for r in no_trade_answer_rows(cid, question_set)]
    event = Event(
        batch_id=batch_id, stage=Stage.TRIAGING, event_type=EventType.STAGE_COMPLETE,
        status=EventStatus.SUCCESS, total_files=len(call_ids), processed_files=len(call_ids),
        metadata={"trades": len(trades), "mapped": len(mapped), "calls_with_trades": len(by_audio),
                  "calls_without_trades": len(without)},
    )
    return Triage(
        [(m.trade_id, m.audio_name, call_ids.get(m.audio_name), m.distance_s) for m in mapped],
        by_audio, answers, [event])


# ---- the file stages and the end ------------------------------------------------------


def batch_run(batch: BatchView, load_page: LoadPage, *, kind: str = "batch") -> PlanRun:
    enabled = enabled_stages(batch.pipeline)
    return PlanRun(
        kind=kind,
        batch_id=batch.id,
        stages=file_stages(enabled),
        total_files=batch.total_files,
        load_page=load_page,
        update_batch=True,
        batch_statuses=dict(batch.statuses),
        batch_status=batch.status,
        enabled=enabled,
    )


def business_day(zone: str, now_utc: datetime) -> date:
    """batchDate: the day it is in the business's zone (stages.default_zone) at
    `now_utc`, not the cofid host's local date."""
    return now_utc.replace(tzinfo=UTC).astimezone(ZoneInfo(zone)).date()


def batch_walk(batch: BatchView, *, to_completed: bool = False) -> list[BatchState]:
    """The batchStatus.status values a batch takes next, in order (domain.pipeline rule
    8), from its stage statuses and frozen plan; 'Completed' only at the run's end."""
    return status_walk(batch.status, batch.statuses, enabled_stages(batch.pipeline),
                       to_completed=to_completed)


status_event = batch_status_event  # batchStatus.status took a value of its walk


def finished_event(batch_id: int, status: str, total_files: int, failed: int) -> Event:
    """The pipeline's last word on a batch run: its status and how many files failed."""
    return Event(
        batch_id=batch_id, stage="pipeline", event_type="info",
        status="success" if status == "Completed" else "processing",
        total_files=total_files, processed_files=total_files,
        metadata={"status": status, "batch_status": status, "failed_files": failed},
    )
