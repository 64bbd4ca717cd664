"""The reaudit plan's rows: finding calls by audio name, and step 4's cleanup.

cofid.plans.reaudit (module docstring) says what a reaudit does; this module spells it in
the seed's tables, one transaction per call (cleanup runs inside Database.write).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from cofid.domain.reaudit import TRIAGING_SOURCE, ReauditPlan
from cofid.store import tables as t


@dataclass(frozen=True)
class CallRef:
    id: int
    batch_id: int
    audio_name: str
    status: str
    lid_done: bool = False
    stt_done: bool = False


def calls_by_audio_names(conn: Connection, names: Sequence[str]) -> list[CallRef]:
    """The calls of these names, with the done flags the reaudit's gate rules read."""
    c, fd = t.call, t.file_distribution
    out: list[CallRef] = []
    for i in range(0, len(names), 1000):
        rows = conn.execute(
            sa.select(c.c.id, c.c.batchId, c.c.audioName, c.c.status, fd.c.lidDone,
                      fd.c.sttDone)
            .select_from(c.outerjoin(fd, sa.and_(fd.c.batchId == c.c.batchId,
                                                 fd.c.file == c.c.audioName)))
            .where(c.c.audioName.in_(names[i : i + 1000])))
        out.extend(CallRef(r.id, r.batchId, r.audioName, r.status, bool(r.lidDone),
                           bool(r.sttDone)) for r in rows)
    return out


def cleanup(conn: Connection, call_ids: Sequence[int], plan: ReauditPlan) -> dict[str, int]:
    """Step 4 for `call_ids`: delete what the chosen stages re-make, reset call.status and
    the chosen done flags (and any recorded failure). Counts of deleted rows."""
    ids = list(call_ids)
    counts = {"transcripts_deleted": 0, "answers_deleted": 0, "conversations_deleted": 0}
    fd, c = t.file_distribution, t.call
    # The plan names flags by field or seed spelling; field_name reads both.
    flags = {t.column_of("file_distribution", t.field_name(f)).name: 0 for f in plan.reset_flags}
    for i in range(0, len(ids), 1000):
        chunk = ids[i : i + 1000]
        if plan.delete_transcripts:
            counts["transcripts_deleted"] += conn.execute(
                sa.delete(t.transcript).where(t.transcript.c.callId.in_(chunk))).rowcount
        if plan.delete_conversations:
            counts["conversations_deleted"] += conn.execute(
                sa.delete(t.call_conversation).where(t.call_conversation.c.callId.in_(chunk))).rowcount
        if plan.delete_audit_answers:
            # Triaging's 'No trade data found' rows stay (cofid.domain.reaudit rule 12).
            aa = t.audit_answer
            counts["answers_deleted"] += conn.execute(
                sa.delete(aa).where(aa.c.callId.in_(chunk),
                                    aa.c.source != TRIAGING_SOURCE)).rowcount
        conn.execute(sa.update(c).where(c.c.id.in_(chunk))
                     .values(status=str(plan.reset_call_status)))
        fd_ids = sa.select(fd.c.id).select_from(
            fd.join(c, sa.and_(c.c.batchId == fd.c.batchId, c.c.audioName == fd.c.file))
        ).where(c.c.id.in_(chunk))
        conn.execute(sa.update(fd).where(fd.c.id.in_(fd_ids))
                     .values(**flags, failedStage=None, failureReason=None))
    return counts
