"""Names and values shared by every layer: stages, statuses, languages.

The string values are the seed's and are stored in MySQL columns that other systems
read, so they never change.
"""

from __future__ import annotations

import enum


class Stage(enum.StrEnum):
    """Pipeline stages, in pipeline order (the seed's ten dashboard cards)."""

    FILE_DISTRIBUTION = "file_distribution"
    CALLMETADATA = "callmetadata"
    TRADEMETADATA = "trademetadata"
    DENOISE = "denoise"
    IVR = "ivr"
    LID = "lid"
    TRIAGING = "triaging"
    STT = "stt"
    LLM1 = "llm1"
    LLM2 = "llm2"


PIPELINE_ORDER: tuple[Stage, ...] = tuple(Stage)

# Stages that run once per file on a GPU (or a CPU engine), each with a done flag in
# file_distribution.
FILE_STAGES: tuple[Stage, ...] = (
    Stage.DENOISE,
    Stage.IVR,
    Stage.LID,
    Stage.STT,
    Stage.LLM1,
    Stage.LLM2,
)

# Stages an operator may re-run through Reaudit.
REAUDIT_STAGES: tuple[Stage, ...] = (Stage.LID, Stage.STT, Stage.LLM1, Stage.LLM2)


class StageStatus(enum.StrEnum):
    """batch_status.<stage>_status values."""

    PENDING = "Pending"
    IN_PROGRESS = "InProgress"
    COMPLETE = "Complete"


class CallStatus(enum.StrEnum):
    """call.status values."""

    PENDING = "Pending"
    SHORT_CALL = "ShortCall"
    UNSUPPORTED_LANGUAGE = "UnsupportedLanguage"
    TRANSCRIPT_DONE = "TranscriptDone"
    AUDIT_DONE = "AuditDone"
    COMPLETE = "Complete"
    # cofi's: the call's file failed a stage after its retries (fileDistribution.failedStage
    # and failureReason say which and why). Final until a reaudit of that stage; the seed
    # left such calls 'Pending', which its monitoring query reads as work still to do.
    FAILED = "Failed"


class BatchState(enum.StrEnum):
    """batch_status.status values, in the order a batch reaches them (the seed's status
    vocabulary: values stored in the column, not column names). The seed has no value for
    the two CSV steps (they set 0/1 flags only), so neither has one here."""

    PENDING = "Pending"
    DB_INSERT_DONE = "dbInsertDone"
    DENOISE_DONE = "denoiseDone"
    IVR_DONE = "ivrDone"
    LID_DONE = "lidDone"
    TRIAGING_DONE = "triagingDone"
    STT_DONE = "sttDone"
    LLM1_DONE = "llm1Done"
    LLM2_DONE = "llm2Done"
    COMPLETED = "Completed"


class Language(enum.StrEnum):
    """call.lang labels. language_id is the small integer beside each."""

    EN = "en"
    HI = "hi"
    HINGLISH = "hinglish"
    OTHER = "other"
    UNKNOWN = "unknown"


LANGUAGE_IDS: dict[Language, int] = {
    Language.UNKNOWN: 0,
    Language.EN: 1,
    Language.HI: 2,
    Language.HINGLISH: 3,
    Language.OTHER: 9,
}


class EventType(enum.StrEnum):
    """batch_execution_log.event_type values."""

    STAGE_START = "stage_start"
    STAGE_PROGRESS = "stage_progress"
    STAGE_COMPLETE = "stage_complete"
    FILE_START = "file_start"
    FILE_COMPLETE = "file_complete"
    ERROR = "error"
    INFO = "info"


class EventStatus(enum.StrEnum):
    """batch_execution_log.status values."""

    PENDING = "pending"
    PROCESSING = "processing"
    SUCCESS = "success"
    FAILED = "failed"
    # cofi's, for stage_complete only (cofid.domain.events.stage_outcome): some files or
    # rows failed, some did not.
    PARTIAL = "partial"


NO_TRADE_DATA_ANSWER = "No trade data found"

# batchStatus.status of a batch whose task was cancelled (cofi's, not the seed's: without
# it a cancelled batch read InProgress for ever). Not a step of BatchState's sequence: a
# resumed batch goes back to the status its stages give (cofid.service.cancel).
BATCH_CANCELLED = "Cancelled"
