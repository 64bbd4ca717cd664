"""What stages read back from the store (the StageInputs port of cofid/stages/base.py):
the LLM stages' transcript, call metadata, mapped and extracted trades, and batch-level
facts (triaged or not, whether the batch has call metadata or mapped trades, the question
set), which one instance — one per run — reads once per batch.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
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


@dataclass(frozen=True)
class BatchFacts:
    """What is true of a whole batch while its files stream through the LLM stages: the
    CSV steps and triaging run before the file stages (cofid.service.batches), so these
    do not change during a run."""

    triaged: bool
    has_call_metadata: bool  # callMetadata has a row of the batch
    has_mapped_trades: bool  # tradeMetadata has a row of the batch mapped to a call


def batch_facts(conn: Connection, batch_id: int) -> BatchFacts:
    cm, tm = t.call_metadata, t.trade_metadata
    has_cm = conn.execute(sa.select(cm.c.id).where(cm.c.batchId == batch_id).limit(1)).first()
    has_tm = conn.execute(sa.select(tm.c.id).where(
        tm.c.batchId == batch_id, tm.c.audioName.is_not(None)).limit(1)).first()
    return BatchFacts(batch_triaged(conn, batch_id), has_cm is not None, has_tm is not None)


_READERS: dict[str, Callable[[Connection, FileState], Any]] = {
    "transcript": lambda conn, f: transcript_of(conn, f.call_id),
    "call_metadata": lambda conn, f: call_metadata_of(conn, f.batch_id, f.audio_name),
    "trades": lambda conn, f: mapped_trades_of(conn, f.batch_id, f.audio_name),
    "extracted_trades": lambda conn, f: extracted_trades_of(conn, f.call_id),
}
# What a per-file reader gives when the batch facts say the batch has no such rows.
_ABSENT: dict[str, tuple[str, Callable[[], Any]]] = {
    "call_metadata": ("has_call_metadata", lambda: None),
    "trades": ("has_mapped_trades", list),
}


class StoreStageInputs:
    """StageInputs over the database, for one run: batch-level facts (triaged, whether
    the batch has call metadata or mapped trades at all, question sets) are read once
    per batch, since they do not change while its files stream; a file's own inputs are
    read only where the batch has such rows (a batch without CSVs costs LLM1 and LLM2 no
    read and no thread hop)."""

    def __init__(self, db: Database, question_set_for: Callable[[int, int], QuestionSet]) -> None:
        self.db = db
        self.question_set_for = question_set_for
        self._facts: dict[int, BatchFacts] = {}
        self._question_sets: dict[tuple[int, int], QuestionSet] = {}

    async def facts(self, batch_id: int) -> BatchFacts:
        facts = self._facts.get(batch_id)
        if facts is None:
            facts = self._facts[batch_id] = await self.db.read(
                lambda conn: batch_facts(conn, batch_id))
        return facts

    async def read(self, f: FileState, wanted: Collection[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        readers = []
        facts = await self.facts(f.batch_id) if any(n in _ABSENT for n in wanted) else None
        for name in wanted:
            absent = _ABSENT.get(name)
            if absent is not None and facts is not None and not getattr(facts, absent[0]):
                out[name] = absent[1]()
            else:
                readers.append((name, _READERS[name]))
        if not readers:
            return out

        def load(conn: Connection) -> dict[str, Any]:
            return {name: reader(conn, f) for name, reader in readers}

        out.update(await self.db.read(load))
        return out

    async def batch_triaged(self, batch_id: int) -> bool:
        return (await self.facts(batch_id)).triaged

    def question_set(self, process_id: int, category_mapping_id: int) -> QuestionSet:
        key = (process_id, category_mapping_id)
        if key not in self._question_sets:
            self._question_sets[key] = self.question_set_for(process_id, category_mapping_id)
        return self._question_sets[key]
