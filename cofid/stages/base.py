"""What every per-file stage is: the FileStage protocol, and the registry the engine
dispatches through (keyed by domain Stage — the engine has no `if stage is ...`).

A stage is four small steps the engine runs in order:
  gate(env, f)                 pure: a write set that settles the file without a model
                               (the STT gate's ShortCall / UnsupportedLanguage), or None;
  load(f, inputs)              its inputs beyond the FileState (the LLM stages' transcript,
                               metadata, trades), through the StageInputs port;
  call(env, f, backends, ctx)  the backend request (the only I/O to a model);
  writes(f, result, ctx)       pure: the rows, the done flag and the call status of the
                               result — committed atomically by the writer — plus the
                               in-memory FileState update and the event's summary.

Write sets name tables and columns by their snake_case field names (cofid/store/tables.py
maps them to the seed's). Re-running a stage for a file replaces its rows (delete then
insert, in one transaction), so a result is never written twice whatever order crashes
and reaudits come in.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from cofid.backends.base import Backends
from cofid.domain.model import Stage
from cofid.domain.ops import WriteSet
from cofid.domain.pipeline import STAGES, FileState
from cofid.domain.questions import QuestionSet
from cofid.domain.verdict_fields import VerdictRules

Ctx = TypeVar("Ctx")
Result = TypeVar("Result")
# What a file event reports of a result: its "request" / "response" (and "moved_from").
Summary = dict[str, Any]


@dataclass(frozen=True)
class StageEnv:
    """What stages need from configuration."""

    work_dir: str
    min_duration_s: float
    allowed_languages: tuple[str, ...]
    templates: dict[str, str] | None
    # The trade verdict's knobs ([stages.verdicts]; cofid.domain.verdict_fields defaults).
    verdict_rules: VerdictRules = field(default_factory=VerdictRules)


class StageInputs(Protocol):
    """The port through which stages read what earlier stages stored (cofid/store/
    stage_inputs.py implements it; one instance per run, so batch-level facts are read
    once per run)."""

    async def read(self, f: FileState, wanted: Collection[str]) -> dict[str, Any]:
        """Per-file inputs, by name: "transcript", "call_metadata", "trades" (mapped by
        triaging), "extracted_trades" (LLM1's) — all read in one database round trip."""
        ...

    async def batch_triaged(self, batch_id: int) -> bool: ...

    def question_set(self, process_id: int, category_mapping_id: int) -> QuestionSet: ...


class FileStage(Protocol[Ctx, Result]):
    @property
    def stage(self) -> Stage: ...

    def gate(self, env: StageEnv, f: FileState) -> WriteSet | None: ...

    async def load(self, f: FileState, inputs: StageInputs) -> Ctx: ...

    async def call(self, env: StageEnv, f: FileState, backends: Backends, ctx: Ctx) -> Result: ...

    def writes(self, f: FileState, result: Result, ctx: Ctx) -> tuple[WriteSet, Summary]: ...


class NoGate:
    """Defaults for stages without a gate and without inputs beyond the FileState."""

    def gate(self, env: StageEnv, f: FileState) -> WriteSet | None:
        return None

    async def load(self, f: FileState, inputs: StageInputs) -> None:
        return None


REGISTRY: dict[Stage, FileStage[Any, Any]] = {}


def register(stage: FileStage[Any, Any]) -> None:
    if stage.stage in REGISTRY:
        raise AssertionError(f"two stage objects for {stage.stage}")
    REGISTRY[stage.stage] = stage


def stage_for(stage: Stage) -> FileStage[Any, Any]:
    try:
        return REGISTRY[stage]
    except KeyError:
        raise ValueError(f"{stage} is not a file stage") from None


# ---- helpers the stage modules share -----------------------------------------------------


def mark_done(ws: WriteSet, f: FileState, stage: Stage, **fd_values: Any) -> None:
    """Set the stage's done flag (the status table's field) and `fd_values` on the file."""
    flag = STAGES[stage].done_flag
    assert flag is not None
    ws.update("file_distribution", "id", f.fd_id, **{flag: 1}, **fd_values)


def set_call_status(ws: WriteSet, f: FileState, status: str, **values: Any) -> None:
    ws.update("call", "id", f.call_id, status=status, **values)


def summary_of(result: object) -> Summary:
    if result is None:
        return {}
    out: Summary = {}
    for key in ("request", "response"):
        v = getattr(result, key, None)
        if v:
            out[key] = v
    return out


def output_path(path: str) -> Path:
    """`path`, a stage's output file, with its directory made if it is not there yet."""
    parent = os.path.dirname(path)
    # One stat (~2 µs) for the common case: Path.mkdir(exist_ok=True) tries the mkdir and
    # handles the error (~10 µs), for each file at denoise and again at IVR.
    if not os.path.isdir(parent):
        os.makedirs(parent, exist_ok=True)
    return Path(path)
