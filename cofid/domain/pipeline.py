"""The per-file status machine and the batch status rules: ONE table, read by everything.

Rule 0: everything that decides what a stage picks up, what it leaves behind and what a
reaudit resets lives in STAGES below (one frozen row per stage); the functions here only
read it. Names of tables and columns are snake_case field names (cofid/store/tables.py
maps them to the seed's).

Rules (the seed's Steps 1–13, made per file so files can stream):

1. A file's stages run in pipeline order: denoise, ivr, lid, stt, llm1, llm2. A plan
   enables a subset (batch: per configuration; upload: lid, stt, llm1?, llm2?; reaudit:
   the chosen stages).
2. A stage runs for a file only when its done flag (StageRow.done_flag, a field of
   file_distribution) is unset and the file has not failed a stage (failed_stage). This is
   also the resume rule after a crash.
3. lid writes the language and duration onto the call.
4. stt first applies the gate: a call whose status is not 'Pending' is left alone; a call
   shorter than the minimum becomes 'ShortCall', one in a language not allowed becomes
   'UnsupportedLanguage' — both final, no transcript, stt_done stays 0 (the seed). Else the
   transcript is written and the call becomes 'TranscriptDone'.
5. llm1 runs on calls in 'TranscriptDone' and moves them to 'AuditDone'.
6. llm2 runs on calls in 'AuditDone' and moves them to 'Complete'. When the plan has no
   llm1 it also takes calls in 'TranscriptDone' (a batch plan with llm1 off; a reaudit of
   {stt, llm2}, where the seed's rule would have left llm2 with nothing to do).
7. A failure after retries records failed_stage; the file stops there, the batch goes on.
8. A batch stage is 'InProgress' once a file entered it and 'Complete' once the last file
   left it (StageRow.batch_status, a field of batch_status; callmetadata / trademetadata
   are 0/1 flags there, StageRow.batch_flag). batch_status.status walks the seed's values
   in the seed's order (status_walk): each enabled stage's done state (StageRow.done_state;
   the CSV steps have none, as in the seed) once it and every enabled stage before it are
   complete, each value written once and in order even when several fall due at once
   (triaging completes before lid in a streaming run: 'lidDone', then 'triagingDone');
   'llm2Done' (the last stage's value) before 'Completed', which only the end of the run
   writes.
9. Reaudit (domain/reaudit.py): a re-run stage's done flag is reset to 0, its rows
   (StageRow.reaudit_deletes) are deleted first, and call.status is reset to the
   StageRow.reaudit_status of the earliest chosen stage — the status that stage picks its
   calls by (rule 4–6). Only stages with a reaudit_status may be re-run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cofid.domain.model import BatchState, CallStatus, Stage, StageStatus


@dataclass(frozen=True)
class StageRow:
    """One stage's line of the status table (rules 2–9)."""

    stage: Stage
    batch_status: str  # field of batch_status holding the stage's status (rule 8)
    done_state: BatchState | None  # batch_status.status once this stage is complete (rule 8)
    batch_flag: bool = False  # batch_status holds 0/1 instead of Pending/InProgress/Complete
    done_flag: str | None = None  # field of file_distribution; None: not a file stage
    # call.status values the stage picks its calls by; None: any (rules 4–6).
    input_statuses: tuple[CallStatus, ...] | None = None
    output_status: CallStatus | None = None  # call.status its result sets (rules 4–6)
    reaudit_status: CallStatus | None = None  # call.status reset when re-run first (rule 9)
    reaudit_deletes: str | None = None  # table (field name) whose rows a re-run replaces


_S, _C, _B = Stage, CallStatus, BatchState

