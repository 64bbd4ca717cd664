"""Which transcript segments are Whisper talking to itself over silence.

Rules of `drop_hallucinations`, for each segment in order:

1. A segment whose text has no letter or digit (empty, blanks, "...", "♪") is dropped.
2. Scores are unknown when `no_speech_prob` or `avg_logprob` is missing, and when they are
   vLLM's placeholders (`avg_logprob` exactly -1.0 with `no_speech_prob` 0 or missing).
   A rule that needs an unknown score never drops the segment.
3. Whisper's own rule: `no_speech_prob > no_speech_threshold` and
   `avg_logprob < logprob_threshold` -> dropped.
4. A known silence hallucination ("Thank you.", "Thanks for watching!", "Subtitles by ...",
   see `SILENCE_PHRASES` and `SILENCE_PREFIXES`) with `no_speech_prob > no_speech_threshold`
   is dropped whatever its `avg_logprob`: Whisper is often confident in these.
5. Whisper's decode-failure rule: a compression ratio above `compression_ratio_threshold`
   (2.4, Whisper's default) is a repetition loop ("विगर विगर विगर …"), dropped whatever
   its other scores. The ratio is the server's when it sends one above 0 (faster-whisper
   sends its window's; vLLM sends a 0.0 placeholder, whisper.cpp none); otherwise it is
   computed from the segment's text the way Whisper does (UTF-8 bytes / zlib bytes).
6. Everything else is kept, in order, unchanged.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence

from cofid.domain.ports import Segment

VLLM_PLACEHOLDER_LOGPROB = -1.0
COMPRESSION_RATIO_THRESHOLD = 2.4  # Whisper's default

SILENCE_PHRASES: frozenset[str] = frozenset(
    {
        "thank you",
        "thank you very much",
        "thanks",
        "thanks for watching",
        "thank you for watching",
        "thank you so much for watching",
        "thanks for listening",
        "please subscribe",
        "like and subscribe",
        "subscribe to my channel",
        "bye",
        "bye bye",
        "you",
    }
)
SILENCE_PREFIXES: tuple[str, ...] = (
    "subtitles by",
    "subtitled by",
    "captions by",
    "captioned by",
    "transcribed by",
    "translated by",
    "transcription by",
)

_NOT_WORD = re.compile(r"[\W_]+")


def _normalized(text: str) -> str:
    return " ".join(_NOT_WORD.sub(" ", text.lower()).split())


def has_words(text: str) -> bool:
    return any(ch.isalnum() for ch in text)


def is_silence_phrase(text: str) -> bool:
    normalized = _normalized(text)
    return normalized in SILENCE_PHRASES or normalized.startswith(SILENCE_PREFIXES)


def is_placeholder_scores(avg_logprob: float | None, no_speech_prob: float | None) -> bool:
    """True for vLLM's stand-in scores: avg_logprob -1.0 with no_speech_prob 0 or missing."""
    return avg_logprob == VLLM_PLACEHOLDER_LOGPROB and not no_speech_prob


def text_compression_ratio(text: str) -> float:
    """Whisper's compression ratio of a text: UTF-8 bytes over zlib-compressed bytes."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


def compression_ratio_of(segment: Segment) -> float:
    """The server's ratio when it sent a real one (> 0), else the text's (rule 5)."""
    sent = segment.compression_ratio
    return sent if sent is not None and sent > 0 else text_compression_ratio(segment.text)


def is_repetition_loop(
    segment: Segment, compression_ratio_threshold: float = COMPRESSION_RATIO_THRESHOLD
) -> bool:
    return compression_ratio_of(segment) > compression_ratio_threshold


def is_hallucination(
    segment: Segment,
    *,
    no_speech_threshold: float = 0.6,
    logprob_threshold: float = -1.0,
    compression_ratio_threshold: float = COMPRESSION_RATIO_THRESHOLD,
) -> bool:
    if not has_words(segment.text):
        return True
    if is_repetition_loop(segment, compression_ratio_threshold):
        return True
    no_speech, logprob = segment.no_speech_prob, segment.avg_logprob
    if no_speech is None or is_placeholder_scores(logprob, no_speech):
        return False
    if no_speech <= no_speech_threshold:
        return False
    if is_silence_phrase(segment.text):
        return True
    return logprob is not None and logprob < logprob_threshold


def drop_hallucinations(
    segments: Sequence[Segment],
    *,
    no_speech_threshold: float = 0.6,
    logprob_threshold: float = -1.0,
    compression_ratio_threshold: float = COMPRESSION_RATIO_THRESHOLD,
) -> list[Segment]:
    return [
        segment
        for segment in segments
        if not is_hallucination(
            segment,
            no_speech_threshold=no_speech_threshold,
            logprob_threshold=logprob_threshold,
            compression_ratio_threshold=compression_ratio_threshold,
        )
    ]
