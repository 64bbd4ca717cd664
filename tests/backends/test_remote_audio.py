"""Denoise and IVR on a GPU host (docs/gpu-audio-contract.md): RemoteDenoise / RemoteIvr
against cofi-simworker and stand-in servers, the factory wiring, and whole batches."""

from __future__ import annotations

import io
import json
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile
import sqlalchemy as sa
import trio

from cofid.backends.base import AudioRef, BackendError, PermanentBackendError
from cofid.backends.remote import RemoteOptions
from cofid.backends.remote_audio import RemoteDenoise, RemoteIvr
from cofid.config import parse_config
from cofid.service.app import build_gpus, open_app
from cofid.simworker import SimConfig, serve_simworker
from cofid.simworker.audio import fake_ivr, fake_reduction_db
from cofid.simworker.http_server import HttpServer, Request, Response, error_response, json_response
from cofid.store import tables as t

FAST = RemoteOptions(timeout_s=5.0, connect_timeout_s=2.0)
INSTANT = {"time_scale": 0.0}


def write_wav(path: Path, seconds: float, rate: int = 8000) -> Path:
    time = np.arange(int(seconds * rate)) / rate
    soundfile.write(path, 0.3 * np.sin(2 * np.pi * 440 * time), rate)
    return path


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


@pytest.fixture
async def client():
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def start(nursery):
    async def start(**overrides):
        return await nursery.start(serve_simworker, SimConfig(**{**INSTANT, **overrides}))

    return start


@pytest.fixture
def serve(nursery):
    """A stand-in server answering every request with `reply(request)`; records requests."""

    async def start(reply):
        seen: list[Request] = []

        async def handler(request: Request) -> Response:
            seen.append(request)
            return await reply(request)

        server = await nursery.start(HttpServer(handler).serve)
        return seen, server.url

    return start


def answer(response: Response):
    async def reply(request: Request) -> Response:
        return response

    return reply


@pytest.fixture
def work(tmp_path) -> Path:
    directory = tmp_path / "work"
    directory.mkdir()
    return directory


# -- denoise -------------------------------------------------------------------------------


async def test_denoise_against_the_simworker_writes_flac_and_reports_reduction(
    start, client, tmp_path, work
):
    worker = await start()
    audio = AudioRef(write_wav(tmp_path / "in.wav", 12.0), "CALL-0001.wav")
    out = work / "7.denoise.flac"
    result = await RemoteDenoise(worker.url, client, FAST, strength=0.4).denoise(audio, out)

    assert result.output == out
    info = soundfile.info(str(out))
    assert info.format == "FLAC" and info.duration == pytest.approx(12.0)
    assert result.noise_reduction_db == fake_reduction_db("CALL-0001.wav")
    assert result.request["params"] == {"format": "flac", "strength": "0.4"}
    assert result.request["file"]["name"] == "CALL-0001.wav"
    assert result.response["transcoded"] is False and result.response["format"] == "FLAC"
    json.dumps([result.request, result.response])  # summaries only: no bytes
    assert worker.requests["denoise"] == 1 and leftovers(work) == []


async def test_a_wav_reply_for_a_flac_path_is_transcoded(serve, client, tmp_path, work):
    buffer = io.BytesIO()
    soundfile.write(buffer, np.zeros(16000, dtype="float32"), 16000, format="WAV")
    seen, url = await serve(answer(Response(body=buffer.getvalue(), content_type="audio/wav")))
    audio = AudioRef(write_wav(tmp_path / "in.wav", 2.0), "CALL-2.wav")
    result = await RemoteDenoise(url, client, FAST).denoise(audio, work / "2.denoise.flac")

    assert soundfile.info(str(result.output)).format == "FLAC"
    assert result.response["transcoded"] is True
    assert result.noise_reduction_db is None  # no X-Noise-Reduction-Db header
    assert b'name="strength"' not in seen[0].body and leftovers(work) == []


