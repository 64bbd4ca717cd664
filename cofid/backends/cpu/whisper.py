"""Language identification and speech-to-text on the CPU with faster-whisper (int8).

One `WhisperEngine` holds one loaded model, shared by `CpuLid` and `CpuStt`. The model
loads lazily in a worker thread; a lock lets one inference run at a time per engine (a
CTranslate2 model already uses every thread it was given, and a 2-core host has no more).
Every inference runs in `trio.to_thread.run_sync`, never on the trio loop.

LID, measured on the sample batch (cofid.testing.sample_batch) with Whisper base:

1. Whisper's language detection on the first `lid_seconds` gives probabilities.
2. A confident language other than en / hi / ur (p >= 0.5, e.g. German at 0.96) is "other"
   with no decoding.
3. A confident en, hi or ur is taken as it is. Otherwise Whisper is guessing: telephone
   and synthesized Hindi came out as la / th / hu at 0.2-0.45 with hi at 0.01-0.13. Then
   the first `text_seconds` are decoded as en and as hi and the language whose decode has
   the higher mean token log-probability wins; a decode stuck in a loop (compression
   ratio > 2.4, Whisper's own failure test) loses. Hindi call: hi -0.81 vs en looping
   (10 s) or hi -1.41 vs en -2.30 (12 s); English calls: en wins by 0.01-0.07.
4. The head transcript (Hindi decoded with the Devanagari prompt, so Hindi comes out in
   Devanagari rather than Urdu or Roman letters) and the probabilities go to
   `cofid.domain.language.label_language`, which applies the hinglish text rules.

STT for "hinglish" decodes as English by default: on the sample's Hinglish call English
decoding scored a mean log-probability of -0.69 against -0.81 for Hindi, kept trade terms
and numbers in Latin script ("300 shares, 450 rupees") as the Hindi decode also did, and
never switches to Devanagari or Urdu script mid-call. Override with stt_options.
"""

from __future__ import annotations

import importlib.util
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import trio

from cofid.backends.base import AudioRef, BackendError, LidResult, Segment, SttResult
from cofid.backends.cpu.audio import WHISPER_SR, load_mono
from cofid.domain.language import has_urdu_script, label_language
from cofid.domain.segments import drop_hallucinations

T = TypeVar("T")

DEVANAGARI_PROMPT = "नमस्ते, यह एक फ़ोन कॉल है।"
CONFIDENT_LANGUAGE_P = 0.5
COMPRESSION_RATIO_LIMIT = 2.4
SUPPORTED_DECODE = ("en", "hi")
_TEXT_HEAD_CHARS = 200

# Default decoding per call label. Greedy (beam 1) is ~2x faster than beam 5 on two cores
# for the same words on clear speech; the short temperature ladder bounds the time a
# hopeless segment can burn (the full 6-step ladder took 45 s on a 31 s garbled call).
DEFAULT_STT_OPTIONS: dict[str, dict[str, Any]] = {
    "en": {"language": "en"},
    "hi": {"language": "hi"},
    "hinglish": {"language": "en"},
}
_BASE_DECODE: dict[str, Any] = {
    "beam_size": 1,
    "vad_filter": True,
    "temperature": (0.0, 0.4, 0.8),
    "condition_on_previous_text": False,
}


def _as_bool(value: str) -> bool:
    lowered = str(value).strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"not a boolean: {value!r}")


def _as_floats(value: str) -> tuple[float, ...]:
    return tuple(float(part) for part in str(value).split(",") if part.strip())


# transcribe() options that may be set per label from configuration (string values).
_OPTION_PARSERS: dict[str, Callable[[str], Any]] = {
    "language": str,
    "task": str,
    "initial_prompt": str,
    "hotwords": str,
    "beam_size": int,
    "best_of": int,
    "no_repeat_ngram_size": int,
    "patience": float,
    "length_penalty": float,
    "repetition_penalty": float,
    "compression_ratio_threshold": float,
    "temperature": _as_floats,
    "vad_filter": _as_bool,
    "condition_on_previous_text": _as_bool,
    "without_timestamps": _as_bool,
}


def parse_stt_options(options: Mapping[str, Mapping[str, str]]) -> dict[str, dict[str, Any]]:
    """Configuration strings → typed transcribe() keyword arguments, per call label."""
    parsed = {label: dict(values) for label, values in DEFAULT_STT_OPTIONS.items()}
    for label, values in options.items():
        target = parsed.setdefault(label, {})
        for key, raw in values.items():
            if key not in _OPTION_PARSERS:
                known = ", ".join(sorted(_OPTION_PARSERS))
                raise ValueError(f"stt option {label}.{key} is not supported (known: {known})")
            try:
                target[key] = _OPTION_PARSERS[key](raw)
            except ValueError as exc:
                raise ValueError(f"stt option {label}.{key}={raw!r}: {exc}") from exc
    return parsed


