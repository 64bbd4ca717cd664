"""The bus's shared feed that WatchEvents streams read: every event once, in order, to
each reader thread with its own cursor and filter; a reader that stops reading is
overtaken and told it fell behind, while publishing never waits for it; and several
live gRPC subscribers with different filters each get exactly their share of a batch."""

from __future__ import annotations

import threading

import sqlalchemy as sa
import trio

from cofid.backends.fake import FakeBackends
from cofid.domain.events import Event
from cofid.engine.bus import EventBus, EventFilter, Feed
from cofid.store import tables as t
from cofid.store.event_log import event_from_row
from protos.cofi.v1 import cofi_pb2 as pb
from tests.api.conftest import write_batch_dir
from tests.api.test_watch import MD

STAGES = ("denoise", "ivr", "lid", "stt", "llm1", "llm2")
TYPES = ("stage_start", "file_complete", "error")


def ev(i: int) -> Event:
    return Event(batch_id=1 + i % 2, stage=STAGES[i % 6], event_type=TYPES[i % 3],
                 status="failed" if i % 7 == 0 else "success", id=i)


def drain(sub, until_id: int, window: float = 0.0) -> tuple[list[int], str]:
    """Take until the last wanted id (or the stream ends); the ids and how it ended."""
    ids: list[int] = []
    while True:
        why, events = sub.take(timeout=10.0, window=window)
        if why != "events":
            return ids, why
        ids.extend(e.id for e in events)
        if events[-1].id >= until_id or sub.seen_id >= until_id:
            return ids, "done"


FILTERS = [EventFilter(), EventFilter(batch_id=2), EventFilter(stages=frozenset({"stt", "llm1"})),
           EventFilter(event_types=frozenset({"file_complete"})), EventFilter(errors_only=True),
           EventFilter(batch_id=1, stages=frozenset({"lid"}), event_types=frozenset({"error"}))]


def test_every_reader_gets_its_events_once_in_order_across_ring_wraps():
    bus = EventBus()
    subs = [bus.subscribe(f, buffer=64) for f in FILTERS]
    events = [ev(i) for i in range(1, 3001)]  # 3000 events through a ring of 64
    got: dict[int, tuple[list[int], str]] = {}
    took = [threading.Semaphore(0) for _ in subs]
    go = [threading.Semaphore(0) for _ in subs]

    def reader(k: int) -> None:
        ids: list[int] = []
        sub = subs[k]
        while True:
            go[k].acquire()  # one hand-out per published group: never more than 64 behind
            why, batch = sub.take(timeout=0.0)
            ids.extend(e.id for e in batch)
            took[k].release()
            if sub.seen_id >= events[-1].id or why not in ("events", "timeout"):
                got[k] = (ids, why)
                return

    threads = [threading.Thread(target=reader, args=(k,)) for k in range(len(subs))]
    for th in threads:
        th.start()
    for start in range(0, len(events), 37):  # groups of 37: the ring wraps mid-group
        bus.publish(events[start:start + 37])
        for k in range(len(subs)):
            go[k].release()
            took[k].acquire()
    for th in threads:
        th.join(10)
    assert bus.last_id == 3000
    for k, flt in enumerate(FILTERS):
        ids, why = got[k]
        assert why in ("events", "timeout")  # never fell behind
        assert ids == [e.id for e in events if flt.matches(e)], flt
    assert len(got[0][0]) == 3000 and 0 < len(got[5][0]) < 3000


def test_slow_reader_falls_behind_without_holding_up_the_publisher_or_others():
    bus = EventBus()
    fast = bus.subscribe(EventFilter(), buffer=50)
    slow = bus.subscribe(EventFilter(stages=frozenset({"stt"})), buffer=50)
    events = [ev(i) for i in range(1, 501)]
    fast_ids: list[int] = []
    for start in range(0, 500, 10):  # the slow reader takes nothing meanwhile
        bus.publish(events[start:start + 10])  # returns at once: nothing waits for readers
        why, batch = fast.take(timeout=0.0)
        assert why == "events"
        fast_ids.extend(e.id for e in batch)
    assert fast_ids == list(range(1, 501))
    assert slow.take(timeout=5.0) == ("fell_behind", [])
    assert slow.fell_behind and slow.take(timeout=5.0) == ("fell_behind", [])
    bus.publish([ev(501)])
    assert fast.take(timeout=0.0) == ("events", [bus.feed.ring[500 % 50]])  # type: ignore[union-attr]


