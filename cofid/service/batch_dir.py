"""Reading a batch directory: the format, and every way it can be refused.

Batch directory format (also in the README):
  *.wav *.flac *.mp3 *.ogg   the calls; the file name is the call's audioName
  callMetadata.csv           optional; audioName, clientCode, agentId, callStartTime, callEndTime
  tradeMetadata.csv          optional; tradeId, clientCode, symbol, side, quantity, price, tradeTime
  batch.toml                 optional manifest: process_id, category_mapping_id (the audit
                             question set; default from [audit] in the configuration)

Everything that can be refused is checked here, before the first row is written (the
directory, the manifest, the CSV headers), so a fatal error changes nothing: a
BatchInputError (UnknownQuestionSet for a question set the configuration lacks). Each entry
passes the intake rules of :mod:`cofid.service.intake` (names, symlinks, secret files, file
kinds); messages name entries and positions, never the content of a file.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from cofid.domain import csv_ingest
from cofid.plans.batch import AUDIO_SUFFIXES, CALL_CSV, MANIFEST, TRADE_CSV, BatchInput
from cofid.service import intake
from cofid.service.errors import BatchInputError, UnknownQuestionSet
from cofid.store.column_limits import batch_limits

INPUT_FILES = (CALL_CSV, TRADE_CSV, MANIFEST)


def read_batch_dir(directory: Path, *, default_zone: str, process_id: int,
                   category_mapping_id: int, known_sets: set[tuple[int, int]],
                   secrets: frozenset[intake.Identity] = frozenset()) -> BatchInput:
    """`directory` (resolved) as a batch, its entries checked by the intake rules
    (cofid.service.intake): a refused input file (a CSV, batch.toml) refuses the batch,
    a refused audio file (or any entry with a bad name) is left out and reported."""
    d = directory
    problem = intake.name_problem(d.name)
    if problem is not None:
        raise BatchInputError(f"{intake.shown(str(d))}: directory {problem}")
    if not d.exists():
        raise BatchInputError(f"{d}: no such directory")
    if not d.is_dir():
        raise BatchInputError(f"{d}: not a directory")
    try:
        entries = sorted(d.iterdir())
    except OSError as e:
        raise BatchInputError(f"{d}: cannot read the directory ({e.strerror or e})") from None
    audio: list[Path] = []
    refused: list[tuple[str, str]] = []
    for p in entries:
        name = p.name
        if name.startswith("."):
            continue  # hidden: markers, staging, rsync temporaries
        is_input = name in INPUT_FILES
        is_audio = p.suffix.lower() in AUDIO_SUFFIXES
        bad_name = intake.name_problem(name)
        if bad_name is not None:
            refused.append((name, bad_name))
            continue
        if not is_input and not is_audio:
            continue
        problem = intake.file_problem(d, p)
        if problem is None and is_audio and intake.is_secret(p, secrets):
            problem = intake.secret_message(name)
        if problem is not None and is_input:
            raise BatchInputError(f"{d}: {problem}")
        if problem is not None:
            refused.append((name, problem))
        elif is_audio:
            audio.append(p)
    if not audio:
        also = (f"; {len(refused)} entr{'y' if len(refused) == 1 else 'ies'} refused, "
                f"first: {refused[0][1]}") if refused else ""
        raise BatchInputError(
            f"{d}: no audio files (expected {', '.join(AUDIO_SUFFIXES)}) — not a batch "
            f"directory{also}"
        )
    too_long = [p.name for p in audio if len(p.name) > 255]
    if too_long:
        raise BatchInputError(f"{d}: audio file name over 255 characters: "
                              f"{intake.shown(too_long[0], 80)}")
    manifest = _manifest(d, secrets)
    pid = manifest.get("process_id", process_id)
    cmid = manifest.get("category_mapping_id", category_mapping_id)
    if (pid, cmid) not in known_sets:
        raise UnknownQuestionSet(
            f"{d}: no audit question set for process_id={pid}, category_mapping_id={cmid} "
            f"(configured: {', '.join(f'{a}/{b}' for a, b in sorted(known_sets))})"
        )
    bi = BatchInput(d, audio, pid, cmid, manifest=manifest, refused=refused)
    names = {p.name for p in audio}
    limits = batch_limits()  # every CSV value must fit its column (csv_ingest rule 13)
    try:
        if (d / CALL_CSV).exists() or (d / CALL_CSV).is_symlink():
            bi.call_rows = csv_ingest.parse_call_metadata(
                _read(d, CALL_CSV, secrets), default_zone=default_zone, known_audio=names,
                limits=limits.call_metadata,
            )
        if (d / TRADE_CSV).exists() or (d / TRADE_CSV).is_symlink():
            bi.trade_rows = csv_ingest.parse_trade_metadata(
                _read(d, TRADE_CSV, secrets), default_zone=default_zone,
                limits=limits.trade_metadata,
            )
    except csv_ingest.CsvHeaderError as e:
        raise BatchInputError(f"{d}: {e}") from None
    return bi


def _read(d: Path, name: str, secrets: frozenset[intake.Identity]) -> bytes:
    """An input file's bytes, or the BatchInputError that says why it cannot be read."""
    try:
        return intake.read_input(d, d / name, secrets)
    except intake.InputRefused as e:
        raise BatchInputError(f"{d}: {e}") from None
    except OSError as e:
        raise BatchInputError(f"{d}: {name} cannot be read ({e.strerror or e})") from None


def _manifest(d: Path, secrets: frozenset[intake.Identity]) -> dict[str, Any]:
    """batch.toml, checked: only process_id and category_mapping_id, both integers.
    Messages name keys and types, never the file's values (rule: no file content)."""
    if not (d / MANIFEST).exists() and not (d / MANIFEST).is_symlink():
        return {}
    try:
        manifest = tomllib.loads(_read(d, MANIFEST, secrets).decode("utf-8"))
    except tomllib.TOMLDecodeError as e:  # tomllib's messages quote no document text
        raise BatchInputError(f"{d / MANIFEST}: not valid TOML: {e}") from None
    except UnicodeDecodeError as e:
        raise BatchInputError(f"{d / MANIFEST}: not UTF-8 text (at byte {e.start})") from None
    unknown = set(manifest) - {"process_id", "category_mapping_id"}
    if unknown:
        raise BatchInputError(
            f"{d / MANIFEST}: {len(unknown)} unknown key(s) (allowed: process_id, "
            f"category_mapping_id)"
        )
    for k in ("process_id", "category_mapping_id"):
        if k in manifest and (not isinstance(manifest[k], int) or isinstance(manifest[k], bool)):
            raise BatchInputError(f"{d / MANIFEST}: {k} must be an integer, got a "
                                  f"{type(manifest[k]).__name__}")
        limit = batch_limits().integers.get(k)
        problem = limit.problem(manifest[k]) if k in manifest and limit else None
        if problem is not None:
            raise BatchInputError(f"{d / MANIFEST}: {k} {problem}")
    return manifest
