"""`cofi-simworker`: a simulated GPU host speaking the OpenAI-compatible protocol.

It serves what cofi's remote backends call — POST /v1/audio/transcriptions (verbose_json)
and POST /v1/chat/completions (json_schema response_format) — plus GET /health and
GET /v1/models, with realistic latency, a concurrency cap, and injected faults, so the
engine can be exercised and benchmarked without GPUs. It also serves cofi's own denoise and
IVR contract (POST /v1/audio/denoise and /v1/audio/ivr, docs/gpu-audio-contract.md), in
`cofid.testing.sim_audio`.

Decisions:

1. A transcription request without a `language` field is language identification ("lid"),
   one with a language is speech-to-text ("stt"); the two have their own latency.
2. Latency = fixed + per_audio_s × audio duration, times `time_scale` (0 = instant). The
   duration is read from the uploaded audio; audio that does not decode gets HTTP 400.
3. Transcripts come from the manifest (audio file name or stem -> {"language", "text" or
   "segments"}) or, for names not in it, from a generator seeded by (seed, stem): the same
   name always gets the same English trade-call transcript, one segment per ~10 s.
4. Chat replies are `example_instance` of the request's schema, salted with the hash of the
   request body: the same request always gets the same reply.
5. Faults are drawn per POST request from one RNG seeded by `seed`, in arrival order:
   fail (HTTP 500), hang (no answer until the client goes away), drop (connection closed
   without an answer), malformed (HTTP 200 with broken JSON, or for chat a content that
   breaks the schema). Requests beyond `slots` wait for a free slot; a hung request keeps
   its slot until its client gives up, as a stuck GPU would.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import random
import re
import sys
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import soundfile
import trio

from cofid.backends.json_schema import SchemaViolation, example_instance, validate
from cofid.domain.language import language_name, normalize_language
from cofid.testing import sim_audio
from cofid.testing.http_server import (
    DropConnection,
    HttpServer,
    Request,
    Response,
    error_response,
    json_response,
)

MODEL_NAMES = ("whisper-1", "default")


@dataclass(frozen=True)
class Latency:
    fixed_s: float
    per_audio_s: float = 0.0

    def seconds(self, audio_s: float, time_scale: float) -> float:
        return (self.fixed_s + self.per_audio_s * audio_s) * time_scale


def default_latency() -> dict[str, Latency]:
    return {
        "lid": Latency(0.2),
        "stt": Latency(0.3, 0.03),
        "chat": Latency(1.5),
        "denoise": Latency(0.2, 0.01),
        "ivr": Latency(0.1, 0.002),
    }


@dataclass
class SimConfig:
    host: str = "127.0.0.1"
    port: int = 0
    seed: int = 0
    time_scale: float = 1.0
    fail_rate: float = 0.0
    hang_rate: float = 0.0
    drop_rate: float = 0.0
    malformed_rate: float = 0.0
    slots: int | None = None  # None: no cap
    manifest: Mapping[str, Mapping[str, Any]] | None = None
    latency: Mapping[str, Latency] = field(default_factory=default_latency)


def load_manifest(path: Path) -> dict[str, dict[str, Any]]:
    """Read and check a manifest: {audio name: {"language", "text" | "segments"}}."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a manifest is a JSON object of audio name -> entry")
    for name, entry in data.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("language"), str):
            raise ValueError(f"{path}: entry {name!r} needs a string 'language'")
        if not isinstance(entry.get("text"), str) and not isinstance(entry.get("segments"), list):
            raise ValueError(f"{path}: entry {name!r} needs 'text' or 'segments'")
    return data


# -- transcripts ---------------------------------------------------------------------------

_SYMBOLS = ("INFY", "TCS", "RELIANCE", "HDFCBANK", "ICICIBANK", "SBIN", "WIPRO", "ITC", "LT")
_SENTENCES = (
    "I want to buy {qty} shares of {sym} at market price.",
    "Please sell {qty} shares of {sym} at a limit price of {price} rupees.",
    "Yes, I confirm the order for {qty} shares of {sym}.",
    "Can you tell me the last traded price of {sym}?",
    "Your order to buy {qty} {sym} at {price} has been placed.",
    "This call is recorded for quality and compliance purposes.",
    "Please confirm your client code before we proceed.",
    "The order for {sym} is executed, {qty} shares at {price}.",
)
_SENTENCE_END = re.compile(r"(?<=[.?!।])\s+")


