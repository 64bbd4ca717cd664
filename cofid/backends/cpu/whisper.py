"""Language identification and speech-to-text on the CPU with faster-whisper (int8).

One `WhisperEngine` holds one loaded model, shared by `CpuLid` and `CpuStt`. The model
loads lazily in a worker thread; a lock lets one inference run at a time per engine (a
CTranslate2 model already uses every thread it was given, and a 2-core host has no more).
Every inference runs in `trio.to_thread.run_sync`, never on the trio loop.

LID (`CpuLid`, abstaining on weak evidence) lives in cofid.backends.cpu.whisper_lid.

STT is reproducible: greedy decoding at temperature 0 only. Whisper's temperature fallback
samples at random when a decode scores badly, and CTranslate2's random generator is per
thread and seeded once, so a per-file seed would not hold in a pool of worker threads;
temperatures above 0 are refused in stt_options. The model (name and SHA-256), the
decode settings, the thread count and the library versions go with every LID and STT
result (`response["decoder"]`), so a reaudit can say what changed.

STT for "hinglish" decodes as English by default: on the sample's Hinglish call English
decoding scored a mean log-probability of -0.69 against -0.81 for Hindi, kept trade terms
and numbers in Latin script ("300 shares, 450 rupees") as the Hindi decode also did, and
never switches to Devanagari or Urdu script mid-call. Override with stt_options.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import trio

from cofid.backends.base import AudioRef, BackendError, Segment, SttResult
from cofid.backends.cpu.audio import WHISPER_SR, load_mono
from cofid.domain.language import has_urdu_script
from cofid.domain.segments import drop_hallucinations

T = TypeVar("T")

DEVANAGARI_PROMPT = "नमस्ते, यह एक फ़ोन कॉल है।"
COMPRESSION_RATIO_LIMIT = 2.4
TEXT_HEAD_CHARS = 200
_HASH_CHUNK = 4 * 1024 * 1024


# Default decoding per call label. Greedy (beam 1) is ~2x faster than beam 5 on two cores
# for the same words on clear speech. Temperature 0 only: no sampling, so the same audio,
# model and settings give the same transcript (the fallback ladder 0 / 0.4 / 0.8 sampled).
DEFAULT_STT_OPTIONS: dict[str, dict[str, Any]] = {
    "en": {"language": "en"},
    "hi": {"language": "hi"},
    "hinglish": {"language": "en"},
}
_BASE_DECODE: dict[str, Any] = {
    "beam_size": 1,
    "vad_filter": True,
    "temperature": (0.0,),
    "condition_on_previous_text": False,
}


def _as_bool(value: str) -> bool:
    """A configuration string as a boolean ("true", "off", ...)."""
    lowered = str(value).strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"not a boolean: {value!r}")


def _as_floats(value: str) -> tuple[float, ...]:
    """A comma-separated configuration string as floats."""
    return tuple(float(part) for part in str(value).split(",") if part.strip())


def _as_temperatures(value: str) -> tuple[float, ...]:
    """Decoding temperatures: only 0, since sampling makes a transcript irreproducible."""
    temperatures = _as_floats(value)
    if not temperatures or any(t != 0.0 for t in temperatures):
        raise ValueError(
            "only temperature 0 is allowed: sampling (temperature > 0) gives the same audio "
            "a different transcript on another run"
        )
    return temperatures


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
    "temperature": _as_temperatures,
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

    def __init__(
        self, model_dir: str, *, cpu_threads: int = 2, compute_type: str = "int8"
    ) -> None:
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
        self.model_sha256: str | None = None

    @property
    def model_name(self) -> str:
        """The model directory's name (e.g. "whisper-base")."""
        return Path(self.model_dir).name

    def describe(self) -> dict[str, Any]:
        """What decides this engine's output besides the audio: model, digest, runtime."""
        return {
            "model": self.model_name,
            "model_sha256": self.model_sha256,
            "compute_type": self.compute_type,
            "cpu_threads": self.cpu_threads,
            "faster_whisper": _version("faster-whisper"),
            "ctranslate2": _version("ctranslate2"),
        }

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
                self.model_sha256 = _sha256(Path(self.model_dir) / "model.bin")
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
        """Load the model now (in a worker thread) instead of on the first call."""
        await self.run(lambda model: None)


def _version(distribution: str) -> str | None:
    """An installed distribution's version, None when it is not installed."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _sha256(path: Path) -> str:
    """SHA-256 of a file, read in chunks (the model is 150 MB and more)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def decode_segments(model: Any, samples: np.ndarray, language: str, **options: Any) -> list[Any]:
    """faster-whisper's transcribe() with the base settings, all segments decoded."""
    settings = {**_BASE_DECODE, **options, "language": language}
    segments, _info = model.transcribe(samples, **settings)
    return list(segments)


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
        """Decode in a worker thread; Hindi in Urdu script is decoded again, prompted."""
        raw = decode_segments(model, samples, **options)
        text = " ".join(s.text for s in raw)
        retried = False
        if options["language"] == "hi" and has_urdu_script(text):
            # Whisper writes Hindi in Urdu script now and then; a Devanagari prompt steers it.
            raw = decode_segments(model, samples, **{**options, "initial_prompt": self.devanagari_prompt})
            retried = True
        return {"segments": raw, "urdu_retry": retried}

    async def transcribe(self, audio: AudioRef, language: str) -> SttResult:
        """The whole file's segments, decoded with the options of the call's label."""
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
        params = {k: v for k, v in options.items() if k != "initial_prompt"}
        request = {
            "engine": "cpu-faster-whisper",
            "model": self.engine.model_name,
            "compute_type": self.engine.compute_type,
            "label": language,
            "params": params,
            "initial_prompt": options.get("initial_prompt"),
        }
        response = {
            "language": options["language"],
            # Everything besides the audio that decides the rows: a reaudit compares this.
            "decoder": {
                **self.engine.describe(),
                "params": params,
                "initial_prompt": options.get("initial_prompt"),
                "urdu_retry_prompt": self.devanagari_prompt if found["urdu_retry"] else None,
                "no_speech_threshold": self.no_speech_threshold,
                "logprob_threshold": self.logprob_threshold,
            },
            "duration_s": duration,
            "segments": len(kept),
            "dropped_segments": len(segments) - len(kept),
            "urdu_retry": found["urdu_retry"],
            "text_head": text[:TEXT_HEAD_CHARS],
            "elapsed_s": round(time.perf_counter() - started, 3),
        }
        return SttResult(
            segments=tuple(kept),
            language=options["language"],
            duration_s=duration,
            request=request,
            response=response,
        )
