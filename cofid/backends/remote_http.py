"""What every remote backend shares: options, one base URL's request rules, reading audio
to upload. One call is one HTTP request: retries and backoff belong to the engine.

How failures map (`is_permanent`), as the servers mean them:

- connection errors, dropped connections, timeouts, HTTP 502/503/504 (overload, loading),
  408 and 429, a plain 500, replies that are not JSON or do not have the expected shape
  -> BackendError (worth a retry);
- any other HTTP 4xx -> PermanentBackendError (the request itself is refused: undecodable
  audio, unknown model);
- HTTP 500 whose message says the request was refused — a validation error ("Input should
  be ...", FastAPI / pydantic, how llama-cpp-python answers a `json_schema`
  response_format), an unsupported response_format or model — -> PermanentBackendError:
  no retry can change the request's shape;
- HTTP 500 to an upload soundfile could not decode either -> PermanentBackendError
  (faster-whisper-server answers undecodable audio with a bare text/plain 500).

The message is the server's, out of whichever envelope it uses (`server_message`):
`{"error": {"message"}}`, `{"error": "text"}`, `{"detail": {"error": {...}}}`,
`{"detail": "text"}`, FastAPI's `{"detail": [{"loc", "msg"}]}`, old vLLM's
`{"object": "error", "message"}`, or plain text; never a Python repr. The reply itself
rides along in the error's details, cut at REPLY_LIMIT characters.

Every error's details carry the failed request's summary, `details["request"]`
(cofid.backends.request_summary: no credentials, bounded); messages name the URL without
credentials too (`public_url`).

Every request runs under an overall deadline of `timeout_s + connect_timeout_s`, on top of
httpx's per-operation timeouts, so a server that trickles bytes cannot hold a slot.

Every reply is bounded: a JSON reply is streamed and refused once it passes
`max_reply_bytes` (a declared Content-Length over it is refused before reading), decoded
bytes counted, so a gzip bomb stops at the cap too; an error reply keeps its first
ERROR_BODY_LIMIT bytes only. An over-size reply is a ModelReplyError: the server answered,
but nothing of that answer may be stored (retried like any model error).
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import soundfile
import trio

from cofid.backends.base import AudioRef, BackendError, ModelOutputError, PermanentBackendError
from cofid.backends.dialects import Dialect
from cofid.backends.request_summary import (
    MESSAGE_LIMIT,
    REPLY_LIMIT,
    describe,
    describing,
    failed_request,
    one_line,
    public_url,
)
from cofid.domain.ports import BackendTimeout

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
    dialect: Dialect = field(default_factory=Dialect)
    # LID without language probabilities: the decode score below which the call is
    # "other" (see cofid.backends.remote, "LID confidence").
    lid_min_confidence: float = 0.3
    compression_ratio_threshold: float = 2.4
    # The most bytes of one reply read (JSON replies; denoised audio has its own cap).
    max_reply_bytes: int = 16 * 1024 * 1024
    max_audio_reply_bytes: int = 1024 * 1024 * 1024


ERROR_BODY_LIMIT = 64 * 1024  # bytes of a non-2xx reply read for its message
MODEL_ERROR_NOTE = "the model's reply was refused before storing it; the call is retried"


class ModelReplyError(ModelOutputError):
    """The server answered, but the model's reply cannot be used (worth a retry)."""

    def __init__(self, message: str, *, details: dict[str, Any]) -> None:
        super().__init__(
            message, details={**details, "model_error": True, "note": MODEL_ERROR_NOTE}
        )


class ReplyTooLarge(ModelReplyError):
    """A reply over the configured byte limit; reading stopped at the limit."""


# Phrases of an HTTP 500 that refuses the request's shape rather than failing to serve it.
REFUSAL_MARKERS = (
    "input should be",
    "validation error",
    "field required",
    "response_format",
    "json_schema",
    "not supported",
    "unsupported",
    "does not exist",
    "must be one of",
)


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


def envelope_message(body: Any) -> str:
    """The human message inside any server's error envelope (see the module docstring)."""
    if isinstance(body, str):
        return body
    if isinstance(body, list):
        return "; ".join(m for m in (envelope_message(item) for item in body) if m)
    if isinstance(body, Mapping):
        for key in ("error", "detail"):
            if body.get(key):
                inner = envelope_message(body[key])
                if inner:
                    return inner
        if isinstance(body.get("msg"), str):  # one pydantic / FastAPI validation item
            loc = body.get("loc")
            where = ".".join(str(p) for p in loc) if isinstance(loc, list | tuple) else ""
            return f"{where}: {body['msg']}" if where else body["msg"]
        if isinstance(body.get("message"), str):
            return body["message"]
    return json.dumps(body, ensure_ascii=False, default=str) if body else ""


def server_message(response: httpx.Response) -> str:
    """The server's message for a failed request, one line, at most MESSAGE_LIMIT chars."""
    try:
        body = response.json()
    except ValueError:
        body = response.text
    return (one_line(envelope_message(body), MESSAGE_LIMIT)
            or response.reason_phrase or f"HTTP {response.status_code}")


