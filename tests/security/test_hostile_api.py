"""The bad-input corpus of the control plane (issue 14, classes 8 and 9), on a real gRPC
server over a real daemon (serve_main, SQLite):

* page tokens are signed: forged, unsigned old-style, tampered, truncated, non-base64,
  oversized, other-RPC, infinite or 10^30 keysets (even signed with the daemon's key)
  and tokens of an earlier daemon instance are INVALID_ARGUMENT with one clear message;
* a stage listed twice (Reaudit, WatchEvents) is INVALID_ARGUMENT naming the stage;
* the upload storage filling up mid-upload is RESOURCE_EXHAUSTED and leaves nothing
  behind (ENOSPC injected at the upload writer seam, :func:`cofid.api.uploads.open_part`:
  the header's free-space check passed, then the disk filled, as when another writer
  shares it);
* streams are capped per kind and all together, so 30 operator uploads trickling a
  message at a time cannot make a viewer's unary calls (GetBatch, ListCalls, ListGpus,
  health Check) miss their deadline; a whole upload has a deadline even when it is
  never idle.
"""

from __future__ import annotations

import base64
import errno
import io
import json
import threading
import time
from pathlib import Path

import grpc
import pytest
import trio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cofid.api import page_tokens, uploads
from cofid.api.validate import TOKEN_REFUSED, calls_filter_key, filter_key
from cofid.backends.fake import FakeBackends
from cofid.config import ConfigError, parse_config
from cofid.store import tables as t
from cofid.testing.daemon import InProcessDaemon
from protos.cofi.v1 import cofi_pb2 as pb
from protos.cofi.v1 import cofi_pb2_grpc as pb_grpc
from tests.api.conftest import OP, VIEW, make_cfg, upload_messages, wav_bytes
from tests.security.conftest import C, metadata

LC, LB = pb.ListCallsRequest, pb.ListBatchesRequest


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


async def uploaded_batch(h, names: list[str]) -> int:
    reply = await h.upload({n: wav_bytes(0.3, freq=300 + 20 * i) for i, n in enumerate(names)})
    task = await h.wait_task(reply.task_id)
    assert task.state == "completed", task
    return reply.batch_id


# ---- class 9: page tokens -------------------------------------------------------------


