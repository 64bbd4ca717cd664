"""The fake denoiser/trimmer's derived audio (what benchmarks and the demo run on): the
input's bytes at the output path — a fresh output in one link, an output there already
(a re-run) replaced whole, a directory that is not there yet made — and the stages'
output_path makes the directory they write into."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cofid.backends.base import AudioRef, BackendError
from cofid.backends.fake import FakeBackends, FakeCall
from cofid.stages.base import output_path


def _backends() -> FakeBackends:
    return FakeBackends(script=lambda _name: FakeCall(ivr_offset_s=1.5))


async def test_a_fresh_output_is_the_input_linked(tmp_path: Path) -> None:
    src = tmp_path / "call.wav"
    src.write_bytes(b"RIFF-one")
    out = tmp_path / "work" / "1.denoise.flac"
    out.parent.mkdir()
    result = await _backends().denoise(AudioRef(src, "call.wav"), out)
    assert result.output == out and out.read_bytes() == b"RIFF-one"
    assert os.stat(out).st_ino == os.stat(src).st_ino  # a hard link, no copy


async def test_a_rerun_replaces_the_output_whole(tmp_path: Path) -> None:
    first, second = tmp_path / "a.wav", tmp_path / "b.wav"
    first.write_bytes(b"first")
    second.write_bytes(b"second, longer")
    out = tmp_path / "2.ivr.flac"
    fake = _backends()
    await fake.trim(AudioRef(first, "a.wav"), out)
    await fake.trim(AudioRef(second, "b.wav"), out)
    assert out.read_bytes() == b"second, longer"
    assert first.read_bytes() == b"first"  # the earlier input is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2.ivr.flac", "a.wav", "b.wav"]


async def test_an_output_directory_not_there_yet_is_made(tmp_path: Path) -> None:
    src = tmp_path / "c.wav"
    src.write_bytes(b"bytes")
    out = tmp_path / "deep" / "er" / "3.denoise.flac"
    await _backends().denoise(AudioRef(src, "c.wav"), out)
    assert out.read_bytes() == b"bytes"


def test_output_path_makes_the_directory_once_and_keeps_what_is_there(tmp_path: Path) -> None:
    target = tmp_path / "work" / "7" / "9.denoise.flac"
    assert output_path(str(target)) == target
    assert target.parent.is_dir() and not target.exists()
    (target.parent / "other.flac").write_bytes(b"x")
    assert output_path(str(target.parent / "10.ivr.flac")) == target.parent / "10.ivr.flac"
    assert (target.parent / "other.flac").read_bytes() == b"x"


async def test_only_flaky_calls_leave_a_record_per_file(tmp_path: Path) -> None:
    """A fake daemon runs for weeks: a call that is not flaky leaves no per-file state
    behind (it used to keep an attempt count per file and capability), and a flaky one
    still fails its first attempt at each capability and succeeds on the next."""
    fake = FakeBackends(script=lambda name: FakeCall(flaky="flaky" in name))
    audio = tmp_path / "a.wav"
    audio.write_bytes(b"RIFF")
    for i in range(200):
        await fake.identify(AudioRef(audio, f"call{i}.wav"))
    assert fake.attempts == {} and fake.calls["lid"] == 200
    flaky = AudioRef(audio, "x_flaky.wav")
    with pytest.raises(BackendError, match="first attempt"):
        await fake.identify(flaky)
    assert (await fake.identify(flaky)).language == "en"
    with pytest.raises(BackendError, match="first attempt"):
        await fake.trim(flaky, tmp_path / "x.ivr.flac")  # each capability's first attempt
    assert fake.attempts == {("lid", "x_flaky.wav"): 2, ("ivr", "x_flaky.wav"): 1}
