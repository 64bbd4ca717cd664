"""WatchEvents: subscribe, replay, live events, heartbeats, fell_behind.

Two halves, as everywhere in cofid.api:

* :class:`Subscriptions` lives in trio. It opens bus subscriptions, at most the
  WatchEvents cap of :mod:`cofid.api.admission` at once (each open stream holds a grpc
  pool thread; admission refuses more with RESOURCE_EXHAUSTED before they get here, and
  this count is the same limit kept where the subscriptions are), and closes every
  subscription when the daemon stops.
* :func:`watch_events` runs in a grpc handler thread. It validates the request, then:

  1. subscribes first (one call into trio), so no event committed from then on is
     missed; ``upto`` is the bus's last id at that instant;
  2. with ``from_event_id``, replays committed events ``from_event_id < id <= upto``
     from the event log in pages (a ``gap`` notice first when some of them are no
     longer retained);
  3. then yields live events, which this thread takes from the bus's shared feed
     itself, with its own cursor and filter (no call into trio per hand-out: 20 or 100
     subscribers cost the engine's thread one append and one wake-up per published
     group, :mod:`cofid.engine.bus`), skipping ids already sent (the replay and the live
     feed overlap); a heartbeat (with the last id) after ``heartbeat_s`` without events;
  4. ends with a ``fell_behind`` notice and RESOURCE_EXHAUSTED when more than
     ``subscriber_buffer`` events were published since the stream's cursor (the feed's
     ring overtook it), with a ``shutting_down`` notice and UNAVAILABLE when cofid
     stops, and quietly when the client went away (``context.add_callback`` closes the
     subscription: an idle stream never yields, so the callback is the only signal).

  With ``batched`` in the request the events of a replay page or of one live hand-out go
  several per message (WatchMessage.events); live ones wait BATCH_WINDOW_S after the
  first for more to come. Every event is serialized once for all subscribers
  (:mod:`cofid.api.watch_wire`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import grpc

from cofid.api import admission, watch_wire
from cofid.api.bridge import ApiError, TrioBridge, exhausted, invalid
from cofid.api.validate import optional
from cofid.config import Config
from cofid.domain.events import Event
from cofid.domain.model import Stage
from cofid.engine.bus import EventBus, EventFilter, Subscription, replay
from cofid.store import event_log
from cofid.store.db import Database
from cofid.store.tables import EVENT_TYPES
from protos.cofi.v1 import cofi_pb2 as pb

EVENT_STAGES = frozenset({s.value for s in Stage} | {"reaudit", "pipeline"})
REPLAY_PAGE = 2000
# How long a batched subscriber's hand-out waits after its first event for more: fewer,
# larger messages (far less per-message work in grpc and in the clients) for that much
# more delivery latency. Measured (bench.fanout, 20 subscribers in their own process,
# quiet 2-core machine): 0.1 s made the batch 1.10-1.47x as long as alone, 0.25 s
# 1.06-1.28x (median 1.17x), p99 0.23 -> 0.49 s (0.71 s at 100 subscribers).
BATCH_WINDOW_S = 0.25


class EventSource(Protocol):
    """What the event stream uses of the daemon's App: config, bus and store."""

    @property
    def cfg(self) -> Config: ...

    @property
    def bus(self) -> EventBus: ...

    @property
    def db(self) -> Database: ...


class Subscriptions:
    """The trio side of every open WatchEvents stream: opening and closing them. Reading
    one costs the trio thread nothing: its handler thread takes events from the bus's
    shared feed itself (:meth:`cofid.engine.bus.Subscription.take`)."""

    def __init__(self, app: EventSource) -> None:
        self.app = app
        self.cfg = app.cfg
        self.subs: dict[int, Subscription] = {}  # id(subscription) -> subscription
        self.closing = False

    @property
    def limit(self) -> int:
        return admission.caps(self.cfg.grpc)[admission.WATCH]

    async def subscribe(self, flt: EventFilter) -> tuple[Subscription, int]:
        if self.closing:
            raise ApiError(grpc.StatusCode.UNAVAILABLE, "cofid is shutting down")
        if len(self.subs) >= self.limit:
            raise exhausted(f"too many event subscribers ({self.limit}); try again later")
        sub = self.app.bus.subscribe(flt, self.cfg.grpc.subscriber_buffer)
        self.subs[id(sub)] = sub
        return sub, self.app.bus.last_id

    def unsubscribe(self, sub: Subscription) -> None:
        self.subs.pop(id(sub), None)
        self.app.bus.unsubscribe(sub)

    async def oldest_event_id(self) -> int:
        return await self.app.db.read(event_log.min_event_id)

    async def replay_page(self, flt: EventFilter, after: int, upto: int) -> list[Event]:
        return await replay(self.app.db, flt, after, upto, limit=REPLAY_PAGE)

    def close(self) -> None:
        """No new subscriptions; every open stream ends with ``shutting_down``."""
        self.closing = True
        for sub in list(self.subs.values()):
            self.subs.pop(id(sub), None)
            self.app.bus.unsubscribe(sub, "shutting_down")


