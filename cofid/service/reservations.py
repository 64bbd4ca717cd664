"""Call reservations: one owner per call.

A reaudit claims its calls before it touches them; a batch run claims its batch while it
streams. A reaudit touching a claimed call, or a call of a running batch, is refused
(CallsBusy names the calls), while unrelated work runs side by side: nothing is
serialized behind a global lock. The claims live in memory: a restart starts with none
(no task survives a restart still holding calls; see cofid.service.tasks).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from cofid.plans.reaudit import ReauditRequest
from cofid.service.errors import CallsBusy


@dataclass
class CallReservations:
    calls: set[int] = field(default_factory=set)  # calls some task is working on
    batches: set[int] = field(default_factory=set)  # batches with a running plan

    def reserve(self, req: ReauditRequest) -> None:
        """Claim a reaudit's calls, or raise CallsBusy naming those another task holds."""
        busy = set(req.call_ids) & self.calls
        if busy or set(req.batch_ids) & self.batches:
            raise CallsBusy(
                sorted({req.name_of_call[i] for i in busy}) if busy else req.matched_names
            )
        self.calls |= set(req.call_ids)

    def release(self, req: ReauditRequest) -> None:
        self.calls -= set(req.call_ids)

    @contextmanager
    def batch_running(self, batch_id: int) -> Iterator[None]:
        """Hold a batch for the time its plan runs."""
        self.batches.add(batch_id)
        try:
            yield
        finally:
            self.batches.discard(batch_id)
