"""The batch plan's rows: batch records, the batch-level steps' writes, per-status counts.

The plans decide what a step writes (cofid.plans.batch, pure); the functions here spell it
in the seed's tables, inside the caller's transaction (Database.read / write or the
writer's run_step). Above the store a batchStatus row is a :class:`BatchRecord`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from cofid.domain import csv_ingest
from cofid.domain.evidence_bundle import FileDigest
from cofid.domain.model import Stage, StageStatus
from cofid.domain.pipeline import FLAG_STATUS_FIELD, STATUS_FIELD
from cofid.domain.triaging import CallWindow, TradeKey
from cofid.store import repo
from cofid.store import tables as t
from cofid.store.column_types import utcnow
from cofid.store.db import insert_rows
from cofid.store.raw_sql import insert_stream


@dataclass(frozen=True)
class BatchRecord:
    """A batchStatus row, by field name; `statuses` holds every stage's batch-level status."""

    id: int
    batch_date: date
    batch_number: int
    status: str
    source: str
    source_dir: str | None
    process_id: int
    category_mapping_id: int
    total_files: int
    pipeline: dict[str, bool]
    db_insertion_status: str
    callmetadata_status: int
    trademetadata_status: int
    triaging_status: str
    completed_at: datetime | None
    statuses: dict[Stage, Any]


def batch_record(row: sa.Row[Any]) -> BatchRecord:
    f = t.to_fields(row)
    statuses: dict[Stage, Any] = {s: f[name] for s, name in STATUS_FIELD.items()}
    statuses.update({s: f[name] for s, name in FLAG_STATUS_FIELD.items()})
    return BatchRecord(
        id=f["id"], batch_date=f["batch_date"], batch_number=f["batch_number"],
        status=f["status"], source=f["source"], source_dir=f["source_dir"],
        process_id=f["process_id"], category_mapping_id=f["category_mapping_id"],
        total_files=f["total_files"], pipeline=dict(f["pipeline"] or {}),
        db_insertion_status=f["db_insertion_status"],
        callmetadata_status=f["callmetadata_status"],
        trademetadata_status=f["trademetadata_status"], triaging_status=f["triaging_status"],
        completed_at=f["completed_at"], statuses=statuses,
    )


def get(conn: Connection, batch_id: int) -> BatchRecord | None:
    row = repo.get_batch(conn, batch_id)
    return None if row is None else batch_record(row)


def by_source(conn: Connection, directory: str) -> BatchRecord | None:
    """The batch a directory became (its resolved path is the key), or None."""
    row = repo.batch_by_source(conn, directory)
    return None if row is None else batch_record(row)


def unfinished(conn: Connection) -> list[BatchRecord]:
    return [batch_record(r) for r in repo.unfinished_batches(conn)]


def create(conn: Connection, *, batch_date: date, source: str, source_dir: str | None,
           process_id: int, category_mapping_id: int, pipeline: dict[str, bool]) -> int:
    return repo.create_batch(conn, batch_date=batch_date, source=source, source_dir=source_dir,
                             process_id=process_id, category_mapping_id=category_mapping_id,
                             pipeline=dict(pipeline))


def set_status(conn: Connection, batch_id: int, status: str, *,
               completed_at: datetime | None = None) -> None:
    values: dict[str, Any] = {"status": status}
    if completed_at is not None:
        values["completed_at"] = completed_at
    repo.update_batch(conn, batch_id, **t.to_columns("batch_status", values))


def call_status_counts(conn: Connection, batch_id: int) -> dict[str, int]:
    """How many of the batch's calls are at each call.status."""
    c = t.call
    return {status: int(n) for status, n in conn.execute(
        sa.select(c.c.status, sa.func.count()).where(c.c.batchId == batch_id)
        .group_by(c.c.status)).all()}


def upload_source_dirs(conn: Connection) -> set[str]:
    """The directories upload batches refer to."""
    bs = t.batch_status
    return set(conn.execute(
        sa.select(bs.c.sourceDir).where(bs.c.source == "upload")).scalars().all())


def uploaded_names(conn: Connection, names: Sequence[str]) -> set[str]:
    """Which of `names` some upload batch holds as a call already."""
    c, bs = t.call, t.batch_status
    out: set[str] = set()
    for i in range(0, len(names), 500):
        out |= set(conn.execute(
            sa.select(c.c.audioName).select_from(c.join(bs, bs.c.id == c.c.batchId))
            .where(bs.c.source == "upload", c.c.audioName.in_(names[i:i + 500])))
            .scalars())
    return out


# ---- the batch-level steps' writes ----------------------------------------------------


def distribute(conn: Connection, batch_id: int, files: Sequence[tuple[str, str, str]], *,
               process_id: int, category_mapping_id: int,
               refused: Sequence[tuple[str, str]] = (),
               digests: Mapping[str, FileDigest] | None = None) -> None:
    """Step 2: fileDistribution and call rows for (audio name, path, gpu) each, a
    recordingDigest row for each of those files `digests` holds (audio name -> its
    size and SHA-256 as taken in), and a processing_logs row for each file refused
    (audio name, reason)."""
    repo.distribute(conn, batch_id, files, process_id=process_id,
                    category_mapping_id=category_mapping_id)
    if digests:
        record_digests(conn, batch_id, {n: digests[n] for n, _p, _g in files if n in digests})
    insert_rows(conn, t.processing_logs, [
        {"batch_id": batch_id, "call_id": None, "file_name": name,
         "stage_name": Stage.FILE_DISTRIBUTION.value, "status": "failed", "attempt": 1,
         "error_message": reason[:4000], "details": None, "duration_ms": None}
        for name, reason in refused
    ])


