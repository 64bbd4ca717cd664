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
from datetime import date
from pathlib import Path
from typing import Any, Protocol

from cofid.domain import csv_ingest
from cofid.domain.events import Event
from cofid.domain.model import FILE_STAGES, EventStatus, EventType, Stage
from cofid.domain.pipeline import FileState, overall_status
from cofid.domain.questions import QuestionSet
from cofid.domain.triaging import CallWindow, TradeKey, TriagingRule, map_trades
from cofid.engine.plan_run import PlanRun
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
    def total_files(self) -> int: ...
    @property
    def pipeline(self) -> dict[str, bool]: ...
    @property
    def statuses(self) -> dict[Stage, Any]: ...


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


CRITICAL_SHARE = 0.1


def distribution_order(audio: list[Path], total_slots: int) -> list[Path]:
    """The order files flow in (fileDistribution order), by size as a proxy for duration.

    Shortest first minimizes the mean time to a finished call, but a long call fed last
    ends the batch late. So calls long enough to shape the end of the batch — larger than
    CRITICAL_SHARE of one slot's fair share of the whole batch — start first, largest
    first; the rest follow shortest first. (bench/schedule, seed 7: see the README.)
    """

    def size(p: Path) -> int:
        try:
            return p.stat().st_size
        except OSError:
            return 0

    sized = [(size(p), p.name, p) for p in audio]
    share = sum(s for s, _n, _p in sized) / max(1, total_slots)
    critical = sorted((x for x in sized if x[0] > CRITICAL_SHARE * share), key=lambda x: (-x[0], x[1]))
    rest = sorted((x for x in sized if x[0] <= CRITICAL_SHARE * share), key=lambda x: (x[0], x[1]))
    return [p for _s, _n, p in critical + rest]


@dataclass(frozen=True)
class Distribution:
    """Step 2: (audio name, path, gpu) per file, in distribution order, and its event."""

    files: list[tuple[str, str, str]]
    events: list[Event]


def distribution(batch_id: int, bi: BatchInput, gpu_for_file: Callable[[], str],
                 total_slots: int = 1) -> Distribution:
    ordered = distribution_order(bi.audio, total_slots)
    files = [(p.name, str(p.resolve()), gpu_for_file()) for p in ordered]
    return Distribution(files, [
        Event(batch_id=batch_id, stage=Stage.FILE_DISTRIBUTION, event_type=EventType.STAGE_COMPLETE,
              status=EventStatus.SUCCESS, total_files=len(files), processed_files=len(files),
              metadata={"gpus": _count_by_gpu(files)})
    ])


def _count_by_gpu(files: Sequence[tuple[str, str, str]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for _n, _p, g in files:
        out[g] = out.get(g, 0) + 1
    return out


def csv_event(batch_id: int, stage: Stage, parsed: csv_ingest.ParsedCsv[Any]) -> Event:
    """Steps 3–4: what ingesting a metadata CSV reports."""
    return Event(
        batch_id=batch_id, stage=stage, event_type=EventType.STAGE_COMPLETE,
        status=EventStatus.SUCCESS if not parsed.errors else EventStatus.FAILED,
        total_files=len(parsed.rows) + len(parsed.errors), processed_files=len(parsed.rows),
        error_message=(f"{len(parsed.errors)} row(s) refused; first: line {parsed.errors[0].line}: "
                       f"{parsed.errors[0].message}") if parsed.errors else None,
        metadata={"rows": len(parsed.rows), "errors": len(parsed.errors)},
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
        enabled=enabled,
    )


def today() -> date:
    return date.today()


def batch_state(batch: BatchView) -> str:
    """batchStatus.status for a batch, from its stage statuses and frozen plan."""
    return overall_status(batch.statuses, enabled_stages(batch.pipeline))


def finished_event(batch_id: int, status: str, total_files: int, failed: int) -> Event:
    """The pipeline's last word on a batch run: its status and how many files failed."""
    return Event(
        batch_id=batch_id, stage="pipeline", event_type="info",
        status="success" if status == "Completed" else "processing",
        total_files=total_files, processed_files=total_files,
        metadata={"status": status, "failed_files": failed},
    )
