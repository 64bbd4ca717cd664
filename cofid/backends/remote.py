"""LID, STT and chat over OpenAI-compatible HTTP (vLLM, speaches, whisper.cpp, llama.cpp).

One call is one HTTP request: retries and backoff belong to the engine. The one exception
is documented on `RemoteStt`: a Hindi transcript that comes back in Urdu script is asked
for again, once, with a Devanagari prompt.

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
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import soundfile
import trio

from cofid.backends.base import (
    AudioRef,
    BackendError,
    ChatRequest,
    ChatResult,
    LidResult,
    PermanentBackendError,
    Segment,
    SttResult,
)
from cofid.backends.json_schema import SchemaViolation, validate
from cofid.domain.language import label_language, normalize_language, script_counts
from cofid.domain.segments import drop_hallucinations, is_placeholder_scores

TRANSCRIPTIONS_PATH = "/v1/audio/transcriptions"
CHAT_PATH = "/v1/chat/completions"
TEXT_SUMMARY_CHARS = 500
REPLY_SUMMARY_CHARS = 2000

# What Whisper is told for each call label when `stt_options` has no entry for it.
# Hinglish is decoded as English: that keeps the transcript in Latin script (decoding it as
# Hindi gives Devanagari or Urdu script with English words transliterated).
DEFAULT_STT_OPTIONS: dict[str, dict[str, str]] = {
    "en": {"language": "en"},
    "hi": {"language": "hi"},
    "hinglish": {"language": "en"},
}

_AUDIO_TYPES = {
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


# -- response normalisation ----------------------------------------------------------------


def _number(value: Any) -> float | None:
    """A finite float from a JSON number or numeric string (vLLM sends duration as one)."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _segment(raw: Any, duration: float) -> Segment:
    if isinstance(raw, list | tuple) and len(raw) >= 5:
        # openai-whisper's tuple form, still sent by old whisper.cpp servers:
        # [id, seek, start, end, text, tokens, temperature, avg_logprob, compression, no_speech]
        raw = {
            "start": raw[2],
            "end": raw[3],
            "text": raw[4],
            "avg_logprob": raw[7] if len(raw) > 7 else None,
            "no_speech_prob": raw[9] if len(raw) > 9 else None,
        }
    if not isinstance(raw, Mapping):
        raise BackendError("a transcription segment is not an object", details={"segment": raw})
    text = raw.get("text")
    if not isinstance(text, str):
        raise BackendError("a transcription segment has no text", details={"segment": raw})
    start = _number(raw.get("start")) or 0.0
    end = _number(raw.get("end"))
    avg_logprob = _number(raw.get("avg_logprob"))
    no_speech_prob = _number(raw.get("no_speech_prob"))
    if is_placeholder_scores(avg_logprob, no_speech_prob):
        avg_logprob = no_speech_prob = None  # vLLM's stand-ins are not measurements
    return Segment(
        start=start,
        end=end if end is not None else max(start, duration),
        text=text.strip(),
        avg_logprob=avg_logprob,
        no_speech_prob=no_speech_prob,
    )


def _language_probabilities(body: Mapping[str, Any], language: str | None):
    probs: dict[str, float] = {}
    for key in ("language_probabilities", "language_probs"):
        raw = body.get(key)
        if isinstance(raw, Mapping):
            for name, value in raw.items():
                code, number = normalize_language(str(name)), _number(value)
                if code is not None and number is not None:
                    probs[code] = probs.get(code, 0.0) + number
            break
    for key in ("detected_language_probability", "language_probability"):
        number = _number(body.get(key))
        if number is not None and language is not None and language not in probs:
            probs[language] = number
    return probs or None


def parse_verbose_json(
    body: Any,
) -> tuple[str | None, float, list[Segment], dict[str, float] | None]:
    """(language code, duration, segments, language probabilities) from any server's
    verbose_json: OpenAI, speaches / faster-whisper, vLLM, whisper.cpp's server.

    - language may be a code ("en") or a name ("english"); `detected_language` is used when
      `language` is missing;
    - duration may be a number or a string; missing, it is the last segment's end;
    - segments may be missing (one segment is made from `text`), lack score fields, carry
      vLLM's placeholder scores (-1.0 / 0, turned into None), or be openai-whisper tuples;
    - probabilities come from `language_probabilities` / `language_probs`, or from
      `detected_language_probability` for the detected language alone.
    """
    if not isinstance(body, Mapping):
        raise BackendError("transcription reply is not a JSON object", details={"reply": body})
    text = body.get("text", "")
    if not isinstance(text, str):
        raise BackendError("transcription reply has no text", details={"reply": str(body)[:500]})
    language = normalize_language(body.get("language") or body.get("detected_language"))
    duration = _number(body.get("duration"))

    raw_segments = body.get("segments")
    if raw_segments is not None and not isinstance(raw_segments, list):
        raise BackendError("transcription segments are not a list")
    segments = [_segment(raw, duration or 0.0) for raw in raw_segments or ()]
    if duration is None:
        duration = max((s.end for s in segments), default=0.0)
    if not segments and text.strip():
        segments = [Segment(start=0.0, end=duration, text=text.strip())]
    return language, duration, segments, _language_probabilities(body, language)