def event_filter(request: pb.WatchRequest) -> tuple[EventFilter, int | None]:
    """The request's filter and from_event_id, or INVALID_ARGUMENT."""
    if request.batch_id < 0:
        raise invalid(f"batch_id must be ≥ 0, got {request.batch_id}")
    bad = [s for s in request.stages if s not in EVENT_STAGES]
    if bad:
        raise invalid(f"unknown stage {bad[0]!r} (known: {', '.join(sorted(EVENT_STAGES))})")
    bad = [e for e in request.event_types if e not in EVENT_TYPES]
    if bad:
        raise invalid(f"unknown event type {bad[0]!r} (known: {', '.join(EVENT_TYPES)})")
    for what, values in (("stage", request.stages), ("event type", request.event_types)):
        twice = next((v for i, v in enumerate(values) if v in values[:i]), None)
        if twice is not None:
            raise invalid(f"{what} {twice!r} is listed twice")
    start = optional(request, "from_event_id")
    if start is not None and start < 0:
        raise invalid(f"from_event_id must be ≥ 0, got {start}")
    flt = EventFilter(batch_id=request.batch_id, stages=frozenset(request.stages),
                      event_types=frozenset(request.event_types),
                      errors_only=request.errors_only)
    return flt, start


def watch_events(request: pb.WatchRequest, context: grpc.ServicerContext, bridge: TrioBridge,
                 subs: Subscriptions) -> Iterator[pb.WatchMessage | bytes]:
    """The WatchEvents handler body: a generator of WatchMessage (see the module doc)."""
    flt, start = event_filter(request)
    sub, upto = bridge.run(subs.subscribe, flt)
    context.add_callback(lambda: bridge.call_soon(subs.unsubscribe, sub))
    try:
        if start is not None:
            yield from _replay(bridge, subs, flt, start, upto, request.batched)
        yield from _live(subs, sub, upto, context, request.batched)
    finally:
        bridge.call_soon(subs.unsubscribe, sub)


def _replay(bridge: TrioBridge, subs: Subscriptions, flt: EventFilter, start: int,
            upto: int, batched: bool) -> Iterator[pb.WatchMessage | bytes]:
    oldest = bridge.run(subs.oldest_event_id)
    if oldest and oldest > start + 1:
        yield pb.WatchMessage(notice=pb.Notice(
            code="gap", message=f"events {start + 1}..{oldest - 1} are no longer "
                                f"retained; continuing from {oldest}"))
    after = start
    while after < upto:
        page = bridge.run(subs.replay_page, flt, after, upto)
        if not page:
            break
        if batched:
            yield from watch_wire.batches(page)
        else:
            for e in page:
                yield watch_wire.single(e)
        after = page[-1].id


def _live(subs: Subscriptions, sub: Subscription, last: int, context: grpc.ServicerContext,
          batched: bool) -> Iterator[pb.WatchMessage | bytes]:
    """Live events, taken by this handler thread from the bus's feed (no call into trio);
    every subscriber gets the same Event objects, so each is serialized once for all of
    them (watch_wire caches the bytes on the Event)."""
    g = subs.cfg.grpc
    window = BATCH_WINDOW_S if batched else 0.0
    while context.is_active():
        why, events = sub.take(g.heartbeat_s, window)
        if why == "events":
            # skipping ids already sent: the replay overlaps the live feed (ids ascend)
            fresh = events if events[0].id > last else [e for e in events if e.id > last]
            if not fresh:
                continue
            last = fresh[-1].id
            if batched:
                yield from watch_wire.batches(fresh)
            else:
                for e in fresh:
                    yield watch_wire.single(e)
        elif why == "timeout":
            hb = pb.Heartbeat(last_event_id=max(last, sub.seen_id))
            hb.server_time.GetCurrentTime()
            yield pb.WatchMessage(heartbeat=hb)
        elif why == "fell_behind":
            yield pb.WatchMessage(notice=pb.Notice(
                code="fell_behind",
                message=f"more than {g.subscriber_buffer} events were published since the "
                        f"last one this stream took; resume with from_event_id = the last "
                        f"id received"))
            raise exhausted("fell behind: subscriber buffer overflowed; reconnect with "
                            "from_event_id")
        elif why == "shutting_down":
            yield pb.WatchMessage(notice=pb.Notice(code="shutting_down",
                                                   message="cofid is stopping"))
            raise ApiError(grpc.StatusCode.UNAVAILABLE,
                           "cofid is shutting down; reconnect with from_event_id")
        else:  # closed: the client went away
            return
