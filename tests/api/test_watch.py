"""WatchEvents: replay + live without gap or duplicate across reconnects, heartbeats,
slow subscribers cut off with fell_behind while the engine runs on."""

from __future__ import annotations

import threading

import grpc
import sqlalchemy as sa
import trio

from cofid.backends.fake import FakeBackends
from cofid.store import tables as t
from protos.cofi.v1 import cofi_pb2 as pb
from tests.api.conftest import VIEW, write_batch_dir

MD = (("authorization", f"Bearer {VIEW}"),)


def consume(stub, request, *, stop_after: int | None = None, until=None):
    """Read a WatchEvents stream in this thread; returns (event ids, notices, heartbeats)."""
    it = stub.WatchEvents(request, metadata=MD, timeout=60)
    ids, notices, beats = [], [], []
    try:
        for m in it:
            kind = m.WhichOneof("msg")
            if kind == "event":
                ids.append(m.event.id)
            elif kind == "heartbeat":
                beats.append(m.heartbeat.last_event_id)
            else:
                notices.append(m.notice.code)
            if stop_after is not None and len(ids) >= stop_after:
                break
            if until is not None and until(ids):
                break
    finally:
        it.cancel()
    return ids, notices, beats


async def all_event_ids(h) -> list[int]:
    tbl = t.batch_execution_log
    return await h.query(lambda c: list(c.execute(sa.select(tbl.c.id).order_by(tbl.c.id))
                                        .scalars()))


async def test_resume_gets_every_event_exactly_once(start_server, tmp_path):
    h = await start_server(fake=FakeBackends(latency_s=0.03))
    d = write_batch_dir(tmp_path / "w", [f"w{i}.wav" for i in range(12)])
    ref = await h.call("StartBatch", pb.StartBatchRequest(directory=str(d)))
    first, _, _ = await trio.to_thread.run_sync(
        lambda: consume(h.stub, pb.WatchRequest(from_event_id=0), stop_after=15))
    assert len(first) == 15
    with trio.fail_after(5):  # the client went away: its subscription is closed
        while h.service.subs:
            await trio.sleep(0.02)
    await trio.sleep(0.2)  # events keep flowing while disconnected
    target: list[int] = []

    def until(ids):
        return bool(target) and bool(ids) and ids[-1] >= target[0]

    second: list = []

    async def reader():
        second.append(await trio.to_thread.run_sync(lambda: consume(
            h.stub, pb.WatchRequest(from_event_id=first[-1]), until=until)))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(reader)
        task = await h.wait_task(ref.task_id)
        assert task.state == "completed"
        target.append((await all_event_ids(h))[-1])
    ids = first + second[0][0]
    assert ids == await all_event_ids(h)  # every committed event, once, in order
    assert len(ids) == len(set(ids)) and len(ids) > 40


async def test_filters_live_and_heartbeat(start_server, tmp_path):
    h = await start_server()
    got: list = []
    started = threading.Event()

    def live():
        it = h.stub.WatchEvents(pb.WatchRequest(event_types=["stage_complete"]), metadata=MD,
                                timeout=60)
        out = []
        try:
            for m in it:
                started.set()
                out.append(m)
                if sum(m.WhichOneof("msg") == "event" for m in out) >= 4:
                    break
        finally:
            it.cancel()
        got.extend(out)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.to_thread.run_sync, live)
        while not started.is_set():  # the first heartbeat proves the stream is open
            await trio.sleep(0.05)
        d = write_batch_dir(tmp_path / "f", ["f1.wav", "f2.wav"])
        ref = await h.call("StartBatch", pb.StartBatchRequest(directory=str(d)))
        await h.wait_task(ref.task_id)
    events = [m.event for m in got if m.WhichOneof("msg") == "event"]
    beats = [m.heartbeat for m in got if m.WhichOneof("msg") == "heartbeat"]
    assert beats and beats[0].server_time.seconds > 0
    assert {e.event_type for e in events} == {"stage_complete"}
    assert all(e.batch_id == ref.batch_id or e.batch_id > 0 for e in events)
    # bad requests
    for req, text in [(pb.WatchRequest(batch_id=-1), "batch_id must be ≥ 0"),
                      (pb.WatchRequest(stages=["nope"]), "unknown stage 'nope'"),
                      (pb.WatchRequest(event_types=["boom"]), "unknown event type 'boom'"),
                      (pb.WatchRequest(from_event_id=-5), "from_event_id must be ≥ 0")]:
        def bad(req=req):
            try:
                consume(h.stub, req, stop_after=1)
            except grpc.RpcError as e:
                return e.code(), e.details()
            return None

        code, msg = await trio.to_thread.run_sync(bad)
        assert code == grpc.StatusCode.INVALID_ARGUMENT and text in msg


async def test_slow_subscriber_falls_behind_engine_does_not_wait(start_server, tmp_path):
    h = await start_server(grpc_extra={"subscriber_buffer": 1})
    opened, resume = threading.Event(), threading.Event()
    result: dict = {}

    def slow():
        it = h.stub.WatchEvents(pb.WatchRequest(), metadata=MD, timeout=60)
        msgs = []
        try:
            msgs.append(next(it))  # a heartbeat: the stream is open
            opened.set()
            resume.wait(30)  # stop reading while the batch runs
            for m in it:
                msgs.append(m)
        except grpc.RpcError as e:
            result["code"], result["details"] = e.code(), e.details()
        result["msgs"] = msgs

    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.to_thread.run_sync, slow)
        while not opened.is_set():
            await trio.sleep(0.02)
        d = write_batch_dir(tmp_path / "s", [f"s{i}.wav" for i in range(10)])
        ref = await h.call("StartBatch", pb.StartBatchRequest(directory=str(d)))
        task = await h.wait_task(ref.task_id, timeout=15)  # not held up by the subscriber
        assert task.state == "completed"
        resume.set()
    notices = [m.notice for m in result["msgs"] if m.WhichOneof("msg") == "notice"]
    assert [n.code for n in notices] == ["fell_behind"]
    assert result["code"] == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "fell behind" in result["details"]
    assert not h.service.subs
