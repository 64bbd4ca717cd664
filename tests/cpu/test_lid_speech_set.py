"""The CPU LID on a handful of clips of the labelled speech set, and the set itself.

The full set (88 clips) runs in bench/lid.py; these are the cases the issue names: English
in two accents is en, unsupported languages (a European one, two Indian ones sharing
scripts with Hindi, one more) are other and say what they were, Hindi is never forced into
English.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import soundfile as sf

from cofid.backends.base import AudioRef
from cofid.domain.language import label_language
from cofid.testing.quality import confusion_matrix, precision_recall
from cofid.testing.speech_set import (
    HINGLISH_TEXTS,
    SMALL_SET,
    small_clips,
    speech_clips,
    write_speech_set,
)

CPU_THREADS = int(os.environ.get("COFI_TEST_CPU_THREADS", "2"))


@pytest.fixture(scope="module")
def small_set(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict]]:
    """The test handful of clips, written once: (directory, manifest)."""
    directory = tmp_path_factory.mktemp("speech_set")
    return directory, write_speech_set(directory, small_clips())


@pytest.fixture(scope="module")
def lid(whisper_base_dir: Path):
    """The CPU LID with the default thresholds."""
    from cofid.backends.cpu.whisper import WhisperEngine
    from cofid.backends.cpu.whisper_lid import CpuLid

    return CpuLid(WhisperEngine(str(whisper_base_dir), cpu_threads=CPU_THREADS))


def test_full_set_covers_the_issues_cases():
    clips = speech_clips()
    by_label = {label: [c for c in clips if c.label == label] for label in ("en", "hi", "other")}
    assert len({c.voice for c in by_label["en"]}) >= 2  # accents
    assert by_label["hi"]
    assert len({c.language for c in by_label["other"]}) >= 8
    assert {c.sample_rate for c in clips} == {8000, 16000}
    assert {c.fmt for c in clips} == {"wav", "flac", "mp3"}
    assert {c.noisy for c in clips} == {True, False}
    assert {c.length for c in clips} == {"short", "long"}
    assert len({c.name for c in clips}) == len(clips)
    assert set(SMALL_SET) <= {c.name for c in clips}


def test_small_set_is_real_audio_as_labelled(small_set):
    directory, manifest = small_set
    assert list(manifest) == list(SMALL_SET)
    for name, entry in manifest.items():
        info = sf.info(str(directory / name))
        assert info.channels == 1 and info.samplerate == entry["sample_rate"]
        assert entry["duration_s"] > 3.0
    again = write_speech_set(directory / "again", small_clips()[:1])
    first = SMALL_SET[0]
    assert (directory / "again" / first).read_bytes() == (directory / first).read_bytes()
    assert again[first]["duration_s"] == manifest[first]["duration_s"]


async def test_lid_on_the_small_set(lid, small_set):
    directory, manifest = small_set
    pairs = []
    for name, entry in manifest.items():
        result = await lid.identify(AudioRef(directory / name, name))
        pairs.append((entry["label"], result.language))
        if entry["label"] == "other":
            assert result.language == "other", (name, result.response)
            assert result.response["detected"], result.response  # what it was instead
        elif entry["label"] == "en":
            assert result.language == "en", (name, result.response)
        else:  # hi: Whisper base does not recognise espeak-ng's Hindi; never forced into en
            assert result.language != "en", (name, result.response)
    assert precision_recall(confusion_matrix(pairs, ("en", "hi", "other")))["en"]["precision"] == 1.0


def test_hinglish_text_rule_precision_and_recall():
    """Measured on the fixtures: precision 1.0, recall 1.0; the bound leaves one miss."""
    pairs = [(label, label_language(det, None, text)[0]) for det, text, label in HINGLISH_TEXTS]
    scores = precision_recall(confusion_matrix(pairs, ("en", "hi", "hinglish")))["hinglish"]
    assert scores["precision"] >= 0.9 and scores["recall"] >= 0.9, (scores, pairs)