def is_permanent(status: int, message: str, *, undecodable_upload: bool = False) -> bool:
    """Whether an HTTP error status means the request itself is refused (module docstring)."""
    if status in (408, 429):
        return False
    if 400 <= status < 500:
        return True
    if status == 500:
        lowered = message.lower()
        return undecodable_upload or any(marker in lowered for marker in REFUSAL_MARKERS)
    return False


def raise_for_status(
    response: httpx.Response, url: str, *, undecodable_upload: bool = False,
    model: str | None = None,
) -> None:
    """Raise the error a non-2xx reply maps to (its body must have been read); its details
    carry the failed request's summary (`failed_request`)."""
    status = response.status_code
    if status < 300:
        return
    where = public_url(url)
    if status < 400:
        raise describe(
            BackendError(f"{where}: unexpected HTTP {status}", details={"status": status}),
            url, model=model, status=status,
        )
    message = server_message(response)
    details: dict[str, Any] = {
        "status": status, "url": where, "reply": response.text[:REPLY_LIMIT],
        "request": failed_request(url, model=model, status=status, message=message),
    }
    retry_after = number(response.headers.get("retry-after"))
    if retry_after is not None:
        details["retry_after_s"] = retry_after
    if is_permanent(status, message, undecodable_upload=undecodable_upload):
        raise PermanentBackendError(f"{where}: HTTP {status}: {message}", details=details)
    raise BackendError(f"{where}: HTTP {status}: {message}", details=details)


class Endpoint:
    """One base URL and the request rules shared by the three backends.

    The base URL may carry a user and password (sent as Basic auth by httpx) and a query
    (e.g. a key some gateways want there): `url(path)` puts the path before the query;
    `public_url(path)` is what summaries, events and messages show (no credentials)."""

    def __init__(self, base_url: str, client: httpx.AsyncClient, options: RemoteOptions) -> None:
        parts = urlsplit(base_url)
        base = parts.path.rstrip("/").removesuffix("/v1")  # ".../v1" or the host root
        self._parts = parts._replace(path=base, fragment="")
        self.base_url = urlunsplit(self._parts)
        self.client = client
        self.options = options
        self.timeout = httpx.Timeout(options.timeout_s, connect=options.connect_timeout_s)
        self.headers = {"Authorization": f"Bearer {options.api_key}"} if options.api_key else {}

    def url(self, path: str) -> str:
        return urlunsplit(self._parts._replace(path=self._parts.path + path))

    def public_url(self, path: str) -> str:
        return public_url(self.url(path))

    async def post_json(
        self, path: str, *, undecodable_upload: bool = False, model: str | None = None,
        **kwargs: Any
    ) -> tuple[Any, int]:
        """POST and decode a JSON reply; returns (body, HTTP status).
        `undecodable_upload`: the file sent is one soundfile could not decode. `model`
        names the model asked, for a failure's request summary."""
        url = self.url(path)
        where = public_url(url)
        deadline = self.options.timeout_s + self.options.connect_timeout_s
        response = None
        with describing(url, model=model):
            try:
                with trio.move_on_after(deadline):
                    async with self.client.stream(
                        "POST", url, headers=self.headers, timeout=self.timeout, **kwargs
                    ) as streamed:
                        response = await read_bounded(
                            streamed, where, self.options.max_reply_bytes
                        )
            except httpx.TimeoutException as exc:
                raise BackendTimeout(f"{where}: timed out ({type(exc).__name__})") from exc
            except httpx.HTTPError as exc:
                said = str(exc).replace(url, where)  # in case httpx names the URL
                raise BackendError(f"{where}: {type(exc).__name__}: {said}") from exc
            if response is None:
                raise BackendTimeout(f"{where}: no reply within {deadline:g} s")

            raise_for_status(response, url, undecodable_upload=undecodable_upload, model=model)
            try:
                return response.json(), response.status_code
            except ValueError as exc:
                text = response.text
                raise describe(
                    BackendError(
                        f"{where}: reply is not JSON", details={"reply": text[:REPLY_LIMIT]}
                    ),
                    url, model=model, status=response.status_code, reply=text,
                ) from exc


async def read_bounded(response: httpx.Response, url: str, limit: int) -> httpx.Response:
    """The streamed `response` read into memory, at most `limit` bytes (ERROR_BODY_LIMIT
    for a non-2xx one, whose message is all that is used): ReplyTooLarge above it.
    Returns a complete Response holding the decoded body."""
    failed = response.status_code >= 300
    cap = min(limit, ERROR_BODY_LIMIT) if failed else limit
    declared = number(response.headers.get("content-length"))
    if not failed and declared is not None and declared > cap:
        raise ReplyTooLarge(
            f"{url}: the reply is {int(declared)} bytes, over the limit of {cap} bytes",
            details={"limit_bytes": cap, "declared_bytes": int(declared), "read_bytes": 0},
        )
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > cap:
            if failed:  # enough of an error reply for its message
                del body[cap:]
                break
            raise ReplyTooLarge(
                f"{url}: the reply is over the limit of {cap} bytes; reading stopped there",
                details={"limit_bytes": cap, "read_bytes": len(body)},
            )
    # The body is decoded already: the copy must not claim an encoding or another length.
    headers = [
        (k, v)
        for k, v in response.headers.multi_items()
        if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")
    ]
    return httpx.Response(
        response.status_code, headers=headers, content=bytes(body), request=response.request
    )


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
