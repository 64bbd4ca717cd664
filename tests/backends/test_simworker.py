"""cofi-simworker over real loopback HTTP: shapes, determinism, latency, slots, faults."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile
import trio

from cofid.backends.base import AudioRef, BackendError, ChatRequest, PermanentBackendError
from cofid.backends.json_schema import validate
from cofid.backends.remote import RemoteChat, RemoteLid, RemoteOptions, RemoteStt
from cofid.simworker import SimConfig, serve_simworker

INSTANT = dict(time_scale=0.0)
OPTIONS = RemoteOptions(timeout_s=5.0, connect_timeout_s=2.0)
SCHEMA = {
    "type": "object",
    "properties": {
        "answers": {
            "type": "array",
            "minItems": 3,
            "maxItems": 3,
            "items": {
                "type": "object",
                "properties": {
                    "question_id": {"type": "integer", "enum": [1, 2, 3]},
                    "answer": {"type": "string"},
                },
                "required": ["question_id", "answer"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["answers"],
    "additionalProperties": False,
}


def write_wav(path: Path, seconds: float, rate: int = 8000) -> Path:
    noise = np.random.default_rng(7).normal(0, 0.05, int(seconds * rate))
    soundfile.write(path, noise, rate)
    return path


def chat_request(user: str = "Buy 100 INFY.") -> ChatRequest:
    return ChatRequest(
        purpose="llm2", system="Answer.", user=user, schema_name="audit", schema=SCHEMA
    )


def chat_payload(user: str = "hello") -> dict:
    return {
        "model": "default",
        "messages": [{"role": "user", "content": user}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": SCHEMA}},
    }


@pytest.fixture
async def client():
    async with httpx.AsyncClient(timeout=5.0) as client:
        yield client


@pytest.fixture
def start(nursery):
    async def start(**config):
        return await nursery.start(serve_simworker, SimConfig(**config))

    return start


@pytest.fixture
def wav40(tmp_path) -> Path:
    return write_wav(tmp_path / "a.wav", 40.0)


async def transcribe_raw(client, url, path: Path, name: str, **fields) -> httpx.Response:
    files = {"file": (name, path.read_bytes(), "audio/wav")}
    data = {"model": "whisper-1", "response_format": "verbose_json", **fields}
    return await client.post(f"{url}/v1/audio/transcriptions", data=data, files=files)


async def test_verbose_json_shape_and_duration_from_the_audio(start, client, wav40):
    worker = await start(**INSTANT)
    reply = await transcribe_raw(client, worker.url, wav40, "CALL-7.wav")
    body = reply.json()
    assert reply.status_code == 200
    assert body["task"] == "transcribe" and body["language"] == "english"
    assert body["duration"] == pytest.approx(40.0)
    assert len(body["segments"]) == 4  # one per ~10 s
    for key in ("id", "start", "end", "text", "avg_logprob", "no_speech_prob", "tokens",
                "temperature", "compression_ratio"):  # fmt: skip
        assert key in body["segments"][0]
    assert body["segments"][-1]["end"] == pytest.approx(40.0)
    assert "shares" in body["text"] or "order" in body["text"] or "call" in body["text"]
    assert worker.requests["lid"] == 1


async def test_transcripts_are_deterministic_per_file_name(start, client, wav40):
    first = await start(seed=3, **INSTANT)
    second = await start(seed=3, **INSTANT)
    a1 = (await transcribe_raw(client, first.url, wav40, "CALL-1.wav")).json()
    a2 = (await transcribe_raw(client, second.url, wav40, "CALL-1.wav")).json()
    b = (await transcribe_raw(client, first.url, wav40, "CALL-2.wav")).json()
    assert a1 == a2
    assert a1["text"] != b["text"]


async def test_language_field_makes_it_stt_and_is_echoed(start, client, wav40):
    worker = await start(**INSTANT)
    body = (await transcribe_raw(client, worker.url, wav40, "x.wav", language="hi")).json()
    assert body["language"] == "hindi"
    assert worker.requests == {"stt": 1}


async def test_undecodable_audio_is_http_400_and_permanent(start, client, tmp_path):
    worker = await start(**INSTANT)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF not really a wave file" * 10)
    reply = await transcribe_raw(client, worker.url, bad, "bad.wav")
    assert reply.status_code == 400
    assert "decode" in reply.json()["error"]["message"]
    with pytest.raises(PermanentBackendError, match="decode"):
        await RemoteLid(worker.url, client, OPTIONS).identify(AudioRef(bad, "bad.wav"))


async def test_manifest_gives_language_and_text(start, client, tmp_path, wav40):
    manifest = {
        "CALL-HI.wav": {"language": "hi", "text": "मुझे सौ शेयर खरीदने हैं। हाँ जी।"},
        "CALL-HG": {"language": "hinglish", "text": "haan ji, INFY ke sau shares buy karo"},
        "CALL-SEG.wav": {
            "language": "english",
            "segments": [
                {"start": 0, "end": 3, "text": "Hello."},
                {"start": 3, "end": 9, "text": "Buy."},
            ],
        },
    }
    worker = await start(manifest=manifest, **INSTANT)
    lid = RemoteLid(worker.url, client, OPTIONS)
    assert (await lid.identify(AudioRef(wav40, "CALL-HI.wav"))).language == "hi"
    assert (await lid.identify(AudioRef(wav40, "CALL-HG.wav"))).language == "hinglish"
    stt = await RemoteStt(worker.url, client, OPTIONS).transcribe(
        AudioRef(wav40, "CALL-SEG.wav"), "en"
    )
    assert [(s.start, s.end, s.text) for s in stt.segments] == [(0, 3, "Hello."), (3, 9, "Buy.")]


async def test_chat_reply_satisfies_the_schema_and_is_deterministic(start, client):
    worker = await start(**INSTANT)
    chat = RemoteChat(worker.url, client, OPTIONS)
    one = await chat.complete(chat_request())
    again = await chat.complete(chat_request())
    other = await chat.complete(chat_request("Sell 5 TCS."))
    validate(one.data, SCHEMA)
    assert [a["question_id"] for a in one.data["answers"]] == [1, 2, 3]
    assert one.data == again.data and one.data != other.data
    assert one.response["usage"]["total_tokens"] > 0

    raw = (await client.post(f"{worker.url}/v1/chat/completions", json=chat_payload())).json()
    assert raw["object"] == "chat.completion"
    assert raw["choices"][0]["message"]["role"] == "assistant"
    assert raw["choices"][0]["finish_reason"] == "stop"


async def test_health_models_and_unknown_routes(start, client):
    worker = await start(**INSTANT)
    assert (await client.get(f"{worker.url}/health")).json() == {"status": "ok"}
    models = (await client.get(f"{worker.url}/v1/models")).json()
    assert models["object"] == "list" and models["data"][0]["object"] == "model"
    assert (await client.get(f"{worker.url}/nope")).status_code == 404
    bad = await client.post(f"{worker.url}/v1/chat/completions", content=b"{")
    assert bad.status_code == 400
    assert worker.requests == {"health": 1, "models": 1}


async def test_latency_follows_the_model_and_time_scale(start, client, wav40):
    slow = await start(time_scale=0.2)  # chat: 1.5 s x 0.2
    begun = trio.current_time()
    await RemoteChat(slow.url, client, OPTIONS).complete(chat_request())
    assert 0.3 <= trio.current_time() - begun < 1.0

    begun = trio.current_time()  # stt: (0.3 + 0.03 x 40 s) x 0.2 = 0.3 s
    await RemoteStt(slow.url, client, OPTIONS).transcribe(AudioRef(wav40, "a.wav"), "en")
    assert 0.3 <= trio.current_time() - begun < 1.0

    instant = await start(**INSTANT)
    begun = trio.current_time()
    await RemoteChat(instant.url, client, OPTIONS).complete(chat_request())
    assert trio.current_time() - begun < 0.25


async def test_slots_cap_concurrency(start, client):
    worker = await start(slots=2, time_scale=0.1)  # 0.15 s per chat
    chat = RemoteChat(worker.url, client, OPTIONS)
    begun = trio.current_time()
    async with trio.open_nursery() as nursery:
        for i in range(6):
            nursery.start_soon(chat.complete, chat_request(f"call {i}"))
    assert worker.max_active == 2
    assert trio.current_time() - begun >= 3 * 0.15
    assert worker.requests["chat"] == 6 and worker.active == 0


async def statuses(client, url: str, count: int) -> list[str]:
    outcomes = []
    for i in range(count):
        try:
            reply = await client.post(f"{url}/v1/chat/completions", json=chat_payload(str(i)))
            outcomes.append(str(reply.status_code))
        except httpx.RemoteProtocolError:
            outcomes.append("dropped")
    return outcomes


async def test_fault_rates_are_seeded_and_counted(start, client):
    config = dict(seed=11, fail_rate=0.3, drop_rate=0.2, **INSTANT)
    worker = await start(**config)
    outcomes = await statuses(client, worker.url, 200)
    assert outcomes.count("500") == worker.faults["fail"]
    assert outcomes.count("dropped") == worker.faults["drop"]
    assert 40 <= worker.faults["fail"] <= 80
    assert 20 <= worker.faults["drop"] <= 60
    assert outcomes.count("200") == 200 - worker.faults["fail"] - worker.faults["drop"]

    twin = await start(**config)
    assert await statuses(client, twin.url, 200) == outcomes


async def test_failures_reach_the_backends_as_retryable_errors(start, client, wav40):
    for fault in ("fail_rate", "drop_rate", "malformed_rate"):
        worker = await start(**{fault: 1.0}, **INSTANT)
        for call in (
            RemoteChat(worker.url, client, OPTIONS).complete(chat_request()),
            RemoteStt(worker.url, client, OPTIONS).transcribe(AudioRef(wav40, "a.wav"), "en"),
        ):
            with pytest.raises(BackendError) as info:
                await call
            assert not isinstance(info.value, PermanentBackendError), fault


async def test_malformed_chat_replies_are_broken_json_or_break_the_schema(start, client):
    worker = await start(malformed_rate=1.0, **INSTANT)
    kinds = set()
    for i in range(12):
        with pytest.raises(BackendError) as info:
            await RemoteChat(worker.url, client, OPTIONS).complete(chat_request(str(i)))
        kinds.add("schema" if "breaks the schema" in str(info.value) else "json")
        assert "reply" in info.value.details
    assert kinds == {"schema", "json"}


async def test_a_hang_holds_its_slot_until_the_client_gives_up(start, client):
    worker = await start(hang_rate=1.0, slots=1, **INSTANT)
    options = RemoteOptions(timeout_s=0.2, connect_timeout_s=0.2)
    with pytest.raises(BackendError, match="timed out"):
        await RemoteChat(worker.url, client, options).complete(chat_request())
    with trio.fail_after(2):
        while worker.active:
            await trio.sleep(0.01)
    assert worker.faults["hang"] == 1


async def test_die_drops_connections_and_come_back_listens_on_the_same_port(start, client):
    worker = await start(time_scale=1.0)  # a chat takes 1.5 s: it is in flight when we die
    port = worker.port
    failures = []

    async def in_flight():
        try:
            await RemoteChat(worker.url, client, OPTIONS).complete(chat_request())
        except BackendError as exc:
            failures.append(exc)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(in_flight)
        with trio.fail_after(2):
            while not worker.active:
                await trio.sleep(0.01)
        await worker.die()
    assert len(failures) == 1 and not isinstance(failures[0], PermanentBackendError)

    with pytest.raises(httpx.ConnectError):
        await client.get(f"{worker.url}/health")
    await worker.come_back()
    assert worker.port == port
    assert (await client.get(f"{worker.url}/health")).status_code == 200


async def test_cli_prints_its_address_and_serves(tmp_path, client):
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"a.wav": {"language": "en", "text": "Hello."}}))
    command = [sys.executable, "-m", "cofid.simworker", "--listen", "127.0.0.1:0",
               "--seed", "5", "--time-scale", "0", "--slots", "2", "--manifest", str(manifest)]  # fmt: skip
    process = await trio.lowlevel.open_process(command, stdout=subprocess.PIPE)
    try:
        line = b""
        with trio.fail_after(15):
            while not line.endswith(b"\n"):
                chunk = await process.stdout.receive_some(1)
                assert chunk, "simworker exited before listening"
                line += chunk
        host_port = line.decode().strip().removeprefix("listening on ")
        assert line.startswith(b"listening on 127.0.0.1:")
        reply = await client.get(f"http://{host_port}/health")
        assert reply.json() == {"status": "ok"}
    finally:
        process.terminate()
        with trio.move_on_after(5):
            await process.wait()
        if process.returncode is None:
            process.kill()
            await process.wait()


@pytest.mark.parametrize(
    "args",
    [["--listen", "nowhere"], ["--fail-rate", "1.5"], ["--fail-rate", "0.6", "--hang-rate", "0.6"],
     ["--slots", "0"], ["--manifest", "/nonexistent.json"]],
)  # fmt: skip
def test_cli_refuses_bad_arguments(args):
    result = subprocess.run(
        [sys.executable, "-m", "cofid.simworker", *args], capture_output=True, timeout=15
    )
    assert result.returncode == 2
    assert b"usage" in result.stderr