async def test_forged_and_foreign_page_tokens_are_refused_cleanly(start_server):
    h = await start_server()
    bid = await uploaded_batch(h, ["p1.wav", "p2.wav", "p3.wav"])
    await uploaded_batch(h, ["q1.wav"])
    calls_token = (await h.call("ListCalls", LC(batch_id=bid, page_size=1), VIEW)).next_page_token
    batches_token = (await h.call("ListBatches", LB(page_size=1), VIEW)).next_page_token
    assert calls_token and batches_token
    ckey, bkey = calls_filter_key(bid, []), filter_key(None, None, 1)
    body, mac = calls_token.split(".")
    forged = [
        # the pre-HMAC format, which any client could write: a plausible keyset...
        (LC(batch_id=bid, page_size=1), b64(json.dumps({"c": 1, "f": ckey}).encode())),
        # ...`inf` (int(inf) was an OverflowError, INTERNAL) and a 10^30 keyset
        (LB(page_size=1), b64(f'{{"d":"2026-01-01","n":Infinity,"f":"{bkey}"}}'.encode())),
        (LC(batch_id=bid, page_size=1), b64(json.dumps({"c": 10**30, "f": ckey}).encode())),
        # a real token's payload with another keyset and the real mac (tampered)
        (
            LC(batch_id=bid, page_size=1),
            b64(json.dumps({"c": 2, "f": ckey, "r": "ids"}).encode()) + "." + mac,
        ),
        # a mac made up by the client
        (LC(batch_id=bid, page_size=1), body + "." + b64(bytes(32))),
        # truncated, in the mac and in the payload
        (LC(batch_id=bid, page_size=1), calls_token[:-5]),
        (LC(batch_id=bid, page_size=1), calls_token[5:]),
        # not base64 at all, standard-alphabet and padded base64, control characters
        (LC(batch_id=bid, page_size=1), "!!not base64!!.@@"),
        (LC(batch_id=bid, page_size=1), body.replace("-", "+") + "==." + mac),
        (LC(batch_id=bid, page_size=1), "\x1b[31m.\x00"),
        # huge: never decoded
        (LC(batch_id=bid, page_size=1), "A" * 100_000 + "." + mac),
        # the other RPC's token, and this RPC's token for other filters
        (LC(batch_id=bid, page_size=1), batches_token),
        (LB(page_size=1), calls_token),
        (LC(batch_id=bid, page_size=1, statuses=["Complete"]), calls_token),
        (LB(page_size=2), batches_token),
    ]
    for req, token in forged:
        req.page_token = token
        method = "ListCalls" if isinstance(req, LC) else "ListBatches"
        got = await h.code_of(method, req, VIEW)
        assert got == (C.INVALID_ARGUMENT, TOKEN_REFUSED), (method, token[:60])

    # A signed token whose keyset is out of range (only this daemon could make it) is
    # still range-checked, not trusted: 10^30 and inf never reach SQL.
    for req, payload in (
        (LC(batch_id=bid, page_size=1), {"r": "ids", "c": 10**30, "f": ckey}),
        (LC(batch_id=bid, page_size=1), {"r": "ids", "c": True, "f": ckey}),
        (LB(page_size=1), {"r": "ListBatches", "d": "2026-01-01", "n": float("inf"), "f": bkey}),
        (LB(page_size=1), {"r": "ListBatches", "d": "2026-13-01", "n": 1, "f": bkey}),
    ):
        req.page_token = page_tokens.sign(payload)
        method = "ListCalls" if isinstance(req, LC) else "ListBatches"
        assert await h.code_of(method, req, VIEW) == (C.INVALID_ARGUMENT, TOKEN_REFUSED), payload

    # and the genuine tokens still page on
    nxt = await h.call("ListCalls", LC(batch_id=bid, page_size=1, page_token=calls_token), VIEW)
    assert len(nxt.calls) == 1 and nxt.next_page_token
    assert (
        len((await h.call("ListBatches", LB(page_size=1, page_token=batches_token), VIEW)).batches)
        == 1
    )


async def test_page_tokens_of_an_earlier_daemon_instance_are_refused(tmp_path, nursery):
    d = InProcessDaemon(make_cfg(tmp_path), FakeBackends(), nursery)
    await d.start()

    def stub():
        ch = grpc.insecure_channel(d.bound[0])
        return ch, pb_grpc.CofiStub(ch)

    def upload_and_page(stub_):
        msgs = upload_messages({f"r{i}.wav": wav_bytes(0.3, freq=300 + 30 * i) for i in range(3)})
        reply = stub_.UploadAudit(iter(msgs), metadata=metadata(OP), timeout=30)
        deadline = time.monotonic() + 30
        while stub_.GetTask(
            pb.GetTaskRequest(task_id=reply.task_id), metadata=metadata(VIEW), timeout=30
        ).state in ("queued", "running"):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        return reply.batch_id, stub_.ListCalls(
            LC(batch_id=reply.batch_id, page_size=1), metadata=metadata(VIEW), timeout=30
        ).next_page_token

    ch, s = stub()
    bid, token = await trio.to_thread.run_sync(upload_and_page, s)
    ch.close()
    await d.restart()
    ch, s = stub()

    def page(token_):
        try:
            r = s.ListCalls(
                LC(batch_id=bid, page_size=1, page_token=token_),
                metadata=metadata(VIEW),
                timeout=30,
            )
            return C.OK, len(r.calls), r.next_page_token
        except grpc.RpcError as e:
            return e.code(), e.details(), ""

    try:
        assert await trio.to_thread.run_sync(page, token) == (C.INVALID_ARGUMENT, TOKEN_REFUSED, "")
        # starting again from the first page works, and so do the new instance's tokens
        first = await trio.to_thread.run_sync(page, "")
        assert first[:2] == (C.OK, 1) and first[2] != token
        assert (await trio.to_thread.run_sync(page, first[2]))[:2] == (C.OK, 1)
    finally:
        ch.close()
        await d.shutdown()


