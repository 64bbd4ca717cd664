"""Slots per capability URL (issue 20, point 7): one `[[gpus]]` entry with its speech server
on `url` and its LLM on `chat_url`, one slot each. While one file's LLM1 call is held by the
chat server, another file's STT must still reach the speech server.

Both servers are cofi-simworkers behind recording handlers. The chat handler holds every
request until an STT request has arrived while a chat request was in flight; the speech
handler holds a later file's STT until the first chat request has arrived (so the overlap
cannot be missed by the STT being sent just before it). With the entry's slots shared by
both servers, the held chat call keeps the only slot, no STT is sent during it, and the
overlap never happens: the holds end at their safety bound and the assertion fails.
"""

from __future__ import annotations

import numpy as np
import soundfile as sf
import sqlalchemy as sa
import trio

from cofid.config import parse_config
from cofid.service.app import open_app
from cofid.simworker import SimConfig
from cofid.simworker.http_server import HttpServer, Request, Response
from cofid.simworker.server import SimWorker
from cofid.store import tables as t

# Only ends a hold when the engine is wrong (no overlap ever comes); not a measured time.
SAFETY_BOUND_S = 20.0


class Overlap:
    """What the two servers saw, in arrival order."""

    def __init__(self) -> None:
        self.chat_in_flight = 0
        self.chat_arrived = trio.Event()
        self.stt_during_chat = trio.Event()
        self.stt_arrivals = 0
        self.log: list[str] = []
        self.bound_hit = 0

    async def speech(self, worker: SimWorker, request: Request) -> Response:
        if request.method == "POST" and "language" in request.form():
            self.stt_arrivals += 1
            self.log.append(
                f"stt#{self.stt_arrivals} arrives, chat in flight: {self.chat_in_flight}"
            )
            if self.stt_arrivals >= 2:
                with trio.move_on_after(SAFETY_BOUND_S) as scope:
                    await self.chat_arrived.wait()
                self.bound_hit += scope.cancelled_caught
            if self.chat_in_flight:
                self.stt_during_chat.set()
        return await worker.handle(request)

    async def chat(self, worker: SimWorker, request: Request) -> Response:
        if request.method != "POST":
            return await worker.handle(request)
        self.chat_in_flight += 1
        self.log.append("chat arrives")
        self.chat_arrived.set()
        try:
            with trio.move_on_after(SAFETY_BOUND_S) as scope:
                await self.stt_during_chat.wait()
            self.bound_hit += scope.cancelled_caught
            return await worker.handle(request)
        finally:
            self.chat_in_flight -= 1


def write_calls(directory, n: int) -> None:
    directory.mkdir()
    rng = np.random.default_rng(5)
    for i in range(n):
        sf.write(directory / f"call_{i}.wav",
                 (rng.standard_normal(8000 * 8) * 0.05).astype("float32"), 8000)  # fmt: skip


async def test_stt_reaches_the_speech_server_while_the_chat_server_holds_a_call(
    tmp_path, sqlite_url
):
    batch = tmp_path / "batch"
    write_calls(batch, 3)
    seen = Overlap()
    speech_worker = SimWorker(SimConfig(seed=1, time_scale=0.0))
    chat_worker = SimWorker(SimConfig(seed=2, time_scale=0.0))

    async def speech(request: Request) -> Response:
        return await seen.speech(speech_worker, request)

    async def chat(request: Request) -> Response:
        return await seen.chat(chat_worker, request)

    async with trio.open_nursery() as nursery:
        speech_server = await nursery.start(HttpServer(speech).serve)
        chat_server = await nursery.start(HttpServer(chat).serve)
        cfg = parse_config({
            "database": {"url": sqlite_url},
            "paths": {"data": str(tmp_path / "var")},
            "gpus": [{"name": "g", "url": speech_server.url, "chat_url": chat_server.url,
                      "slots": 1, "chat_slots": 1}],
            "backends": {"lid": "remote", "stt": "remote", "chat": "remote", "denoise": "off",
                         "ivr": "off", "remote": {"timeout_s": 60.0, "connect_timeout_s": 2.0}},
            "pipelines": {"batch": {"denoise": False, "ivr": False}},
        })  # fmt: skip
        async with open_app(cfg) as app:
            gpu = app.pool.gpus[0]
            # One entry, two lanes: the main url's one slot and chat_url's one.
            assert (gpu.slots, dict(gpu.lanes), dict(gpu.lane_of)) == (
                1,
                {chat_server.url: 1},
                {"chat": chat_server.url},
            )
            await app.run_batch(await app.prepare_batch(batch))
        nursery.cancel_scope.cancel()

    assert seen.stt_during_chat.is_set(), seen.log
    assert seen.bound_hit == 0, seen.log  # every hold ended by the overlap, none by the bound
    engine = sa.create_engine(sqlite_url)
    with engine.connect() as c:
        calls = c.execute(sa.select(t.call.c.status)).scalars().all()
        retries = c.execute(sa.select(sa.func.count()).select_from(t.processing_logs)
                            .where(t.processing_logs.c.status == "retry")).scalar()  # fmt: skip
    engine.dispose()
    assert calls == ["Complete"] * 3
    assert retries == 0
    assert speech_worker.requests["chat"] == 0 and chat_worker.requests["stt"] == 0
    assert chat_worker.requests["chat"] == 6  # LLM1 + LLM2 of each call, on the chat server


def test_one_url_for_everything_is_one_lane(tmp_path, sqlite_url):
    """The default: every capability on `url` shares the entry's slots, as before."""
    from cofid.service.app import build_gpus

    cfg = parse_config({
        "database": {"url": sqlite_url},
        "paths": {"data": str(tmp_path / "var")},
        "gpus": [{"name": "g", "url": "http://127.0.0.1:9", "slots": 3}],
        "backends": {"lid": "remote", "stt": "remote", "chat": "remote"},
    })  # fmt: skip
    (gpu,) = build_gpus(cfg, clock=lambda: 0.0)
    try:
        assert (gpu.slots, gpu.total_slots, gpu.lanes, gpu.lane_of) == (3, 3, {}, {})
        assert {gpu.lane(c) for c in ("lid", "stt", "chat")} == {""}
    finally:
        trio.run(gpu.backends.aclose)
