"""The reaudit plan: the seed's section 3, over the same engine, as a pure spec.

1. Validate the request (cofid.domain.reaudit): stages ⊆ {lid, stt, llm1, llm2}, names.
2. Find the calls by audioName; names with no call are reported, not ignored. A name
   that exists in several batches selects every one of its calls. Calls the batch's
   gates keep from the chosen stages (cofid.domain.reaudit rules 10–11) are left alone
   and reported with their reason.
3. Refuse, naming them, calls that another task is working on (cofid.service.
   reservations, CallsBusy): two tasks never touch one call at once, and unrelated calls
   are never serialized behind a global lock.
4. One transaction: delete transcripts (stt), callConversation (llm1, cofi's fix: the
   seed left old trades beside new ones), auditAnswer (llm2; the model's answers only,
   rule 12); reset call.status from the earliest chosen stage; reset the chosen done
   flags and any recorded failure (cofid.store.reaudit.cleanup); and record in the task
   row that the cleanup is done, with the calls it covered.
5. Run exactly the chosen stages; batchStatus is untouched. Events go to batch 0 for the
   reaudit as a whole (started, cleaned, and one closing event: finished, cancelled) and
   to each call's batch for its files.
6. A daemon killed or stopped mid-reaudit resumes it at the next start: the task stays
   running; when its row says the cleanup was done, the cleanup is not repeated and the
   chosen stages run for the recorded calls whose chosen done flags are still unset (the
   calls not yet done); otherwise the reaudit starts again from step 2.

This module holds steps 1–2 over plain call records and the events and PlanRun of 4–5;
cofid.service.reaudit runs them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from cofid.domain.events import Event
from cofid.domain.model import EventStatus, EventType, Stage
from cofid.domain.reaudit import (
    ReauditPlan,
    left_alone_reason,
    plan_reaudit,
    validate_audio_names,
)
from cofid.engine.plan_run import PlanRun
from cofid.plans.batch import LoadPage


class CallRef(Protocol):
    """A call as the reaudit finds it (cofid.store.reaudit.CallRef)."""

    @property
    def id(self) -> int: ...
    @property
    def batch_id(self) -> int: ...
    @property
    def audio_name(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def lid_done(self) -> bool: ...
    @property
    def stt_done(self) -> bool: ...


@dataclass(frozen=True)
class LeftAlone:
    """A matched call the reaudit does not touch, and why (rules 10–11)."""

    audio_name: str
    batch_id: int
    reason: str

    def as_dict(self) -> dict[str, object]:
        return {"audio_name": self.audio_name, "batch_id": self.batch_id,
                "reason": self.reason}


@dataclass
class ReauditRequest:
    plan: ReauditPlan
    names: list[str]
    call_ids: list[int] = field(default_factory=list)
    batch_ids: list[int] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    matched_names: list[str] = field(default_factory=list)
    name_of_call: dict[int, str] = field(default_factory=dict)
    batch_of_call: dict[int, int] = field(default_factory=dict)
    left_alone: list[LeftAlone] = field(default_factory=list)

    @property
    def matched_calls(self) -> int:
        return len(self.call_ids) + len(self.left_alone)


def checked_request(audio_names: Iterable[str], stages: Iterable[str]) -> tuple[ReauditPlan, list[str]]:
    """Step 1: the plan and the cleaned names, or the domain's ReauditRequestError."""
    return plan_reaudit(stages), validate_audio_names(audio_names)


def request_for(plan: ReauditPlan, names: list[str], calls: Sequence[CallRef]) -> ReauditRequest:
    """Step 2: the calls the names select (less those left alone), and the names that
    select none."""
    found = {r.audio_name for r in calls}
    alone: dict[int, LeftAlone] = {}
    for r in calls:
        why = left_alone_reason(plan, r.status, lid_done=r.lid_done, stt_done=r.stt_done)
        if why is not None:
            alone[r.id] = LeftAlone(r.audio_name, r.batch_id, why)
    return ReauditRequest(
        plan, names,
        left_alone=[alone[i] for i in sorted(alone)],
        call_ids=sorted(r.id for r in calls if r.id not in alone),
        batch_ids=sorted({r.batch_id for r in calls}),
        unknown=[n for n in names if n not in found],
        matched_names=[n for n in names if n in found],
        name_of_call={r.id: r.audio_name for r in calls},
        batch_of_call={r.id: r.batch_id for r in calls},
    )


def started_event(req: ReauditRequest, task_id: str, *, resumed: bool = False) -> Event:
    stages = tuple(req.plan.stages)
    meta: dict[str, Any] = {
        "task_id": task_id, "stages": [str(s) for s in stages], "calls": len(req.call_ids),
        "unknown_audio_names": req.unknown[:100],
        "left_alone": [a.as_dict() for a in req.left_alone[:100]]}
    if resumed:
        meta["resumed"] = True
    return Event(batch_id=0, stage="reaudit", event_type=EventType.INFO,
                 status=EventStatus.PROCESSING, total_files=len(req.call_ids), metadata=meta)


def cleaned_event(task_id: str, counts: dict[str, int]) -> Event:
    return Event(batch_id=0, stage="reaudit", event_type=EventType.INFO,
                 status=EventStatus.SUCCESS, metadata={"task_id": task_id, **counts})


def finished_event(req: ReauditRequest, task_id: str, failed: int) -> Event:
    return Event(
        batch_id=0, stage="reaudit", event_type=EventType.INFO,
        status=EventStatus.SUCCESS if not failed else EventStatus.FAILED,
        total_files=len(req.call_ids), processed_files=len(req.call_ids),
        metadata={"task_id": task_id, "completed": True, "failed_files": failed,
                  "left_alone": len(req.left_alone)})


def cancelled_event(task_id: str, calls: int, done: int, reason: str) -> Event:
    """The closing event of a reaudit that did not finish: cancelled by request."""
    return Event(
        batch_id=0, stage="reaudit", event_type=EventType.INFO, status=EventStatus.FAILED,
        total_files=calls, processed_files=done, error_message=reason,
        metadata={"task_id": task_id, "cancelled": True})


def reaudit_run(req: ReauditRequest, load_page: LoadPage) -> PlanRun:
    """Step 5: exactly the chosen stages over the calls; batchStatus untouched."""
    return PlanRun(kind="reaudit", batch_id=0, stages=tuple(Stage(s) for s in req.plan.stages),
                   total_files=len(req.call_ids), load_page=load_page, update_batch=False)