def _generated_sentences(seed: int, stem: str, count: int) -> list[str]:
    rng = random.Random(f"{seed}/{stem}")
    sentences = []
    for _ in range(count):
        template = rng.choice(_SENTENCES)
        sentences.append(
            template.format(
                qty=rng.choice((10, 25, 50, 100, 200, 500, 1000)),
                sym=rng.choice(_SYMBOLS),
                price=rng.randrange(100, 5000),
            )
        )
    return sentences


def _spread(texts: list[str], duration: float, rng: random.Random) -> list[dict[str, Any]]:
    step = duration / max(1, len(texts))
    return [
        {
            "start": round(i * step, 2),
            "end": round((i + 1) * step, 2),
            "text": text,
            "avg_logprob": round(rng.uniform(-0.45, -0.1), 4),
            "no_speech_prob": round(rng.uniform(0.0, 0.08), 4),
        }
        for i, text in enumerate(texts)
    ]


def transcript_for(
    filename: str, duration: float, *, seed: int, manifest: Mapping[str, Mapping] | None
) -> tuple[str, list[dict[str, Any]]]:
    """(language code, segments) for an uploaded file: manifest entry, else generated."""
    stem = Path(filename).stem
    rng = random.Random(f"{seed}/{stem}/scores")
    entry = None
    if manifest:
        entry = manifest.get(filename) or manifest.get(stem)
    if entry is None:
        count = max(1, round(duration / 10.0))
        return "en", _spread(_generated_sentences(seed, stem, count), duration, rng)
    language = normalize_language(entry["language"]) or "en"
    if language == "hinglish":  # Whisper has no Hinglish: it says Hindi
        language = "hi"
    if "segments" in entry:
        segments = [dict(s) for s in entry["segments"]]
    else:
        texts = [t for t in _SENTENCE_END.split(entry["text"].strip()) if t] or [""]
        segments = _spread(texts, duration, rng)
    return language, segments


def verbose_json(language: str, duration: float, segments: list[dict[str, Any]]) -> dict:
    """The OpenAI / faster-whisper verbose_json shape."""
    full = []
    for index, segment in enumerate(segments):
        full.append(
            {
                "id": index,
                "seek": 0,
                "start": segment.get("start", 0.0),
                "end": segment.get("end", duration),
                "text": " " + segment.get("text", "").strip(),
                "tokens": [],
                "temperature": 0.0,
                "avg_logprob": segment.get("avg_logprob", -0.2),
                "compression_ratio": 1.0,
                "no_speech_prob": segment.get("no_speech_prob", 0.01),
            }
        )
    return {
        "task": "transcribe",
        "language": language_name(language),
        "duration": round(duration, 3),
        "text": "".join(s["text"] for s in full).strip(),
        "segments": full,
    }


def _violating_content(schema: Mapping[str, Any] | None) -> str:
    # An object first, so the client's schema check (not only its JSON parse) is exercised.
    for candidate in ({}, {"malformed": True}, [], "malformed", 1.5, None):
        try:
            validate(candidate, schema or {})
        except SchemaViolation:
            return json.dumps(candidate)
    return '{"malformed": '


# -- the worker ----------------------------------------------------------------------------


class _Fail(Exception):
    """Raised inside a request: answer HTTP 500 (a simulated GPU failure)."""


