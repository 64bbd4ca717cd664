"""The control plane's read queries: batches, one call, pages of calls.

Each function takes a Connection (run it inside Database.read) and returns plain
records: dicts keyed by field names (:func:`cofid.store.tables.to_fields`) or the
dataclasses below. Nothing here writes.

A page of calls costs a fixed number of queries whatever its size: the batch row, the
page's call rows, their fileDistribution rows and, with ``full``, the page's transcript,
callConversation, mapped-trade and auditAnswer rows, each table in one query
(``WHERE callId IN (...)``; mapped trades are keyed like a single call's, by the batch
and the audio names).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from cofid.domain.model import Stage
from cofid.domain.pipeline import DONE_FLAG_FIELD, FLAG_STATUS_FIELD, STATUS_FIELD
from cofid.store import repo
from cofid.store import tables as t

Record = dict[str, Any]


@dataclass(frozen=True)
class BatchCounts:
    """A batch row with what its files and calls add up to."""

    batch: Record
    stage_status: dict[Stage, Any]  # the batch row's status (or 0/1 flag) of each stage
    done: dict[Stage, int]  # per file stage: files whose done flag is set
    failed: dict[str, int]  # failed stage name -> files failed there
    call_statuses: dict[str, int]  # call status -> calls


@dataclass(frozen=True)
class CallRecords:
    """One call row with the rows that describe it (empty lists when not read)."""

    call: Record
    file: Record | None = None  # its fileDistribution row
    transcript: list[Record] = field(default_factory=list)  # by segment index
    conversations: list[Record] = field(default_factory=list)  # by trade index
    mapped: list[Record] = field(default_factory=list)  # trades, by trade time then id
    answers: list[Record] = field(default_factory=list)  # by question order


def _records(rows: Iterable[sa.Row[Any]]) -> list[Record]:
    return [t.to_fields(r) for r in rows]


def _group(rows: Iterable[sa.Row[Any]], key: str) -> dict[Any, list[Record]]:
    out: dict[Any, list[Record]] = {}
    for r in rows:
        rec = t.to_fields(r)
        out.setdefault(rec[key], []).append(rec)
    return out


def list_batches(conn: Connection, date_from: date | None, date_to: date | None, size: int,
                 after: tuple[date, int] | None) -> tuple[list[Record], bool]:
    """Newest first; at most ``size`` batches after the (batch date, batch number)
    ``after``, and whether more follow."""
    bs = t.batch_status
    stmt = sa.select(bs)
    if date_from is not None:
        stmt = stmt.where(bs.c.batchDate >= date_from)
    if date_to is not None:
        stmt = stmt.where(bs.c.batchDate <= date_to)
    if after is not None:
        d, n = after
        stmt = stmt.where(sa.or_(bs.c.batchDate < d,
                                 sa.and_(bs.c.batchDate == d, bs.c.batchNumber < n)))
    stmt = stmt.order_by(bs.c.batchDate.desc(), bs.c.batchNumber.desc()).limit(size + 1)
    rows = _records(conn.execute(stmt))
    return rows[:size], len(rows) > size


def batch_counts(conn: Connection, batch_id: int) -> BatchCounts | None:
    """The batch with its per-stage file counts and call status counts; None: no batch."""
    fd, c = t.file_distribution, t.call
    row = repo.get_batch(conn, batch_id)
    if row is None:
        return None
    batch = t.to_fields(row)
    flag_stages = list(DONE_FLAG_FIELD)
    flag_cols = [t.column_of("file_distribution", DONE_FLAG_FIELD[s]) for s in flag_stages]
    sums = conn.execute(sa.select(
        *[sa.func.coalesce(sa.func.sum(col), 0) for col in flag_cols],
    ).where(fd.c.batchId == batch_id)).one()
    failed: dict[Any, Any] = dict(conn.execute(
        sa.select(fd.c.failedStage, sa.func.count()).where(
            fd.c.batchId == batch_id, fd.c.failedStage.is_not(None))
        .group_by(fd.c.failedStage)).all())
    calls: dict[Any, Any] = dict(conn.execute(
        sa.select(c.c.status, sa.func.count()).where(c.c.batchId == batch_id)
        .group_by(c.c.status)).all())
    status = {s: batch[f] for s, f in STATUS_FIELD.items()}
    status.update({s: batch[f] for s, f in FLAG_STATUS_FIELD.items()})
    return BatchCounts(
        batch=batch,
        stage_status=status,
        done={s: int(v) for s, v in zip(flag_stages, sums, strict=True)},
        failed={str(k): int(v) for k, v in failed.items()},
        call_statuses={str(k): int(v) for k, v in calls.items()},
    )


def _mapped_trades(batch_id: int, names: list[str]) -> sa.Select[Any]:
    """The trades mapped to calls ``names`` of the batch, each with the call's audio
    name as ``mappedTo`` (field ``mapped_to``), by audio name, trade time, trade id."""
    tam, tm = t.trade_audio_mapping, t.trade_metadata
    return (sa.select(tm, tam.c.audioName.label("mappedTo"))
            .select_from(tam.join(tm, sa.and_(tm.c.batchId == tam.c.batchId,
                                              tm.c.tradeId == tam.c.tradeId)))
            .where(tam.c.batchId == batch_id, tam.c.audioName.in_(names))
            .order_by(tam.c.audioName, tm.c.tradeTime, tm.c.tradeId))


def find_call(conn: Connection, audio_name: str, batch_id: int) -> CallRecords | None:
    """The call of that name in ``batch_id`` (0: the newest batch holding it), with all
    its rows; None: no such call."""
    c = t.call
    stmt = sa.select(c).where(c.c.audioName == audio_name)
    if batch_id:
        stmt = stmt.where(c.c.batchId == batch_id)
    row = conn.execute(stmt.order_by(c.c.batchId.desc()).limit(1)).first()
    if row is None:
        return None
    return call_records(conn, row)


def call_records(conn: Connection, row: sa.Row[Any]) -> CallRecords:
    """A call row with its file, transcript, LLM1, mapped-trade and audit rows."""
    fd, tam, tm = t.file_distribution, t.trade_audio_mapping, t.trade_metadata
    f = conn.execute(sa.select(fd).where(fd.c.batchId == row.batchId,
                                         fd.c.file == row.audioName)).first()
    tr = conn.execute(sa.select(t.transcript).where(t.transcript.c.callId == row.id)
                      .order_by(t.transcript.c.segmentIndex))
    cc = conn.execute(sa.select(t.call_conversation)
                      .where(t.call_conversation.c.callId == row.id)
                      .order_by(t.call_conversation.c.tradeIndex))
    mapped = conn.execute(
        sa.select(tm).select_from(tam.join(tm, sa.and_(tm.c.batchId == tam.c.batchId,
                                                       tm.c.tradeId == tam.c.tradeId)))
        .where(tam.c.batchId == row.batchId, tam.c.audioName == row.audioName)
        .order_by(tm.c.tradeTime, tm.c.tradeId))
    ans = conn.execute(sa.select(t.audit_answer)
                       .where(t.audit_answer.c.callId == row.id)
                       .order_by(t.audit_answer.c.questionOrder))
    return CallRecords(call=t.to_fields(row), file=None if f is None else t.to_fields(f),
                       transcript=_records(tr), conversations=_records(cc),
                       mapped=_records(mapped), answers=_records(ans))


def calls_page(conn: Connection, batch_id: int, statuses: list[str], size: int, after: int,
               full: bool) -> tuple[list[CallRecords], bool] | None:
    """Calls of ``batch_id`` with id > ``after`` in id order (with ``statuses``, only
    those): at most ``size``, each with its fileDistribution row and, with ``full``, its
    other rows; and whether more follow. None: no such batch."""
    c, fd = t.call, t.file_distribution
    tr, cc, aa = t.transcript, t.call_conversation, t.audit_answer
    if repo.get_batch(conn, batch_id) is None:
        return None
    stmt = sa.select(c).where(c.c.batchId == batch_id, c.c.id > after)
    if statuses:
        stmt = stmt.where(c.c.status.in_(statuses))
    calls = _records(conn.execute(stmt.order_by(c.c.id).limit(size + 1)))
    more = len(calls) > size
    calls = calls[:size]
    if not calls:
        return [], False
    ids, names = [r["id"] for r in calls], [r["audio_name"] for r in calls]
    fds = {r["file"]: r for r in _records(conn.execute(
        sa.select(fd).where(fd.c.batchId == batch_id, fd.c.file.in_(names))))}
    segs: dict[Any, list[Record]] = {}
    convs: dict[Any, list[Record]] = {}
    mapped: dict[Any, list[Record]] = {}
    answers: dict[Any, list[Record]] = {}
    if full:
        segs = _group(conn.execute(sa.select(tr).where(tr.c.callId.in_(ids))
                                   .order_by(tr.c.callId, tr.c.segmentIndex)), "call_id")
        convs = _group(conn.execute(sa.select(cc).where(cc.c.callId.in_(ids))
                                    .order_by(cc.c.callId, cc.c.tradeIndex)), "call_id")
        mapped = _group(conn.execute(_mapped_trades(batch_id, names)), "mapped_to")
        answers = _group(conn.execute(sa.select(aa).where(aa.c.callId.in_(ids))
                                      .order_by(aa.c.callId, aa.c.questionOrder)), "call_id")
    page = [CallRecords(call=r, file=fds.get(r["audio_name"]),
                        transcript=segs.get(r["id"], []),
                        conversations=convs.get(r["id"], []),
                        mapped=mapped.get(r["audio_name"], []),
                        answers=answers.get(r["id"], []))
            for r in calls]
    return page, more