def top_languages(probabilities: Mapping[str, float], n: int = 3) -> list[list[Any]]:
    ranked = sorted(probabilities.items(), key=lambda item: item[1], reverse=True)[:n]
    return [[lang, round(prob, 4)] for lang, prob in ranked]


def mean_token_logprob(segments: list[Any]) -> float:
    """Token-weighted mean of faster-whisper segments' avg_logprob.

    -inf with no tokens, and for a decode stuck in a loop: Whisper's own failure test is
    a gzip compression ratio above 2.4, and a loop ("Namaste, your call to Namaste, your
    call to ...") otherwise scores deceptively well.
    """
    tokens = sum(len(s.tokens) for s in segments)
    looping = any(s.compression_ratio > COMPRESSION_RATIO_LIMIT for s in segments)
    if tokens == 0 or looping:
        return float("-inf")
    return sum(s.avg_logprob * len(s.tokens) for s in segments) / tokens


class WhisperEngine:
    """One faster-whisper model, loaded on first use, one inference at a time."""

    def __init__(self, model_dir: str, *, cpu_threads: int = 2, compute_type: str = "int8"):
        if importlib.util.find_spec("faster_whisper") is None:
            raise RuntimeError(
                "faster-whisper is not installed: install the cpu extra (pip install 'cofi[cpu]')"
            )
        self.model_dir = str(model_dir)
        self.cpu_threads = cpu_threads
        self.compute_type = compute_type
        self._model: Any = None
        self._load_lock = threading.Lock()
        self._lock = trio.Lock()
        self.load_seconds: float | None = None

    @property
    def model_name(self) -> str:
        return Path(self.model_dir).name

    def model_sync(self) -> Any:
        """The loaded model (loads it on first call; blocking, so call from a thread)."""
        with self._load_lock:
            if self._model is None:
                from faster_whisper import WhisperModel

                started = time.perf_counter()
                self._model = WhisperModel(
                    self.model_dir,
                    device="cpu",
                    compute_type=self.compute_type,
                    cpu_threads=self.cpu_threads,
                    local_files_only=True,
                )
                self.load_seconds = round(time.perf_counter() - started, 3)
            return self._model

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(model, *args)` in a worker thread, alone on this engine."""
        async with self._lock:
            return await trio.to_thread.run_sync(self._invoke, fn, args)

    def _invoke(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        model = self.model_sync()
        try:
            return fn(model, *args)
        except (RuntimeError, ValueError, MemoryError) as exc:
            raise BackendError(f"faster-whisper inference failed: {exc}") from exc

    async def load(self) -> None:
        await self.run(lambda model: None)


def _decode(model: Any, samples: np.ndarray, language: str, **options: Any) -> list[Any]:
    settings = {**_BASE_DECODE, **options, "language": language}
    segments, _info = model.transcribe(samples, **settings)
    return list(segments)


class CpuLid:
    """LidBackend on the CPU."""

    def __init__(
        self,
        engine: WhisperEngine,
        *,
        lid_seconds: float = 30.0,
        text_seconds: float = 10.0,
        devanagari_prompt: str = DEVANAGARI_PROMPT,
    ) -> None:
        self.engine = engine
        self.lid_seconds = lid_seconds
        self.text_seconds = text_seconds
        self.devanagari_prompt = devanagari_prompt

    def _head_text(self, model: Any, head: np.ndarray, language: str) -> tuple[str, float]:
        prompt = self.devanagari_prompt if language == "hi" else None
        segments = _decode(
            model, head, language, initial_prompt=prompt, temperature=0.0,
            without_timestamps=True, max_new_tokens=96,
        )  # fmt: skip
        return " ".join(s.text.strip() for s in segments).strip(), mean_token_logprob(segments)

    def _identify_sync(self, model: Any, samples: np.ndarray) -> dict[str, Any]:
        lid_head = samples[: int(self.lid_seconds * WHISPER_SR)]
        text_head = samples[: int(self.text_seconds * WHISPER_SR)]
        _lang, _p, ranked = model.detect_language(lid_head, vad_filter=True)
        probabilities = {lang: float(p) for lang, p in ranked}
        top, p_top = max(probabilities.items(), key=lambda item: item[1])
        found: dict[str, Any] = {"probabilities": probabilities, "whisper_top": top}
        if top not in ("en", "hi", "ur") and p_top >= CONFIDENT_LANGUAGE_P:
            found.update(detected=top, text="", method="whisper")
            return found
        if p_top >= CONFIDENT_LANGUAGE_P:
            detected, method = ("hi" if top == "ur" else top), "whisper"
        else:
            scores = {}
            for language in SUPPORTED_DECODE:
                segments = _decode(
                    model, text_head, language, temperature=0.0, without_timestamps=True,
                    max_new_tokens=96,
                )  # fmt: skip
                scores[language] = mean_token_logprob(segments)
            detected, method = max(scores, key=scores.__getitem__), "decode-score"
            found["decode_scores"] = {
                lang: (round(score, 3) if score > float("-inf") else None)
                for lang, score in scores.items()
            }
        text, _score = self._head_text(model, text_head, detected)
        found.update(detected=detected, text=text, method=method)
        return found

    async def identify(self, audio: AudioRef) -> LidResult:
        samples, sr = await trio.to_thread.run_sync(load_mono, audio.path, WHISPER_SR)
        duration = round(len(samples) / sr, 3)
        started = time.perf_counter()
        found = await self.engine.run(self._identify_sync, samples)
        label, confidence = label_language(found["detected"], found["probabilities"], found["text"])
        request = {
            "engine": "cpu-faster-whisper",
            "model": self.engine.model_name,
            "compute_type": self.engine.compute_type,
            "lid_seconds": self.lid_seconds,
            "text_seconds": self.text_seconds,
        }
        response = {
            "language": label,
            "confidence": round(confidence, 4),
            "detected": found["detected"],
            "method": found["method"],
            "language_probs": top_languages(found["probabilities"]),
            "decode_scores": found.get("decode_scores"),
            "duration_s": duration,
            "text_head": found["text"][:_TEXT_HEAD_CHARS],
            "elapsed_s": round(time.perf_counter() - started, 3),
        }
        return LidResult(
            language=label,
            confidence=confidence,
            duration_s=duration,
            request=request,
            response=response,
        )


class CpuStt:
    """SttBackend on the CPU."""

    def __init__(
        self,
        engine: WhisperEngine,
        *,
        stt_options: Mapping[str, Mapping[str, str]] | None = None,
        devanagari_prompt: str = DEVANAGARI_PROMPT,
        no_speech_threshold: float = 0.6,
        logprob_threshold: float = -1.0,
    ) -> None:
        self.engine = engine
        self.options = parse_stt_options(stt_options or {})
        self.devanagari_prompt = devanagari_prompt
        self.no_speech_threshold = no_speech_threshold
        self.logprob_threshold = logprob_threshold

    def decode_options(self, label: str) -> dict[str, Any]:
        """transcribe() arguments for a call label; a bare Whisper code passes through."""
        options = dict(self.options.get(label, {"language": label}))
        options.setdefault("language", label)
        return {**_BASE_DECODE, **options}

    def _transcribe_sync(
        self, model: Any, samples: np.ndarray, options: dict[str, Any]
    ) -> dict[str, Any]:
        raw = _decode(model, samples, **options)
        text = " ".join(s.text for s in raw)
        retried = False
        if options["language"] == "hi" and has_urdu_script(text):
            # Whisper writes Hindi in Urdu script now and then; a Devanagari prompt steers it.
            raw = _decode(model, samples, **{**options, "initial_prompt": self.devanagari_prompt})
            retried = True
        return {"segments": raw, "urdu_retry": retried}

    async def transcribe(self, audio: AudioRef, language: str) -> SttResult:
        samples, sr = await trio.to_thread.run_sync(load_mono, audio.path, WHISPER_SR)
        duration = round(len(samples) / sr, 3)
        options = self.decode_options(language)
        started = time.perf_counter()
        found = await self.engine.run(self._transcribe_sync, samples, options)
        segments = [
            Segment(
                start=round(float(s.start), 3),
                end=round(float(s.end), 3),
                text=s.text.strip(),
                avg_logprob=float(s.avg_logprob),
                no_speech_prob=float(s.no_speech_prob),
            )
            for s in found["segments"]
        ]
        kept = drop_hallucinations(
            segments,
            no_speech_threshold=self.no_speech_threshold,
            logprob_threshold=self.logprob_threshold,
        )
        text = " ".join(s.text for s in kept)
        request = {
            "engine": "cpu-faster-whisper",
            "model": self.engine.model_name,
            "compute_type": self.engine.compute_type,
            "label": language,
            "params": {k: v for k, v in options.items() if k != "initial_prompt"},
            "initial_prompt": options.get("initial_prompt"),
        }
        response = {
            "language": options["language"],
            "duration_s": duration,
            "segments": len(kept),
            "dropped_segments": len(segments) - len(kept),
            "urdu_retry": found["urdu_retry"],
            "text_head": text[:_TEXT_HEAD_CHARS],
            "elapsed_s": round(time.perf_counter() - started, 3),
        }
        return SttResult(
            segments=tuple(kept),
            language=options["language"],
            duration_s=duration,
            request=request,
            response=response,
        )
