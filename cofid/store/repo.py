"""Queries the plans and stages need, each a plain function of a Connection.

They run inside Database.read / Database.write (worker threads); bulk work uses
multi-row statements. Per-file stage results do not come through here: they are write
sets (cofid.domain.ops) executed by the group-commit writer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from cofid.domain.pipeline import FileState
from cofid.store import tables as t
from cofid.store.db import insert_rows
from cofid.store.raw_sql import insert_stream


def source_key(directory: str) -> str:
    return hashlib.sha256(directory.encode("utf-8")).hexdigest()


# ---- batches -------------------------------------------------------------------------


def create_batch(
    conn: Connection,
    *,
    batch_date: date,
    source: str,
    source_dir: str | None,
    process_id: int,
    category_mapping_id: int,
    pipeline: dict[str, Any],
    batch_number: int | None = None,
) -> int:
    """Insert a batchStatus row with the next batchNumber of the day (unless given).

    Race-free with the unique (batchDate, batchNumber) key: a concurrent insert of the
    same number fails and the caller retries the whole transaction (see next_batch).
    """
    bs = t.batch_status
    if batch_number is None:
        batch_number = (
            conn.execute(
                sa.select(sa.func.coalesce(sa.func.max(bs.c.batchNumber), 0)).where(
                    bs.c.batchDate == batch_date
                )
            ).scalar_one()
            + 1
        )
    result = conn.execute(
        sa.insert(bs).values(
            batchDate=batch_date,
            batchNumber=batch_number,
            status="Pending",
            source=source,
            sourceDir=source_dir,
            sourceKey=source_key(source_dir) if source_dir and source == "batch" else None,
            processId=process_id,
            categoryMappingId=category_mapping_id,
            pipeline=pipeline,
        )
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def batch_by_source(conn: Connection, directory: str) -> sa.Row | None:
    bs = t.batch_status
    return conn.execute(sa.select(bs).where(bs.c.sourceKey == source_key(directory))).first()


def get_batch(conn: Connection, batch_id: int) -> sa.Row | None:
    return conn.execute(sa.select(t.batch_status).where(t.batch_status.c.id == batch_id)).first()


def unfinished_batches(conn: Connection) -> list[sa.Row]:
    bs = t.batch_status
    return list(conn.execute(sa.select(bs).where(bs.c.status != "Completed").order_by(bs.c.id)))


def update_batch(conn: Connection, batch_id: int, **values: Any) -> None:
    conn.execute(sa.update(t.batch_status).where(t.batch_status.c.id == batch_id).values(**values))


# ---- distribution ------------------------------------------------------------------------


def distribute(
    conn: Connection,
    batch_id: int,
    files: Sequence[tuple[str, str, str]],
    *,
    process_id: int,
    category_mapping_id: int,
) -> None:
    """Step 2 for every file at once: fileDistribution + call rows, then the batch row.

    `files` holds (audioName, path, gpu). One transaction: a crash leaves either no rows
    or all of them with dbInsertionStatus 'Complete'.
    """
    # Streamed from generators, a chunk of rows at a time (the same statements as
    # insert_rows would send): at 100,000 files a list of row dicts each was ~60 MB.
    insert_stream(conn, t.file_distribution, ("batchId", "file", "filePath", "gpuIp"),
                  ((batch_id, n, p, g) for n, p, g in files))
    insert_stream(conn, t.call, ("batchId", "audioName", "status", "lang", "audioDuration",
                                 "processId", "categoryMappingId"),
                  ((batch_id, n, "Pending", "unknown", 0, process_id, category_mapping_id)
                   for n, _p, _g in files))
    # batchStatus.status follows from the stage statuses (cofid.plans.batch.batch_walk).
    update_batch(conn, batch_id, totalFiles=len(files), dbInsertionStatus="Complete")


def load_files(
    conn: Connection,
    batch_id: int | None = None,
    call_ids: Iterable[int] | None = None,
    *,
    after_fd_id: int = 0,
    limit: int | None = None,
    where: sa.ColumnElement[bool] | None = None,
) -> list[FileState]:
    """File states in fileDistribution id order; a page at a time with after_fd_id/limit;
    `where` narrows them (over fileDistribution joined to call: cofid.store.pending)."""
    fd, c = t.file_distribution, t.call
    stmt = sa.select(
        fd.c.id.label("fd_id"),
        c.c.id.label("call_id"),
        fd.c.batchId,
        fd.c.file,
        fd.c.filePath,
        fd.c.gpuIp,
        fd.c.denoiseDone,
        fd.c.ivrDone,
        fd.c.lidDone,
        fd.c.sttDone,
        fd.c.llm1Done,
        fd.c.llm2Done,
        fd.c.failedStage,
        fd.c.ivrTrimOffset,
        c.c.status,
        c.c.lang,
        c.c.audioDuration,
        c.c.processId,
        c.c.categoryMappingId,
    ).select_from(fd.join(c, sa.and_(c.c.batchId == fd.c.batchId, c.c.audioName == fd.c.file)))
    if batch_id is not None:
        stmt = stmt.where(fd.c.batchId == batch_id)
    if call_ids is not None:
        stmt = stmt.where(c.c.id.in_(list(call_ids)))
    if where is not None:
        stmt = stmt.where(where)
    stmt = stmt.where(fd.c.id > after_fd_id).order_by(fd.c.id)
    if limit is not None:
        stmt = stmt.limit(limit)
    out = []
    for r in conn.execute(stmt):
        out.append(
            FileState(
                fd_id=r.fd_id,
                call_id=r.call_id,
                batch_id=r.batchId,
                audio_name=r.file,
                path=r.filePath,
                gpu=r.gpuIp,
                denoise_done=bool(r.denoiseDone),
                ivr_done=bool(r.ivrDone),
                lid_done=bool(r.lidDone),
                stt_done=bool(r.sttDone),
                llm1_done=bool(r.llm1Done),
                llm2_done=bool(r.llm2Done),
                call_status=r.status,
                lang=r.lang,
                duration_s=float(r.audioDuration or 0.0),
                failed_stage=r.failedStage,
                ivr_offset_s=r.ivrTrimOffset,
                process_id=r.processId,
                category_mapping_id=r.categoryMappingId,
            )
        )
    return out


def sync_question_sets(conn: Connection, question_sets: Iterable[Any]) -> None:
    """Mirror the configured question sets into auditQuestion (for the tables' readers)."""
    aq = t.audit_question
    for qs in question_sets:
        conn.execute(
            sa.delete(aq).where(
                aq.c.processId == qs.process_id, aq.c.categoryMappingId == qs.category_mapping_id
            )
        )
        insert_rows(
            conn,
            aq,
            [
                {
                    "processId": qs.process_id,
                    "categoryMappingId": qs.category_mapping_id,
                    "questionOrder": i + 1,
                    "questionId": q.id,
                    "question": q.text,
                    "kind": q.kind,
                }
                for i, q in enumerate(qs.questions)
            ],
        )
