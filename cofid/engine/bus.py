"""The event bus: committed events fan out to listeners and to one shared, bounded feed.

Events reach the bus only after the writer committed them to the event log, in id
order, so a subscriber that reconnects can ask for "everything after id N": the rows
already committed come from the database, newer ones from the live feed, with no gap and
no duplicate.

Subscribers do not cost the publishing (trio) thread anything per subscriber: the bus
appends each published group of events to one :class:`Feed`, a ring of the last
``capacity`` events, and wakes the readers once (a ``threading.Condition``). Each
:class:`Subscription` is read by its own thread (a grpc handler), with its own cursor
and filter: it takes the events past its cursor, keeps the ones its filter matches and
moves its cursor on. A subscriber that stops reading is overtaken by the ring: once more
than ``capacity`` events were published since its cursor, it is cut off with "fell
behind" (and resumes from the event log) instead of slowing the engine, and the feed's
memory stays one ring whatever the number of subscribers.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from cofid.domain.events import Event
from cofid.store import event_log
from cofid.store.db import Database

log = logging.getLogger("cofid.events")

# The most feed events one hand-out looks at (the matching ones go to the subscriber).
TAKE_LIMIT = 2000


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

    @property
    def everything(self) -> bool:
        return not (self.batch_id or self.stages or self.event_types or self.errors_only)


class Feed:
    """The last `capacity` published events; sequence numbers count every event ever
    appended (event ``seq`` sits at ``ring[seq % capacity]`` while ``seq >= head -
    capacity``). Appended by the publishing thread, read by any thread."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"feed capacity must be ≥ 1, got {capacity}")
        self.capacity = capacity
        self.ring: list[Event | None] = [None] * capacity
        self.head = 0  # the sequence number the next event gets
        self.cond = threading.Condition()

    def append(self, events: Iterable[Event]) -> None:
        """O(1) per event, one wake-up per call whatever the number of readers."""
        with self.cond:
            ring, cap, head = self.ring, self.capacity, self.head
            for e in events:
                ring[head % cap] = e
                head += 1
            if head != self.head:
                self.head = head
                self.cond.notify_all()

    def slice(self, start: int, stop: int) -> list[Event]:
        """Events start <= seq < stop (the caller holds `cond` and checked the range)."""
        if stop == start:
            return []
        a, b = start % self.capacity, stop % self.capacity
        out = self.ring[a:b] if a < b else self.ring[a:] + self.ring[:b]
        return out  # type: ignore[return-value]  # every slot in range holds an event


@dataclass(eq=False)
class Subscription:
    """One subscriber's position in the feed. `end` says why it stopped: "" (open),
    "closed" (the client went away), "shutting_down" or "fell_behind"."""

    filter: EventFilter
    feed: Feed
    cursor: int
    seen_id: int = 0  # the id of the last event the cursor passed (or last_id at start)
    end: str = ""

    @property
    def closed(self) -> bool:
        return bool(self.end)

    @property
    def fell_behind(self) -> bool:
        return self.end == "fell_behind"

    def close(self, why: str = "closed") -> None:
        with self.feed.cond:
            if not self.end:
                self.end = why
            self.feed.cond.notify_all()

    def take(self, timeout: float, window: float = 0.0,
             limit: int = TAKE_LIMIT) -> tuple[str, list[Event]]:
        """Block the calling thread until events past the cursor match the filter:
        ("events", events) — with a window, those that arrive within `window` seconds of
        the first new one come too — or ("timeout", []) after `timeout` seconds without
        any, or (end, []) once the subscription ended. Overtaken by the ring: the
        subscription ends as "fell_behind"."""
        feed, flt = self.feed, self.filter
        deadline = time.monotonic() + timeout
        while True:
            with feed.cond:
                while not self.end and feed.head == self.cursor:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return "timeout", []
                    feed.cond.wait(left)
                if self.end:
                    return self.end, []
            if window > 0:  # let more come: fewer, larger messages
                time.sleep(window)
            with feed.cond:
                if self.end:
                    return self.end, []
                if feed.head - self.cursor > feed.capacity:
                    self.end = "fell_behind"
                    return self.end, []
                stop = min(feed.head, self.cursor + limit)
                events = feed.slice(self.cursor, stop)
                self.cursor = stop
                if events:
                    self.seen_id = max(self.seen_id, events[-1].id)
            if not flt.everything:
                events = [e for e in events if flt.matches(e)]
            if events:
                return "events", events


@dataclass
class EventBus:
    last_id: int = 0
    listeners: list[Callable[[Event], None]] = field(default_factory=list)
    # Opened by the first subscriber, dropped with the last one (it keeps the last
    # `buffer` events alive only while someone watches).
    feed: Feed | None = None
    open: set[Subscription] = field(default_factory=set)

    def publish(self, events: Iterable[Event]) -> None:
        events = list(events)
        for e in events:
            self.last_id = max(self.last_id, e.id)
            for listener in self.listeners:
                listener(e)
        if self.feed is not None:
            self.feed.append(events)

    def subscribe(self, flt: EventFilter, buffer: int) -> Subscription:
        """A subscription that sees every event published from now on (call it on the
        publishing thread: `last_id` then is the last event it will not see)."""
        if self.feed is None:
            self.feed = Feed(buffer)
        sub = Subscription(flt, self.feed, self.feed.head, self.last_id)
        self.open.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription, why: str = "closed") -> None:
        sub.close(why)
        self.open.discard(sub)
        if not self.open:
            self.feed = None


async def replay(db: Database, flt: EventFilter, after_id: int, upto_id: int, limit: int = 5000) -> list[Event]:
    """Committed events with after_id < id <= upto_id matching flt, oldest first."""
    return await db.read(lambda conn: event_log.replay(conn, flt, after_id, upto_id, limit))


async def max_event_id(db: Database) -> int:
    return await db.read(event_log.max_event_id)
