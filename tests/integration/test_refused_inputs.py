"""A host that refuses one input stays in the pool; a host that refuses everyone leaves it.

A batch of recordings some of which the GPU host cannot decode (HTTP 400, as the audio
contract says): those files fail at their first stage with the server's message, no
retry, and the host that answered stays healthy, so the good files behind a run of bad
ones are not held up by its breaker (whose threshold here is one failure). A host that
answers 401 to every request (its api_key is wrong) is taken out at once, as before.
Real HTTP on loopback: a cofi-simworker behind a handler that plays the refusals.
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import sqlalchemy as sa
import trio

from cofid.config import parse_config
from cofid.domain.ports import (
    BackendError,
    BackendTimeout,
    ModelOutputError,
    PermanentBackendError,
    host_answered,
)
from cofid.service.app import open_app
from cofid.simworker import SimConfig
from cofid.simworker.http_server import HttpServer, Request, Response, error_response
from cofid.simworker.server import SimWorker
from cofid.store import tables as t

UNDECODABLE = "cannot decode audio: not a WAV/FLAC/OGG/MP3 stream"


@pytest.mark.parametrize(("exc", "answered"), [
    (PermanentBackendError("x", details={"status": 400}), True),
    (PermanentBackendError("x", details={"status": 413}), True),
    (PermanentBackendError("x", details={"status": 422}), True),
    (PermanentBackendError("x", details={"status": 500}), True),  # "cannot decode" in a 500
    (PermanentBackendError("cannot read /b/a.wav"), True),  # never sent
    (PermanentBackendError("x", details={"status": 401}), False),
    (PermanentBackendError("x", details={"status": 403}), False),
    (PermanentBackendError("x", details={"status": 404}), False),
    (PermanentBackendError("x", details={"status": 405}), False),
    (ModelOutputError("cut off"), True),
    (BackendError("HTTP 503"), False),
    (BackendTimeout("no reply"), False),
    (None, False),
])
def test_which_failures_show_the_host_works(exc, answered):
    assert host_answered(exc) is answered


def _write_batch(directory, names):
    directory.mkdir()
    rng = np.random.default_rng(11)
    for name in names:
        sf.write(directory / name, (rng.standard_normal(8000 * 6) * 0.05).astype("float32"), 8000)


def _config(tmp_path, url, db_url):
    return parse_config({
        "database": {"url": db_url},
        "paths": {"data": str(tmp_path / "var")},
        "gpus": [{"name": "g", "url": url, "slots": 2}],
        "backends": {"lid": "remote", "stt": "remote", "chat": "remote", "denoise": "off",
                     "ivr": "off", "remote": {"timeout_s": 60.0, "connect_timeout_s": 2.0,
                                              "failure_threshold": 1, "cooldown_s": 3600.0}},
        "stages": {"retry": {"attempts": 3, "backoff_s": 0.0}},
        "pipelines": {"batch": {"denoise": False, "ivr": False}},
    })  # fmt: skip


def _outcome(db_url):
    engine = sa.create_engine(db_url)
    with engine.connect() as c:
        calls = dict(c.execute(sa.select(t.call.c.audioName, t.call.c.status)).all())
        failed = dict(c.execute(
            sa.select(t.file_distribution.c.file, t.file_distribution.c.failureReason)
            .where(t.file_distribution.c.failedStage.is_not(None))).all())
        events = c.execute(sa.select(t.batch_execution_log.c.metadata)).scalars().all()
        retries = c.execute(sa.select(sa.func.count()).select_from(t.processing_logs)
                            .where(t.processing_logs.c.status == "retry")).scalar()
    engine.dispose()
    health = [m["gpu_healthy"] for m in events if m and "gpu_healthy" in m]
    return calls, failed, health, retries


async def _run(tmp_path, db_url, names, refuse):
    batch = tmp_path / "batch"
    _write_batch(batch, names)
    worker = SimWorker(SimConfig(seed=4, time_scale=0.0))

    async def handler(request: Request) -> Response:
        answer = refuse(request)
        return answer if answer is not None else await worker.handle(request)

    async with trio.open_nursery() as nursery:
        server = await nursery.start(HttpServer(handler).serve)
        # A host wrongly taken out holds the good files for its hour-long cooldown: fail,
        # not hang (the run takes about a second).
        with trio.fail_after(120):
            async with open_app(_config(tmp_path, server.url, db_url)) as app:
                await app.run_batch(await app.prepare_batch(batch))
                healthy = app.pool.gpus[0].healthy
        nursery.cancel_scope.cancel()
    return healthy


async def test_undecodable_recordings_fail_alone_and_the_host_stays_healthy(tmp_path, sqlite_url):
    bad = [f"a{i}_bad.wav" for i in range(6)]  # first in name order: a run of them
    good = [f"b{i}.wav" for i in range(3)]

    def refuse(request: Request) -> Response | None:
        if request.method == "POST" and b'_bad.wav"' in request.body:
            return error_response(400, UNDECODABLE)
        return None

    healthy = await _run(tmp_path, sqlite_url, bad + good, refuse)
    calls, failed, health, retries = _outcome(sqlite_url)
    assert healthy and health == []
    assert {n: calls[n] for n in good} == dict.fromkeys(good, "Complete")
    assert {n: calls[n] for n in bad} == dict.fromkeys(bad, "Failed")
    assert set(failed) == set(bad)
    assert all(UNDECODABLE in reason for reason in failed.values())
    assert retries == 0  # refused input: no retry


async def test_a_host_refusing_every_request_is_taken_out(tmp_path, sqlite_url):
    def refuse(request: Request) -> Response | None:
        if request.method == "POST":
            return error_response(401, "invalid api key", type_="authentication_error")
        return None

    healthy = await _run(tmp_path, sqlite_url, ["c0.wav", "c1.wav"], refuse)
    calls, failed, health, _retries = _outcome(sqlite_url)
    assert not healthy and health[0] is False
    assert set(calls.values()) == {"Failed"} and set(failed) == {"c0.wav", "c1.wav"}