STAGES: dict[Stage, StageRow] = {
    _S.FILE_DISTRIBUTION: StageRow(_S.FILE_DISTRIBUTION, "db_insertion_status", _B.DB_INSERT_DONE),
    _S.CALLMETADATA: StageRow(_S.CALLMETADATA, "callmetadata_status", None, batch_flag=True),
    _S.TRADEMETADATA: StageRow(_S.TRADEMETADATA, "trademetadata_status", None, batch_flag=True),
    _S.DENOISE: StageRow(_S.DENOISE, "denoise_status", _B.DENOISE_DONE, done_flag="denoise_done"),
    _S.IVR: StageRow(_S.IVR, "ivr_status", _B.IVR_DONE, done_flag="ivr_done"),
    _S.LID: StageRow(_S.LID, "lid_status", _B.LID_DONE, done_flag="lid_done",
                     reaudit_status=_C.PENDING),
    _S.TRIAGING: StageRow(_S.TRIAGING, "triaging_status", _B.TRIAGING_DONE),
    _S.STT: StageRow(_S.STT, "stt_status", _B.STT_DONE, done_flag="stt_done",
                     input_statuses=(_C.PENDING,), output_status=_C.TRANSCRIPT_DONE,
                     reaudit_status=_C.PENDING, reaudit_deletes="transcript"),
    _S.LLM1: StageRow(_S.LLM1, "llm1_status", _B.LLM1_DONE, done_flag="llm1_done",
                      input_statuses=(_C.TRANSCRIPT_DONE,), output_status=_C.AUDIT_DONE,
                      reaudit_status=_C.TRANSCRIPT_DONE, reaudit_deletes="call_conversation"),
    # Rule 6: TRANSCRIPT_DONE too, but only in a plan without llm1 (llm2_input_statuses).
    _S.LLM2: StageRow(_S.LLM2, "llm2_status", _B.LLM2_DONE, done_flag="llm2_done",
                      input_statuses=(_C.AUDIT_DONE,), output_status=_C.COMPLETE,
                      reaudit_status=_C.AUDIT_DONE, reaudit_deletes="audit_answer"),
}
assert tuple(STAGES) == tuple(Stage), "the table lists every stage in pipeline order"

# Views of the table, by field name.
DONE_FLAG_FIELD: dict[Stage, str] = {s: r.done_flag for s, r in STAGES.items() if r.done_flag}
STATUS_FIELD: dict[Stage, str] = {s: r.batch_status for s, r in STAGES.items() if not r.batch_flag}
FLAG_STATUS_FIELD: dict[Stage, str] = {s: r.batch_status for s, r in STAGES.items() if r.batch_flag}
DONE_STATE: dict[Stage, BatchState] = {s: r.done_state for s, r in STAGES.items() if r.done_state}
# The seed's batch_status.status values in the order a batch reaches them.
STATUS_ORDER: tuple[BatchState, ...] = tuple(BatchState)


@dataclass
class FileState:
    """What the pipeline knows of one file of a plan; mutated as its stages finish."""

    fd_id: int
    call_id: int
    batch_id: int
    audio_name: str
    path: str
    gpu: str | None = None
    denoise_done: bool = False
    ivr_done: bool = False
    lid_done: bool = False
    stt_done: bool = False
    llm1_done: bool = False
    llm2_done: bool = False
    call_status: str = CallStatus.PENDING
    lang: str = "unknown"
    duration_s: float = 0.0
    failed_stage: str | None = None
    ivr_offset_s: float | None = None
    process_id: int = 1
    category_mapping_id: int = 1
    # Why the model's last reply at the current stage was refused, told to the model on
    # the retry (retry_note.with_retry_note); None once the stage is over.
    model_refusal: str | None = field(default=None, repr=False, compare=False)
    # What earlier stages of this run produced (transcript, extracted trades, metadata),
    # so later stages need not read it back; empty after a restart (then they read it).
    carried: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    # FileState's done attributes carry the table's done-flag field names (rule 2).
    def done(self, stage: Stage) -> bool:
        return bool(getattr(self, _done_flag(stage)))

    def mark_done(self, stage: Stage) -> None:
        setattr(self, _done_flag(stage), True)


def _done_flag(stage: Stage) -> str:
    flag = STAGES[stage].done_flag
    if flag is None:
        raise ValueError(f"{stage} is not a file stage")
    return flag