# ---- class 9: stage lists -------------------------------------------------------------


@pytest.mark.parametrize(
    ("stages", "twice"),
    [
        (["lid", "stt", "lid"], "lid"),
        (["llm1", " LLM1 "], "llm1"),  # the same stage after trimming and case folding
        (["stt", "llm2", "Stt"], "stt"),
    ],
)
async def test_a_stage_listed_twice_is_refused_naming_it(start_server, stages, twice):
    h = await start_server()
    await uploaded_batch(h, ["s1.wav"])
    before = await h.count(t.task)
    code, msg = await h.code_of("Reaudit", pb.ReauditRequest(audio_names=["s1.wav"], stages=stages))
    assert (code, msg) == (C.INVALID_ARGUMENT, f"stage {twice!r} is listed twice")
    assert await h.count(t.task) == before  # nothing queued


async def test_a_stage_or_event_type_listed_twice_in_watch_events_is_refused(start_server):
    from tests.security.conftest import first_watch_message

    h = await start_server()
    for req, text in (
        (pb.WatchRequest(stages=["stt", "lid", "stt"]), "stage 'stt' is listed twice"),
        (pb.WatchRequest(event_types=["error", "error"]), "event type 'error' is listed twice"),
    ):
        code, msg, _m = await first_watch_message(h, req, VIEW)
        assert (code, msg) == (C.INVALID_ARGUMENT, text)


# ---- class 9: the disk filling up during an upload ---------------------------------------


class FillingDisk(io.FileIO):
    """A real part file on a disk that has `budget` bytes left for all of them."""

    budget = 0

    def write(self, b) -> int:  # type: ignore[override]
        if len(b) > FillingDisk.budget:
            raise OSError(errno.ENOSPC, "No space left on device")
        FillingDisk.budget -= len(b)
        return super().write(b)


async def test_a_full_disk_during_an_upload_is_resource_exhausted_and_keeps_nothing(
    start_server, monkeypatch
):
    h = await start_server()
    await uploaded_batch(h, ["first.wav"])  # the uploads dir and a batch exist already
    dirs_before = sorted(p.name for p in h.cfg.uploads_dir.iterdir())
    counts = {tbl.name: await h.count(tbl) for tbl in (t.task, t.batch_status, t.call)}
    FillingDisk.budget = 6000
    monkeypatch.setattr(uploads, "open_part", lambda p: FillingDisk(p, "w"))
    files = {"full1.wav": wav_bytes(0.5), "full2.wav": wav_bytes(0.5, freq=600)}
    code, msg = await h.code_of("UploadAudit", iter(upload_messages(files, chunk=2000)))
    assert (code, msg) == (C.RESOURCE_EXHAUSTED, uploads.STORAGE_FULL)
    assert sorted(p.name for p in h.cfg.uploads_dir.iterdir()) == dirs_before
    assert h.service.uploading_names == set()
    assert {tbl.name: await h.count(tbl) for tbl in (t.task, t.batch_status, t.call)} == counts
    # space again: the same names go through
    monkeypatch.setattr(uploads, "open_part", lambda p: open(p, "wb"))  # noqa: SIM115
    reply = await h.upload(files)
    assert reply.status == "queued" and list(reply.stored_names) == list(files)


# ---- class 8: stream caps, a reserved share of the pool, the upload deadline ------------


