"""The structural check of a split CTranslate2 model, and Whisper small as a model setting.

The split files here are written by the test in CTranslate2's model.bin layout (header,
then name / shape / type / size / data per variable), so a truncated and a complete model
are both on hand; Whisper base's real parts are walked too.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from cofid.backends.cpu import whisper_model
from cofid.backends.cpu.ct2_layout import walk
from cofid.backends.cpu.whisper_model import (
    ModelUnavailableError,
    ensure_whisper_small,
    resolve_model,
)


def _string(text: str) -> bytes:
    raw = text.encode() + b"\0"
    return struct.pack("<H", len(raw)) + raw


def _model_bin(variables: list[tuple[str, list[int], int]]) -> bytes:
    """A model.bin with float16 (type 4) variables of the given shapes; data is zeros."""
    out = struct.pack("<I", 6) + _string("WhisperSpec") + struct.pack("<I", 3)
    out += struct.pack("<I", len(variables))
    for name, shape, _ in variables:
        nbytes = 2
        for dim in shape:
            nbytes *= dim
        out += _string(name) + struct.pack("<B", len(shape))
        out += b"".join(struct.pack("<I", d) for d in shape)
        out += struct.pack("<B", 4) + struct.pack("<I", nbytes) + b"\0" * nbytes
    return out + struct.pack("<I", 0)  # no aliases


def _split(data: bytes, directory: Path, cut: int) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    first, second = directory / "model.bin.part1", directory / "model.bin.part2"
    first.write_bytes(data[:cut])
    second.write_bytes(data[cut:])
    return [first, second]


VARIABLES = [("encoder/conv1/weight", [8, 4, 3], 4), ("decoder/embeddings/weight", [16, 8], 4)]


def test_walk_tells_complete_from_truncated(tmp_path: Path):
    data = _model_bin(VARIABLES)
    whole = walk(_split(data, tmp_path / "whole", 100))
    assert (whole.spec, whole.variables, whole.complete_variables) == ("WhisperSpec", 2, 2)
    assert whole.complete and whole.stopped_in == "" and whole.total_bytes == len(data)
    cut = walk(_split(data[:-40], tmp_path / "cut", 100))  # the parts end inside variable 2
    assert (cut.complete, cut.complete_variables, cut.stopped_in) == (
        False, 1, "decoder/embeddings/weight",
    )  # fmt: skip


def test_walk_of_the_shipped_base_parts_is_complete(whisper_base_dir: Path):
    parts = [
        whisper_model._package_file(d, n)
        for d, n in zip(whisper_model._PART_PACKAGES, whisper_model._PART_NAMES, strict=True)
    ]
    layout = walk(parts)
    assert layout.complete and layout.spec == "WhisperSpec" and layout.variables > 100
    assert layout.total_bytes == (whisper_base_dir / "model.bin").stat().st_size


def _fake_packages(monkeypatch: pytest.MonkeyPatch, parts: list[Path], jsons: Path) -> None:
    files = {name: part for name, part in zip(whisper_model._PART_NAMES, parts, strict=True)}
    files |= {name: jsons / name for name in whisper_model._JSON_FILES}
    monkeypatch.setattr(whisper_model, "_package_file", lambda _dist, name: files[name])


def test_small_is_refused_while_its_parts_are_incomplete(tmp_path: Path, monkeypatch):
    parts = _split(_model_bin(VARIABLES)[:-40], tmp_path / "pkg", 100)
    _fake_packages(monkeypatch, parts, tmp_path)
    with pytest.raises(ModelUnavailableError, match=r"incomplete: .* hold 1 of 2 model"):
        resolve_model("small", tmp_path / "cache")
    assert not (tmp_path / "cache" / "whisper-small").exists()  # nothing written


def test_small_from_complete_parts_is_assembled_once(tmp_path: Path, monkeypatch):
    data = _model_bin(VARIABLES)
    parts = _split(data, tmp_path / "pkg", 77)
    for name in whisper_model._JSON_FILES:
        (tmp_path / name).write_text("{}")
    _fake_packages(monkeypatch, parts, tmp_path)
    target = ensure_whisper_small(tmp_path / "cache")
    assert (target / "model.bin").read_bytes() == data
    assert (target / ".assembled").read_text().startswith("sha256=")
    parts[0].unlink()  # assembled: the packages are not read again
    assert resolve_model("small", tmp_path / "cache") == str(target)


def test_small_without_its_packages_says_what_to_install(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(whisper_model, "_SMALL_PART_PACKAGES", ("cofi-absent-1", "cofi-absent-2"))
    with pytest.raises(ModelUnavailableError, match="'cofi-absent-1' is not installed"):
        ensure_whisper_small(tmp_path)
