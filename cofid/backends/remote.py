"""LID and STT over OpenAI-compatible HTTP (`/v1/audio/transcriptions`, verbose_json:
vLLM, speaches / faster-whisper-server, whisper.cpp's server), normalized to one shape, in
each server's dialect (cofid.backends.dialects: path, model field, temperatures);
`make_remote_backends` builds the three remote backends of one GPU host (chat:
cofid.backends.remote_chat).

One call is one HTTP request (failure mapping: cofid.backends.remote_http), with two
documented exceptions on `RemoteStt`: a Hindi transcript that comes back in Urdu script is
asked for again, once, with a Devanagari prompt; and a transcript with a repetition loop is
asked for again at the dialect's next temperature (Whisper's fallback, done here because
most servers take one temperature per request).

LID confidence. With language probabilities (whisper.cpp, OpenAI), it is the label's
probability mass (cofid.domain.language). Servers that send none (faster-whisper-server,
speaches, vLLM) would otherwise make every label certain; instead the transcript's decode
score is the second signal: the duration-weighted mean over the kept segments of
exp(avg_logprob) x (1 - no_speech_prob). Below `lid_min_confidence` (0.3, about Whisper's
own decode-failure line of avg_logprob -1) the call is "other"; otherwise the label stands
with that confidence. With neither (vLLM's placeholder scores) the confidence is unknown:
the label stands, confidence 0.0, and the response says `confidence_source: "none"`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
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
from cofid.backends.dialects import transcription_form
from cofid.backends.remote_chat import RemoteChat
from cofid.backends.remote_http import (
    Endpoint,
    ModelReplyError,
    RemoteOptions,
    Upload,
    file_summary,
    number,
    read_upload,
)
from cofid.backends.request_summary import describing, reply_text
from cofid.domain.language import LABEL_OTHER, label_language, normalize_language, script_counts
from cofid.domain.replies import MAX_TEXT_CHARS, transcript_problems
from cofid.domain.segments import (
    drop_hallucinations,
    has_words,
    is_placeholder_scores,
    is_repetition_loop,
)

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


def _as_mapping(raw: Any) -> Any:
    if isinstance(raw, list | tuple) and len(raw) >= 5:
        # openai-whisper's tuple form, still sent by old whisper.cpp servers:
        # [id, seek, start, end, text, tokens, temperature, avg_logprob, compression, no_speech]
        raw = {
            "start": raw[2],
            "end": raw[3],
            "text": raw[4],
            "avg_logprob": raw[7] if len(raw) > 7 else None,
            "compression_ratio": raw[8] if len(raw) > 8 else None,
            "no_speech_prob": raw[9] if len(raw) > 9 else None,
        }
    return raw


def _sent_number(value: Any) -> Any:
    """A time as sent: None when absent, a float (NaN and infinities included) for a JSON
    number or numeric string, else the value itself (refused as not a number)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _check_numbers(body: Mapping[str, Any], raw_segments: list[Any]) -> None:
    """Refuse, as the model's error, a transcription with unusable numbers or over the
    bounds (cofid.domain.replies, rule 5)."""
    sent = []
    for raw in raw_segments:
        m = _as_mapping(raw)
        if isinstance(m, Mapping):
            sent.append({"start": _sent_number(m.get("start")), "end": _sent_number(m.get("end")),
                         "text": m.get("text")})
        else:
            sent.append({})
    problems = transcript_problems(sent, _sent_number(body.get("duration")))
    if problems:
        raise ModelReplyError(
            "the transcription cannot be stored: " + "; ".join(problems),
            details={"problems": problems, "segments": len(raw_segments)},
        )


def _segment(raw: Any, duration: float) -> Segment:
    raw = _as_mapping(raw)
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
        compression_ratio=number(raw.get("compression_ratio")),
    )


