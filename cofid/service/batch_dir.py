"""Reading a batch directory: the format, and every way it can be refused.

Batch directory format (also in the README):
  *.wav *.flac *.mp3 *.ogg   the calls; the file name is the call's audioName
  callMetadata.csv           optional; audioName, clientCode, agentId, callStartTime, callEndTime
  tradeMetadata.csv          optional; tradeId, clientCode, symbol, side, quantity, price, tradeTime
  batch.toml                 optional manifest: process_id, category_mapping_id (the audit
                             question set; default from [audit] in the configuration)

Everything that can be refused is checked here, before the first row is written (the
directory, the manifest, the CSV headers), so a fatal error changes nothing: a
BatchInputError (UnknownQuestionSet for a question set the configuration lacks).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from cofid.domain import csv_ingest
from cofid.plans.batch import AUDIO_SUFFIXES, CALL_CSV, MANIFEST, TRADE_CSV, BatchInput
from cofid.service.errors import BatchInputError, UnknownQuestionSet


def read_batch_dir(directory: Path, *, default_zone: str, process_id: int,
                   category_mapping_id: int, known_sets: set[tuple[int, int]]) -> BatchInput:
    d = directory
    if not d.exists():
        raise BatchInputError(f"{d}: no such directory")
    if not d.is_dir():
        raise BatchInputError(f"{d}: not a directory")
    try:
        entries = sorted(p for p in d.iterdir() if p.is_file())
    except PermissionError as e:
        raise BatchInputError(f"{d}: cannot read the directory ({e.strerror})") from None
    audio = [p for p in entries if p.suffix.lower() in AUDIO_SUFFIXES and not p.name.startswith(".")]
    if not audio:
        raise BatchInputError(
            f"{d}: no audio files (expected {', '.join(AUDIO_SUFFIXES)}) — not a batch directory"
        )
    too_long = [p.name for p in audio if len(p.name) > 255]
    if too_long:
        raise BatchInputError(f"{d}: audio file name over 255 characters: {too_long[0][:80]}…")
    manifest = _manifest(d)
    pid = manifest.get("process_id", process_id)
    cmid = manifest.get("category_mapping_id", category_mapping_id)
    if (pid, cmid) not in known_sets:
        raise UnknownQuestionSet(
            f"{d}: no audit question set for process_id={pid}, category_mapping_id={cmid} "
            f"(configured: {', '.join(f'{a}/{b}' for a, b in sorted(known_sets))})"
        )
    bi = BatchInput(d, audio, pid, cmid, manifest=manifest)
    names = {p.name for p in audio}
    try:
        if (d / CALL_CSV).exists():
            bi.call_rows = csv_ingest.parse_call_metadata(
                (d / CALL_CSV).read_bytes(), default_zone=default_zone, known_audio=names
            )
        if (d / TRADE_CSV).exists():
            bi.trade_rows = csv_ingest.parse_trade_metadata(
                (d / TRADE_CSV).read_bytes(), default_zone=default_zone
            )
    except csv_ingest.CsvHeaderError as e:
        raise BatchInputError(f"{d}: {e}") from None
    return bi


def _manifest(d: Path) -> dict[str, Any]:
    """batch.toml, checked: only process_id and category_mapping_id, both integers."""
    if not (d / MANIFEST).exists():
        return {}
    try:
        manifest = tomllib.loads((d / MANIFEST).read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise BatchInputError(f"{d / MANIFEST}: not valid TOML: {e}") from None
    unknown = set(manifest) - {"process_id", "category_mapping_id"}
    if unknown:
        raise BatchInputError(
            f"{d / MANIFEST}: unknown key {sorted(unknown)[0]!r} (allowed: process_id, category_mapping_id)"
        )
    for k in ("process_id", "category_mapping_id"):
        if k in manifest and (not isinstance(manifest[k], int) or isinstance(manifest[k], bool)):
            raise BatchInputError(f"{d / MANIFEST}: {k} must be an integer, got {manifest[k]!r}")
    return manifest
