"""Group commit: many files' results in one transaction, each file still atomic.

Stage workers hand the writer a write set (rows, flags, status: one file's stage result)
plus its events, and wait until it is durable before the file moves on. The writer takes
whatever is queued — up to `max_group` items — and commits it in one transaction, so under
load thousands of small writes become a few multi-row statements, and when idle a single
result commits at once (no timer adds latency). If a group fails, its items are retried
one by one, so one bad result cannot sink its neighbours.

Event ids are assigned here, in commit order, and events are published to the bus only
after their transaction committed: subscribers never see an event that a crash could undo.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

import trio

from cofid.domain.events import Event
from cofid.domain.ops import Insert, Op
from cofid.engine.bus import EventBus
from cofid.store.db import Database, DatabaseUnavailable, execute_ops

log = logging.getLogger(__name__)


@dataclass
class _Item:
    ops: list[Op]
    events: list[Event]
    done: trio.Event | None = None
    error: BaseException | None = None
    ids: list[int] = field(default_factory=list)


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Writer:
    def __init__(self, db: Database, bus: EventBus, *, max_group: int = 500, queue: int = 10_000) -> None:
        self.db = db
        self.bus = bus
        self.max_group = max_group
        self._send, self._receive = trio.open_memory_channel[_Item](queue)
        self.next_id = 1
        self.groups_committed = 0
        self.items_committed = 0

    async def start(self) -> None:
        from cofid.engine.bus import max_event_id

        self.next_id = await max_event_id(self.db) + 1
        self.bus.last_id = self.next_id - 1

    async def commit(self, ops: list[Op], events: list[Event] | None = None) -> None:
        """Queue a write set and wait until it is committed; raises what the commit raised."""
        item = _Item(ops, events or [], trio.Event())
        await self._send.send(item)
        await item.done.wait()
        if item.error is not None:
            raise item.error

    async def post(self, ops: list[Op], events: list[Event] | None = None) -> None:
        """Queue a write set without waiting for it (events, logs); ordered with the rest."""
        await self._send.send(_Item(ops, events or []))

    async def run(self) -> None:
        async with self._receive:
            async for first in self._receive:
                group = [first]
                while len(group) < self.max_group:
                    try:
                        group.append(self._receive.receive_nowait())
                    except trio.WouldBlock:
                        break
                await self._commit_group(group)

    async def drain(self) -> None:
        """Close the queue; run() returns after committing what was queued."""
        await self._send.aclose()

    async def _commit_group(self, group: list[_Item]) -> None:
        now = utcnow()
        for item in group:
            for e in item.events:
                if not e.id:
                    e.id = self.next_id
                    self.next_id += 1
                if e.timestamp is None:
                    e.timestamp = now
        try:
            await self.db.run(self._execute, group)
        except DatabaseUnavailable:
            raise
        except Exception as exc:
            if len(group) == 1:
                group[0].error = exc
                log.error("write failed: %s", exc)
            else:
                for item in group:
                    try:
                        await self.db.run(self._execute, [item])
                    except DatabaseUnavailable:
                        raise
                    except Exception as one_exc:
                        item.error = one_exc
                        log.error("write failed: %s", one_exc)
        self.groups_committed += 1
        for item in group:
            if item.error is None:
                self.items_committed += 1
                self.bus.publish(item.events)
            if item.done is not None:
                item.done.set()

    def _execute(self, group: list[_Item]) -> None:
        ops: list[Op] = []
        events: list[Event] = []
        for item in group:
            ops.extend(item.ops)
            events.extend(item.events)
        if events:
            ops.append(Insert("batchExecutionLog", tuple(e.row() for e in events)))
        with self.db.engine.begin() as conn:
            execute_ops(conn, ops)
