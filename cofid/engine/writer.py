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
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import trio
from sqlalchemy.engine import Connection

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
    # A batch-level step: runs in the group's transaction and returns its events.
    step: Callable[[Connection], list[Event]] | None = None
    result: list[Event] = field(default_factory=list)


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

    async def run_step(self, step: Callable[[Connection], list[Event]]) -> list[Event]:
        """Run a batch-level step (bulk SQL of its own) and commit the events it returns in
        the same transaction: a crash leaves both or neither."""
        item = _Item([], [], trio.Event(), step=step)
        await self._send.send(item)
        await item.done.wait()
        if item.error is not None:
            raise item.error
        return item.result

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
                self.bus.publish(item.events + item.result)
            if item.done is not None:
                item.done.set()

    def _committed(self, event_id: int) -> bool:
        import sqlalchemy as sa

        from cofid.store import tables as t

        with self.db.engine.connect() as conn:
            return conn.execute(
                sa.select(t.batch_execution_log.c.id).where(t.batch_execution_log.c.id == event_id)
            ).first() is not None

    def _number(self, events: list[Event]) -> None:
        # Only this writer assigns ids, one group at a time: ids follow commit order.
        now = utcnow()
        for e in events:
            if not e.id:
                e.id = self.next_id
                self.next_id += 1
            if e.timestamp is None:
                e.timestamp = now

    def _execute(self, group: list[_Item]) -> None:
        ops: list[Op] = []
        events: list[Event] = []
        known = [e for item in group for e in item.events if e.id]
        if known and self._committed(known[0].id):
            # Database.run retried us after a lost connection, and the COMMIT had in fact
            # gone through: the group is durable, doing it again would write it twice.
            return
        with self.db.engine.begin() as conn:
            for item in group:
                ops.extend(item.ops)
                events.extend(item.events)
                if item.step is not None:
                    item.result = item.step(conn)
                    events.extend(item.result)
            self._number(events)
            if events:
                ops.append(Insert("batchExecutionLog", tuple(e.row() for e in events)))
            execute_ops(conn, ops)
