"""What stages read back from the store (the StageInputs port of cofid/stages/base.py):
the LLM stages' transcript, call metadata, mapped and extracted trades, and batch-level
facts (triaged or not, the question set), which one instance — one per run — reads once.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from cofid.domain.model import StageStatus
from cofid.domain.pipeline import FileState
from cofid.domain.questions import QuestionSet
from cofid.store import tables as t
from cofid.store.db import Database

_CHUNK = 1000  # ids per IN (...) list


def transcript_of(conn: Connection, call_id: int) -> list[dict[str, Any]]:
    return transcripts_of(conn, [call_id]).get(call_id, [])


def transcripts_of(conn: Connection, call_ids: Collection[int]) -> dict[int, list[dict[str, Any]]]:
    """The transcripts of many calls (call id -> segments in order), a query per 1000."""
    tr = t.transcript
    out: dict[int, list[dict[str, Any]]] = {}
    ids = sorted(call_ids)
    for i in range(0, len(ids), _CHUNK):
        for r in conn.execute(
            sa.select(tr).where(tr.c.callId.in_(ids[i : i + _CHUNK]))
            .order_by(tr.c.callId, tr.c.segmentIndex)
        ):
            out.setdefault(r.callId, []).append(
                {"start": r.startTime, "end": r.endTime, "text": r.text, "speaker": r.speaker})
    return out


def call_metadata_of(conn: Connection, batch_id: int, audio_name: str) -> dict[str, Any] | None:
    cm = t.call_metadata
    r = conn.execute(
        sa.select(cm).where(cm.c.batchId == batch_id, cm.c.audioName == audio_name)
    ).first()
    if r is None:
        return None
    return {
        "audio_name": r.audioName,
        "client_code": r.clientCode,
        "agent_id": r.agentId,
        "call_start": r.callStartTime.isoformat() if r.callStartTime else None,
        "call_end": r.callEndTime.isoformat() if r.callEndTime else None,
    }


def mapped_trades_of(conn: Connection, batch_id: int, audio_name: str) -> list[dict[str, Any]]:
    tm = t.trade_metadata
    return [
        {
            "trade_id": r.tradeId,
            "symbol": r.symbol,
            "side": r.side,
            "quantity": float(r.quantity),
            "price": float(r.price),
            "trade_time": r.tradeTime.isoformat(),
        }
        for r in conn.execute(
            sa.select(tm)
            .where(tm.c.batchId == batch_id, tm.c.audioName == audio_name)
            .order_by(tm.c.tradeTime, tm.c.tradeId)
        )
    ]


def extracted_trades_of(conn: Connection, call_id: int) -> list[dict[str, Any]]:
    return extracted_trades_by_call(conn, [call_id]).get(call_id, [])


def extracted_trades_by_call(
    conn: Connection, call_ids: Collection[int]
) -> dict[int, list[dict[str, Any]]]:
    """LLM1's trades of many calls (call id -> trades in order), a query per 1000."""
    cc = t.call_conversation
    out: dict[int, list[dict[str, Any]]] = {}
    ids = sorted(call_ids)
    for i in range(0, len(ids), _CHUNK):
        for r in conn.execute(
            sa.select(cc).where(cc.c.callId.in_(ids[i : i + _CHUNK]))
            .order_by(cc.c.callId, cc.c.tradeIndex)
        ):
            out.setdefault(r.callId, []).append({
                "trade_id": r.tradeId,
                "symbol": r.symbol,
                "side": r.side,
                "quantity": float(r.quantity) if r.quantity is not None else None,
                "price": float(r.price) if r.price is not None else None,
                "order_type": r.orderType,
                "evidence": r.evidence,
            })
    return out


def batch_triaged(conn: Connection, batch_id: int) -> bool:
    bs = t.batch_status
    status = conn.execute(sa.select(bs.c.triagingStatus).where(bs.c.id == batch_id)).scalar()
    return status == StageStatus.COMPLETE


_READERS: dict[str, Callable[[Connection, FileState], Any]] = {
    "transcript": lambda conn, f: transcript_of(conn, f.call_id),
    "call_metadata": lambda conn, f: call_metadata_of(conn, f.batch_id, f.audio_name),
    "trades": lambda conn, f: mapped_trades_of(conn, f.batch_id, f.audio_name),
    "extracted_trades": lambda conn, f: extracted_trades_of(conn, f.call_id),
}


class StoreStageInputs:
    """StageInputs over the database, for one run: batch-level facts are cached, since a
    batch's triaging and question sets do not change while its files stream."""

    def __init__(self, db: Database, question_set_for: Callable[[int, int], QuestionSet]) -> None:
        self.db = db
        self.question_set_for = question_set_for
        self._triaged: dict[int, bool] = {}
        self._question_sets: dict[tuple[int, int], QuestionSet] = {}

    async def read(self, f: FileState, wanted: Collection[str]) -> dict[str, Any]:
        readers = [(name, _READERS[name]) for name in wanted]

        def load(conn: Connection) -> dict[str, Any]:
            return {name: reader(conn, f) for name, reader in readers}

        return await self.db.read(load)

    async def batch_triaged(self, batch_id: int) -> bool:
        if batch_id not in self._triaged:
            self._triaged[batch_id] = await self.db.read(lambda conn: batch_triaged(conn, batch_id))
        return self._triaged[batch_id]

    def question_set(self, process_id: int, category_mapping_id: int) -> QuestionSet:
        key = (process_id, category_mapping_id)
        if key not in self._question_sets:
            self._question_sets[key] = self.question_set_for(process_id, category_mapping_id)
        return self._question_sets[key]