def _language_probabilities(
    body: Mapping[str, Any], language: str | None
) -> dict[str, float] | None:
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
    _check_numbers(body, raw_segments or [])
    if not raw_segments and len(text) > MAX_TEXT_CHARS:
        raise ModelReplyError(
            f"the transcription cannot be stored: the text is longer than {MAX_TEXT_CHARS} "
            "characters and has no segments",
            details={"text_chars": len(text)},
        )
    segments = [_segment(raw, duration or 0.0) for raw in raw_segments or ()]
    if duration is None:
        duration = max((s.end for s in segments), default=0.0)
    if not segments and text.strip():
        segments = [Segment(start=0.0, end=duration, text=text.strip())]
    return language, duration, segments, _language_probabilities(body, language)


def _text_of(segments: list[Segment]) -> str:
    return " ".join(s.text for s in segments if s.text)


def decode_confidence(segments: list[Segment]) -> float | None:
    """The transcript's decode score (module docstring, "LID confidence"); None when no
    segment carries a real avg_logprob."""
    total = weight = 0.0
    for s in segments:
        if s.avg_logprob is None:
            continue
        w = max(s.end - s.start, 0.01)
        no_speech = s.no_speech_prob or 0.0
        total += w * math.exp(min(s.avg_logprob, 0.0)) * (1.0 - min(max(no_speech, 0.0), 1.0))
        weight += w
    return total / weight if weight else None


@dataclass
class _Decoded:
    """One transcription request and what came back."""

    language: str | None
    duration: float
    kept: list[Segment]
    probs: dict[str, float] | None
    loops: int  # segments with a repetition loop (dropped)
    request: dict[str, Any]
    response: dict[str, Any]


class _Transcriber:
    def __init__(self, base_url: str, client: httpx.AsyncClient, options: RemoteOptions) -> None:
        self.endpoint = Endpoint(base_url, client, options)
        self.options = options
        self.dialect = options.dialect
        self.model = options.dialect.model or options.stt_model

    async def _transcribe(
        self, upload: Upload, params: dict[str, str], temperature: float | None = None
    ) -> _Decoded:
        d = self.dialect
        form = {
            **transcription_form(d, self.model, d.temperatures[0] if temperature is None else temperature),
            **params,
        }
        path = d.transcriptions_path
        body, status = await self.endpoint.post_json(
            path,
            model=self.model,
            data=form,
            files={"file": (upload.filename, upload.data, upload.content_type)},
            undecodable_upload=upload.source_duration_s is None,
        )
        # A transcription the model got wrong: its failure event shows the reply's text.
        with describing(self.endpoint.url(path), model=self.model, status=status,
                        reply=reply_text(body)):
            language, duration, segments, probs = parse_verbose_json(body)
        threshold = self.options.compression_ratio_threshold
        loops = sum(1 for s in segments if has_words(s.text) and is_repetition_loop(s, threshold))
        kept = drop_hallucinations(
            segments,
            no_speech_threshold=self.options.no_speech_threshold,
            logprob_threshold=self.options.logprob_threshold,
            compression_ratio_threshold=threshold,
        )
        request = {
            "url": self.endpoint.public_url(path),
            "model": self.model,
            "dialect": d.name,
            "params": {k: v for k, v in form.items() if k not in d.model_fields},
            "file": file_summary(upload),
        }
        response: dict[str, Any] = {
            "language": language,
            "duration": duration,
            "segments": len(segments),
            "segments_kept": len(kept),
            "text": _text_of(kept)[:TEXT_SUMMARY_CHARS],
        }
        if loops:
            response["repetition_loops"] = loops
        if probs:
            top = sorted(probs.items(), key=lambda item: -item[1])[:5]
            response["language_probabilities"] = dict(top)
        return _Decoded(language, duration, kept, probs, loops, request, response)


