"""The read side of tradeVerdict: pages of a batch's verdicts, counts per batch, and the
rows an evidence bundle is made of.

Each function takes a Connection (run it inside Database.read) and returns field-named
records (:func:`cofid.store.tables.to_fields`) or the dataclass below. Nothing here
writes; the rows are written by the verdict stage (cofid/store/verdicts.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from cofid.store import repo
from cofid.store import tables as t
from cofid.store.queries import call_records

Record = dict[str, Any]


def _records(rows: Iterable[sa.Row[Any]]) -> list[Record]:
    return [t.to_fields(r) for r in rows]


def verdicts_page(
    conn: Connection, batch_id: int, verdicts: Sequence[str], size: int, after: str
) -> tuple[list[Record], bool] | None:
    """The batch's verdict rows with trade id > ``after`` ("": from the first) in trade id
    order (with ``verdicts``, only those): at most ``size``, and whether more follow.
    None: no such batch.

    Keyed on the trade id, not the row id: a verdict is recomputed by replacing its row
    (a new id), and a keyset on the id would then show it twice. Trade ids compare
    bytewise on both databases (utf8mb4_bin; SQLite's BINARY), and uq_tv_batch_trade
    serves the order."""
    tv = t.trade_verdict
    if repo.get_batch(conn, batch_id) is None:
        return None
    stmt = sa.select(tv).where(tv.c.batchId == batch_id, tv.c.tradeId > after)
    if verdicts:
        stmt = stmt.where(tv.c.verdict.in_(list(verdicts)))
    rows = _records(conn.execute(stmt.order_by(tv.c.tradeId).limit(size + 1)))
    return rows[:size], len(rows) > size


def counts_by_batch(conn: Connection, batch_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    """batch id -> verdict -> trades with it, for each of ``batch_ids`` that has any (one
    GROUP BY over the batches' rows, served by ix_tv_batch_verdict)."""
    tv = t.trade_verdict
    out: dict[int, dict[str, int]] = {}
    if not batch_ids:
        return out
    rows = conn.execute(
        sa.select(tv.c.batchId, tv.c.verdict, sa.func.count())
        .where(tv.c.batchId.in_(list(batch_ids)))
        .group_by(tv.c.batchId, tv.c.verdict)
    )
    for batch_id, verdict, n in rows:
        out.setdefault(int(batch_id), {})[str(verdict)] = int(n)
    return out


@dataclass(frozen=True)
class EvidenceRecords:
    """One trade's verdict with every row its evidence bundle shows."""

    verdict: Record
    trade: Record | None  # its tradeMetadata row
    call: Record | None  # the call it maps to (None: none, or no call row)
    file: Record | None  # that call's fileDistribution row (filePath, ivrTrimOffset)
    transcript: list[Record] = field(default_factory=list)  # by segment index
    conversations: list[Record] = field(default_factory=list)  # LLM1, by trade index
    answers: list[Record] = field(default_factory=list)  # by question order
    # The recording's recordingDigest row (its SHA-256 as first taken in); None when the
    # file was taken in before cofid kept digests (schema version 4).
    digest: Record | None = None


def evidence_records(conn: Connection, trade_id: str, batch_id: int) -> EvidenceRecords | None:
    """The verdict of ``trade_id`` in ``batch_id`` (0: the newest batch with a verdict for
    it) with its trade, call, file, transcript, LLM1 and audit rows; None: no verdict."""
    tv, tm, c = t.trade_verdict, t.trade_metadata, t.call
    stmt = sa.select(tv).where(tv.c.tradeId == trade_id)
    if batch_id:
        stmt = stmt.where(tv.c.batchId == batch_id)
    row = conn.execute(stmt.order_by(tv.c.batchId.desc()).limit(1)).first()
    if row is None:
        return None
    verdict = t.to_fields(row)
    trade = conn.execute(
        sa.select(tm).where(tm.c.batchId == row.batchId, tm.c.tradeId == trade_id)
    ).first()
    call_row = None
    if row.callId is not None:
        call_row = conn.execute(sa.select(c).where(c.c.id == row.callId)).first()
    elif row.audioName is not None:
        call_row = conn.execute(
            sa.select(c).where(c.c.batchId == row.batchId, c.c.audioName == row.audioName)
        ).first()
    if call_row is None:
        return EvidenceRecords(verdict, None if trade is None else t.to_fields(trade), None, None)
    rec = call_records(conn, call_row)
    rd = t.recording_digest
    digest = conn.execute(
        sa.select(rd).where(rd.c.batchId == call_row.batchId, rd.c.audioName == call_row.audioName)
    ).first()
    return EvidenceRecords(
        verdict=verdict,
        trade=None if trade is None else t.to_fields(trade),
        call=rec.call,
        file=rec.file,
        transcript=rec.transcript,
        conversations=rec.conversations,
        answers=rec.answers,
        digest=None if digest is None else t.to_fields(digest),
    )
