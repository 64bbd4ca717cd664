"""WatchEvents with batched=True: several events per message, exactly once across a
reconnect, the same events as the single-event form that older clients still get, and
the prebuilt wire bytes equal to the messages protobuf itself would serialize."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
import trio

from cofid.api import convert, watch_wire
from cofid.backends.fake import FakeBackends
from cofid.domain.events import Event
from cofid.store import tables as t
from protos.cofi.v1 import cofi_pb2 as pb
from tests.api.conftest import write_batch_dir
from tests.api.test_watch import MD, all_event_ids


def consume_batched(stub, request, *, stop_after=None, until=None):
    """Read a stream; returns (event ids, events per message, message kinds)."""
    it = stub.WatchEvents(request, metadata=MD, timeout=60)
    ids: list[int] = []
    sizes: list[int] = []
    kinds: list[str] = []
    try:
        for m in it:
            kind = m.WhichOneof("msg")
            kinds.append(kind)
            if kind == "events":
                ids.extend(e.id for e in m.events.events)
                sizes.append(len(m.events.events))
            elif kind == "event":
                ids.append(m.event.id)
                sizes.append(1)
            if stop_after is not None and len(ids) >= stop_after:
                break
            if until is not None and until(ids):
                break
    finally:
        it.cancel()
    return ids, sizes, kinds


async def test_batched_resume_gets_every_event_exactly_once(start_server, tmp_path):
    h = await start_server(fake=FakeBackends(latency_s=0.03))
    d = write_batch_dir(tmp_path / "w", [f"w{i}.wav" for i in range(12)])
    ref = await h.call("StartBatch", pb.StartBatchRequest(directory=str(d)))
    first, sizes1, kinds1 = await trio.to_thread.run_sync(
        lambda: consume_batched(
            h.stub, pb.WatchRequest(from_event_id=0, batched=True), stop_after=15
        )
    )
    assert len(first) >= 15 and "event" not in kinds1
    with trio.fail_after(5):  # the client went away: its subscription is closed
        while h.service.subs:
            await trio.sleep(0.02)
    await trio.sleep(0.2)  # events keep flowing while disconnected
    target: list[int] = []

    def until(ids):
        return bool(target) and bool(ids) and ids[-1] >= target[0]

    second: list = []

    async def reader():
        second.append(
            await trio.to_thread.run_sync(
                lambda: consume_batched(
                    h.stub, pb.WatchRequest(from_event_id=first[-1], batched=True), until=until
                )
            )
        )

    async with trio.open_nursery() as nursery:
        nursery.start_soon(reader)
        task = await h.wait_task(ref.task_id)
        assert task.state == "completed"
        target.append((await all_event_ids(h))[-1])
    ids2, sizes2, kinds2 = second[0]
    ids = first + ids2
    assert ids == await all_event_ids(h)  # every committed event, once, in order
    assert len(ids) == len(set(ids)) and len(ids) > 40
    assert "event" not in kinds2
    assert max(sizes1 + sizes2) > 1  # several events did share a message


async def test_old_and_batched_clients_get_the_same_events(start_server, tmp_path):
    h = await start_server(fake=FakeBackends(latency_s=0.01))
    d = write_batch_dir(tmp_path / "o", [f"o{i}.wav" for i in range(6)])
    ref = await h.call("StartBatch", pb.StartBatchRequest(directory=str(d)))
    await h.wait_task(ref.task_id)
    tbl = t.batch_execution_log
    fc = await h.query(
        lambda c: list(
            c.execute(
                sa.select(tbl.c.id).where(tbl.c.eventType == "file_complete").order_by(tbl.c.id)
            ).scalars()
        )
    )

    def read(batched):
        return consume_batched(
            h.stub,
            pb.WatchRequest(from_event_id=0, batched=batched, event_types=["file_complete"]),
            until=lambda ids: bool(ids) and ids[-1] >= fc[-1],
        )

    old_ids, old_sizes, old_kinds = await trio.to_thread.run_sync(lambda: read(False))
    new_ids, new_sizes, new_kinds = await trio.to_thread.run_sync(lambda: read(True))
    assert old_ids == new_ids == fc
    assert set(old_kinds) == {"event"} and set(old_sizes) == {1}
    assert set(new_kinds) == {"events"} and len(new_sizes) < len(old_sizes)


def _event(i: int, text: str = "") -> Event:
    return Event(
        batch_id=7,
        stage="stt",
        event_type="file_complete",
        status="success",
        file_name=f"c{i}.wav",
        gpu="gpu0",
        response={"text": text},
        metadata={"n": i},
        timestamp=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        id=i,
    )


def test_prebuilt_bytes_equal_protobuf_serialization():
    events = [_event(i, "x" * (40 * i)) for i in range(1, 30)]
    one = watch_wire.single(events[0])
    assert one == pb.WatchMessage(event=convert.event(events[0])).SerializeToString()
    # Split under a small limit: every message under it, order kept, nothing lost.
    msgs = list(watch_wire.batches(events, limit=600))
    assert len(msgs) > 3
    got = []
    for b in msgs:
        m = pb.WatchMessage.FromString(b)
        assert m.WhichOneof("msg") == "events"
        assert len(m.events.events) == 1 or len(b) <= 600 + 3  # tag, 2-byte length
        assert (
            b
            == pb.WatchMessage(
                events=pb.EventBatch(events=list(m.events.events))
            ).SerializeToString()
        )
        got.extend(m.events.events)
    assert got == [convert.event(e) for e in events]
    assert watch_wire.serialize(one) == one
    hb = pb.WatchMessage(heartbeat=pb.Heartbeat(last_event_id=3))
    assert watch_wire.serialize(hb) == hb.SerializeToString()
