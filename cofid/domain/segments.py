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
5. Everything else is kept, in order, unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from cofid.backends.base import Segment

VLLM_PLACEHOLDER_LOGPROB = -1.0

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


def is_hallucination(
    segment: Segment, *, no_speech_threshold: float = 0.6, logprob_threshold: float = -1.0
) -> bool:
    if not has_words(segment.text):
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
) -> list[Segment]:
    return [
        segment
        for segment in segments
        if not is_hallucination(
            segment, no_speech_threshold=no_speech_threshold, logprob_threshold=logprob_threshold
        )
    ]
