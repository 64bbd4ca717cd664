"""drop_hallucinations: each numbered rule of cofid.domain.segments."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cofid.backends.base import Segment
from cofid.domain.segments import drop_hallucinations, is_placeholder_scores, is_silence_phrase


def seg(text="I want to buy shares", logprob=-0.2, no_speech=0.01, start=0.0):
    return Segment(
        start=start, end=start + 1, text=text, avg_logprob=logprob, no_speech_prob=no_speech
    )


def kept(*segments, **kwargs):
    return drop_hallucinations(list(segments), **kwargs)


def test_ordinary_segments_are_kept_in_order_unchanged():
    segments = [seg(start=i) for i in range(3)]
    assert kept(*segments) == segments


@pytest.mark.parametrize("text", ["", "   ", "...", "♪ ♪", " - "])
def test_segments_without_words_are_dropped(text):
    assert kept(seg(text=text)) == []
    assert kept(seg(text=text, logprob=None, no_speech=None)) == []


def test_whispers_rule_needs_both_scores_bad():
    assert kept(seg(logprob=-1.5, no_speech=0.9)) == []
    assert kept(seg(logprob=-0.5, no_speech=0.9)) != []  # confident text over "silence"
    assert kept(seg(logprob=-1.5, no_speech=0.3)) != []  # unsure text, but speech


def test_thresholds_are_strict_and_configurable():
    assert kept(seg(logprob=-1.0, no_speech=0.9)) != []  # not below -1.0
    assert kept(seg(logprob=-1.5, no_speech=0.6)) != []  # not above 0.6
    assert (
        kept(seg(logprob=-0.8, no_speech=0.5), no_speech_threshold=0.4, logprob_threshold=-0.5)
        == []
    )


@pytest.mark.parametrize(
    "text", ["Thank you.", "Thanks for watching!", "Subtitles by the Amara.org community", "you"]
)
def test_silence_phrases_are_dropped_when_no_speech_is_likely(text):
    assert is_silence_phrase(text)
    assert kept(seg(text=text, logprob=-0.1, no_speech=0.8)) == []
    assert kept(seg(text=text, logprob=-0.1, no_speech=0.1)) != []  # said on the call


def test_thank_you_inside_a_sentence_is_not_a_silence_phrase():
    assert not is_silence_phrase("Thank you, your order is placed")
    assert kept(seg(text="Thank you, your order is placed", logprob=-0.1, no_speech=0.8)) != []


def test_missing_scores_are_unknown_and_never_drop():
    assert kept(seg(logprob=None, no_speech=0.99)) != []
    assert kept(seg(logprob=-3.0, no_speech=None)) != []
    assert kept(seg(text="Thank you.", logprob=None, no_speech=None)) != []


def test_vllm_placeholder_scores_are_unknown():
    assert is_placeholder_scores(-1.0, 0.0) and is_placeholder_scores(-1.0, None)
    assert not is_placeholder_scores(-1.0, 0.2) and not is_placeholder_scores(-0.9, 0.0)
    # With the default logprob threshold changed, the placeholder would otherwise drop it.
    assert (
        kept(seg(logprob=-1.0, no_speech=0.0), no_speech_threshold=-0.1, logprob_threshold=0) != []
    )


def test_the_language_and_segment_rules_stay_pure():
    # DESIGN.md, "Keep the core pure": a fresh interpreter imports both modules without
    # pulling in an I/O framework (this also guards cofid/backends/__init__.py, which
    # segments.py passes through to reach Segment).
    code = (
        "import sys, cofid.domain.language, cofid.domain.segments;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in"
        " {'trio', 'anyio', 'httpx', 'grpc', 'sqlalchemy', 'textual'}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