def needs_stage(f: FileState, stage: Stage, stages: tuple[Stage, ...]) -> bool:
    """Rules 2, 4–6: whether `stage` still has work for file `f` in a plan running `stages`."""
    row = STAGES[stage]
    if row.done_flag is None:
        raise ValueError(f"{stage} is not a file stage")
    if f.failed_stage is not None or f.done(stage):
        return False
    if row.input_statuses is None:
        return True
    if stage is Stage.LLM2:
        return f.call_status in llm2_input_statuses(stages)
    return f.call_status in row.input_statuses


def llm2_input_statuses(stages: Iterable[Stage]) -> tuple[CallStatus, ...]:
    """Rule 6: llm2 takes llm1's output status, and llm1's input too when llm1 is off."""
    own = STAGES[Stage.LLM2].input_statuses or ()
    if Stage.LLM1 in tuple(stages):
        return own
    return own + (STAGES[Stage.LLM1].input_statuses or ())


def stt_gate(
    duration_s: float, lang: str, *, min_duration_s: float, allowed_languages: Iterable[str]
) -> CallStatus | None:
    """Rule 4: the final status of a call STT must not transcribe, or None to transcribe."""
    if duration_s < min_duration_s:
        return CallStatus.SHORT_CALL
    if lang not in tuple(allowed_languages):
        return CallStatus.UNSUPPORTED_LANGUAGE
    return None


def _complete(stage: Stage, value: str | int | None) -> bool:
    return value == StageStatus.COMPLETE or (STAGES[stage].batch_flag and value in (1, True))


def due_statuses(statuses: Mapping[Stage, str | int], enabled: Iterable[Stage]) -> list[BatchState]:
    """Rule 8: every status value due, in order: the done state of each enabled stage that
    is complete with every enabled stage before it, then 'Completed' when all are."""
    enabled_set = set(enabled)
    due: list[BatchState] = []
    for stage in Stage:
        if stage not in enabled_set:
            continue
        if not _complete(stage, statuses.get(stage)):
            return due
        state = STAGES[stage].done_state
        if state is not None:
            due.append(state)
    return due + [BatchState.COMPLETED] if enabled_set else due


def overall_status(statuses: Mapping[Stage, str | int], enabled: Iterable[Stage]) -> BatchState:
    """Rule 8: the status value the walk ends at (Pending when nothing is due)."""
    due = due_statuses(statuses, enabled)
    return due[-1] if due else BatchState.PENDING


def status_walk(current: str, statuses: Mapping[Stage, str | int], enabled: Iterable[Stage],
                *, to_completed: bool) -> list[BatchState]:
    """Rule 8: the values batch_status.status takes next, in order, from `current` (each
    one its own write). 'Completed' only with `to_completed` (the end of the run)."""
    due = due_statuses(statuses, enabled)
    if not to_completed:
        due = [s for s in due if s is not BatchState.COMPLETED]
    try:
        at = STATUS_ORDER.index(BatchState(current))
    except ValueError:  # a value the seed does not have (an older cofid): start over
        at = 0
    return [s for s in due if STATUS_ORDER.index(s) > at]


def audio_for_stage(f: FileState, stage: Stage, work_dir: str) -> str:
    """The audio a stage reads: the IVR-trimmed file (when IVR trimmed something), else the
    denoised one, else the original."""
    if stage in (Stage.LID, Stage.STT) or stage is Stage.IVR:
        if stage is not Stage.IVR and f.ivr_done and (f.ivr_offset_s or 0.0) > 0.0:
            return derived_audio_path(work_dir, f, Stage.IVR)
        if f.denoise_done:
            return derived_audio_path(work_dir, f, Stage.DENOISE)
    return f.path


def derived_audio_path(work_dir: str, f: FileState, stage: Stage) -> str:
    # FLAC: lossless at about half the size of WAV, and every backend decodes it.
    return f"{work_dir}/{f.batch_id}/{f.fd_id}.{stage.value}.flac"