# -- HTTP ----------------------------------------------------------------------------------


def _server_message(response: httpx.Response) -> str:
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


class _Endpoint:
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
            message = _server_message(response)
            details: dict[str, Any] = {"status": status, "url": url, "reply": response.text[:2000]}
            retry_after = _number(response.headers.get("retry-after"))
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
class _Upload:
    filename: str
    data: bytes
    content_type: str
    source_duration_s: float | None  # None when soundfile cannot read the file
    cut_s: float | None = None  # set when only the first seconds are sent


def _upload_name(audio: AudioRef, suffix: str) -> str:
    # Servers (and the simulator's manifest) see the call's audio name; the suffix is the
    # format actually sent, because some servers pick a decoder from it.
    return Path(audio.name).stem + suffix if audio.name else "audio" + suffix


def _read_upload(audio: AudioRef, cut_s: float | None) -> _Upload:
    try:
        data = audio.path.read_bytes()
    except OSError as exc:
        raise PermanentBackendError(f"cannot read {audio.path}: {exc}") from exc
    suffix = audio.path.suffix.lower() or ".wav"
    full = _Upload(
        filename=_upload_name(audio, suffix),
        data=data,
        content_type=_AUDIO_TYPES.get(suffix, "application/octet-stream"),
        source_duration_s=None,
    )
    try:
        info = soundfile.info(io.BytesIO(data))
    except Exception:  # soundfile cannot read it: let the server decide  # noqa: BLE001
        return full
    if cut_s is None or info.duration <= cut_s:
        return _Upload(full.filename, data, full.content_type, info.duration)
    frames, rate = soundfile.read(io.BytesIO(data), frames=int(cut_s * info.samplerate))
    buffer = io.BytesIO()
    soundfile.write(buffer, frames, rate, format="WAV", subtype="PCM_16")
    return _Upload(
        filename=_upload_name(audio, ".wav"),
        data=buffer.getvalue(),
        content_type="audio/wav",
        source_duration_s=info.duration,
        cut_s=cut_s,
    )


def _file_summary(upload: _Upload) -> dict[str, Any]:
    summary: dict[str, Any] = {"name": upload.filename, "size": len(upload.data)}
    if upload.cut_s is not None:
        summary["cut_s"] = upload.cut_s
    if upload.source_duration_s is not None:
        summary["source_duration_s"] = round(upload.source_duration_s, 3)
    return summary


def _text_of(segments: list[Segment]) -> str:
    return " ".join(s.text for s in segments if s.text)


class _Transcriber:
    def __init__(self, base_url: str, client: httpx.AsyncClient, options: RemoteOptions) -> None:
        self.endpoint = _Endpoint(base_url, client, options)
        self.options = options

    async def _transcribe(self, upload: _Upload, params: dict[str, str]):
        form = {
            "model": self.options.stt_model,
            "response_format": "verbose_json",
            "temperature": str(self.options.temperature),
            **params,
        }
        body, _ = await self.endpoint.post_json(
            TRANSCRIPTIONS_PATH,
            data=form,
            files={"file": (upload.filename, upload.data, upload.content_type)},
        )
        language, duration, segments, probs = parse_verbose_json(body)
        kept = drop_hallucinations(
            segments,
            no_speech_threshold=self.options.no_speech_threshold,
            logprob_threshold=self.options.logprob_threshold,
        )
        request = {
            "url": self.endpoint.url(TRANSCRIPTIONS_PATH),
            "model": self.options.stt_model,
            "params": {k: v for k, v in form.items() if k != "model"},
            "file": _file_summary(upload),
        }
        response = {
            "language": language,
            "duration": duration,
            "segments": len(segments),
            "segments_kept": len(kept),
            "text": _text_of(kept)[:TEXT_SUMMARY_CHARS],
        }
        if probs:
            top = sorted(probs.items(), key=lambda item: -item[1])[:5]
            response["language_probabilities"] = dict(top)
        return language, duration, kept, probs, request, response


class RemoteLid(_Transcriber):
    """Language identification: Whisper transcribes the first `lid_seconds` without a forced
    language, and `label_language` turns its answer and text into en / hi / hinglish / other.
    `duration_s` is the whole file's (read locally when soundfile can, else the server's)."""

    async def identify(self, audio: AudioRef) -> LidResult:
        upload = await trio.to_thread.run_sync(_read_upload, audio, self.options.lid_seconds)
        language, duration, kept, probs, request, response = await self._transcribe(upload, {})
        label, confidence = label_language(language, probs, _text_of(kept))
        response.update(label=label, confidence=round(confidence, 4))
        return LidResult(
            language=label,
            confidence=confidence,
            duration_s=upload.source_duration_s if upload.source_duration_s else duration,
            request=request,
            response=response,
        )