@pytest.mark.parametrize(
    ("response", "error", "match"),
    [
        (error_response(400, "could not decode audio: junk"), PermanentBackendError, "junk"),
        (error_response(500, "GPU fell over", type_="server_error"), BackendError, "HTTP 500"),
        (error_response(429, "busy"), BackendError, "HTTP 429"),
        (Response(body=b"not audio at all" * 10, content_type="audio/flac"), BackendError,
         "not decodable audio"),
        (json_response({"ok": True}), BackendError, "expected audio"),
    ],
)  # fmt: skip
async def test_denoise_failures_map_and_leave_no_file(
    serve, client, tmp_path, work, response, error, match
):
    _, url = await serve(answer(response))
    audio = AudioRef(write_wav(tmp_path / "in.wav", 2.0), "CALL-3.wav")
    out = work / "3.denoise.flac"
    with pytest.raises(error, match=match) as caught:
        await RemoteDenoise(url, client, FAST).denoise(audio, out)
    if error is BackendError:
        assert not isinstance(caught.value, PermanentBackendError)
    assert not out.exists() and leftovers(work) == []


async def test_denoise_gives_up_at_the_deadline(serve, client, tmp_path, work):
    async def hang(request: Request) -> Response:
        await trio.sleep_forever()

    _, url = await serve(hang)
    options = RemoteOptions(timeout_s=0.2, connect_timeout_s=0.1)
    audio = AudioRef(write_wav(tmp_path / "in.wav", 2.0), "CALL-4.wav")
    with pytest.raises(BackendError, match="timed out|no complete reply"):
        await RemoteDenoise(url, client, options).denoise(audio, work / "4.denoise.flac")
    assert list(work.iterdir()) == []


async def test_simworker_denoise_faults_and_bad_audio(start, client, tmp_path, work):
    audio = AudioRef(write_wav(tmp_path / "in.wav", 2.0), "CALL-5.wav")
    failing = await start(fail_rate=1.0)
    with pytest.raises(BackendError, match="simulated GPU failure") as caught:
        await RemoteDenoise(failing.url, client, FAST).denoise(audio, work / "a.flac")
    assert not isinstance(caught.value, PermanentBackendError)
    malformed = await start(malformed_rate=1.0)
    with pytest.raises(BackendError, match="not decodable"):
        await RemoteDenoise(malformed.url, client, FAST).denoise(audio, work / "b.flac")
    healthy = await start()
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF not really a wave file" * 10)
    with pytest.raises(PermanentBackendError, match="decode"):
        await RemoteDenoise(healthy.url, client, FAST).denoise(
            AudioRef(bad, "bad.wav"), work / "c.flac"
        )
    assert failing.faults["fail"] == 1 and malformed.faults["malformed"] == 1
    assert list(work.iterdir()) == []


# -- IVR -----------------------------------------------------------------------------------


async def test_ivr_trims_locally_at_the_offset_the_host_finds(start, client, tmp_path, work):
    worker = await start()
    audio = AudioRef(write_wav(tmp_path / "in.wav", 20.0), "CALL-ivr-0001.wav")
    out = work / "1.ivr.flac"
    result = await RemoteIvr(worker.url, client, FAST, max_ivr_s=60.0).trim(audio, out)

    expected, _ = fake_ivr("CALL-ivr-0001.wav", 20.0, 60.0)
    assert 2.0 <= expected <= 6.0
    assert result.trim_offset_s == pytest.approx(expected) and result.all_ivr is False
    assert result.output == out
    assert soundfile.info(str(out)).duration == pytest.approx(20.0 - expected, abs=0.01)
    assert result.response["output"] == "tail" and result.response["markers"]
    assert result.request["params"] == {"max_ivr_s": "60.0"}
    json.dumps([result.request, result.response])
    assert worker.requests["ivr"] == 1 and leftovers(work) == []


async def test_ivr_with_nothing_to_trim_returns_the_original(start, client, tmp_path, work):
    worker = await start()
    audio = AudioRef(write_wav(tmp_path / "in.wav", 20.0), "CALL-0002.wav")
    result = await RemoteIvr(worker.url, client, FAST).trim(audio, work / "2.ivr.flac")
    assert result.output == audio.path and result.trim_offset_s == 0.0
    assert list(work.iterdir()) == []


