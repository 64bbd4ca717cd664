"""Shared fixtures for the CPU engine tests: the demo batch and the Whisper base model."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cofid.backends.cpu.whisper_model import ensure_whisper_base
from cofid.testing.sample_batch import make_sample_batch

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def sample_batch(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """The demo batch, built once per session: (batch directory, manifest)."""
    directory = tmp_path_factory.mktemp("sample") / "batch"
    return directory, make_sample_batch(directory)


@pytest.fixture(scope="session")
def whisper_base_dir() -> Path:
    """The packaged Whisper base model, assembled once into the model cache."""
    cache = Path(os.environ.get("COFI_MODEL_CACHE") or REPO_ROOT / ".cache" / "models")
    return ensure_whisper_base(cache)
