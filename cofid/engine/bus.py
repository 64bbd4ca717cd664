"""The event bus: committed events fan out to subscribers, each with a bounded buffer.

Events reach the bus only after the writer committed them to batchExecutionLog, in id
order, so a subscriber that reconnects can ask for "everything after id N": the rows
already committed come from the database, newer ones from the live feed, with no gap and
no duplicate. A subscriber that stops reading fills its buffer and is cut off with a
"fell behind" notice instead of slowing the engine.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import sqlalchemy as sa
import trio

from cofid.domain.events import Event
from cofid.store import tables as t
from cofid.store.db import Database

log = logging.getLogger("cofid.events")


@dataclass(frozen=True)
class EventFilter:
    batch_id: int = 0  # 0: every batch
    stages: frozenset[str] = frozenset()
    event_types: frozenset[str] = frozenset()
    errors_only: bool = False

    def matches(self, e: Event) -> bool:
        if self.batch_id and e.batch_id != self.batch_id:
            return False
        if self.stages and e.stage not in self.stages:
            return False
        if self.event_types and e.event_type not in self.event_types:
            return False
        return not self.errors_only or e.event_type == "error" or e.status == "failed"


@dataclass
class Subscription:
    filter: EventFilter
    send: trio.MemorySendChannel
    receive: trio.MemoryReceiveChannel
    fell_behind: bool = False
    closed: bool = False

    def close(self) -> None:
        self.closed = True
        self.send.close()


@dataclass
class EventBus:
    last_id: int = 0
    subscribers: list[Subscription] = field(default_factory=list)
    listeners: list[Callable[[Event], None]] = field(default_factory=list)

    def publish(self, events: Iterable[Event]) -> None:
        for e in events:
            self.last_id = max(self.last_id, e.id)
            for listener in self.listeners:
                listener(e)
            for sub in list(self.subscribers):
                if sub.closed or not sub.filter.matches(e):
                    continue
                try:
                    sub.send.send_nowait(e)
                except trio.WouldBlock:
                    sub.fell_behind = True
                    self.unsubscribe(sub)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    self.unsubscribe(sub)

    def subscribe(self, flt: EventFilter, buffer: int) -> Subscription:
        send, receive = trio.open_memory_channel(buffer)
        sub = Subscription(flt, send, receive)
        self.subscribers.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        if sub in self.subscribers:
            self.subscribers.remove(sub)
        sub.close()


def event_from_row(r: sa.Row) -> Event:
    m = r._mapping
    return Event(
        id=m["id"],
        batch_id=m["batchId"],
        timestamp=m["timestamp"],
        stage=m["stage"],
        event_type=m["eventType"],
        file_name=m["fileName"],
        gpu=m["gpuIp"],
        payload=m["payload"],
        response=m["response"],
        status=m["status"],
        error_message=m["errorMessage"],
        total_files=m["totalFiles"],
        processed_files=m["processedFiles"],
        metadata=m["metadata"],
    )


async def replay(db: Database, flt: EventFilter, after_id: int, upto_id: int, limit: int = 5000) -> list[Event]:
    """Committed events with after_id < id <= upto_id matching flt, oldest first."""
    tbl = t.batch_execution_log

    def q(conn):
        stmt = sa.select(tbl).where(tbl.c.id > after_id, tbl.c.id <= upto_id)
        if flt.batch_id:
            stmt = stmt.where(tbl.c.batchId == flt.batch_id)
        if flt.stages:
            stmt = stmt.where(tbl.c.stage.in_(sorted(flt.stages)))
        if flt.event_types:
            stmt = stmt.where(tbl.c.eventType.in_(sorted(flt.event_types)))
        if flt.errors_only:
            stmt = stmt.where(sa.or_(tbl.c.eventType == "error", tbl.c.status == "failed"))
        return [event_from_row(r) for r in conn.execute(stmt.order_by(tbl.c.id).limit(limit))]

    return await db.read(q)


async def max_event_id(db: Database) -> int:
    return await db.read(
        lambda c: c.execute(sa.select(sa.func.max(t.batch_execution_log.c.id))).scalar() or 0
    )
