"""The daemon's application state and its use cases, in one object per daemon run.

:class:`Service` holds the App, the task registry and runner, the directories being
started and the names being uploaded; its methods are the use cases of the modules
beside it, bound. Every caller — the gRPC servicer, the directory watcher — comes
here, gets plain records back (TaskRef, TaskView, ReauditAccepted) and ServiceErrors
for what is refused; none of it knows a transport.
"""

from __future__ import annotations

from typing import Any, Protocol

import trio

from cofid.domain.evidence_bundle import FileDigest
from cofid.engine.plan_run import PlanRun
from cofid.service import batches, cancel, reaudit, resume, uploads
from cofid.service.app import App
from cofid.service.batches import TaskRef
from cofid.service.reaudit import ReauditAccepted
from cofid.service.tasks import TaskRecord, TaskRegistry, TaskRunner, TaskView


class EventStreams(Protocol):
    """The open event subscriptions of a transport (closed first at shutdown)."""

    @property
    def subs(self) -> dict[int, Any]: ...

    def close(self) -> None: ...


class NoEventStreams:
    """No transport streams events (a service without a server)."""

    def __init__(self) -> None:
        self.subs: dict[int, Any] = {}

    def close(self) -> None:
        pass


class Service:
    """Everything the daemon's callers need from the application; one per daemon run."""

    def __init__(self, app: App, nursery: trio.Nursery, *,
                 events: EventStreams | None = None) -> None:
        self.app = app
        self.cfg = app.cfg
        self.nursery = nursery
        self.tasks = TaskRegistry(app.db)
        self.runner = TaskRunner(self.tasks, nursery, app.runs)
        self.runner.on_done.append(self._forget_directory)
        self.runner.on_cancelled.append(self._record_cancel)
        self.events: EventStreams = events if events is not None else NoEventStreams()
        self.starting_dirs: dict[str, str] = {}  # directory -> task id
        self.uploading_names: set[str] = set()
        self.uploading_tasks: set[str] = set()  # task ids of keyed uploads being received

    async def _record_cancel(self, rec: TaskRecord, run: PlanRun | None) -> None:
        await cancel.record_cancel(self, rec, run)

    def _forget_directory(self, rec: TaskRecord) -> None:
        for d, tid in list(self.starting_dirs.items()):
            if tid == rec.id:
                del self.starting_dirs[d]

    # ---- the use cases ----------------------------------------------------------------

    async def start_batch(self, directory: str, process_id: int | None,
                          category_mapping_id: int | None) -> TaskRef:
        return await batches.start_batch(self, directory, process_id, category_mapping_id)

    async def reserve_upload(self, names: list[str], replace: bool, process_id: int,
                             category_mapping_id: int) -> None:
        await uploads.reserve_upload(self, names, replace, process_id, category_mapping_id)

    async def release_upload(self, names: list[str], task_id: str = "") -> None:
        await uploads.release_upload(self, names, task_id)

    async def replay_or_claim_upload(self, task_id: str, request: dict[str, Any]
                                     ) -> uploads.UploadReplay | None:
        return await uploads.replay_or_claim(self, task_id, request)

    async def finish_upload(self, task_id: str, paths: list[str], process_id: int,
                            category_mapping_id: int, request: dict[str, Any],
                            digests: dict[str, FileDigest] | None = None) -> int:
        return await uploads.finish_upload(self, task_id, paths, process_id,
                                           category_mapping_id, request, digests)

    async def reaudit(self, names: list[str], stages: list[str]) -> ReauditAccepted:
        return await reaudit.reaudit(self, names, stages)

    async def get_task(self, task_id: str) -> TaskView:
        return await self.runner.get(task_id)

    async def cancel_task(self, task_id: str) -> TaskView:
        return await self.runner.cancel(task_id)

    async def resume_task(self, task_id: str) -> TaskRef:
        return await resume.resume_task(self, task_id)

    async def list_tasks(self, states: tuple[str, ...], kinds: tuple[str, ...], limit: int,
                         after: tuple[Any, str] | None) -> tuple[list[TaskView], bool]:
        """ListTasks: a page of tasks newest first, each as GetTask shows it."""
        recs, more = await self.tasks.page(states, kinds, limit, after)
        return [self.runner.view(r) for r in recs], more

    async def resume_unfinished(self) -> list[int]:
        return await resume.resume_unfinished(self)

    async def remove_orphan_uploads(self) -> list[str]:
        return await resume.remove_orphan_uploads(self)

    # ---- event streams ----------------------------------------------------------------

    @property
    def subs(self) -> dict[int, Any]:
        """The open event subscriptions."""
        return self.events.subs

    def close_subscriptions(self) -> None:
        self.events.close()
