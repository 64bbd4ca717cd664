"""The batch plan: a directory of calls → the seed's Steps 1–13.

Batch directory format (also in the README):
  *.wav *.flac *.mp3 *.ogg   the calls; the file name is the call's audioName
  callMetadata.csv           optional; audioName, clientCode, agentId, callStartTime, callEndTime
  tradeMetadata.csv          optional; tradeId, clientCode, symbol, side, quantity, price, tradeTime
  batch.toml                 optional manifest: process_id, category_mapping_id (the audit
                             question set; default from [audit] in the configuration)

Everything that can be refused is checked before the first row is written (the directory,
the manifest, the CSV headers), so a fatal error changes nothing. Batch-level steps
(distribution, CSV ingest, triaging) each commit in one transaction together with their
batchStatus flag, so a restart skips what was done; the file stages resume by their flags.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from cofid.domain import csv_ingest
from cofid.domain.events import Event
from cofid.domain.model import FILE_STAGES, EventStatus, EventType, Stage, StageStatus
from cofid.domain.pipeline import FLAG_STATUS_COLUMN, STATUS_COLUMN, overall_status
from cofid.domain.triaging import CallWindow, TradeKey, TriagingRule, map_trades
from cofid.engine.plan_run import PlanRun
from cofid.stages.file_stages import no_trade_answer_rows
from cofid.store import repo
from cofid.store import tables as t
from cofid.store.db import insert_rows

AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg")
CALL_CSV = "callMetadata.csv"
TRADE_CSV = "tradeMetadata.csv"
MANIFEST = "batch.toml"


class BatchInputError(ValueError):
    """The directory cannot become a batch; the message says why."""


class UnknownQuestionSet(BatchInputError):
    """The batch asks for an audit question set the configuration does not have."""


@dataclass
class BatchInput:
    directory: Path
    audio: list[Path]
    process_id: int
    category_mapping_id: int
    call_rows: csv_ingest.ParsedCsv | None = None
    trade_rows: csv_ingest.ParsedCsv | None = None
    manifest: dict[str, Any] = field(default_factory=dict)


def read_batch_dir(directory: Path, *, default_zone: str, process_id: int,
                   category_mapping_id: int, known_sets: set[tuple[int, int]]) -> BatchInput:
    d = directory
    if not d.exists():
        raise BatchInputError(f"{d}: no such directory")
    if not d.is_dir():
        raise BatchInputError(f"{d}: not a directory")
    try:
        entries = sorted(p for p in d.iterdir() if p.is_file())
    except PermissionError as e:
        raise BatchInputError(f"{d}: cannot read the directory ({e.strerror})") from None
    audio = [p for p in entries if p.suffix.lower() in AUDIO_SUFFIXES and not p.name.startswith(".")]
    if not audio:
        raise BatchInputError(
            f"{d}: no audio files (expected {', '.join(AUDIO_SUFFIXES)}) — not a batch directory"
        )
    too_long = [p.name for p in audio if len(p.name) > 255]
    if too_long:
        raise BatchInputError(f"{d}: audio file name over 255 characters: {too_long[0][:80]}…")
    manifest: dict[str, Any] = {}
    if (d / MANIFEST).exists():
        try:
            manifest = tomllib.loads((d / MANIFEST).read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise BatchInputError(f"{d / MANIFEST}: not valid TOML: {e}") from None
        unknown = set(manifest) - {"process_id", "category_mapping_id"}
        if unknown:
            raise BatchInputError(
                f"{d / MANIFEST}: unknown key {sorted(unknown)[0]!r} (allowed: process_id, category_mapping_id)"
            )
        for k in ("process_id", "category_mapping_id"):
            if k in manifest and (not isinstance(manifest[k], int) or isinstance(manifest[k], bool)):
                raise BatchInputError(f"{d / MANIFEST}: {k} must be an integer, got {manifest[k]!r}")
    pid = manifest.get("process_id", process_id)
    cmid = manifest.get("category_mapping_id", category_mapping_id)
    if (pid, cmid) not in known_sets:
        raise UnknownQuestionSet(
            f"{d}: no audit question set for process_id={pid}, category_mapping_id={cmid} "
            f"(configured: {', '.join(f'{a}/{b}' for a, b in sorted(known_sets))})"
        )
    bi = BatchInput(d, audio, pid, cmid, manifest=manifest)
    names = {p.name for p in audio}
    try:
        if (d / CALL_CSV).exists():
            bi.call_rows = csv_ingest.parse_call_metadata(
                (d / CALL_CSV).read_bytes(), default_zone=default_zone, known_audio=names
            )
        if (d / TRADE_CSV).exists():
            bi.trade_rows = csv_ingest.parse_trade_metadata(
                (d / TRADE_CSV).read_bytes(), default_zone=default_zone
            )
    except csv_ingest.CsvHeaderError as e:
        raise BatchInputError(f"{d}: {e}") from None
    return bi


def batch_pipeline(cfg, bi: BatchInput) -> dict[str, bool]:
    """The optional stages this batch runs, frozen in batchStatus.pipeline at creation."""
    p = cfg.pipelines.batch
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


def enabled_stages(pipeline: dict[str, bool]) -> tuple[Stage, ...]:
    always = {Stage.FILE_DISTRIBUTION, Stage.LID, Stage.STT}
    return tuple(s for s in Stage if s in always or pipeline.get(s.value, False))


def file_stages(enabled: tuple[Stage, ...]) -> tuple[Stage, ...]:
    return tuple(s for s in FILE_STAGES if s in enabled)


def statuses_of(row) -> dict[Stage, Any]:
    m = row._mapping
    out: dict[Stage, Any] = {s: m[c] for s, c in STATUS_COLUMN.items()}
    out.update({s: m[c] for s, c in FLAG_STATUS_COLUMN.items()})
    return out


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


def distribution_step(conn, batch_id: int, bi: BatchInput, gpu_for_file, total_slots: int = 1) -> list[Event]:
    ordered = distribution_order(bi.audio, total_slots)
    files = [(p.name, str(p.resolve()), gpu_for_file()) for p in ordered]
    repo.distribute(conn, batch_id, files, process_id=bi.process_id,
                    category_mapping_id=bi.category_mapping_id)
    return [
        Event(batch_id=batch_id, stage=Stage.FILE_DISTRIBUTION, event_type=EventType.STAGE_COMPLETE,
              status=EventStatus.SUCCESS, total_files=len(files), processed_files=len(files),
              metadata={"gpus": _count_by_gpu(files)})
    ]


def _count_by_gpu(files) -> dict[str, int]:
    out: dict[str, int] = {}
    for _n, _p, g in files:
        out[g] = out.get(g, 0) + 1
    return out


def _row_error_logs(batch_id: int, stage: str, file_name: str, errors) -> list[dict]:
    return [
        {
            "batch_id": batch_id, "call_id": None, "file_name": file_name, "stage_name": stage,
            "status": "failed", "attempt": 1,
            "error_message": f"line {e.line}: {e.message}",
            "details": {"line": e.line, "column": e.column, "value": (e.value or "")[:500]},
            "duration_ms": None,
        }
        for e in errors
    ]


def callmetadata_step(conn, batch_id: int, parsed: csv_ingest.ParsedCsv) -> list[Event]:
    insert_rows(conn, t.call_metadata, [
        {"batchId": batch_id, "audioName": r.audio_name, "clientCode": r.client_code,
         "agentId": r.agent_id, "callStartTime": r.call_start, "callEndTime": r.call_end,
         "extra": r.extra or None}
        for r in parsed.rows
    ])
    insert_rows(conn, t.processing_logs, _row_error_logs(batch_id, "callmetadata", CALL_CSV, parsed.errors))
    repo.update_batch(conn, batch_id, callmetadataStatus=1)
    return [_csv_event(batch_id, Stage.CALLMETADATA, parsed)]


def trademetadata_step(conn, batch_id: int, parsed: csv_ingest.ParsedCsv) -> list[Event]:
    insert_rows(conn, t.trade_metadata, [
        {"batchId": batch_id, "tradeId": r.trade_id, "clientCode": r.client_code,
         "symbol": r.symbol, "side": r.side, "quantity": r.quantity, "price": r.price,
         "tradeTime": r.trade_time, "audioName": None, "extra": r.extra or None}
        for r in parsed.rows
    ])
    insert_rows(conn, t.processing_logs, _row_error_logs(batch_id, "trademetadata", TRADE_CSV, parsed.errors))
    repo.update_batch(conn, batch_id, trademetadataStatus=1)
    return [_csv_event(batch_id, Stage.TRADEMETADATA, parsed)]


def _csv_event(batch_id: int, stage: Stage, parsed) -> Event:
    return Event(
        batch_id=batch_id, stage=stage, event_type=EventType.STAGE_COMPLETE,
        status=EventStatus.SUCCESS if not parsed.errors else EventStatus.FAILED,
        total_files=len(parsed.rows) + len(parsed.errors), processed_files=len(parsed.rows),
        error_message=(f"{len(parsed.errors)} row(s) refused; first: line {parsed.errors[0].line}: "
                       f"{parsed.errors[0].message}") if parsed.errors else None,
        metadata={"rows": len(parsed.rows), "errors": len(parsed.errors)},
    )


def triaging_step(conn, batch_id: int, rule: TriagingRule, question_set) -> list[Event]:
    """Rule Engine Step 1: map trades to calls; 'No trade data found' for calls without."""
    cm, tm, c = t.call_metadata, t.trade_metadata, t.call
    calls = [
        CallWindow(r.audioName, r.clientCode, r.callStartTime, r.callEndTime)
        for r in conn.execute(sa.select(cm).where(cm.c.batchId == batch_id))
    ]
    trades = [
        TradeKey(r.tradeId, r.clientCode, r.tradeTime)
        for r in conn.execute(sa.select(tm.c.tradeId, tm.c.clientCode, tm.c.tradeTime).where(tm.c.batchId == batch_id))
    ]
    call_ids = dict(conn.execute(sa.select(c.c.audioName, c.c.id).where(c.c.batchId == batch_id)).all())
    mappings = map_trades(calls, trades, rule)
    insert_rows(conn, t.trade_audio_mapping, [
        {"batchId": batch_id, "tradeId": m.trade_id, "audioName": m.audio_name,
         "callId": call_ids.get(m.audio_name), "distanceSeconds": m.distance_s}
        for m in mappings
    ])
    by_audio: dict[str, list[str]] = {}
    for m in mappings:
        by_audio.setdefault(m.audio_name, []).append(m.trade_id)
    for audio_name, trade_ids in by_audio.items():
        conn.execute(sa.update(tm).where(tm.c.batchId == batch_id, tm.c.tradeId.in_(trade_ids))
                     .values(audioName=audio_name))
    without = [cid for name, cid in sorted(call_ids.items()) if name not in by_audio]
    rows = [r for cid in without for r in no_trade_answer_rows(cid, question_set)]
    insert_rows(conn, t.audit_answer, rows)
    repo.update_batch(conn, batch_id, triagingStatus=StageStatus.COMPLETE)
    return [Event(
        batch_id=batch_id, stage=Stage.TRIAGING, event_type=EventType.STAGE_COMPLETE,
        status=EventStatus.SUCCESS, total_files=len(call_ids), processed_files=len(call_ids),
        metadata={"trades": len(trades), "mapped": len(mappings), "calls_with_trades": len(by_audio),
                  "calls_without_trades": len(without)},
    )]


def batch_run(batch_row, statuses: dict[Stage, Any], load_page, *, kind: str = "batch") -> PlanRun:
    pipeline = batch_row.pipeline or {}
    enabled = enabled_stages(pipeline)
    return PlanRun(
        kind=kind,
        batch_id=batch_row.id,
        stages=file_stages(enabled),
        total_files=batch_row.totalFiles,
        load_page=load_page,
        update_batch=True,
        batch_statuses=statuses,
        enabled=enabled,
    )


def today() -> date:
    return date.today()


def batch_state(row) -> str:
    """batchStatus.status for a batchStatus row, from its stage columns and frozen plan."""
    return overall_status(statuses_of(row), enabled_stages(row.pipeline or {}))