async def test_all_ivr_writes_a_short_silence(start, client, tmp_path, work):
    worker = await start()
    audio = AudioRef(write_wav(tmp_path / "in.wav", 9.0), "CALL-ivronly-3.wav")
    result = await RemoteIvr(worker.url, client, FAST).trim(audio, work / "3.ivr.flac")
    assert result.all_ivr is True and result.trim_offset_s == pytest.approx(9.0)
    info = soundfile.info(str(result.output))
    assert info.duration == pytest.approx(0.5) and result.response["output"] == "silence"


@pytest.mark.parametrize(
    ("body", "offset", "all_ivr", "written"),
    [
        ({"trim_offset_s": 50.0, "all_ivr": False}, 10.0, False, "silence"),  # beyond the end
        ({"trim_offset_s": 0, "all_ivr": True}, 10.0, True, "silence"),
        ({"trim_offset_s": "4.5"}, 4.5, False, "tail"),  # numeric strings are accepted
    ],
)
async def test_ivr_replies_are_bounded_by_the_audio(
    serve, client, tmp_path, work, body, offset, all_ivr, written
):
    _, url = await serve(answer(json_response(body)))
    audio = AudioRef(write_wav(tmp_path / "in.wav", 10.0), "CALL-6.wav")
    result = await RemoteIvr(url, client, FAST).trim(audio, work / "6.ivr.flac")
    assert result.trim_offset_s == pytest.approx(offset) and result.all_ivr is all_ivr
    assert result.response["output"] == written and result.output.exists()


@pytest.mark.parametrize(
    ("response", "error", "match"),
    [
        (json_response({"all_ivr": False}), BackendError, "trim_offset_s"),
        (json_response({"trim_offset_s": -1}), BackendError, "trim_offset_s"),
        (json_response({"trim_offset_s": 1, "all_ivr": "no"}), BackendError, "all_ivr"),
        (Response(body=b'{"trim_offset_s": '), BackendError, "not JSON"),
        (error_response(400, "could not decode audio: nope"), PermanentBackendError, "nope"),
        (error_response(503, "warming up", type_="server_error"), BackendError, "HTTP 503"),
    ],
)
async def test_ivr_failures_map(serve, client, tmp_path, work, response, error, match):
    _, url = await serve(answer(response))
    audio = AudioRef(write_wav(tmp_path / "in.wav", 3.0), "CALL-7.wav")
    with pytest.raises(error, match=match) as caught:
        await RemoteIvr(url, client, FAST).trim(audio, work / "7.ivr.flac")
    if error is BackendError:
        assert not isinstance(caught.value, PermanentBackendError)
    assert list(work.iterdir()) == []


async def test_simworker_ivr_honours_max_ivr_s_manifest_and_faults(start, client, tmp_path, work):
    audio = AudioRef(write_wav(tmp_path / "in.wav", 30.0), "CALL-ivr-8.wav")
    capped = await start()
    result = await RemoteIvr(capped.url, client, FAST, max_ivr_s=1.5).trim(audio, work / "a.flac")
    assert result.trim_offset_s == pytest.approx(1.5)
    listed = await start(manifest={"CALL-9": {"language": "en", "text": "hi", "ivr_offset_s": 7}})
    other = AudioRef(audio.path, "CALL-9.wav")
    result = await RemoteIvr(listed.url, client, FAST).trim(other, work / "b.flac")
    assert result.trim_offset_s == pytest.approx(7.0)
    failing = await start(fail_rate=1.0)
    with pytest.raises(BackendError, match="HTTP 500"):
        await RemoteIvr(failing.url, client, FAST).trim(audio, work / "c.flac")


# -- wiring and whole batches --------------------------------------------------------------


def batch_config(tmp_path, url, db_url, **remote):
    return parse_config({
        "database": {"url": db_url},
        "paths": {"data": str(tmp_path / "var")},
        "gpus": [{"name": "gpu-0", "url": url, "slots": 2}],
        "backends": {"lid": "remote", "stt": "remote", "chat": "remote",
                     "denoise": "remote", "ivr": "remote",
                     "remote": {"timeout_s": 5.0, "connect_timeout_s": 1.0,
                                "failure_threshold": 100, "cooldown_s": 0.1, **remote}},
        "pipelines": {"batch": {"denoise": True, "ivr": True}},
        "stages": {"retry": {"attempts": 10, "backoff_s": 0.01, "max_backoff_s": 0.02}},
    })  # fmt: skip