class Trickler:
    """An operator upload in a thread of its own that sends its header, then one small
    chunk per `step` seconds until released (then cancels): it never goes idle."""

    def __init__(self, stub, name: str, step: float = 0.2) -> None:
        self.data = wav_bytes(2.0)
        self.msgs = upload_messages({name: self.data}, chunk=200)
        self.stub, self.step = stub, step
        self.release = threading.Event()
        self.cancelled = threading.Event()
        self.result: tuple = ()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _gen(self):
        for m in self.msgs:
            yield m
            if self.release.wait(self.step):
                break
        # never end the stream by itself: released, the client cancels (CANCELLED)
        self.cancelled.wait(60)

    def _run(self) -> None:
        fut = self.stub.UploadAudit.future(self._gen(), metadata=metadata(OP), timeout=120)
        while not fut.done() and not self.release.is_set():
            time.sleep(0.02)
        fut.cancel()
        self.cancelled.set()
        try:
            fut.result()
            self.result = (C.OK, "")
        except grpc.FutureCancelledError:
            self.result = (C.CANCELLED, "")
        except grpc.RpcError as e:
            self.result = (e.code(), e.details())


async def wait_until(pred, what: str, timeout: float = 20) -> None:
    with trio.fail_after(timeout):
        while not pred():
            await trio.sleep(0.02)


STARVE = {
    "max_workers": 8,
    "reserved_workers": 4,  # streams may hold 4 threads in all
    "max_concurrent_uploads": 16,
    "max_event_streams": 16,
    "max_public_streams": 1,
    "upload_idle_timeout_s": 5.0,
}


async def test_trickling_uploads_cannot_starve_unary_calls_or_health(start_server):
    h = await start_server(grpc_extra=STARVE)
    bid = await uploaded_batch(h, ["v1.wav", "v2.wav"])
    [first_task] = [p.name for p in h.cfg.uploads_dir.iterdir()]
    health = health_pb2_grpc.HealthStub(h.channel)
    trick = [Trickler(h.stub, f"t{i:02}.wav") for i in range(30)]
    try:
        # 4 are admitted (the stream share) and hold their threads; the 26 others are
        # refused at once, naming the limit
        await wait_until(lambda: sum(1 for x in trick if x.result) == 26, "26 refusals")
        refused = [x.result for x in trick if x.result]
        assert set(refused) == {
            (
                C.RESOURCE_EXHAUSTED,
                "too many uploads at once (4, the streams' share of "
                "grpc.max_workers); try again later",
            )
        }
        await wait_until(lambda: len(h.service.uploading_names) == 4, "4 open uploads")

        # every viewer call still answers within its deadline, many at once
        def viewer(i: int):
            md, tmo = metadata(VIEW), 5
            if i % 4 == 0:
                return (
                    h.stub.GetBatch(
                        pb.GetBatchRequest(batch_id=bid), metadata=md, timeout=tmo
                    ).summary.batch_id
                    == bid
                )
            if i % 4 == 1:
                return len(h.stub.ListCalls(LC(batch_id=bid), metadata=md, timeout=tmo).calls) == 2
            if i % 4 == 2:
                return (
                    len(h.stub.ListGpus(pb.ListGpusRequest(), metadata=md, timeout=tmo).gpus) == 2
                )
            return (
                health.Check(health_pb2.HealthCheckRequest(), timeout=tmo).status
                == health_pb2.HealthCheckResponse.SERVING
            )

        results: list[bool] = []

        async def one(i: int) -> None:
            results.append(await trio.to_thread.run_sync(viewer, i))

        async with trio.open_nursery() as n:
            for i in range(24):
                n.start_soon(one, i)
        assert results == [True] * 24

        # a viewer's event stream finds the share taken: refused, not queued
        from tests.security.conftest import first_watch_message

        code, msg, _m = await first_watch_message(h, pb.WatchRequest(), VIEW)
        assert code == C.RESOURCE_EXHAUSTED and "too many open streams (4" in msg
        assert sum(1 for x in trick if not x.result) == 4  # the admitted ones still open
    finally:
        for x in trick:
            x.release.set()
        for x in trick:
            await trio.to_thread.run_sync(x.thread.join, 30)
    await wait_until(lambda: not h.service.uploading_names, "the uploads to clean up")
    assert {x.result[0] for x in trick} == {C.RESOURCE_EXHAUSTED, C.CANCELLED}
    # only the first upload's directory is left: nothing of the cancelled ones
    assert [p.name for p in h.cfg.uploads_dir.iterdir()] == [first_task]


