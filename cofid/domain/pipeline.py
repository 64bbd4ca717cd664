"""The per-file status machine and the batch status rules.

Rules (the seed's Steps 1–13, made per file so files can stream):

1. A file's stages run in pipeline order: denoise, ivr, lid, stt, llm1, llm2. A plan
   enables a subset (batch: per configuration; upload: lid, stt, llm1?, llm2?; reaudit:
   the chosen stages).
2. A stage runs for a file only when its done flag is unset and the file has not failed a
   stage (fileDistribution.failedStage). This is also the resume rule after a crash.
3. lid writes the language and duration onto the call.
4. stt first applies the gate: a call whose status is not 'Pending' is left alone; a call
   shorter than the minimum becomes 'ShortCall', one in a language not allowed becomes
   'UnsupportedLanguage' — both final, no transcript, sttDone stays 0 (the seed). Else the
   transcript is written and the call becomes 'TranscriptDone'.
5. llm1 runs on calls in 'TranscriptDone' and moves them to 'AuditDone'.
6. llm2 runs on calls in 'AuditDone' and moves them to 'Complete'. When the plan has no
   llm1 it also takes calls in 'TranscriptDone' (a batch plan with llm1 off; a reaudit of
   {stt, llm2}, where the seed's rule would have left llm2 with nothing to do).
7. A failure after retries records failedStage; the file stops there, the batch goes on.
8. A batch stage is 'InProgress' once a file entered it and 'Complete' once the last file
   left it. batchStatus.status is the '<stage>Done' of the last stage, in pipeline order,
   such that it and every enabled stage before it are complete; 'Completed' when all are.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cofid.domain.model import BatchState, CallStatus, Stage, StageStatus

FLAG_COLUMN: dict[Stage, str] = {
    Stage.DENOISE: "denoiseDone",
    Stage.IVR: "ivrDone",
    Stage.LID: "lidDone",
    Stage.STT: "sttDone",
    Stage.LLM1: "llm1Done",
    Stage.LLM2: "llm2Done",
}

STATUS_COLUMN: dict[Stage, str] = {
    Stage.FILE_DISTRIBUTION: "dbInsertionStatus",
    Stage.DENOISE: "denoiseStatus",
    Stage.IVR: "ivrStatus",
    Stage.LID: "lidStatus",
    Stage.TRIAGING: "triagingStatus",
    Stage.STT: "sttStatus",
    Stage.LLM1: "llm1Status",
    Stage.LLM2: "llm2Status",
}

# callmetadata / trademetadata are 0/1 flags in batchStatus, not Pending/InProgress/Complete.
FLAG_STATUS_COLUMN: dict[Stage, str] = {
    Stage.CALLMETADATA: "callmetadataStatus",
    Stage.TRADEMETADATA: "trademetadataStatus",
}

DONE_STATE: dict[Stage, BatchState] = {
    Stage.FILE_DISTRIBUTION: BatchState.DB_INSERT_DONE,
    Stage.CALLMETADATA: BatchState.CALLMETADATA_DONE,
    Stage.TRADEMETADATA: BatchState.TRADEMETADATA_DONE,
    Stage.DENOISE: BatchState.DENOISE_DONE,
    Stage.IVR: BatchState.IVR_DONE,
    Stage.LID: BatchState.LID_DONE,
    Stage.TRIAGING: BatchState.TRIAGING_DONE,
    Stage.STT: BatchState.STT_DONE,
    Stage.LLM1: BatchState.LLM1_DONE,
    Stage.LLM2: BatchState.LLM2_DONE,
}


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
    # What earlier stages of this run produced (transcript, extracted trades, metadata),
    # so later stages need not read it back; empty after a restart (then they read it).
    carried: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def done(self, stage: Stage) -> bool:
        return bool(getattr(self, f"{stage.value}_done"))

    def mark_done(self, stage: Stage) -> None:
        setattr(self, f"{stage.value}_done", True)


def needs_stage(f: FileState, stage: Stage, stages: tuple[Stage, ...]) -> bool:
    """Rules 2, 4–6: whether `stage` still has work for file `f` in a plan running `stages`."""
    if stage not in FLAG_COLUMN:
        raise ValueError(f"{stage} is not a file stage")
    if f.failed_stage is not None or f.done(stage):
        return False
    if stage in (Stage.DENOISE, Stage.IVR, Stage.LID):
        return True
    if stage is Stage.STT:
        return f.call_status == CallStatus.PENDING
    if stage is Stage.LLM1:
        return f.call_status == CallStatus.TRANSCRIPT_DONE
    return f.call_status in llm2_input_statuses(stages)


def llm2_input_statuses(stages: Iterable[Stage]) -> tuple[CallStatus, ...]:
    if Stage.LLM1 in tuple(stages):
        return (CallStatus.AUDIT_DONE,)
    return (CallStatus.AUDIT_DONE, CallStatus.TRANSCRIPT_DONE)


def stt_gate(
    duration_s: float, lang: str, *, min_duration_s: float, allowed_languages: Iterable[str]
) -> CallStatus | None:
    """Rule 4: the final status of a call STT must not transcribe, or None to transcribe."""
    if duration_s < min_duration_s:
        return CallStatus.SHORT_CALL
    if lang not in tuple(allowed_languages):
        return CallStatus.UNSUPPORTED_LANGUAGE
    return None


def overall_status(statuses: Mapping[Stage, str | int], enabled: Iterable[Stage]) -> BatchState:
    """Rule 8. `statuses` holds the batchStatus column values per stage (flags as 0/1)."""
    enabled_set = set(enabled)
    last = BatchState.PENDING
    all_done = True
    for stage in Stage:
        if stage not in enabled_set:
            continue
        value = statuses.get(stage)
        complete = value == StageStatus.COMPLETE or (
            stage in FLAG_STATUS_COLUMN and value in (1, True)
        )
        if not complete:
            all_done = False
            break
        last = DONE_STATE[stage]
    return BatchState.COMPLETED if all_done and enabled_set else last


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
