"""LID and STT over OpenAI-compatible HTTP (`/v1/audio/transcriptions`, verbose_json:
vLLM, speaches, whisper.cpp's server), normalized to one shape; `make_remote_backends`
builds the three remote backends of one GPU host (chat: cofid.backends.remote_chat).

One call is one HTTP request (failure mapping: cofid.backends.remote_http). The one
exception is documented on `RemoteStt`: a Hindi transcript that comes back in Urdu script
is asked for again, once, with a Devanagari prompt.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
import trio

from cofid.backends.base import (
    AudioRef,
    BackendError,
    LidResult,
    Segment,
    SttResult,
)
from cofid.backends.remote_chat import RemoteChat
from cofid.backends.remote_http import (
    Endpoint,
    RemoteOptions,
    Upload,
    file_summary,
    number,
    read_upload,
)
from cofid.domain.language import label_language, normalize_language, script_counts
from cofid.domain.segments import drop_hallucinations, is_placeholder_scores

__all__ = ["DEFAULT_STT_OPTIONS", "RemoteChat", "RemoteLid", "RemoteOptions", "RemoteStt",
           "make_remote_backends", "parse_verbose_json"]

TRANSCRIPTIONS_PATH = "/v1/audio/transcriptions"
TEXT_SUMMARY_CHARS = 500

# What Whisper is told for each call label when `stt_options` has no entry for it.
# Hinglish is decoded as English: that keeps the transcript in Latin script (decoding it as
# Hindi gives Devanagari or Urdu script with English words transliterated).
DEFAULT_STT_OPTIONS: dict[str, dict[str, str]] = {
    "en": {"language": "en"},
    "hi": {"language": "hi"},
    "hinglish": {"language": "en"},
}

# -- response normalisation ----------------------------------------------------------------


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
    start = number(raw.get("start")) or 0.0
    end = number(raw.get("end"))
    avg_logprob = number(raw.get("avg_logprob"))
    no_speech_prob = number(raw.get("no_speech_prob"))
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
                code, p = normalize_language(str(name)), number(value)
                if code is not None and p is not None:
                    probs[code] = probs.get(code, 0.0) + p
            break
    for key in ("detected_language_probability", "language_probability"):
        p = number(body.get(key))
        if p is not None and language is not None and language not in probs:
            probs[language] = p
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
    duration = number(body.get("duration"))

    raw_segments = body.get("segments")
    if raw_segments is not None and not isinstance(raw_segments, list):
        raise BackendError("transcription segments are not a list")
    segments = [_segment(raw, duration or 0.0) for raw in raw_segments or ()]
    if duration is None:
        duration = max((s.end for s in segments), default=0.0)
    if not segments and text.strip():
        segments = [Segment(start=0.0, end=duration, text=text.strip())]
    return language, duration, segments, _language_probabilities(body, language)


def _text_of(segments: list[Segment]) -> str:
    return " ".join(s.text for s in segments if s.text)


class _Transcriber:
    def __init__(self, base_url: str, client: httpx.AsyncClient, options: RemoteOptions) -> None:
        self.endpoint = Endpoint(base_url, client, options)
        self.options = options

    async def _transcribe(self, upload: Upload, params: dict[str, str]):
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
            "file": file_summary(upload),
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
        upload = await trio.to_thread.run_sync(read_upload, audio, self.options.lid_seconds)
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
        upload = await trio.to_thread.run_sync(read_upload, audio, None)
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


def make_remote_backends(
    base_url: str, client: httpx.AsyncClient, options: RemoteOptions
) -> dict[str, Any]:
    """{"lid": RemoteLid, "stt": RemoteStt, "chat": RemoteChat} for one host."""
    return {
        "lid": RemoteLid(base_url, client, options),
        "stt": RemoteStt(base_url, client, options),
        "chat": RemoteChat(base_url, client, options),
    }