class RemoteLid(_Transcriber):
    """Language identification: Whisper transcribes the first `lid_seconds` without a forced
    language (the dialect's `lid_language`, e.g. "auto", when the server needs one), and
    `label_language` turns its answer and text into en / hi / hinglish / other; the
    confidence follows the module docstring's rule. `duration_s` is the whole file's (read
    locally when soundfile can, else the server's)."""

    async def identify(self, audio: AudioRef) -> LidResult:
        upload = await trio.to_thread.run_sync(read_upload, audio, self.options.lid_seconds)
        params = {"language": self.dialect.lid_language} if self.dialect.lid_language else {}
        decoded = await self._transcribe(upload, params)
        label, confidence = label_language(decoded.language, decoded.probs, _text_of(decoded.kept))
        response = decoded.response
        if decoded.probs:
            response["confidence_source"] = "probabilities"
        else:
            score = decode_confidence(decoded.kept)
            if score is None:
                confidence = 0.0
                response["confidence_source"] = "none"
            else:
                confidence = score
                response["confidence_source"] = "decode_score"
                if score < self.options.lid_min_confidence:
                    response["abstained_from"] = label
                    label = LABEL_OTHER
        response.update(label=label, confidence=round(confidence, 4))
        return LidResult(
            language=label,
            confidence=confidence,
            duration_s=upload.source_duration_s if upload.source_duration_s else decoded.duration,
            request=decoded.request, response=response, detected=decoded.language,
        )


class RemoteStt(_Transcriber):
    """Speech-to-text of the whole file, with the options `stt_options` (or
    DEFAULT_STT_OPTIONS) give for the call's label. Hallucinated segments are dropped.

    Temperature fallback: while the transcript has a repetition loop (a segment whose
    compression ratio is over the threshold) and the dialect lists another temperature, the
    request is sent again at that temperature; the attempt with the fewest loops is used
    (the earliest on a tie) and every attempt is summarised under
    request["temperature_attempts"]. Loop segments are dropped in any case.

    Urdu-script retry: when Whisper is told "hi" and writes mostly Urdu script, the request
    is sent once more with `prompt=devanagari_prompt` (Whisper follows the prompt's script)
    and that second answer is used; the first is summarised under request["first_attempt"].
    """

    async def transcribe(self, audio: AudioRef, language: str) -> SttResult:
        params = dict(
            self.options.stt_options.get(language) or DEFAULT_STT_OPTIONS.get(language, {})
        )
        upload = await trio.to_thread.run_sync(read_upload, audio, None)
        decoded = await self._with_fallback(upload, params)

        if normalize_language(params.get("language")) == "hi":
            counts = script_counts(_text_of(decoded.kept))
            if counts.urdu > counts.devanagari:
                first = {"params": decoded.request["params"], "response": decoded.response}
                retry_params = {**params, "prompt": self.options.devanagari_prompt}
                decoded = await self._with_fallback(upload, retry_params)
                decoded.request["first_attempt"] = first
                decoded.request["retry_reason"] = "urdu_script"

        duration = upload.source_duration_s or decoded.duration
        return SttResult(
            segments=tuple(decoded.kept),
            language=decoded.language or normalize_language(params.get("language")) or language,
            duration_s=duration,
            request=decoded.request,
            response=decoded.response,
        )

    async def _with_fallback(self, upload: Upload, params: dict[str, str]) -> _Decoded:
        best: _Decoded | None = None
        attempts: list[dict[str, Any]] = []
        for temperature in self.dialect.temperatures:
            decoded = await self._transcribe(upload, params, temperature)
            attempts.append({"temperature": temperature, "repetition_loops": decoded.loops})
            if best is None or decoded.loops < best.loops:
                best = decoded
            if decoded.loops == 0 or not self.dialect.send_temperature:
                break
        assert best is not None  # check_dialect: temperatures is never empty
        if len(attempts) > 1:
            best.request["temperature_attempts"] = attempts
        return best


def make_remote_backends(
    base_url: str, client: httpx.AsyncClient, options: RemoteOptions
) -> dict[str, Any]:
    """{"lid": RemoteLid, "stt": RemoteStt, "chat": RemoteChat} for one host."""
    return {
        "lid": RemoteLid(base_url, client, options),
        "stt": RemoteStt(base_url, client, options),
        "chat": RemoteChat(base_url, client, options),
    }
