"""POST /v1/audio/transcriptions: language identification and speech-to-text.

A request without a `language` field is LID ("lid"), one with a language is STT ("stt").
Transcripts come from the manifest (audio file name or stem -> {"language", "text" or
"segments"}) or, for names not in it, from a generator seeded by (seed, stem): the same
name always gets the same English trade-call transcript, one segment per ~10 s.
"""

from __future__ import annotations

import io
import random
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import soundfile

from cofid.domain.language import language_name, normalize_language
from cofid.simworker.config import JobRunner
from cofid.simworker.http_server import Request, Response, error_response, json_response

TRANSCRIPTIONS_PATH = "/v1/audio/transcriptions"

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
    filename: str,
    duration: float,
    *,
    seed: int,
    manifest: Mapping[str, Mapping[str, Any]] | None,
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


def verbose_json(language: str, duration: float, segments: list[dict[str, Any]]) -> dict[str, Any]:
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


async def transcribe(worker: JobRunner, request: Request) -> Response:
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
    fault, failure = await worker.run_job(endpoint, info.duration)
    if failure is not None:
        return failure
    if fault == "malformed":
        return Response(body=b'{"task": "transcribe", "text": ')

    language, segments = transcript_for(
        upload.filename or "audio.wav",
        info.duration,
        seed=worker.config.seed,
        manifest=worker.config.manifest,
    )
    body = verbose_json(normalize_language(forced) or language, info.duration, segments)
    if response_format == "verbose_json":
        return json_response(body)
    if response_format == "json":
        return json_response({"text": body["text"]})
    if response_format == "text":
        return Response(body=body["text"].encode(), content_type="text/plain; charset=utf-8")
    return error_response(400, f"unsupported response_format {response_format!r}")
