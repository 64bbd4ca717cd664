"""The reaudit plan: the seed's section 3, over the same engine, as a pure spec.

1. Validate the request (cofid.domain.reaudit): stages ⊆ {lid, stt, llm1, llm2}, names.
2. Find the calls by audioName; names with no call are reported, not ignored. A name
   that exists in several batches selects every one of its calls.
3. Refuse, naming them, calls that another task is working on (cofid.service.
   reservations, CallsBusy): two tasks never touch one call at once, and unrelated calls
   are never serialized behind a global lock.
4. One transaction: delete transcripts (stt), callConversation (llm1, cofi's fix: the
   seed left old trades beside new ones), auditAnswer (llm2); reset call.status from the
   earliest chosen stage; reset the chosen done flags and any recorded failure
   (cofid.store.reaudit.cleanup).
5. Run exactly the chosen stages; batchStatus is untouched. Events go to batch 0 for the
   reaudit as a whole and to each call's batch for its files.

This module holds steps 1–2 over plain call records and the events and PlanRun of 4–5;
cofid.service.reaudit runs them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from cofid.domain.events import Event
from cofid.domain.model import EventStatus, EventType, Stage
from cofid.domain.reaudit import ReauditPlan, plan_reaudit, validate_audio_names
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


@dataclass
class ReauditRequest:
    plan: ReauditPlan
    names: list[str]
    call_ids: list[int] = field(default_factory=list)
    batch_ids: list[int] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    matched_names: list[str] = field(default_factory=list)
    name_of_call: dict[int, str] = field(default_factory=dict)


def checked_request(audio_names: Iterable[str], stages: Iterable[str]) -> tuple[ReauditPlan, list[str]]:
    """Step 1: the plan and the cleaned names, or the domain's ReauditRequestError."""
    return plan_reaudit(stages), validate_audio_names(audio_names)


def request_for(plan: ReauditPlan, names: list[str], calls: Sequence[CallRef]) -> ReauditRequest:
    """Step 2: the calls the names select, and the names that select none."""
    found = {r.audio_name for r in calls}
    return ReauditRequest(
        plan, names,
        call_ids=sorted(r.id for r in calls),
        batch_ids=sorted({r.batch_id for r in calls}),
        unknown=[n for n in names if n not in found],
        matched_names=[n for n in names if n in found],
        name_of_call={r.id: r.audio_name for r in calls},
    )


def started_event(req: ReauditRequest, task_id: str) -> Event:
    stages = tuple(req.plan.stages)
    return Event(batch_id=0, stage="reaudit", event_type=EventType.INFO, status=EventStatus.PROCESSING,
                 total_files=len(req.call_ids),
                 metadata={"task_id": task_id, "stages": [str(s) for s in stages],
                           "calls": len(req.call_ids), "unknown_audio_names": req.unknown[:100]})


def cleaned_event(task_id: str, counts: dict[str, int]) -> Event:
    return Event(batch_id=0, stage="reaudit", event_type=EventType.INFO,
                 status=EventStatus.SUCCESS, metadata={"task_id": task_id, **counts})


def finished_event(req: ReauditRequest, task_id: str, failed: int) -> Event:
    return Event(
        batch_id=0, stage="reaudit", event_type=EventType.INFO,
        status=EventStatus.SUCCESS if not failed else EventStatus.FAILED,
        total_files=len(req.call_ids), processed_files=len(req.call_ids),
        metadata={"task_id": task_id, "completed": True, "failed_files": failed})


def reaudit_run(req: ReauditRequest, load_page: LoadPage) -> PlanRun:
    """Step 5: exactly the chosen stages over the calls; batchStatus untouched."""
    return PlanRun(kind="reaudit", batch_id=0, stages=tuple(Stage(s) for s in req.plan.stages),
                   total_files=len(req.call_ids), load_page=load_page, update_batch=False)
