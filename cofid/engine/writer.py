"""Group commit: many files' results in one transaction, each file still atomic.

Stage workers hand the writer a write set (rows, flags, status: one file's stage result)
plus its events, and wait until it is durable before the file moves on. The writer takes
whatever is queued — up to `max_group` items — and commits it in one transaction, so under
load thousands of small writes become a few multi-row statements, and when idle a single
result commits at once (no timer adds latency). If a group fails, its items are retried
one by one, so one bad result cannot sink its neighbours.

The SQL of a group (translation of field names, event numbering, the inserts) is
cofid/store/writes.py; this module only schedules. Event ids come from the database in
commit order (one group at a time), and events are published to the bus only after
their transaction committed: subscribers never see an event that a crash could undo.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import trio

from cofid.domain.events import Event
from cofid.domain.ops import Op
from cofid.engine.bus import EventBus, max_event_id
from cofid.engine.channels import hand_on
from cofid.store.db import Database, DatabaseUnavailable
from cofid.store.writes import AfterStep, EventIds, Step, commit_group

log = logging.getLogger(__name__)


@dataclass
class _Item:
    ops: list[Op]
    events: list[Event]
    done: trio.Event | None = None
    error: BaseException | None = None
    # A batch-level step: runs in the group's transaction and returns its events.
    step: Step | None = None
    result: list[Event] = field(default_factory=list)
    # Derived rows written after the group's write sets, in the same transaction.
    after: AfterStep | None = None


# What Writer.submit hands back: the queued write set, for `committed`.
Submitted = _Item


async def committed(item: Submitted) -> None:
    """Wait until a submitted write set is committed; raises what the commit raised."""
    assert item.done is not None
    await item.done.wait()
    if item.error is not None:
        raise item.error


class Writer:
    def __init__(self, db: Database, bus: EventBus, *, max_group: int = 500, queue: int = 10_000) -> None:
        self.db = db
        self.bus = bus
        self.max_group = max_group
        self._send, self._receive = trio.open_memory_channel[_Item](queue)
        self._ids = EventIds()
        self.groups_committed = 0
        self.items_committed = 0

    async def start(self) -> None:
        self._ids.last_id = await max_event_id(self.db)
        self.bus.last_id = self._ids.last_id

    async def commit(self, ops: list[Op], events: list[Event] | None = None, *,
                     after: AfterStep | None = None) -> None:
        """Queue a write set and wait until it is committed; raises what the commit raised.
        `after` runs in the same transaction once the write set is written (it reads it)."""
        await committed(await self.submit(ops, events, after=after))

    async def submit(self, ops: list[Op], events: list[Event] | None = None, *,
                     after: AfterStep | None = None) -> Submitted:
        """Queue a write set as `commit` does, without waiting: the caller awaits
        `committed(handle)` when it needs the write durable (the engine's stage workers
        go on with the next file meanwhile)."""
        item = _Item(ops, events or [], trio.Event(), after=after)
        await hand_on(self._send, item)
        return item

    async def run_step(self, step: Step) -> list[Event]:
        """Run a batch-level step (bulk SQL of its own) and commit the events it returns in
        the same transaction: a crash leaves both or neither."""
        item = _Item([], [], trio.Event(), step=step)
        await self._wait(item)
        return item.result

    async def post(self, ops: list[Op], events: list[Event] | None = None) -> None:
        """Queue a write set without waiting for it (events, logs); ordered with the rest."""
        await hand_on(self._send, _Item(ops, events or []))

    async def _wait(self, item: _Item) -> None:
        await hand_on(self._send, item)
        await committed(item)

    async def run(self) -> None:
        async with self._receive:
            async for first in self._receive:
                group = [first]
                while len(group) < self.max_group:
                    try:
                        group.append(self._receive.receive_nowait())
                    except (trio.WouldBlock, trio.EndOfChannel):
                        # EndOfChannel: drained with this group still to commit; the
                        # loop ends after it.
                        break
                await self._commit_group(group)
                # An idle daemon must not keep the last group (a distribution's 200,000
                # events and its step) alive until the next write arrives.
                del group, first

    async def drain(self) -> None:
        """Close the queue; run() returns after committing what was queued."""
        await self._send.aclose()

    async def _commit_group(self, group: list[_Item]) -> None:
        try:
            await self.db.run(commit_group, self.db.engine, group, self._ids)
        except DatabaseUnavailable:
            raise
        except Exception as exc:
            if len(group) == 1:
                group[0].error = exc
                log.error("write failed: %s", exc)
            else:
                for item in group:
                    try:
                        await self.db.run(commit_group, self.db.engine, [item], self._ids)
                    except DatabaseUnavailable:
                        raise
                    except Exception as one_exc:
                        item.error = one_exc
                        log.error("write failed: %s", one_exc)
        self.groups_committed += 1
        for item in group:
            if item.error is None:
                self.items_committed += 1
                self.bus.publish(item.events + item.result)
            if item.done is not None:
                item.done.set()
