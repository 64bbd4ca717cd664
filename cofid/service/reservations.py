"""Call reservations: one owner per call, across every task kind, checked here only.

A reaudit claims its calls before it touches them (:meth:`CallReservations.reserve`); a
batch or upload run claims its whole batch while it streams
(:meth:`CallReservations.batch_running`). Both checks are made against both kinds of
claim, so whichever comes second is refused with :class:`CallsBusy`, whose message names
the calls and the task holding them:

* a reaudit touching a call another reaudit holds, or a call of a running batch;
* a batch run (StartBatch, ResumeTask, a resume at start) of a batch one of whose calls a
  reaudit holds (cancel a batch, reaudit one of its calls, resume the batch: without this
  both tasks would run LID and STT on that call and write two lidStatus rows).

Unrelated work runs side by side: nothing is serialized behind a global lock. The claims
live in memory: a restart starts with none, and the start-up resume claims again, reaudits
first (cofid.service.resume).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from cofid.plans.reaudit import ReauditRequest
from cofid.service.errors import CallsBusy


@dataclass(frozen=True)
class Claim:
    """Who holds a call or a batch: the task (empty for `cofid run-batch`) and its kind."""

    task_id: str
    kind: str

    def describe(self) -> str:
        return f"{self.kind} task {self.task_id}" if self.task_id else f"a {self.kind} run"


@dataclass(frozen=True)
class CallClaim:
    claim: Claim
    batch_id: int
    audio_name: str


@dataclass
class CallReservations:
    calls: dict[int, CallClaim] = field(default_factory=dict)  # calls a reaudit holds
    batches: dict[int, Claim] = field(default_factory=dict)  # batches with a running plan

    def reserve(self, req: ReauditRequest, task_id: str = "") -> None:
        """Claim a reaudit's calls, or raise CallsBusy naming the calls and their holders."""
        held: dict[str, str] = {}
        # Every matched call is checked, those the reaudit leaves alone too (whether a
        # call is left alone changes while another task works on it); only the calls it
        # will touch are claimed.
        matched = sorted(req.name_of_call)
        for cid in matched:
            if cid in self.calls:
                held[req.name_of_call[cid]] = self.calls[cid].claim.describe()
        batch_of = req.batch_of_call
        for cid in matched:
            b = batch_of.get(cid)
            if b is not None and b in self.batches:
                held.setdefault(req.name_of_call[cid], f"{self.batches[b].describe()}, batch {b}")
        if held:
            raise CallsBusy(sorted(held), held)
        claim = Claim(task_id, "reaudit")
        for cid in req.call_ids:
            self.calls[cid] = CallClaim(claim, batch_of.get(cid, 0), req.name_of_call[cid])

    def release(self, req: ReauditRequest) -> None:
        for cid in req.call_ids:
            self.calls.pop(cid, None)

    def check_batch(self, batch_id: int) -> None:
        """Refuse (CallsBusy) a run of `batch_id` while a reaudit holds one of its calls."""
        held = {
            c.audio_name: c.claim.describe() for c in self.calls.values() if c.batch_id == batch_id
        }
        if held:
            raise CallsBusy(sorted(held), held)

    def hold_batch(self, batch_id: int, task_id: str, kind: str) -> None:
        """Claim a batch for a task as it is accepted (before it is queued), so nothing
        slips in before its run starts; CallsBusy when a reaudit holds one of its calls."""
        self.check_batch(batch_id)
        self.batches[batch_id] = Claim(task_id, kind)

    def release_batch(self, batch_id: int, task_id: str) -> None:
        held = self.batches.get(batch_id)
        if held is not None and held.task_id == task_id:
            del self.batches[batch_id]

    @contextmanager
    def batch_running(
        self, batch_id: int, task_id: str = "", kind: str = "batch"
    ) -> Iterator[None]:
        """Hold a batch for the time its plan runs (CallsBusy when a reaudit holds one of
        its calls); a claim its task made when accepted (hold_batch) is kept as it is."""
        held = self.batches.get(batch_id)
        if held is not None and task_id and held.task_id == task_id:
            yield
            return
        self.hold_batch(batch_id, task_id, kind)
        try:
            yield
        finally:
            self.release_batch(batch_id, task_id)
