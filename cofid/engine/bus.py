"""The event bus: committed events fan out to subscribers, each with a bounded buffer.

Events reach the bus only after the writer committed them to the event log, in id
order, so a subscriber that reconnects can ask for "everything after id N": the rows
already committed come from the database, newer ones from the live feed, with no gap and
no duplicate. A subscriber that stops reading fills its buffer and is cut off with a
"fell behind" notice instead of slowing the engine.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import trio

from cofid.domain.events import Event
from cofid.store import event_log
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
    send: trio.MemorySendChannel[Event]
    receive: trio.MemoryReceiveChannel[Event]
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
        send, receive = trio.open_memory_channel[Event](buffer)
        sub = Subscription(flt, send, receive)
        self.subscribers.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        if sub in self.subscribers:
            self.subscribers.remove(sub)
        sub.close()


async def replay(db: Database, flt: EventFilter, after_id: int, upto_id: int, limit: int = 5000) -> list[Event]:
    """Committed events with after_id < id <= upto_id matching flt, oldest first."""
    return await db.read(lambda conn: event_log.replay(conn, flt, after_id, upto_id, limit))


async def max_event_id(db: Database) -> int:
    return await db.read(event_log.max_event_id)
