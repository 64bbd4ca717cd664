"""What every remote backend shares: options, one base URL's request rules, reading audio
to upload. One call is one HTTP request: retries and backoff belong to the engine.

How failures map:

- connection errors, dropped connections, timeouts, HTTP 5xx, 408 and 429, replies that
  are not JSON or do not have the expected shape -> BackendError (worth a retry);
- any other HTTP 4xx -> PermanentBackendError carrying the server's message (the request
  itself is refused: undecodable audio, unknown model).

Every request runs under an overall deadline of `timeout_s + connect_timeout_s`, on top of
httpx's per-operation timeouts, so a server that trickles bytes cannot hold a slot.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import soundfile
import trio

from cofid.backends.base import AudioRef, BackendError, PermanentBackendError

AUDIO_TYPES = {
    ".wav": "audio/wav",
    ".mp3": "audio/mpeg",
    ".flac": "audio/flac",
    ".ogg": "audio/ogg",
    ".m4a": "audio/mp4",
    ".webm": "audio/webm",
}


@dataclass(frozen=True)
class RemoteOptions:
    timeout_s: float = 120.0
    connect_timeout_s: float = 5.0
    stt_model: str = "whisper-1"
    chat_model: str = "default"
    lid_seconds: float = 30.0  # LID sends only the first N seconds
    # per call label: {"language": "hi", "prompt": "..."}; see DEFAULT_STT_OPTIONS
    stt_options: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    devanagari_prompt: str = "नमस्ते, यह एक फ़ोन कॉल है।"
    no_speech_threshold: float = 0.6
    logprob_threshold: float = -1.0
    api_key: str | None = None  # sent as Authorization: Bearer
    temperature: float = 0.0


def number(value: Any) -> float | None:
    """A finite float from a JSON number or numeric string (vLLM sends duration as one)."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


# -- HTTP ----------------------------------------------------------------------------------


def server_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500] or response.reason_phrase
    if isinstance(body, Mapping):
        error = body.get("error")
        if isinstance(error, Mapping) and error.get("message"):
            return str(error["message"])
        for key in ("error", "detail", "message"):
            if body.get(key):
                return str(body[key])[:500]
    return str(body)[:500]


class Endpoint:
    """One base URL and the request rules shared by the three backends."""

    def __init__(self, base_url: str, client: httpx.AsyncClient, options: RemoteOptions) -> None:
        base = base_url.rstrip("/")
        self.base_url = base.removesuffix("/v1")  # accept ".../v1" as well as the host root
        self.client = client
        self.options = options
        self.timeout = httpx.Timeout(options.timeout_s, connect=options.connect_timeout_s)
        self.headers = {"Authorization": f"Bearer {options.api_key}"} if options.api_key else {}

    def url(self, path: str) -> str:
        return self.base_url + path

    async def post_json(self, path: str, **kwargs: Any) -> tuple[Any, int]:
        """POST and decode a JSON reply; returns (body, byte length of the reply)."""
        url = self.url(path)
        deadline = self.options.timeout_s + self.options.connect_timeout_s
        response = None
        try:
            with trio.move_on_after(deadline):
                response = await self.client.post(
                    url, headers=self.headers, timeout=self.timeout, **kwargs
                )
        except httpx.TimeoutException as exc:
            raise BackendError(f"{url}: timed out ({type(exc).__name__})") from exc
        except httpx.HTTPError as exc:
            raise BackendError(f"{url}: {type(exc).__name__}: {exc}") from exc
        if response is None:
            raise BackendError(f"{url}: no reply within {deadline:g} s")

        status = response.status_code
        if status >= 400:
            message = server_message(response)
            details: dict[str, Any] = {"status": status, "url": url, "reply": response.text[:2000]}
            retry_after = number(response.headers.get("retry-after"))
            if retry_after is not None:
                details["retry_after_s"] = retry_after
            if 400 <= status < 500 and status not in (408, 429):
                raise PermanentBackendError(f"{url}: HTTP {status}: {message}", details=details)
            raise BackendError(f"{url}: HTTP {status}: {message}", details=details)
        if status >= 300:
            raise BackendError(f"{url}: unexpected HTTP {status}", details={"status": status})
        try:
            return response.json(), len(response.content)
        except ValueError as exc:
            raise BackendError(
                f"{url}: reply is not JSON", details={"reply": response.text[:2000]}
            ) from exc


# -- audio ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Upload:
    filename: str
    data: bytes
    content_type: str
    source_duration_s: float | None  # None when soundfile cannot read the file
    cut_s: float | None = None  # set when only the first seconds are sent


def upload_name(audio: AudioRef, suffix: str) -> str:
    # Servers (and the simulator's manifest) see the call's audio name; the suffix is the
    # format actually sent, because some servers pick a decoder from it.
    return Path(audio.name).stem + suffix if audio.name else "audio" + suffix


def read_upload(audio: AudioRef, cut_s: float | None) -> Upload:
    try:
        data = audio.path.read_bytes()
    except OSError as exc:
        raise PermanentBackendError(f"cannot read {audio.path}: {exc}") from exc
    suffix = audio.path.suffix.lower() or ".wav"
    full = Upload(
        filename=upload_name(audio, suffix),
        data=data,
        content_type=AUDIO_TYPES.get(suffix, "application/octet-stream"),
        source_duration_s=None,
    )
    try:
        info = soundfile.info(io.BytesIO(data))
    except Exception:  # soundfile cannot read it: let the server decide  # noqa: BLE001
        return full
    if cut_s is None or info.duration <= cut_s:
        return Upload(full.filename, data, full.content_type, info.duration)
    frames, rate = soundfile.read(io.BytesIO(data), frames=int(cut_s * info.samplerate))
    buffer = io.BytesIO()
    soundfile.write(buffer, frames, rate, format="WAV", subtype="PCM_16")
    return Upload(
        filename=upload_name(audio, ".wav"),
        data=buffer.getvalue(),
        content_type="audio/wav",
        source_duration_s=info.duration,
        cut_s=cut_s,
    )


def file_summary(upload: Upload) -> dict[str, Any]:
    summary: dict[str, Any] = {"name": upload.filename, "size": len(upload.data)}
    if upload.cut_s is not None:
        summary["cut_s"] = upload.cut_s
    if upload.source_duration_s is not None:
        summary["source_duration_s"] = round(upload.source_duration_s, 3)
    return summary