async def test_each_kind_of_stream_has_its_own_cap(start_server):
    h = await start_server(
        grpc_extra={
            "max_workers": 16,
            "reserved_workers": 4,
            "max_concurrent_uploads": 2,
            "max_event_streams": 2,
            "max_public_streams": 1,
        }
    )
    trick = [Trickler(h.stub, f"c{i}.wav") for i in range(3)]
    health = health_pb2_grpc.HealthStub(h.channel)
    watch_open = threading.Event()
    stop = threading.Event()

    def health_watch():
        it = health.Watch(health_pb2.HealthCheckRequest(), timeout=30)
        try:
            next(it)
            watch_open.set()
            stop.wait(30)
        finally:
            it.cancel()

    holder = threading.Thread(target=health_watch, daemon=True)
    holder.start()
    try:
        await wait_until(lambda: sum(1 for x in trick if x.result) == 1, "one refusal")
        assert [x.result for x in trick if x.result] == [
            (
                C.RESOURCE_EXHAUSTED,
                "too many uploads at once (2, grpc.max_concurrent_uploads); try again later",
            )
        ]
        await trio.to_thread.run_sync(watch_open.wait, 20)

        def second_health_watch():
            it = health.Watch(health_pb2.HealthCheckRequest(), timeout=10)
            try:
                next(it)
                return C.OK, ""
            except grpc.RpcError as e:
                return e.code(), e.details()
            finally:
                it.cancel()

        assert await trio.to_thread.run_sync(second_health_watch) == (
            C.RESOURCE_EXHAUSTED,
            "too many open health/reflection streams (1, grpc.max_public_streams); try again later",
        )
        # other kinds are not affected by a full one: an event stream opens
        from tests.security.conftest import first_watch_message

        code, _msg, m = await first_watch_message(h, pb.WatchRequest(), VIEW)
        assert code == C.OK and m is not None
    finally:
        stop.set()
        for x in trick:
            x.release.set()
        for x in trick:
            await trio.to_thread.run_sync(x.thread.join, 30)
        await trio.to_thread.run_sync(holder.join, 30)
    # the caps are released when the streams end: uploads go through again
    await wait_until(lambda: not h.service.uploading_names, "the uploads to clean up")
    reply = await h.upload({"after.wav": wav_bytes()})
    assert reply.status == "queued"


async def test_an_upload_that_never_idles_still_has_a_total_deadline(start_server):
    h = await start_server(grpc_extra={"upload_idle_timeout_s": 5.0, "upload_deadline_s": 1.0})
    h.cfg.uploads_dir.mkdir(parents=True, exist_ok=True)
    before = sorted(p.name for p in h.cfg.uploads_dir.iterdir())
    x = Trickler(h.stub, "slowpoke.wav", step=0.1)  # 0.1 s apart: never idle for 5 s
    await trio.to_thread.run_sync(x.thread.join, 30)
    assert x.result == (
        C.DEADLINE_EXCEEDED,
        "upload not finished within 1 s (grpc.upload_deadline_s): cancelled, nothing was kept",
    )
    await wait_until(lambda: not h.service.uploading_names, "the upload to clean up")
    assert sorted(p.name for p in h.cfg.uploads_dir.iterdir()) == before


def test_stream_limits_are_validated_in_the_configuration(tmp_path: Path):
    base = {"paths": {"data": str(tmp_path)}}
    for grpc_cfg, text in (
        ({"max_workers": 8, "reserved_workers": 8}, "grpc.reserved_workers: 8 is not allowed"),
        ({"max_concurrent_uploads": 0}, "grpc.max_concurrent_uploads: 0 is not allowed"),
        ({"upload_deadline_s": 0}, "grpc.upload_deadline_s: 0.0 is not allowed"),
    ):
        with pytest.raises(ConfigError, match=text.replace(".", r"\.")):
            parse_config({**base, "grpc": grpc_cfg})
