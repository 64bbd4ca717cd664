"""The reaudit plan: the seed's section 3, over the same engine.

1. Validate the request (cofid.domain.reaudit): stages ⊆ {lid, stt, llm1, llm2}, names.
2. Find the calls by audioName; names with no call are reported, not ignored. A name
   that exists in several batches selects every one of its calls.
3. Refuse, naming them, calls that another task is working on (CallsBusy → the RPC's
   FAILED_PRECONDITION): two tasks never touch one call at once, and unrelated calls
   are never serialized behind a global lock.
4. One transaction: delete transcripts (stt), callConversation (llm1, cofi's fix: the
   seed left old trades beside new ones), auditAnswer (llm2); reset call.status from the
   earliest chosen stage; reset the chosen done flags and any recorded failure.
5. Run exactly the chosen stages; batchStatus is untouched. Events go to batch 0 for the
   reaudit as a whole and to each call's batch for its files.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa

from cofid.domain.events import Event
from cofid.domain.model import EventStatus, EventType
from cofid.domain.reaudit import ReauditPlan, plan_reaudit, validate_audio_names
from cofid.engine.plan_run import PlanRun
from cofid.store import repo
from cofid.store import tables as t


class CallsBusy(RuntimeError):
    def __init__(self, names: list[str]) -> None:
        super().__init__(
            "calls are being processed by another task: " + ", ".join(sorted(names)[:20])
            + (f" and {len(names) - 20} more" if len(names) > 20 else "")
        )
        self.names = names


@dataclass
class ReauditRequest:
    plan: ReauditPlan
    names: list[str]
    call_ids: list[int] = field(default_factory=list)
    batch_ids: list[int] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    matched_names: list[str] = field(default_factory=list)
    name_of_call: dict[int, str] = field(default_factory=dict)


async def resolve(app, audio_names, stages) -> ReauditRequest:
    plan = plan_reaudit(stages)
    names = validate_audio_names(audio_names)
    rows = await app.db.read(lambda c: repo.calls_by_audio_names(c, names))
    found = {r.audioName for r in rows}
    req = ReauditRequest(plan, names)
    req.call_ids = sorted(r.id for r in rows)
    req.batch_ids = sorted({r.batchId for r in rows})
    req.unknown = [n for n in names if n not in found]
    req.matched_names = [n for n in names if n in found]
    req.name_of_call = {r.id: r.audioName for r in rows}
    return req


def cleanup(conn, req: ReauditRequest) -> dict[str, int]:
    ids, plan = req.call_ids, req.plan
    counts = {"transcripts_deleted": 0, "answers_deleted": 0, "conversations_deleted": 0}
    for i in range(0, len(ids), 1000):
        chunk = ids[i : i + 1000]
        if plan.delete_transcripts:
            counts["transcripts_deleted"] += conn.execute(
                sa.delete(t.transcript).where(t.transcript.c.callId.in_(chunk))).rowcount
        if plan.delete_conversations:
            counts["conversations_deleted"] += conn.execute(
                sa.delete(t.call_conversation).where(t.call_conversation.c.callId.in_(chunk))).rowcount
        if plan.delete_audit_answers:
            counts["answers_deleted"] += conn.execute(
                sa.delete(t.audit_answer).where(t.audit_answer.c.callId.in_(chunk))).rowcount
        conn.execute(sa.update(t.call).where(t.call.c.id.in_(chunk))
                     .values(status=str(plan.reset_call_status)))
        fd, c = t.file_distribution, t.call
        fd_ids = sa.select(fd.c.id).select_from(
            fd.join(c, sa.and_(c.c.batchId == fd.c.batchId, c.c.audioName == fd.c.file))
        ).where(c.c.id.in_(chunk))
        conn.execute(sa.update(fd).where(fd.c.id.in_(fd_ids))
                     .values(**{flag: 0 for flag in plan.reset_flags}, failedStage=None, failureReason=None))
    return counts


async def run_reaudit(app, req: ReauditRequest, *, task_id: str = "", on_change=None,
                      on_start=None) -> PlanRun:
    """Steps 4–5; the caller has reserved the calls (App.reserve_calls)."""
    stages = tuple(req.plan.stages)
    start = Event(batch_id=0, stage="reaudit", event_type=EventType.INFO, status=EventStatus.PROCESSING,
                  total_files=len(req.call_ids),
                  metadata={"task_id": task_id, "stages": [str(s) for s in stages],
                            "calls": len(req.call_ids), "unknown_audio_names": req.unknown[:100]})
    await app.writer.commit([], [start])
    counts = await app.db.write(lambda c: cleanup(c, req))
    await app.writer.commit([], [Event(batch_id=0, stage="reaudit", event_type=EventType.INFO,
                                       status=EventStatus.SUCCESS, metadata={"task_id": task_id, **counts})])

    async def load_page(after: int, limit: int):
        return await app.db.read(
            lambda c: repo.load_files(c, call_ids=req.call_ids, after_fd_id=after, limit=limit))

    run = PlanRun(kind="reaudit", batch_id=0, stages=stages, total_files=len(req.call_ids),
                  load_page=load_page, update_batch=False)
    run.on_change = on_change
    if on_start is not None:
        on_start(run)
    await app.engine.run(run)
    failed = sum(c.failed for c in run.counters.values())
    await app.writer.commit([], [Event(
        batch_id=0, stage="reaudit", event_type=EventType.INFO,
        status=EventStatus.SUCCESS if not failed else EventStatus.FAILED,
        total_files=len(req.call_ids), processed_files=len(req.call_ids),
        metadata={"task_id": task_id, "completed": True, "failed_files": failed})])
    return run