def record_digests(conn: Connection, batch_id: int, digests: Mapping[str, FileDigest]) -> None:
    """recordingDigest rows (storedAt: now, UTC) for the files of `digests` that have
    none in this batch yet. Insert-if-absent: a digest, once written, is never replaced
    (a changed file cannot overwrite the first one); the primary key refuses a second
    row should another writer race this one."""
    rd = t.recording_digest
    names = sorted(digests)
    have: set[str] = set()
    for i in range(0, len(names), 500):
        have |= set(conn.execute(
            sa.select(rd.c.audioName).where(rd.c.batchId == batch_id,
                                            rd.c.audioName.in_(names[i:i + 500])))
            .scalars())
    now = utcnow()
    insert_stream(conn, rd, ("batchId", "audioName", "sha256", "sizeBytes", "storedAt"),
                  ((batch_id, n, digests[n].sha256, digests[n].size_bytes, now)
                   for n in names if n not in have))


def _row_error_logs(batch_id: int, stage: str, file_name: str,
                    errors: Iterable[csv_ingest.RowError]) -> list[dict[str, Any]]:
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


def insert_call_metadata(conn: Connection, batch_id: int,
                         parsed: csv_ingest.ParsedCsv[csv_ingest.CallMetaRow],
                         file_name: str) -> None:
    """Step 3: the parsed callMetadata rows, a processing_logs row per refused line, and
    the batch's callmetadata flag."""
    insert_rows(conn, t.call_metadata, [
        {"batchId": batch_id, "audioName": r.audio_name, "clientCode": r.client_code,
         "agentId": r.agent_id, "callStartTime": r.call_start, "callEndTime": r.call_end,
         "extra": r.extra or None}
        for r in parsed.rows
    ])
    insert_rows(conn, t.processing_logs,
                _row_error_logs(batch_id, "callmetadata", file_name, parsed.errors))
    repo.update_batch(conn, batch_id, callmetadataStatus=1)


def insert_trade_metadata(conn: Connection, batch_id: int,
                          parsed: csv_ingest.ParsedCsv[csv_ingest.TradeRow],
                          file_name: str) -> None:
    """Step 4: the parsed tradeMetadata rows, refused lines, the trademetadata flag."""
    insert_rows(conn, t.trade_metadata, [
        {"batchId": batch_id, "tradeId": r.trade_id, "clientCode": r.client_code,
         "symbol": r.symbol, "side": r.side, "quantity": r.quantity, "price": r.price,
         "tradeTime": r.trade_time, "audioName": None, "extra": r.extra or None}
        for r in parsed.rows
    ])
    insert_rows(conn, t.processing_logs,
                _row_error_logs(batch_id, "trademetadata", file_name, parsed.errors))
    repo.update_batch(conn, batch_id, trademetadataStatus=1)


@dataclass(frozen=True)
class TriagingInput:
    calls: list[CallWindow]
    trades: list[TradeKey]
    call_ids: dict[str, int]  # audio name -> call id


def triaging_input(conn: Connection, batch_id: int) -> TriagingInput:
    cm, tm, c = t.call_metadata, t.trade_metadata, t.call
    # No duration_s: triaging runs before LID, which is what measures call.audioDuration
    # (0 until then). Passing it only when known would map a resumed or reaudited batch
    # differently from a straight run; a call without an end time is cut at the client's
    # next call or lasts the rule's assumed_duration_s (cofid.domain.triaging rule 2).
    calls = [
        CallWindow(r.audioName, r.clientCode, r.callStartTime, r.callEndTime)
        for r in conn.execute(sa.select(cm).where(cm.c.batchId == batch_id))
    ]
    trades = [
        TradeKey(r.tradeId, r.clientCode, r.tradeTime)
        for r in conn.execute(sa.select(tm.c.tradeId, tm.c.clientCode, tm.c.tradeTime)
                              .where(tm.c.batchId == batch_id))
    ]
    call_ids = {name: int(cid) for name, cid in conn.execute(
        sa.select(c.c.audioName, c.c.id).where(c.c.batchId == batch_id)).all()}
    return TriagingInput(calls, trades, call_ids)


def write_triaging(conn: Connection, batch_id: int, *,
                   mappings: Sequence[tuple[str, str, int | None, float]],
                   trades_by_audio: dict[str, list[str]],
                   answers: Sequence[dict[str, Any]]) -> None:
    """Rule Engine Step 1's rows: tradeAudioMapping (trade id, audio name, call id,
    distance), each mapped trade's audioName, the no-trade answers (cofid.stages'
    answer rows), and the batch's triaging status."""
    tm = t.trade_metadata
    insert_rows(conn, t.trade_audio_mapping, [
        {"batchId": batch_id, "tradeId": trade_id, "audioName": audio_name,
         "callId": call_id, "distanceSeconds": distance}
        for trade_id, audio_name, call_id, distance in mappings
    ])
    for audio_name, trade_ids in trades_by_audio.items():
        conn.execute(sa.update(tm).where(tm.c.batchId == batch_id, tm.c.tradeId.in_(trade_ids))
                     .values(audioName=audio_name))
    # The answer rows come keyed by field names (cofid.stages.llm2.no_trade_answer_rows).
    insert_rows(conn, t.audit_answer, [t.to_columns("audit_answer", a) for a in answers])
    repo.update_batch(conn, batch_id, triagingStatus=StageStatus.COMPLETE)
