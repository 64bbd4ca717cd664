"""tradeVerdict's rows: the verdict of every booked trade, recomputed from what is stored.

The rules are pure (cofid.domain.verdicts); this module reads what they need — the booked
trades, where triaging mapped them, the mapped call's status and failure, LLM1's trades
and the transcript — decides, and replaces the rows, inside the caller's transaction. It
runs in the same transaction as the write that changed the outcome (the trade CSV, the
triaging step, a call's STT gate, LLM1 result or failure, a reaudit's cleanup), so a
crash leaves either the old state and its verdicts or the new state and its verdicts,
and a resumed run recomputes from the same rows: identical verdicts, one row per trade
per batch (uq_tv_batch_trade).

Stored shape: `fields` is Verdict.fields_json() (null when the rules compared nothing:
pending, no_call, call_unusable), `evidence` a list of {text, start, end} (null when
there is none), `reason` null when the rules gave none.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from cofid.domain.model import StageStatus
from cofid.domain.verdict_fields import VerdictRules
from cofid.domain.verdicts import (
    DEFAULT_RULES,
    V_PENDING,
    VERDICTS,
    BookedTrade,
    CallState,
    MappingOutcome,
    Verdict,
    decide_call,
)
from cofid.store import tables as t
from cofid.store.column_types import utcnow
from cofid.store.db import insert_rows, read_once
from cofid.store.stage_inputs import extracted_trades_by_call, transcripts_of

log = logging.getLogger("cofid.verdicts")

_CHUNK = 1000
# tradeMetadata.extra keys (lower-cased, without '_', ' ' and '-') that give a trade's
# order type (MARKET / LIMIT); the seed's trade file has no such column, a broker's may.
_ORDER_TYPE_KEYS = frozenset({"ordertype", "type"})


def recompute(
    conn: Connection,
    batch_id: int,
    rules: VerdictRules = DEFAULT_RULES,
    *,
    audio_names: Collection[str] | None = None,
) -> int:
    """Decide and store the verdicts of the batch's trades — of every trade, or of those
    mapped to `audio_names` only (a call whose state changed). Returns the rows written."""
    if audio_names is not None and not audio_names:
        return 0
    trades = _booked(conn, batch_id, audio_names)
    if not trades:  # an upload, a call without trades, a batch without a trade file
        return 0
    triaged = _triaged(conn, batch_id)
    calls = _calls(conn, batch_id, {a for a, _b in trades if a is not None})
    # LLM1's trades and the transcript only where LLM1 ran: each read once for all calls.
    judged = [c["id"] for c in calls.values() if c["llm1_done"]]
    extracted_by_call = extracted_trades_by_call(conn, judged)
    segments_by_call = transcripts_of(conn, judged)
    by_audio: dict[str | None, list[BookedTrade]] = {}
    for audio, booked in trades:
        by_audio.setdefault(audio, []).append(booked)
    now = utcnow()
    rows: list[dict[str, Any]] = []
    for audio, group in by_audio.items():
        call = calls.get(audio) if audio is not None else None
        state = None if call is None else CallState(call["status"], call["failed_stage"])
        extracted = segments = None
        if call is not None and call["llm1_done"]:
            extracted = extracted_by_call.get(call["id"], [])
            segments = segments_by_call.get(call["id"], [])
        try:
            verdicts = decide_call(
                group, MappingOutcome(audio, triaged), state, extracted, segments or [], rules
            )
        except Exception as exc:  # a bug in the rules must not sink the result that called
            log.exception("verdict rules failed for %s (batch %d)", audio, batch_id)
            reason = f"the verdict rules failed: {type(exc).__name__}: {exc}"[:2000]
            verdicts = [Verdict(b.trade_id, audio, V_PENDING, reason=reason) for b in group]
        rows += [_row(batch_id, v, None if call is None else call["id"], now) for v in verdicts]
    _replace(conn, batch_id, rows)
    return len(rows)


@dataclass(frozen=True)
class VerdictRefresh:
    """The after-step of a call's result (cofid.store.writes.AfterStep): recompute the
    verdicts of these calls' trades. The refreshes of one commit group merge into one
    recompute per batch, so a group of 500 LLM1 results costs a handful of queries."""

    batch_id: int
    audio_names: tuple[str, ...]
    rules: VerdictRules = DEFAULT_RULES

    @property
    def merge_key(self) -> tuple[str, int, int]:
        return ("verdicts", self.batch_id, id(self.rules))

    def merge(self, other: VerdictRefresh) -> VerdictRefresh:
        return VerdictRefresh(self.batch_id, self.audio_names + other.audio_names, self.rules)

    def __call__(self, conn: Connection) -> None:
        recompute(conn, self.batch_id, self.rules, audio_names=set(self.audio_names))


def backfill(conn: Connection, batch_id: int, rules: VerdictRules = DEFAULT_RULES) -> int:
    """recompute the whole batch when one of its trades has no verdict row (a batch begun
    before schema version 2); else nothing, at the cost of two counts."""
    tm, tv = t.trade_metadata, t.trade_verdict
    trades = conn.execute(sa.select(sa.func.count()).where(tm.c.batchId == batch_id)).scalar()
    rows = conn.execute(sa.select(sa.func.count()).where(tv.c.batchId == batch_id)).scalar()
    return recompute(conn, batch_id, rules) if (trades or 0) > (rows or 0) else 0


def reset_to_pending(conn: Connection, call_ids: Sequence[int], reason: str) -> int:
    """The verdicts of these calls' trades become pending (a reaudit re-runs the calls;
    recompute decides again when it ends). Returns the rows changed."""
    tv = t.trade_verdict
    changed = 0
    for i in range(0, len(call_ids), _CHUNK):
        changed += conn.execute(
            sa.update(tv)
            .where(tv.c.callId.in_(list(call_ids[i : i + _CHUNK])))
            .values(
                verdict=V_PENDING, reason=reason, fields=None, evidence=None, decidedAt=utcnow()
            )
        ).rowcount
    return changed


def recompute_calls(
    conn: Connection, call_ids: Iterable[int], rules: VerdictRules = DEFAULT_RULES
) -> int:
    """recompute for the trades of these calls, whatever their batches (a reaudit's end)."""
    return sum(
        recompute(conn, batch_id, rules, audio_names=names)
        for batch_id, names in sorted(calls_of(conn, call_ids).items())
    )


def calls_of(conn: Connection, call_ids: Iterable[int]) -> dict[int, list[str]]:
    """batch id -> the audio names of these calls (what recompute is keyed by)."""
    c = t.call
    ids = list(call_ids)
    out: dict[int, list[str]] = {}
    for i in range(0, len(ids), _CHUNK):
        for r in conn.execute(
            sa.select(c.c.batchId, c.c.audioName).where(c.c.id.in_(ids[i : i + _CHUNK]))
        ):
            out.setdefault(int(r.batchId), []).append(r.audioName)
    return out


def verdict_counts(conn_or_db: Connection | Engine | str, batch_id: int) -> dict[str, int]:
    """Trades per verdict in the batch, every verdict named (0 when none), in the order of
    cofid.domain.verdicts.VERDICTS. Takes a Connection (inside Database.read), an Engine or
    a database URL."""
    if isinstance(conn_or_db, str):
        return read_once(conn_or_db, lambda conn: verdict_counts(conn, batch_id))
    if isinstance(conn_or_db, Engine):
        with conn_or_db.connect() as conn:
            return verdict_counts(conn, batch_id)
    tv = t.trade_verdict
    got: dict[str, int] = dict(
        conn_or_db.execute(
            sa.select(tv.c.verdict, sa.func.count())
            .where(tv.c.batchId == batch_id)
            .group_by(tv.c.verdict)
        ).all()
    )
    return {v: int(got.pop(v, 0)) for v in VERDICTS} | {str(k): int(n) for k, n in got.items()}


def verdict_rows(conn: Connection, batch_id: int) -> list[dict[str, Any]]:
    """The batch's verdict rows by field name, by trade id (the demo's and tests' view)."""
    tv = t.trade_verdict
    return [
        t.to_fields(r)
        for r in conn.execute(sa.select(tv).where(tv.c.batchId == batch_id).order_by(tv.c.tradeId))
    ]


# ---- reads and writes ----------------------------------------------------------------------


def _triaged(conn: Connection, batch_id: int) -> bool:
    bs = t.batch_status
    status = conn.execute(sa.select(bs.c.triagingStatus).where(bs.c.id == batch_id)).scalar()
    return bool(status == StageStatus.COMPLETE)


def _booked(
    conn: Connection, batch_id: int, audio_names: Collection[str] | None
) -> list[tuple[str | None, BookedTrade]]:
    """(mapped audio name, booked trade), by trade time then id: the order decide_call's
    tie-breaks see, the same on every run."""
    tm = t.trade_metadata
    q = sa.select(tm).where(tm.c.batchId == batch_id).order_by(tm.c.tradeTime, tm.c.tradeId)
    names = None if audio_names is None else sorted(audio_names)
    out: list[tuple[str | None, BookedTrade]] = []
    chunks = (
        [None] if names is None else [names[i : i + _CHUNK] for i in range(0, len(names), _CHUNK)]
    )
    for chunk in chunks:
        query = q if chunk is None else q.where(tm.c.audioName.in_(chunk))
        out += [(r.audioName, _booked_trade(r)) for r in conn.execute(query)]
    return out


def _booked_trade(r: sa.Row[Any]) -> BookedTrade:
    return BookedTrade(
        trade_id=r.tradeId,
        symbol=r.symbol,
        side=r.side,
        quantity=float(r.quantity),
        price=float(r.price) if r.price is not None else None,
        order_type=_order_type(r.extra),
        trade_time=r.tradeTime,
    )


def _order_type(extra: Any) -> str | None:
    if not isinstance(extra, dict):
        return None
    for key, value in extra.items():
        norm = str(key).lower().replace("_", "").replace(" ", "").replace("-", "")
        if norm in _ORDER_TYPE_KEYS:
            v = str(value).strip().upper()
            return v if v in ("MARKET", "LIMIT") else None
    return None


def _calls(conn: Connection, batch_id: int, names: set[str]) -> dict[str, dict[str, Any]]:
    """audio name -> the call's id, status, failed stage and whether LLM1 is done."""
    c, fd = t.call, t.file_distribution
    out: dict[str, dict[str, Any]] = {}
    ordered = sorted(names)
    for i in range(0, len(ordered), _CHUNK):
        q = (
            sa.select(c.c.id, c.c.audioName, c.c.status, fd.c.failedStage, fd.c.llm1Done)
            .select_from(
                c.outerjoin(fd, sa.and_(fd.c.batchId == c.c.batchId, fd.c.file == c.c.audioName))
            )
            .where(c.c.batchId == batch_id, c.c.audioName.in_(ordered[i : i + _CHUNK]))
        )
        for r in conn.execute(q):
            out[r.audioName] = {
                "id": int(r.id),
                "status": r.status,
                "failed_stage": r.failedStage,
                "llm1_done": bool(r.llm1Done),
            }
    return out


def _row(batch_id: int, v: Verdict, call_id: int | None, now: Any) -> dict[str, Any]:
    return t.to_columns(
        "trade_verdict",
        {
            "batch_id": batch_id,
            "trade_id": v.trade_id,
            "audio_name": v.audio_name,
            "call_id": call_id,
            "verdict": v.verdict,
            "reason": v.reason or None,
            "fields": v.fields_json() or None,
            "evidence": v.evidence_json() or None,
            "decided_at": now,
        },
    )


def _replace(conn: Connection, batch_id: int, rows: list[dict[str, Any]]) -> None:
    """Old rows of these trades out, new ones in (the unique key keeps one per trade)."""
    tv = t.trade_verdict
    ids = [r["tradeId"] for r in rows]
    for i in range(0, len(ids), _CHUNK):
        conn.execute(
            sa.delete(tv).where(tv.c.batchId == batch_id, tv.c.tradeId.in_(ids[i : i + _CHUNK]))
        )
    insert_rows(conn, tv, rows)