def test_a_waiting_reader_wakes_for_events_close_and_shutdown():
    bus = EventBus()
    bus.publish([ev(1), ev(2)])  # before anyone subscribed: not in the feed
    a = bus.subscribe(EventFilter(event_types=frozenset({"error"})), buffer=16)
    b = bus.subscribe(EventFilter(), buffer=16)
    assert a.seen_id == 2 and a.take(timeout=0.0) == ("timeout", [])
    out: list = []
    th = threading.Thread(target=lambda: out.append(drain(a, until_id=6)))
    th.start()
    bus.publish([ev(3), ev(4)])  # no error among them: a keeps waiting
    bus.publish([ev(5), ev(6)])  # 5 is an error
    th.join(10)
    assert out == [([5], "done")]
    # non-matching events move the cursor on: a heartbeat's last id is exact
    bus.publish([ev(7)])
    assert a.take(timeout=0.0) == ("timeout", []) and a.seen_id == 7
    waiting = threading.Thread(target=lambda: out.append(a.take(timeout=30.0)))
    waiting.start()
    bus.unsubscribe(a)  # the client went away
    waiting.join(10)
    assert out[-1] == ("closed", [])
    assert [e.id for e in b.take(timeout=0.0, window=0.01)[1]] == [3, 4, 5, 6, 7]
    bus.unsubscribe(b, "shutting_down")
    assert b.take(timeout=30.0) == ("shutting_down", [])
    bus.unsubscribe(b)  # the first reason stays
    assert b.end == "shutting_down"


def test_the_feed_lives_only_while_someone_watches():
    bus = EventBus()
    bus.publish([ev(1)])
    assert bus.feed is None  # nobody subscribed: nothing kept
    a, b = bus.subscribe(EventFilter(), buffer=8), bus.subscribe(EventFilter(), buffer=8)
    bus.publish([ev(2)])
    bus.unsubscribe(a)
    assert bus.feed is b.feed and bus.feed is not None
    bus.unsubscribe(b)
    assert bus.feed is None  # the last one left: its events are let go
    bus.publish([ev(3)])
    c = bus.subscribe(EventFilter(), buffer=8)
    assert c.seen_id == 3 and c.take(timeout=0.0) == ("timeout", [])
    bus.publish([ev(4)])
    assert [e.id for e in c.take(timeout=0.0)[1]] == [4]


def test_feed_slices_across_the_wrap():
    f = Feed(5)
    f.append([ev(i) for i in range(1, 8)])  # seq 0..6; 2..6 are kept
    with f.cond:
        assert [e.id for e in f.slice(2, 7)] == [3, 4, 5, 6, 7]
        assert [e.id for e in f.slice(4, 6)] == [5, 6]
        assert f.slice(6, 6) == []


async def test_live_subscribers_with_different_filters_get_exactly_their_share(
        start_server, tmp_path):
    h = await start_server(fake=FakeBackends(latency_s=0.005))
    requests = [pb.WatchRequest(batched=True), pb.WatchRequest(),
                pb.WatchRequest(batched=True, event_types=["file_complete"]),
                pb.WatchRequest(stages=["stt", "llm1", "llm2"]),
                pb.WatchRequest(batched=True, stages=["lid"], event_types=["stage_complete"])]
    target: list[int] = []
    results: list[list[int]] = [[] for _ in requests]
    opened = [threading.Event() for _ in requests]

    def read(k: int) -> None:
        it = h.stub.WatchEvents(requests[k], metadata=MD, timeout=60)
        try:
            for m in it:
                opened[k].set()
                kind = m.WhichOneof("msg")
                evs = [m.event] if kind == "event" else m.events.events if kind == "events" else []
                results[k].extend(e.id for e in evs)
                last = m.heartbeat.last_event_id if kind == "heartbeat" else (
                    evs[-1].id if evs else 0)
                if target and last >= target[0]:
                    break
        finally:
            it.cancel()

    async with trio.open_nursery() as nursery:
        for k in range(len(requests)):
            nursery.start_soon(trio.to_thread.run_sync, read, k)
        with trio.fail_after(10):  # every stream open (its first heartbeat) before the batch
            while not all(o.is_set() for o in opened):
                await trio.sleep(0.05)
        after = h.app.bus.last_id
        d = write_batch_dir(tmp_path / "m", [f"m{i}.wav" for i in range(8)])
        ref = await h.call("StartBatch", pb.StartBatchRequest(directory=str(d)))
        assert (await h.wait_task(ref.task_id)).state == "completed"
        target.append(h.app.bus.last_id)
    tbl = t.batch_execution_log
    rows = await h.query(lambda c: [event_from_row(r) for r in c.execute(
        sa.select(tbl).where(tbl.c.id > after).order_by(tbl.c.id))])
    assert len(rows) > 50
    for req, got in zip(requests, results, strict=True):
        flt = EventFilter(stages=frozenset(req.stages), event_types=frozenset(req.event_types))
        assert got == [e.id for e in rows if flt.matches(e)], req
    assert results[0] == results[1] == [e.id for e in rows]