def test_factory_wires_remote_denoise_and_ivr_per_gpu(tmp_path, sqlite_url):
    cfg = batch_config(tmp_path, "http://gpu-0:8000", sqlite_url)
    (gpu,) = build_gpus(cfg, clock=lambda: 0.0)
    assert isinstance(gpu.backends.denoise, RemoteDenoise)
    assert isinstance(gpu.backends.ivr, RemoteIvr)
    assert gpu.backends.denoise.endpoint.url("/v1/audio/denoise") == (
        "http://gpu-0:8000/v1/audio/denoise"
    )
    assert gpu.backends.ivr.max_ivr_s == cfg.backends.cpu.max_ivr_s


NAMES = ("call_000.wav", "call_ivr_001.wav", "call_002.wav", "call_ivr_003.wav", "bad_004.wav")


def write_batch(directory: Path) -> None:
    directory.mkdir()
    rng = np.random.default_rng(5)
    for name in NAMES[:-1]:
        samples = (rng.standard_normal(8000 * 12) * 0.05).astype("float32")
        soundfile.write(directory / name, samples, 8000)
    (directory / NAMES[-1]).write_bytes(b"RIFF not really a wave file" * 10)


async def run_batch(tmp_path, db_url, **sim):
    batch = tmp_path / "batch"
    write_batch(batch)
    async with trio.open_nursery() as nursery:
        worker = await nursery.start(serve_simworker, SimConfig(**{**INSTANT, **sim}))
        async with open_app(batch_config(tmp_path, worker.url, db_url)) as app:
            await app.run_batch(await app.prepare_batch(batch))
        nursery.cancel_scope.cancel()
    engine = sa.create_engine(db_url)
    fd, lid = t.file_distribution, t.lid_status
    with engine.connect() as c:
        files = {r.file: r for r in c.execute(sa.select(fd))}
        durations = dict(c.execute(sa.select(lid.c.audioName, lid.c.audioDuration)).all())
        pl = t.processing_logs
        query = sa.select(pl.c.file_name, pl.c.stage_name).where(pl.c.status == "retry")
        retried = {(name, stage) for name, stage in c.execute(query)}
    engine.dispose()
    return worker, files, durations, retried


async def test_batch_with_remote_denoise_and_ivr(tmp_path, sqlite_url):
    worker, files, durations, retried = await run_batch(tmp_path, sqlite_url)

    for name in NAMES[:-1]:
        row = files[name]
        assert row.failedStage is None and row.denoiseDone and row.ivrDone and row.llm2Done
        expected, _ = fake_ivr(name, 12.0, 120.0)
        assert row.ivrTrimOffset == pytest.approx(expected)
        # LID read the trimmed file: its duration is what is left after the IVR.
        assert durations[name] == pytest.approx(12.0 - expected, abs=0.01)
    assert files["call_ivr_001.wav"].ivrTrimOffset > 0 and files["call_000.wav"].ivrTrimOffset == 0
    # The undecodable file fails at denoise with the host's message, without retries.
    bad = files["bad_004.wav"]
    assert bad.failedStage == "denoise" and "could not decode audio" in bad.failureReason
    assert not any(name == "bad_004.wav" for name, _ in retried)
    # (the simworker counts a request once its audio decodes, as for transcriptions)
    assert worker.requests["denoise"] == worker.requests["ivr"] == len(NAMES) - 1


async def test_batch_retries_host_failures(tmp_path, sqlite_url):
    worker, files, durations, retried = await run_batch(tmp_path, sqlite_url, fail_rate=0.3, seed=1)
    assert worker.faults["fail"] > 0
    assert {"denoise", "ivr"} & {stage for _, stage in retried}
    for name in NAMES[:-1]:
        assert files[name].failedStage is None and files[name].llm2Done
        assert durations[name] == pytest.approx(12.0 - fake_ivr(name, 12.0, 120.0)[0], abs=0.01)
