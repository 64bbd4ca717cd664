"""What the use cases need of the App and of the daemon's Service, as Protocols.

The use case modules (batches, uploads, reaudit, resume) name these, never the classes
that satisfy them (cofid.service.app.App, cofid.service.core.Service), so the wiring
imports the use cases and nothing imports back.
"""

from __future__ import annotations

from typing import Protocol

from cofid.config import Config
from cofid.domain.questions import QuestionSet
from cofid.engine.plan_run import PlanRun
from cofid.engine.run import Engine
from cofid.engine.writer import Writer
from cofid.service.reservations import CallReservations
from cofid.service.tasks import TaskRegistry, TaskRunner
from cofid.store.db import Database


class AppContext(Protocol):
    """The App: configuration, store, writer, engine, running plans, call reservations."""

    @property
    def cfg(self) -> Config: ...
    @property
    def db(self) -> Database: ...
    @property
    def writer(self) -> Writer: ...
    @property
    def engine(self) -> Engine: ...
    @property
    def runs(self) -> dict[int, PlanRun]: ...
    @property
    def reservations(self) -> CallReservations: ...
    @property
    def total_slots(self) -> int: ...

    def question_set_for(self, process_id: int, category_mapping_id: int) -> QuestionSet: ...
    def known_question_sets(self) -> set[tuple[int, int]]: ...
    def next_gpu(self) -> str: ...


class ServiceContext(Protocol):
    """The daemon's Service: the App, its tasks, what is being started and uploaded."""

    @property
    def app(self) -> AppContext: ...
    @property
    def tasks(self) -> TaskRegistry: ...
    @property
    def runner(self) -> TaskRunner: ...
    @property
    def starting_dirs(self) -> dict[str, str]: ...
    @property
    def uploading_names(self) -> set[str]: ...
    @uploading_names.setter
    def uploading_names(self, value: set[str]) -> None: ...
    @property
    def uploading_tasks(self) -> set[str]: ...
