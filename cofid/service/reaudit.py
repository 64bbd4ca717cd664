"""The reaudit use case (the plan's steps are in cofid.plans.reaudit).

:func:`reaudit` is what the Reaudit RPC asks for: resolve the names (ReauditRequestError,
NoMatchingCalls when none matches), claim the calls (CallsBusy, naming the task that holds
them), create the task and run it in the background; the calls are released when it
ends, however it ends. :func:`resume_reaudit` is the start-up's form (plan step 6): the
task row says what was chosen and, once the cleanup committed, which calls it covers.
:func:`resolve` and :func:`run_reaudit` are the two halves, for callers that hold an App.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from cofid.domain.events import Event
from cofid.domain.pipeline import FileState
from cofid.domain.reaudit import ReauditRequestError as DomainReauditRequestError
from cofid.domain.reaudit import plan_reaudit
from cofid.domain.verdict_fields import VerdictRules
from cofid.engine.plan_run import PlanRun
from cofid.engine.verdicts import reaudit_resets
from cofid.plans import reaudit as rp
from cofid.plans.reaudit import LeftAlone, ReauditRequest
from cofid.service.context import AppContext, ServiceContext
from cofid.service.errors import NoMatchingCalls, ReauditRequestError
from cofid.service.tasks import LiveTask, TaskBody, TaskRecord
from cofid.store import reaudit as reaudit_rows
from cofid.store import repo
from cofid.store import tasks as task_rows
from cofid.store import verdicts as verdict_rows
from cofid.store.types import Connection
from cofid.store.writes import utcnow

# Written into the task row by the cleanup's transaction (plan step 4, read by step 6).
CLEANED = "cleaned"


@dataclass(frozen=True)
class ReauditAccepted:
    task_id: str
    unknown_audio_names: list[str]
    matched_calls: int
    left_alone: list[LeftAlone] = field(default_factory=list)


async def resolve(
    app: AppContext, audio_names: Iterable[str], stages: Iterable[str]
) -> ReauditRequest:
    """Steps 1–2: the request checked and its calls found."""
    try:
        plan, names = rp.checked_request(audio_names, stages)
    except DomainReauditRequestError as e:
        raise ReauditRequestError(str(e)) from None
    calls = await app.db.read(lambda c: reaudit_rows.calls_by_audio_names(c, names))
    return rp.request_for(plan, names, calls)


def recorded(req: ReauditRequest) -> dict[str, Any]:
    """What the task row keeps of a cleaned reaudit (plan step 4) to resume it (step 6)."""
    return {
        CLEANED: True,
        "calls": [
            [cid, req.batch_of_call.get(cid, 0), req.name_of_call[cid]] for cid in req.call_ids
        ],
        "left_alone": [a.as_dict() for a in req.left_alone],
    }


def from_record(rec: TaskRecord) -> ReauditRequest | None:
    """The request of a reaudit task whose cleanup committed, or None (not cleaned yet)."""
    res = rec.result or {}
    if not res.get(CLEANED):
        return None
    plan = plan_reaudit(rec.request["stages"])
    calls = [(int(c[0]), int(c[1]), str(c[2])) for c in res.get("calls", [])]
    return ReauditRequest(
        plan,
        list(rec.request.get("audio_names", [])),
        call_ids=[c[0] for c in calls],
        batch_ids=sorted({c[1] for c in calls}),
        matched_names=sorted({c[2] for c in calls}),
        name_of_call={c[0]: c[2] for c in calls},
        batch_of_call={c[0]: c[1] for c in calls},
        left_alone=[
            LeftAlone(str(a["audio_name"]), int(a["batch_id"]), str(a["reason"]))
            for a in res.get("left_alone", [])
        ],
    )


async def run_reaudit(
    app: AppContext,
    req: ReauditRequest,
    *,
    task_id: str = "",
    on_change: Callable[[PlanRun], None] | None = None,
    on_start: Callable[[PlanRun], None] | None = None,
    cleaned: bool = False,
    resumed: bool = False,
) -> PlanRun:
    """Steps 4–5; the caller has reserved the calls (CallReservations.reserve). With
    `cleaned` the cleanup committed before (a resumed reaudit) and is not repeated."""
    await app.writer.commit([], [rp.started_event(req, task_id, resumed=resumed)])
    if not cleaned:

        def clean(c: Connection) -> dict[str, int]:
            counts = reaudit_rows.cleanup(c, req.call_ids, req.plan)
            if reaudit_resets(req.plan.stages):  # decided again when the reaudit ends
                verdict_rows.reset_to_pending(
                    c, req.call_ids, "reaudit of " + ", ".join(req.plan.stages) + " under way"
                )
            if task_id:  # the cleanup and its record commit together (step 6 reads it)
                task_rows.update(c, task_id, {"result": recorded(req), "updated_at": utcnow()})
            return counts

        counts = await app.db.write(clean)
        await app.writer.commit([], [rp.cleaned_event(task_id, counts)])

    async def load_page(after: int, limit: int) -> list[FileState]:
        return await app.db.read(
            lambda c: repo.load_files(c, call_ids=req.call_ids, after_fd_id=after, limit=limit)
        )

    run = rp.reaudit_run(req, load_page)
    run.extra = recorded(req)
    run.on_change = on_change
    if on_start is not None:
        on_start(run)
    await app.engine.run(run)
    if not run.draining:  # a drained reaudit resumes at the next start: no closing event
        if reaudit_resets(req.plan.stages):
            rules = app.cfg.stages.verdicts.rules()
            await app.writer.run_step(lambda c: _recomputed(c, req.call_ids, rules))
        failed = sum(c.failed for c in run.counters.values())
        await app.writer.commit([], [rp.finished_event(req, task_id, failed)])
    return run


def _recomputed(conn: Connection, call_ids: list[int], rules: VerdictRules) -> list[Event]:
    """The reaudited calls' verdicts from what the reaudit left (also for stages that do
    not decide them on their own: a reaudit of stt alone leaves them pending)."""
    verdict_rows.recompute_calls(conn, call_ids, rules)
    return []


def _body(
    svc: ServiceContext, rec: TaskRecord, req: ReauditRequest, *, cleaned: bool, resumed: bool
) -> TaskBody:
    app = svc.app

    async def body(live: LiveTask) -> PlanRun:
        def on_start(run: PlanRun) -> None:
            live.run = run

        try:
            return await run_reaudit(
                app, req, task_id=rec.id, on_start=on_start, cleaned=cleaned, resumed=resumed
            )
        finally:
            app.reservations.release(req)

    return body


async def reaudit(svc: ServiceContext, names: list[str], stages: list[str]) -> ReauditAccepted:
    app = svc.app
    req = await resolve(app, names, stages)
    if not req.matched_calls:
        raise NoMatchingCalls(
            "no call matches any of the audio names: "
            + ", ".join(req.unknown[:20])
            + (f" and {len(req.unknown) - 20} more" if len(req.unknown) > 20 else "")
        )
    rec = svc.tasks.new_record(
        "reaudit", {"audio_names": req.names, "stages": [str(s) for s in req.plan.stages]}
    )
    # GetTask names the calls left alone from the start (the cleanup adds the rest).
    rec.result = {"left_alone": [a.as_dict() for a in req.left_alone]}
    app.reservations.reserve(req, rec.id)
    try:
        await svc.tasks.add(rec)
    except BaseException:
        app.reservations.release(req)
        raise
    svc.runner.spawn(rec, _body(svc, rec, req, cleaned=False, resumed=False))
    return ReauditAccepted(
        task_id=rec.id,
        unknown_audio_names=req.unknown,
        matched_calls=req.matched_calls,
        left_alone=req.left_alone,
    )


async def request_of(app: AppContext, rec: TaskRecord) -> tuple[ReauditRequest, bool]:
    """A reaudit task's request for plan step 6, and whether its cleanup committed."""
    req = from_record(rec)
    if req is not None:
        return req, True
    # Stopped before the cleanup committed: nothing was touched yet, start again.
    return await resolve(
        app, rec.request.get("audio_names", []), rec.request.get("stages", [])
    ), False


def spawn(svc: ServiceContext, rec: TaskRecord, req: ReauditRequest, *, cleaned: bool) -> None:
    """Run a resumed reaudit whose calls the caller has reserved for `rec`."""
    svc.runner.spawn(rec, _body(svc, rec, req, cleaned=cleaned, resumed=True))


async def resume_reaudit(svc: ServiceContext, rec: TaskRecord) -> None:
    """Plan step 6 for a reaudit task left running by a daemon restart: claim its calls
    again (CallsBusy) and run what is left."""
    req, cleaned = await request_of(svc.app, rec)
    svc.app.reservations.reserve(req, rec.id)
    spawn(svc, rec, req, cleaned=cleaned)
