"""Resource limits hold while a batch runs, and the batch still completes: oversize
uploads (total and per file), too many files, too many WatchEvents streams, a client that
stalls mid-upload (idle timeout) and one that trickles (not idle)."""

from __future__ import annotations

import threading
import time

import grpc
import trio

from cofid.backends.fake import FakeBackends
from protos.cofi.v1 import cofi_pb2 as pb
from tests.api.conftest import OP, VIEW, upload_messages, wav_bytes, write_batch_dir
from tests.security.conftest import C, metadata, wait_running

LIMITS = {"max_upload_files": 3, "max_file_bytes": 50_000, "max_upload_bytes": 60_000,
          "max_workers": 6,  # at most 6 - 4 = 2 WatchEvents streams
          "upload_idle_timeout_s": 0.5}


async def upload_code(h, msgs):
    try:
        await h.call("UploadAudit", iter(msgs))
    except grpc.RpcError as e:
        return e.code(), e.details()
    return C.OK, ""


def blob(n: int) -> bytes:
    return bytes(n)  # the header decides: never decoded


async def check_upload_limits(h) -> None:
    cases = [
        ({f"f{i}.wav": wav_bytes() for i in range(4)},
         "4 files in one upload; the limit is 3"),
        ({"big.wav": blob(50_001)}, "big.wav: 50001 bytes is over the per-file limit of 50000"),
        ({"a.wav": blob(40_000), "b.wav": blob(40_000)},
         "upload of 80000 bytes is over the limit of 60000"),
    ]
    for files, text in cases:
        started = time.monotonic()
        code, msg = await upload_code(h, upload_messages(files, chunk=64 * 1024))
        assert (code, msg) == (C.RESOURCE_EXHAUSTED, text)
        assert time.monotonic() - started < 5


async def check_stream_limit(h) -> None:
    release = threading.Event()
    opened: list[threading.Event] = []

    def hold():
        ev = threading.Event()
        opened.append(ev)
        it = h.stub.WatchEvents(pb.WatchRequest(), metadata=metadata(VIEW), timeout=60)
        try:
            next(it)
            ev.set()
            release.wait(30)
        finally:
            it.cancel()

    def third():
        it = h.stub.WatchEvents(pb.WatchRequest(), metadata=metadata(VIEW), timeout=10)
        try:
            return C.OK, next(it).WhichOneof("msg")
        except grpc.RpcError as e:
            return e.code(), e.details()
        finally:
            it.cancel()

    async with trio.open_nursery() as nursery:
        for _ in range(2):
            nursery.start_soon(trio.to_thread.run_sync, hold)
        with trio.fail_after(10):
            while len(opened) < 2 or not all(e.is_set() for e in opened):
                await trio.sleep(0.02)
        assert len(h.service.subs) == 2
        code, msg = await trio.to_thread.run_sync(third)
        assert (code, msg) == (C.RESOURCE_EXHAUSTED,
                               "too many event subscribers (2); try again later")
        # unary calls still find a pool thread while the streams hold theirs
        gpus = await h.call("ListGpus", pb.ListGpusRequest(), VIEW)
        assert len(gpus.gpus) == 2
        release.set()
    with trio.fail_after(5):
        while h.service.subs:
            await trio.sleep(0.02)
    assert (await trio.to_thread.run_sync(third))[0] == C.OK


async def check_stalled_upload(h) -> None:
    data = wav_bytes()
    msgs = upload_messages({"slow.wav": data}, chunk=2000)
    resume = threading.Event()

    def stalling():
        yield msgs[0]
        yield msgs[1]
        resume.wait(20)  # the client stalls mid-file
        yield from msgs[2:]

    def call():
        started = time.monotonic()
        try:
            h.stub.UploadAudit(stalling(), metadata=metadata(OP), timeout=30)
        except grpc.RpcError as e:
            return e.code(), e.details(), time.monotonic() - started
        finally:
            resume.set()
        return C.OK, "", time.monotonic() - started

    before = sorted(p.name for p in h.cfg.uploads_dir.iterdir())
    code, msg, took = await trio.to_thread.run_sync(call)
    assert code == C.DEADLINE_EXCEEDED
    assert msg == ("upload idle for more than 0.5 s (grpc.upload_idle_timeout_s): "
                   "cancelled, nothing was kept")
    assert 0.5 <= took < 5
    with trio.fail_after(5):  # the handler cleans up after the client saw the status
        while h.service.uploading_names:
            await trio.sleep(0.02)
    assert sorted(p.name for p in h.cfg.uploads_dir.iterdir()) == before
    # the name was released: the same upload, sent briskly, goes through
    reply = await h.call("UploadAudit", iter(upload_messages({"slow.wav": data})))
    assert reply.status == "queued"


async def check_trickling_upload(h) -> None:
    """Slow but never idle for 0.5 s: accepted, however long it takes in total."""
    msgs = upload_messages({"trickle.wav": wav_bytes(0.5)}, chunk=1500)
    assert len(msgs) >= 7

    def trickling():
        for m in msgs:
            yield m
            time.sleep(0.2)

    started = time.monotonic()
    reply = await trio.to_thread.run_sync(
        lambda: h.stub.UploadAudit(trickling(), metadata=metadata(OP), timeout=30))
    assert reply.status == "queued" and time.monotonic() - started > 1.0


async def test_limits_hold_while_a_batch_completes(start_server, tmp_path):
    h = await start_server(grpc_extra=LIMITS, fake=FakeBackends(latency_s=0.15))
    names = [f"k{i}.wav" for i in range(24)]
    ref = await h.call("StartBatch", pb.StartBatchRequest(
        directory=str(write_batch_dir(tmp_path / "k", names))))
    await wait_running(h, ref.task_id)
    h.cfg.uploads_dir.mkdir(parents=True, exist_ok=True)
    done_before = sum(s.done for s in (await h.call(
        "GetTask", pb.GetTaskRequest(task_id=ref.task_id), VIEW)).stages)

    await check_upload_limits(h)
    await check_stream_limit(h)
    await check_stalled_upload(h)
    await check_trickling_upload(h)

    task = await h.call("GetTask", pb.GetTaskRequest(task_id=ref.task_id), VIEW)
    assert sum(s.done for s in task.stages) > done_before  # it ran on during the checks
    task = await h.wait_task(ref.task_id, timeout=60)
    assert task.state == "completed"
    assert all(s.done == len(names) for s in task.stages), task.stages
    b = await h.call("GetBatch", pb.GetBatchRequest(batch_id=task.batch_id), VIEW)
    assert b.summary.status == "Completed"
    assert dict(b.call_status_counts) == {"Complete": len(names)}
