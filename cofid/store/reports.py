"""Read-only reports for people at a terminal (`make demo`): every call of a database with
its IVR trim, one call in full, and every trade's verdict. Records are dicts keyed by field names
(:func:`cofid.store.tables.to_fields`); nothing here writes.

Each report opens its own engine on the URL and disposes of it: the demo reads once, after
the batch has run, from a process that holds no Database.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from cofid.store import tables as t
from cofid.store.db import read_once

Record = dict[str, Any]


def _calls_overview(conn: Connection) -> list[Record]:
    fd, c = t.file_distribution, t.call
    rows = conn.execute(
        sa.select(c.c.audioName, c.c.lang, c.c.audioDuration, c.c.status, fd.c.ivrTrimOffset)
        .select_from(c.join(fd, sa.and_(fd.c.batchId == c.c.batchId, fd.c.file == c.c.audioName)))
        .order_by(c.c.audioName)
    ).all()
    return [t.to_fields(dict(r._mapping)) for r in rows]


def calls_overview(url: str) -> list[Record]:
    """Every call by audio name: audio_name, lang, audio_duration, status, ivr_trim_offset."""
    return read_once(url, _calls_overview)


def _call_report(conn: Connection, audio_name: str) -> Record | None:
    call = conn.execute(
        sa.select(t.call).where(t.call.c.audioName == audio_name).order_by(t.call.c.id.desc())
    ).first()
    if call is None:
        return None
    fd = conn.execute(
        sa.select(t.file_distribution).where(
            t.file_distribution.c.batchId == call.batchId,
            t.file_distribution.c.file == audio_name,
        )
    ).first()
    transcript = conn.execute(
        sa.select(t.transcript)
        .where(t.transcript.c.callId == call.id)
        .order_by(t.transcript.c.segmentIndex)
    )
    conversation = conn.execute(
        sa.select(t.call_conversation).where(t.call_conversation.c.callId == call.id)
    )
    answers = conn.execute(
        sa.select(t.audit_answer)
        .where(t.audit_answer.c.callId == call.id)
        .order_by(t.audit_answer.c.questionOrder)
    )
    return {
        "call": t.to_fields(call),
        "file_distribution": None if fd is None else t.to_fields(fd),
        "transcript": [t.to_fields(r) for r in transcript],
        "call_conversation": [t.to_fields(r) for r in conversation],
        "audit_answer": [t.to_fields(r) for r in answers],
    }


def trade_verdicts(url: str) -> list[Record]:
    """Every tradeVerdict row (field names), by batch id then trade id."""
    tv = t.trade_verdict
    return read_once(url, lambda conn: [
        t.to_fields(r) for r in conn.execute(sa.select(tv).order_by(tv.c.batchId, tv.c.tradeId))
    ])


def call_report(url: str, audio_name: str) -> Record | None:
    """The newest call of that audio name with its fileDistribution row, transcript
    segments (in order), extracted trades and audit answers (in question order); None when
    there is no such call. Keys: call, file_distribution (or None), transcript,
    call_conversation, audit_answer."""
    return read_once(url, lambda conn: _call_report(conn, audio_name))
