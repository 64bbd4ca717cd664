"""The simulated GPU host's denoise and IVR endpoints (docs/gpu-audio-contract.md).

Both take multipart/form-data with the audio as `file`; audio that does not decode gets
HTTP 400. They count, draw faults and hold slots exactly like the transcription endpoint
(`JobRunner.run_job`): fail -> HTTP 500, hang, drop, and malformed -> HTTP 200 with a body
that is not audio (denoise) or not JSON (IVR). Latency is `latency["denoise"]` /
`latency["ivr"]` over the uploaded audio's duration.

- denoise: the uploaded audio re-encoded (FLAC unless `format=wav`), with a fake reduction
  figure in `X-Noise-Reduction-Db` derived from the file name (3.00 to 11.99 dB);
- ivr: where the IVR ends, from the file name: a manifest entry's `ivr_offset_s` when it
  has one; else 0 for most names, 2 to 6 s for names containing "ivr", the whole call for
  names containing "ivronly"; never beyond the audio or `max_ivr_s`.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import soundfile

from cofid.simworker.config import JobRunner
from cofid.simworker.http_server import (
    FormPart,
    Request,
    Response,
    error_response,
    json_response,
)

DENOISE_PATH = "/v1/audio/denoise"
IVR_PATH = "/v1/audio/ivr"
_FORMATS = {"flac": ("FLAC", "audio/flac"), "wav": ("WAV", "audio/wav")}


def _digest(name: str, purpose: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{purpose}/{name}".encode()).digest()[:8], "big")


def fake_reduction_db(filename: str) -> float:
    """The deterministic noise reduction reported for a file name."""
    return round(3.0 + (_digest(Path(filename).stem, "denoise") % 900) / 100.0, 2)


def fake_ivr(
    filename: str,
    duration: float,
    max_ivr_s: float | None,
    manifest: Mapping[str, Mapping[str, Any]] | None = None,
) -> tuple[float, bool]:
    """(trim_offset_s, all_ivr) for a file name and the uploaded audio's duration."""
    stem = Path(filename).stem
    entry = (manifest.get(filename) or manifest.get(stem)) if manifest else None
    lowered = stem.lower()
    if isinstance(entry, dict) and isinstance(entry.get("ivr_offset_s"), int | float):
        offset = float(entry["ivr_offset_s"])
    elif "ivronly" in lowered:
        return round(duration, 3), True
    elif "ivr" in lowered:
        offset = 2.0 + (_digest(stem, "ivr") % 401) / 100.0
    else:
        offset = 0.0
    if max_ivr_s is not None:
        offset = min(offset, max_ivr_s)
    offset = round(max(0.0, min(offset, duration)), 3)
    return offset, offset > 0.0 and offset >= duration


def _audio(form: dict[str, FormPart]) -> tuple[FormPart, Any, Any] | Response:
    """(the file part, soundfile info, samples) or the 400 to answer."""
    upload = form.get("file")
    if upload is None:
        return error_response(400, "missing 'file'")
    try:
        info = soundfile.info(io.BytesIO(upload.data))
        samples, _ = soundfile.read(io.BytesIO(upload.data), dtype="float32")
    except Exception as exc:  # libsndfile raises several types  # noqa: BLE001
        return error_response(400, f"could not decode audio: {exc}")
    if info.frames <= 0 or len(samples) == 0:
        return error_response(400, "could not decode audio: no samples")
    return upload, info, samples


def _form(request: Request) -> dict[str, FormPart] | Response:
    try:
        return request.form()
    except ValueError as exc:
        return error_response(400, f"bad multipart body: {exc}")


def _float_field(
    form: dict[str, FormPart], name: str, low: float, high: float
) -> tuple[float | None, Response | None]:
    """(value or None, error Response or None)."""
    if name not in form:
        return None, None
    try:
        value = float(form[name].text())
    except ValueError:
        return None, error_response(400, f"'{name}' is not a number")
    if not low <= value <= high:
        return None, error_response(400, f"'{name}' must be within {low:g}..{high:g}")
    return value, None


def _audio_request(request: Request) -> tuple[dict[str, FormPart], FormPart, Any, Any] | Response:
    """The multipart form, its file part, soundfile info and samples — or the 400."""
    form = _form(request)
    if isinstance(form, Response):
        return form
    audio = _audio(form)
    if isinstance(audio, Response):
        return audio
    return (form, *audio)


async def denoise(worker: JobRunner, request: Request) -> Response:
    parsed = _audio_request(request)
    if isinstance(parsed, Response):
        return parsed
    form, upload, info, samples = parsed
    _, problem = _float_field(form, "strength", 0.0, 1.0)
    if problem is not None:
        return problem
    wanted = form["format"].text().strip().lower() if "format" in form else "flac"
    if wanted not in _FORMATS:
        return error_response(400, f"unsupported format {wanted!r} (flac or wav)")

    fault, failure = await worker.run_job("denoise", info.duration)
    if failure is not None:
        return failure
    sf_format, content_type = _FORMATS[wanted]
    if fault == "malformed":
        return Response(body=b"fLaC but not really" * 8, content_type=content_type)
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, info.samplerate, format=sf_format, subtype="PCM_16")
    reduction = fake_reduction_db(upload.filename or "audio.wav")
    return Response(
        body=buffer.getvalue(),
        content_type=content_type,
        headers=(("X-Noise-Reduction-Db", f"{reduction:.2f}"),),
    )


async def ivr(worker: JobRunner, request: Request) -> Response:
    parsed = _audio_request(request)
    if isinstance(parsed, Response):
        return parsed
    form, upload, info, _ = parsed
    max_ivr_s, problem = _float_field(form, "max_ivr_s", 0.0, float("inf"))
    if problem is not None:
        return problem

    fault, failure = await worker.run_job("ivr", info.duration)
    if failure is not None:
        return failure
    if fault == "malformed":
        return Response(body=b'{"trim_offset_s": ')
    offset, all_ivr = fake_ivr(
        upload.filename or "audio.wav", info.duration, max_ivr_s, worker.config.manifest
    )
    markers = []
    if offset > 0.0:
        markers.append({"type": "prompt", "name": "sim-menu", "end_s": offset, "score": 0.9})
    return json_response(
        {
            "trim_offset_s": offset,
            "all_ivr": all_ivr,
            "markers": markers,
            "duration_s": round(info.duration, 3),
        }
    )