class RemoteStt(_Transcriber):
    """Speech-to-text of the whole file, with the options `stt_options` (or
    DEFAULT_STT_OPTIONS) give for the call's label. Hallucinated segments are dropped.

    Urdu-script retry: when Whisper is told "hi" and writes mostly Urdu script, the request
    is sent once more with `prompt=devanagari_prompt` (Whisper follows the prompt's script)
    and that second answer is used; the first is summarised under request["first_attempt"].
    """

    async def transcribe(self, audio: AudioRef, language: str) -> SttResult:
        params = dict(
            self.options.stt_options.get(language) or DEFAULT_STT_OPTIONS.get(language, {})
        )
        upload = await trio.to_thread.run_sync(_read_upload, audio, None)
        detected, duration, kept, _, request, response = await self._transcribe(upload, params)

        if normalize_language(params.get("language")) == "hi":
            counts = script_counts(_text_of(kept))
            if counts.urdu > counts.devanagari:
                first = {"params": request["params"], "response": response}
                retry_params = {**params, "prompt": self.options.devanagari_prompt}
                detected, duration, kept, _, request, response = await self._transcribe(
                    upload, retry_params
                )
                request["first_attempt"] = first
                request["retry_reason"] = "urdu_script"

        if upload.source_duration_s:
            duration = upload.source_duration_s
        return SttResult(
            segments=tuple(kept),
            language=detected or normalize_language(params.get("language")) or language,
            duration_s=duration,
            request=request,
            response=response,
        )


# -- chat ----------------------------------------------------------------------------------


def _strip_code_fence(content: str) -> str:
    # Some servers (Ollama, llama.cpp without grammar) wrap JSON in a ```json fence.
    text = content.strip()
    if text.startswith("```") and text.endswith("```"):
        text = text[3:-3]
        first_line, _, rest = text.partition("\n")
        text = rest if first_line.strip().isalpha() or not first_line.strip() else text
    return text.strip()


class RemoteChat:
    """Structured chat: the reply must be JSON matching the request's schema."""

    def __init__(self, base_url: str, client: httpx.AsyncClient, options: RemoteOptions) -> None:
        self.endpoint = _Endpoint(base_url, client, options)
        self.options = options

    async def complete(self, request: ChatRequest) -> ChatResult:
        payload = {
            "model": self.options.chat_model,
            "messages": [
                {"role": "system", "content": request.system},
                {"role": "user", "content": request.user},
            ],
            "temperature": self.options.temperature,
            "response_format": {
                "type": "json_schema",
                "json_schema": {
                    "name": request.schema_name,
                    "schema": request.schema,
                    "strict": True,
                },
            },
        }
        summary = {
            "url": self.endpoint.url(CHAT_PATH),
            "model": self.options.chat_model,
            "purpose": request.purpose,
            "schema_name": request.schema_name,
            "system_chars": len(request.system),
            "user_chars": len(request.user),
        }
        body, _ = await self.endpoint.post_json(CHAT_PATH, json=payload)
        content, finish_reason = _first_choice(body)
        reply = content[:REPLY_SUMMARY_CHARS]
        details: dict[str, Any] = {"reply": reply, "finish_reason": finish_reason}
        if finish_reason == "length":
            raise BackendError("the reply was cut off at the token limit", details=details)
        try:
            data = json.loads(_strip_code_fence(content))
        except ValueError as exc:
            raise BackendError(f"the reply is not JSON: {exc}", details=details) from exc
        if not isinstance(data, dict):
            raise BackendError("the reply is not a JSON object", details=details)
        try:
            validate(data, request.schema)
        except SchemaViolation as exc:
            details["violation"] = str(exc)
            raise BackendError(f"the reply breaks the schema: {exc}", details=details) from exc
        response = {
            "model": body.get("model"),
            "content": reply,
            "finish_reason": finish_reason,
            "usage": body.get("usage") if isinstance(body.get("usage"), Mapping) else None,
        }
        return ChatResult(data=data, request=summary, response=response)


def _first_choice(body: Any) -> tuple[str, str | None]:
    try:
        choice = body["choices"][0]
        message = choice["message"]
    except (KeyError, IndexError, TypeError) as exc:
        raise BackendError(
            "chat reply has no choices[0].message", details={"reply": str(body)[:2000]}
        ) from exc
    content = message.get("content") if isinstance(message, Mapping) else None
    if not isinstance(content, str):
        refusal = message.get("refusal") if isinstance(message, Mapping) else None
        raise BackendError(
            "chat reply has no content", details={"reply": str(message)[:2000], "refusal": refusal}
        )
    return content, choice.get("finish_reason") if isinstance(choice, Mapping) else None


def make_remote_backends(
    base_url: str, client: httpx.AsyncClient, options: RemoteOptions
) -> dict[str, Any]:
    """{"lid": RemoteLid, "stt": RemoteStt, "chat": RemoteChat} for one host."""
    return {
        "lid": RemoteLid(base_url, client, options),
        "stt": RemoteStt(base_url, client, options),
        "chat": RemoteChat(base_url, client, options),
    }
