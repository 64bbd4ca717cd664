"""The reaudit use case (the plan's steps are in cofid.plans.reaudit).

:func:`reaudit` is what the Reaudit RPC asks for: resolve the names (ReauditRequestError,
NoMatchingCalls when none matches), claim the calls (CallsBusy), create the task and run
it in the background; the calls are released when it ends, however it ends.
:func:`resolve` and :func:`run_reaudit` are its two halves, for callers that hold an App.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from cofid.domain.pipeline import FileState
from cofid.domain.reaudit import ReauditRequestError as DomainReauditRequestError
from cofid.engine.plan_run import PlanRun
from cofid.plans import reaudit as rp
from cofid.plans.reaudit import ReauditRequest
from cofid.service.context import AppContext, ServiceContext
from cofid.service.errors import NoMatchingCalls, ReauditRequestError
from cofid.service.tasks import LiveTask
from cofid.store import reaudit as reaudit_rows
from cofid.store import repo


@dataclass(frozen=True)
class ReauditAccepted:
    task_id: str
    unknown_audio_names: list[str]
    matched_calls: int


async def resolve(app: AppContext, audio_names: Iterable[str], stages: Iterable[str]) -> ReauditRequest:
    """Steps 1–2: the request checked and its calls found."""
    try:
        plan, names = rp.checked_request(audio_names, stages)
    except DomainReauditRequestError as e:
        raise ReauditRequestError(str(e)) from None
    calls = await app.db.read(lambda c: reaudit_rows.calls_by_audio_names(c, names))
    return rp.request_for(plan, names, calls)


async def run_reaudit(app: AppContext, req: ReauditRequest, *, task_id: str = "",
                      on_change: Callable[[PlanRun], None] | None = None,
                      on_start: Callable[[PlanRun], None] | None = None) -> PlanRun:
    """Steps 4–5; the caller has reserved the calls (CallReservations.reserve)."""
    await app.writer.commit([], [rp.started_event(req, task_id)])
    counts = await app.db.write(lambda c: reaudit_rows.cleanup(c, req.call_ids, req.plan))
    await app.writer.commit([], [rp.cleaned_event(task_id, counts)])

    async def load_page(after: int, limit: int) -> list[FileState]:
        return await app.db.read(
            lambda c: repo.load_files(c, call_ids=req.call_ids, after_fd_id=after, limit=limit))

    run = rp.reaudit_run(req, load_page)
    run.on_change = on_change
    if on_start is not None:
        on_start(run)
    await app.engine.run(run)
    failed = sum(c.failed for c in run.counters.values())
    await app.writer.commit([], [rp.finished_event(req, task_id, failed)])
    return run


async def reaudit(svc: ServiceContext, names: list[str], stages: list[str]) -> ReauditAccepted:
    app = svc.app
    req = await resolve(app, names, stages)
    if not req.call_ids:
        raise NoMatchingCalls("no call matches any of the audio names: "
                              + ", ".join(req.unknown[:20])
                              + (f" and {len(req.unknown) - 20} more" if len(req.unknown) > 20
                                 else ""))
    app.reservations.reserve(req)
    try:
        rec = await svc.tasks.create(
            "reaudit", {"audio_names": req.names, "stages": [str(s) for s in req.plan.stages]})
    except BaseException:
        app.reservations.release(req)
        raise

    async def body(live: LiveTask) -> PlanRun:
        def on_start(run: PlanRun) -> None:
            live.run = run

        try:
            return await run_reaudit(app, req, task_id=rec.id, on_start=on_start)
        finally:
            app.reservations.release(req)

    svc.runner.spawn(rec, body)
    return ReauditAccepted(task_id=rec.id, unknown_audio_names=req.unknown,
                           matched_calls=len(req.call_ids))