class SimWorker:
    """The request handler and its counters; `serve_simworker` reports one of these."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.server = HttpServer(self.handle, host=config.host, port=config.port)
        self.requests: Counter[str] = Counter()  # lid, stt, chat, denoise, ivr, health, models
        self.faults: Counter[str] = Counter()  # fail, hang, drop, malformed
        self.active = 0
        self.max_active = 0
        self._rng = random.Random(config.seed)
        self._slots = trio.CapacityLimiter(config.slots) if config.slots else None

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def url(self) -> str:
        return self.server.url

    async def die(self) -> None:
        await self.server.die()

    async def come_back(self) -> None:
        await self.server.come_back()

    async def handle(self, request: Request) -> Response:
        route = (request.method, request.path)
        if route == ("GET", "/health"):
            self.requests["health"] += 1
            return json_response({"status": "ok"})
        if route == ("GET", "/v1/models"):
            self.requests["models"] += 1
            return json_response(
                {
                    "object": "list",
                    "data": [
                        {"id": name, "object": "model", "created": 0, "owned_by": "cofi-simworker"}
                        for name in MODEL_NAMES
                    ],
                }
            )
        if route == ("POST", "/v1/audio/transcriptions"):
            return await self._transcribe(request)
        if route == ("POST", "/v1/chat/completions"):
            return await self._chat(request)
        if route == ("POST", sim_audio.DENOISE_PATH):
            return await sim_audio.denoise(self, request)
        if route == ("POST", sim_audio.IVR_PATH):
            return await sim_audio.ivr(self, request)
        return error_response(404, f"no route for {request.method} {request.path}")

    def _draw_fault(self) -> str | None:
        c = self.config
        draw = self._rng.random()
        for name, rate in (
            ("fail", c.fail_rate),
            ("hang", c.hang_rate),
            ("drop", c.drop_rate),
            ("malformed", c.malformed_rate),
        ):
            if draw < rate:
                self.faults[name] += 1
                return name
            draw -= rate
        return None

    async def _work(self, endpoint: str, audio_s: float, fault: str | None) -> None:
        """Hold a slot for the simulated compute time (forever for a hang)."""
        if self._slots is not None:
            await self._slots.acquire()
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            latency = self.config.latency.get(endpoint, Latency(0.0))
            delay = latency.seconds(audio_s, self.config.time_scale)
            if delay > 0:
                await trio.sleep(delay)
            if fault == "hang":
                await trio.sleep_forever()
        finally:
            self.active -= 1
            if self._slots is not None:
                self._slots.release()
        if fault == "fail":
            raise _Fail
        if fault == "drop":
            raise DropConnection

    async def run_job(self, endpoint: str, audio_s: float) -> tuple[str | None, Response | None]:
        """Count a request, draw its fault and hold a slot for its compute time: (the fault,
        the HTTP 500 to answer instead when the fault is "fail"). Raises DropConnection."""
        self.requests[endpoint] += 1
        fault = self._draw_fault()
        try:
            await self._work(endpoint, audio_s, fault)
        except _Fail:
            return fault, error_response(500, "simulated GPU failure", type_="server_error")
        return fault, None

    async def _transcribe(self, request: Request) -> Response:
        try:
            form = request.form()
        except ValueError as exc:
            return error_response(400, f"bad multipart body: {exc}")
        upload = form.get("file")
        if upload is None:
            return error_response(400, "missing 'file'")
        try:
            info = soundfile.info(io.BytesIO(upload.data))
        except Exception as exc:  # libsndfile raises several types
            return error_response(400, f"could not decode audio: {exc}")
        forced = form["language"].text().strip() if "language" in form else ""
        endpoint = "stt" if forced else "lid"
        response_format = form["response_format"].text() if "response_format" in form else "json"
        self.requests[endpoint] += 1
        fault = self._draw_fault()
        try:
            await self._work(endpoint, info.duration, fault)
        except _Fail:
            return error_response(500, "simulated GPU failure", type_="server_error")
        if fault == "malformed":
            return Response(body=b'{"task": "transcribe", "text": ')

        language, segments = transcript_for(
            upload.filename or "audio.wav",
            info.duration,
            seed=self.config.seed,
            manifest=self.config.manifest,
        )
        body = verbose_json(normalize_language(forced) or language, info.duration, segments)
        if response_format == "verbose_json":
            return json_response(body)
        if response_format == "json":
            return json_response({"text": body["text"]})
        if response_format == "text":
            return Response(body=body["text"].encode(), content_type="text/plain; charset=utf-8")
        return error_response(400, f"unsupported response_format {response_format!r}")

    async def _chat(self, request: Request) -> Response:
        try:
            body = request.json()
        except ValueError as exc:
            return error_response(400, f"body is not JSON: {exc}")
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return error_response(400, "'messages' must be a list")
        response_format = body.get("response_format") or {}
        schema = None
        if response_format.get("type") == "json_schema":
            schema = (response_format.get("json_schema") or {}).get("schema")
            if not isinstance(schema, dict):
                return error_response(400, "response_format.json_schema.schema is required")

        self.requests["chat"] += 1
        fault = self._draw_fault()
        try:
            await self._work("chat", 0.0, fault)
        except _Fail:
            return error_response(500, "simulated GPU failure", type_="server_error")

        digest = hashlib.sha256(request.body).hexdigest()
        if fault == "malformed":
            content = _violating_content(schema) if int(digest, 16) % 2 else '{"answers": [{"'
        elif schema is not None:
            content = json.dumps(example_instance(schema, salt=digest))
        else:
            content = "simulated reply"
        prompt_chars = sum(
            len(str(m.get("content", ""))) for m in body["messages"] if isinstance(m, dict)
        )
        usage = {
            "prompt_tokens": prompt_chars // 4,
            "completion_tokens": len(content) // 4,
            "total_tokens": prompt_chars // 4 + len(content) // 4,
        }
        return json_response(
            {
                "id": f"chatcmpl-{digest[:24]}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", "default"),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop",
                    }
                ],
                "usage": usage,
            }
        )


async def serve_simworker(
    config: SimConfig, *, task_status: trio.TaskStatus[SimWorker] = trio.TASK_STATUS_IGNORED
) -> None:
    """Serve until cancelled; reports the `SimWorker` (port, counters, die/come_back)."""
    worker = SimWorker(config)
    async with trio.open_nursery() as nursery:
        await nursery.start(worker.server.serve)
        task_status.started(worker)


# -- command line --------------------------------------------------------------------------


def _host_port(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def _rate(value: str) -> float:
    rate = float(value)
    if not 0.0 <= rate <= 1.0:
        raise argparse.ArgumentTypeError(f"a rate is between 0 and 1, got {value}")
    return rate


def parse_args(argv: list[str] | None = None) -> SimConfig:
    parser = argparse.ArgumentParser(
        prog="cofi-simworker", description="A simulated OpenAI-compatible GPU host."
    )
    parser.add_argument(
        "--listen", type=_host_port, default=("127.0.0.1", 8000), metavar="HOST:PORT"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument("--fail-rate", type=_rate, default=0.0)
    parser.add_argument("--hang-rate", type=_rate, default=0.0)
    parser.add_argument("--drop-rate", type=_rate, default=0.0)
    parser.add_argument("--malformed-rate", type=_rate, default=0.0)
    parser.add_argument("--slots", type=int, default=None)
    parser.add_argument("--manifest", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.time_scale < 0:
        parser.error("--time-scale must not be negative")
    if args.slots is not None and args.slots < 1:
        parser.error("--slots must be at least 1")
    if args.fail_rate + args.hang_rate + args.drop_rate + args.malformed_rate > 1.0:
        parser.error("the fault rates add up to more than 1")
    try:
        manifest = load_manifest(args.manifest) if args.manifest else None
    except (OSError, ValueError) as exc:
        parser.error(str(exc))
    host, port = args.listen
    return SimConfig(
        host=host,
        port=port,
        seed=args.seed,
        time_scale=args.time_scale,
        fail_rate=args.fail_rate,
        hang_rate=args.hang_rate,
        drop_rate=args.drop_rate,
        malformed_rate=args.malformed_rate,
        slots=args.slots,
        manifest=manifest,
    )


async def _run(config: SimConfig) -> None:
    async with trio.open_nursery() as nursery:
        worker = await nursery.start(serve_simworker, config)
        print(f"listening on {config.host}:{worker.port}", flush=True)


def main(argv: list[str] | None = None) -> None:
    config = parse_args(argv)
    try:
        trio.run(_run, config)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
