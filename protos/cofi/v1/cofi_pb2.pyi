# ruff: noqa
# fmt: off
import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StartBatchRequest(_message.Message):
    __slots__ = ("directory", "process_id", "category_mapping_id")
    DIRECTORY_FIELD_NUMBER: _ClassVar[int]
    PROCESS_ID_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_MAPPING_ID_FIELD_NUMBER: _ClassVar[int]
    directory: str
    process_id: int
    category_mapping_id: int
    def __init__(self, directory: _Optional[str] = ..., process_id: _Optional[int] = ..., category_mapping_id: _Optional[int] = ...) -> None: ...

class TaskRef(_message.Message):
    __slots__ = ("task_id", "state", "batch_id")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    state: str
    batch_id: int
    def __init__(self, task_id: _Optional[str] = ..., state: _Optional[str] = ..., batch_id: _Optional[int] = ...) -> None: ...

class UploadRequest(_message.Message):
    __slots__ = ("header", "chunk")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    header: UploadHeader
    chunk: UploadChunk
    def __init__(self, header: _Optional[_Union[UploadHeader, _Mapping]] = ..., chunk: _Optional[_Union[UploadChunk, _Mapping]] = ...) -> None: ...

class UploadHeader(_message.Message):
    __slots__ = ("process_id", "category_mapping_id", "files", "replace", "idempotency_key")
    PROCESS_ID_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_MAPPING_ID_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    REPLACE_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    process_id: int
    category_mapping_id: int
    files: _containers.RepeatedCompositeFieldContainer[UploadFile]
    replace: bool
    idempotency_key: str
    def __init__(self, process_id: _Optional[int] = ..., category_mapping_id: _Optional[int] = ..., files: _Optional[_Iterable[_Union[UploadFile, _Mapping]]] = ..., replace: _Optional[bool] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class UploadFile(_message.Message):
    __slots__ = ("name", "size_bytes", "sha256")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    name: str
    size_bytes: int
    sha256: str
    def __init__(self, name: _Optional[str] = ..., size_bytes: _Optional[int] = ..., sha256: _Optional[str] = ...) -> None: ...

class UploadChunk(_message.Message):
    __slots__ = ("file_index", "data", "offset")
    FILE_INDEX_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    file_index: int
    data: bytes
    offset: int
    def __init__(self, file_index: _Optional[int] = ..., data: _Optional[bytes] = ..., offset: _Optional[int] = ...) -> None: ...

class UploadReply(_message.Message):
    __slots__ = ("status", "task_id", "batch_id", "stored_names")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    STORED_NAMES_FIELD_NUMBER: _ClassVar[int]
    status: str
    task_id: str
    batch_id: int
    stored_names: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, status: _Optional[str] = ..., task_id: _Optional[str] = ..., batch_id: _Optional[int] = ..., stored_names: _Optional[_Iterable[str]] = ...) -> None: ...

class ReauditRequest(_message.Message):
    __slots__ = ("audio_names", "stages")
    AUDIO_NAMES_FIELD_NUMBER: _ClassVar[int]
    STAGES_FIELD_NUMBER: _ClassVar[int]
    audio_names: _containers.RepeatedScalarFieldContainer[str]
    stages: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, audio_names: _Optional[_Iterable[str]] = ..., stages: _Optional[_Iterable[str]] = ...) -> None: ...

class ReauditReply(_message.Message):
    __slots__ = ("task_id", "unknown_audio_names", "matched_calls", "left_alone")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    UNKNOWN_AUDIO_NAMES_FIELD_NUMBER: _ClassVar[int]
    MATCHED_CALLS_FIELD_NUMBER: _ClassVar[int]
    LEFT_ALONE_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    unknown_audio_names: _containers.RepeatedScalarFieldContainer[str]
    matched_calls: int
    left_alone: _containers.RepeatedCompositeFieldContainer[LeftAloneCall]
    def __init__(self, task_id: _Optional[str] = ..., unknown_audio_names: _Optional[_Iterable[str]] = ..., matched_calls: _Optional[int] = ..., left_alone: _Optional[_Iterable[_Union[LeftAloneCall, _Mapping]]] = ...) -> None: ...

class GetTaskRequest(_message.Message):
    __slots__ = ("task_id",)
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    def __init__(self, task_id: _Optional[str] = ...) -> None: ...

class CancelTaskRequest(_message.Message):
    __slots__ = ("task_id",)
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    def __init__(self, task_id: _Optional[str] = ...) -> None: ...

class Task(_message.Message):
    __slots__ = ("task_id", "kind", "state", "batch_id", "created_at", "updated_at", "stages", "failures", "left_alone", "error", "request_json")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    STAGES_FIELD_NUMBER: _ClassVar[int]
    FAILURES_FIELD_NUMBER: _ClassVar[int]
    LEFT_ALONE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    REQUEST_JSON_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    kind: str
    state: str
    batch_id: int
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    stages: _containers.RepeatedCompositeFieldContainer[StageProgress]
    failures: _containers.RepeatedCompositeFieldContainer[FileFailure]
    left_alone: _containers.RepeatedCompositeFieldContainer[LeftAloneCall]
    error: str
    request_json: str
    def __init__(self, task_id: _Optional[str] = ..., kind: _Optional[str] = ..., state: _Optional[str] = ..., batch_id: _Optional[int] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., stages: _Optional[_Iterable[_Union[StageProgress, _Mapping]]] = ..., failures: _Optional[_Iterable[_Union[FileFailure, _Mapping]]] = ..., left_alone: _Optional[_Iterable[_Union[LeftAloneCall, _Mapping]]] = ..., error: _Optional[str] = ..., request_json: _Optional[str] = ...) -> None: ...

class StageProgress(_message.Message):
    __slots__ = ("stage", "status", "total", "done", "failed", "skipped")
    STAGE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    stage: str
    status: str
    total: int
    done: int
    failed: int
    skipped: int
    def __init__(self, stage: _Optional[str] = ..., status: _Optional[str] = ..., total: _Optional[int] = ..., done: _Optional[int] = ..., failed: _Optional[int] = ..., skipped: _Optional[int] = ...) -> None: ...

class LeftAloneCall(_message.Message):
    __slots__ = ("audio_name", "batch_id", "reason")
    AUDIO_NAME_FIELD_NUMBER: _ClassVar[int]
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    audio_name: str
    batch_id: int
    reason: str
    def __init__(self, audio_name: _Optional[str] = ..., batch_id: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class ListTasksRequest(_message.Message):
    __slots__ = ("states", "kinds", "page_size", "page_token")
    STATES_FIELD_NUMBER: _ClassVar[int]
    KINDS_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    states: _containers.RepeatedScalarFieldContainer[str]
    kinds: _containers.RepeatedScalarFieldContainer[str]
    page_size: int
    page_token: str
    def __init__(self, states: _Optional[_Iterable[str]] = ..., kinds: _Optional[_Iterable[str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListTasksReply(_message.Message):
    __slots__ = ("tasks", "next_page_token")
    TASKS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    tasks: _containers.RepeatedCompositeFieldContainer[Task]
    next_page_token: str
    def __init__(self, tasks: _Optional[_Iterable[_Union[Task, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ResumeTaskRequest(_message.Message):
    __slots__ = ("task_id",)
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    def __init__(self, task_id: _Optional[str] = ...) -> None: ...

class FileFailure(_message.Message):
    __slots__ = ("audio_name", "stage", "error")
    AUDIO_NAME_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    audio_name: str
    stage: str
    error: str
    def __init__(self, audio_name: _Optional[str] = ..., stage: _Optional[str] = ..., error: _Optional[str] = ...) -> None: ...

class ListBatchesRequest(_message.Message):
    __slots__ = ("date_from", "date_to", "page_size", "page_token")
    DATE_FROM_FIELD_NUMBER: _ClassVar[int]
    DATE_TO_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    date_from: str
    date_to: str
    page_size: int
    page_token: str
    def __init__(self, date_from: _Optional[str] = ..., date_to: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListBatchesReply(_message.Message):
    __slots__ = ("batches", "next_page_token")
    BATCHES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    batches: _containers.RepeatedCompositeFieldContainer[BatchSummary]
    next_page_token: str
    def __init__(self, batches: _Optional[_Iterable[_Union[BatchSummary, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class BatchSummary(_message.Message):
    __slots__ = ("batch_id", "batch_date", "batch_number", "status", "source", "total_files", "created_at", "completed_at", "verdict_counts")
    class VerdictCountsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    BATCH_DATE_FIELD_NUMBER: _ClassVar[int]
    BATCH_NUMBER_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FILES_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_AT_FIELD_NUMBER: _ClassVar[int]
    VERDICT_COUNTS_FIELD_NUMBER: _ClassVar[int]
    batch_id: int
    batch_date: str
    batch_number: int
    status: str
    source: str
    total_files: int
    created_at: _timestamp_pb2.Timestamp
    completed_at: _timestamp_pb2.Timestamp
    verdict_counts: _containers.ScalarMap[str, int]
    def __init__(self, batch_id: _Optional[int] = ..., batch_date: _Optional[str] = ..., batch_number: _Optional[int] = ..., status: _Optional[str] = ..., source: _Optional[str] = ..., total_files: _Optional[int] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., completed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., verdict_counts: _Optional[_Mapping[str, int]] = ...) -> None: ...

class GetBatchRequest(_message.Message):
    __slots__ = ("batch_id",)
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    batch_id: int
    def __init__(self, batch_id: _Optional[int] = ...) -> None: ...

class Batch(_message.Message):
    __slots__ = ("summary", "process_id", "category_mapping_id", "source_dir", "stages", "call_status_counts", "last_file_finished_at")
    class CallStatusCountsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    PROCESS_ID_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_MAPPING_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_DIR_FIELD_NUMBER: _ClassVar[int]
    STAGES_FIELD_NUMBER: _ClassVar[int]
    CALL_STATUS_COUNTS_FIELD_NUMBER: _ClassVar[int]
    LAST_FILE_FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    summary: BatchSummary
    process_id: int
    category_mapping_id: int
    source_dir: str
    stages: _containers.RepeatedCompositeFieldContainer[StageState]
    call_status_counts: _containers.ScalarMap[str, int]
    last_file_finished_at: _timestamp_pb2.Timestamp
    def __init__(self, summary: _Optional[_Union[BatchSummary, _Mapping]] = ..., process_id: _Optional[int] = ..., category_mapping_id: _Optional[int] = ..., source_dir: _Optional[str] = ..., stages: _Optional[_Iterable[_Union[StageState, _Mapping]]] = ..., call_status_counts: _Optional[_Mapping[str, int]] = ..., last_file_finished_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class StageState(_message.Message):
    __slots__ = ("stage", "status", "total", "done", "failed", "skipped", "files_per_minute", "disabled", "retries", "measured_files_per_minute")
    STAGE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    FILES_PER_MINUTE_FIELD_NUMBER: _ClassVar[int]
    DISABLED_FIELD_NUMBER: _ClassVar[int]
    RETRIES_FIELD_NUMBER: _ClassVar[int]
    MEASURED_FILES_PER_MINUTE_FIELD_NUMBER: _ClassVar[int]
    stage: str
    status: str
    total: int
    done: int
    failed: int
    skipped: int
    files_per_minute: float
    disabled: bool
    retries: int
    measured_files_per_minute: float
    def __init__(self, stage: _Optional[str] = ..., status: _Optional[str] = ..., total: _Optional[int] = ..., done: _Optional[int] = ..., failed: _Optional[int] = ..., skipped: _Optional[int] = ..., files_per_minute: _Optional[float] = ..., disabled: _Optional[bool] = ..., retries: _Optional[int] = ..., measured_files_per_minute: _Optional[float] = ...) -> None: ...

class GetCallRequest(_message.Message):
    __slots__ = ("audio_name", "batch_id")
    AUDIO_NAME_FIELD_NUMBER: _ClassVar[int]
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    audio_name: str
    batch_id: int
    def __init__(self, audio_name: _Optional[str] = ..., batch_id: _Optional[int] = ...) -> None: ...

class ListCallsRequest(_message.Message):
    __slots__ = ("batch_id", "page_size", "page_token", "statuses", "full")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    FULL_FIELD_NUMBER: _ClassVar[int]
    batch_id: int
    page_size: int
    page_token: str
    statuses: _containers.RepeatedScalarFieldContainer[str]
    full: bool
    def __init__(self, batch_id: _Optional[int] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., statuses: _Optional[_Iterable[str]] = ..., full: _Optional[bool] = ...) -> None: ...

class ListCallsReply(_message.Message):
    __slots__ = ("calls", "next_page_token")
    CALLS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    calls: _containers.RepeatedCompositeFieldContainer[Call]
    next_page_token: str
    def __init__(self, calls: _Optional[_Iterable[_Union[Call, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class Call(_message.Message):
    __slots__ = ("call_id", "batch_id", "audio_name", "status", "lang", "language_id", "audio_duration", "gpu_ip", "failed_stage", "failure_reason", "transcript", "extracted_trades", "mapped_trades", "audit_answers")
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    AUDIO_NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    LANG_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_ID_FIELD_NUMBER: _ClassVar[int]
    AUDIO_DURATION_FIELD_NUMBER: _ClassVar[int]
    GPU_IP_FIELD_NUMBER: _ClassVar[int]
    FAILED_STAGE_FIELD_NUMBER: _ClassVar[int]
    FAILURE_REASON_FIELD_NUMBER: _ClassVar[int]
    TRANSCRIPT_FIELD_NUMBER: _ClassVar[int]
    EXTRACTED_TRADES_FIELD_NUMBER: _ClassVar[int]
    MAPPED_TRADES_FIELD_NUMBER: _ClassVar[int]
    AUDIT_ANSWERS_FIELD_NUMBER: _ClassVar[int]
    call_id: int
    batch_id: int
    audio_name: str
    status: str
    lang: str
    language_id: int
    audio_duration: float
    gpu_ip: str
    failed_stage: str
    failure_reason: str
    transcript: _containers.RepeatedCompositeFieldContainer[TranscriptSegment]
    extracted_trades: _containers.RepeatedCompositeFieldContainer[ExtractedTrade]
    mapped_trades: _containers.RepeatedCompositeFieldContainer[MappedTrade]
    audit_answers: _containers.RepeatedCompositeFieldContainer[AuditAnswer]
    def __init__(self, call_id: _Optional[int] = ..., batch_id: _Optional[int] = ..., audio_name: _Optional[str] = ..., status: _Optional[str] = ..., lang: _Optional[str] = ..., language_id: _Optional[int] = ..., audio_duration: _Optional[float] = ..., gpu_ip: _Optional[str] = ..., failed_stage: _Optional[str] = ..., failure_reason: _Optional[str] = ..., transcript: _Optional[_Iterable[_Union[TranscriptSegment, _Mapping]]] = ..., extracted_trades: _Optional[_Iterable[_Union[ExtractedTrade, _Mapping]]] = ..., mapped_trades: _Optional[_Iterable[_Union[MappedTrade, _Mapping]]] = ..., audit_answers: _Optional[_Iterable[_Union[AuditAnswer, _Mapping]]] = ...) -> None: ...

class TranscriptSegment(_message.Message):
    __slots__ = ("index", "start", "end", "text", "speaker")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    SPEAKER_FIELD_NUMBER: _ClassVar[int]
    index: int
    start: float
    end: float
    text: str
    speaker: str
    def __init__(self, index: _Optional[int] = ..., start: _Optional[float] = ..., end: _Optional[float] = ..., text: _Optional[str] = ..., speaker: _Optional[str] = ...) -> None: ...

class ExtractedTrade(_message.Message):
    __slots__ = ("trade_index", "trade_id", "symbol", "side", "quantity", "price", "order_type", "evidence")
    TRADE_INDEX_FIELD_NUMBER: _ClassVar[int]
    TRADE_ID_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    ORDER_TYPE_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_FIELD_NUMBER: _ClassVar[int]
    trade_index: int
    trade_id: str
    symbol: str
    side: str
    quantity: str
    price: str
    order_type: str
    evidence: str
    def __init__(self, trade_index: _Optional[int] = ..., trade_id: _Optional[str] = ..., symbol: _Optional[str] = ..., side: _Optional[str] = ..., quantity: _Optional[str] = ..., price: _Optional[str] = ..., order_type: _Optional[str] = ..., evidence: _Optional[str] = ...) -> None: ...

class MappedTrade(_message.Message):
    __slots__ = ("trade_id", "symbol", "side", "quantity", "price", "trade_time")
    TRADE_ID_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    TRADE_TIME_FIELD_NUMBER: _ClassVar[int]
    trade_id: str
    symbol: str
    side: str
    quantity: str
    price: str
    trade_time: _timestamp_pb2.Timestamp
    def __init__(self, trade_id: _Optional[str] = ..., symbol: _Optional[str] = ..., side: _Optional[str] = ..., quantity: _Optional[str] = ..., price: _Optional[str] = ..., trade_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class AuditAnswer(_message.Message):
    __slots__ = ("question_id", "question", "answer", "evidence", "source")
    QUESTION_ID_FIELD_NUMBER: _ClassVar[int]
    QUESTION_FIELD_NUMBER: _ClassVar[int]
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    question_id: str
    question: str
    answer: str
    evidence: str
    source: str
    def __init__(self, question_id: _Optional[str] = ..., question: _Optional[str] = ..., answer: _Optional[str] = ..., evidence: _Optional[str] = ..., source: _Optional[str] = ...) -> None: ...

class WatchRequest(_message.Message):
    __slots__ = ("batch_id", "stages", "event_types", "from_event_id", "errors_only", "batched")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    STAGES_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPES_FIELD_NUMBER: _ClassVar[int]
    FROM_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    ERRORS_ONLY_FIELD_NUMBER: _ClassVar[int]
    BATCHED_FIELD_NUMBER: _ClassVar[int]
    batch_id: int
    stages: _containers.RepeatedScalarFieldContainer[str]
    event_types: _containers.RepeatedScalarFieldContainer[str]
    from_event_id: int
    errors_only: bool
    batched: bool
    def __init__(self, batch_id: _Optional[int] = ..., stages: _Optional[_Iterable[str]] = ..., event_types: _Optional[_Iterable[str]] = ..., from_event_id: _Optional[int] = ..., errors_only: _Optional[bool] = ..., batched: _Optional[bool] = ...) -> None: ...

class WatchMessage(_message.Message):
    __slots__ = ("event", "heartbeat", "notice", "events")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    NOTICE_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    event: Event
    heartbeat: Heartbeat
    notice: Notice
    events: EventBatch
    def __init__(self, event: _Optional[_Union[Event, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., notice: _Optional[_Union[Notice, _Mapping]] = ..., events: _Optional[_Union[EventBatch, _Mapping]] = ...) -> None: ...

class EventBatch(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[Event]
    def __init__(self, events: _Optional[_Iterable[_Union[Event, _Mapping]]] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ("last_event_id", "server_time")
    LAST_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    SERVER_TIME_FIELD_NUMBER: _ClassVar[int]
    last_event_id: int
    server_time: _timestamp_pb2.Timestamp
    def __init__(self, last_event_id: _Optional[int] = ..., server_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Notice(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("id", "batch_id", "timestamp", "stage", "event_type", "file_name", "gpu_ip", "payload", "response", "status", "error_message", "total_files", "processed_files", "metadata_json")
    ID_FIELD_NUMBER: _ClassVar[int]
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    FILE_NAME_FIELD_NUMBER: _ClassVar[int]
    GPU_IP_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FILES_FIELD_NUMBER: _ClassVar[int]
    PROCESSED_FILES_FIELD_NUMBER: _ClassVar[int]
    METADATA_JSON_FIELD_NUMBER: _ClassVar[int]
    id: int
    batch_id: int
    timestamp: _timestamp_pb2.Timestamp
    stage: str
    event_type: str
    file_name: str
    gpu_ip: str
    payload: str
    response: str
    status: str
    error_message: str
    total_files: int
    processed_files: int
    metadata_json: str
    def __init__(self, id: _Optional[int] = ..., batch_id: _Optional[int] = ..., timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., stage: _Optional[str] = ..., event_type: _Optional[str] = ..., file_name: _Optional[str] = ..., gpu_ip: _Optional[str] = ..., payload: _Optional[str] = ..., response: _Optional[str] = ..., status: _Optional[str] = ..., error_message: _Optional[str] = ..., total_files: _Optional[int] = ..., processed_files: _Optional[int] = ..., metadata_json: _Optional[str] = ...) -> None: ...

class ListGpusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListGpusReply(_message.Message):
    __slots__ = ("gpus",)
    GPUS_FIELD_NUMBER: _ClassVar[int]
    gpus: _containers.RepeatedCompositeFieldContainer[GpuState]
    def __init__(self, gpus: _Optional[_Iterable[_Union[GpuState, _Mapping]]] = ...) -> None: ...

class GpuState(_message.Message):
    __slots__ = ("name", "url", "healthy", "slots", "slots_in_use", "files_assigned", "files_done", "latency_ms_p50", "latency_ms_p95", "consecutive_failures", "requests_failed", "error_rate")
    NAME_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    HEALTHY_FIELD_NUMBER: _ClassVar[int]
    SLOTS_FIELD_NUMBER: _ClassVar[int]
    SLOTS_IN_USE_FIELD_NUMBER: _ClassVar[int]
    FILES_ASSIGNED_FIELD_NUMBER: _ClassVar[int]
    FILES_DONE_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_P50_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_P95_FIELD_NUMBER: _ClassVar[int]
    CONSECUTIVE_FAILURES_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FAILED_FIELD_NUMBER: _ClassVar[int]
    ERROR_RATE_FIELD_NUMBER: _ClassVar[int]
    name: str
    url: str
    healthy: bool
    slots: int
    slots_in_use: int
    files_assigned: int
    files_done: int
    latency_ms_p50: float
    latency_ms_p95: float
    consecutive_failures: int
    requests_failed: int
    error_rate: float
    def __init__(self, name: _Optional[str] = ..., url: _Optional[str] = ..., healthy: _Optional[bool] = ..., slots: _Optional[int] = ..., slots_in_use: _Optional[int] = ..., files_assigned: _Optional[int] = ..., files_done: _Optional[int] = ..., latency_ms_p50: _Optional[float] = ..., latency_ms_p95: _Optional[float] = ..., consecutive_failures: _Optional[int] = ..., requests_failed: _Optional[int] = ..., error_rate: _Optional[float] = ...) -> None: ...

class ListTradeVerdictsRequest(_message.Message):
    __slots__ = ("batch_id", "verdicts", "page_size", "page_token")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    VERDICTS_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    batch_id: int
    verdicts: _containers.RepeatedScalarFieldContainer[str]
    page_size: int
    page_token: str
    def __init__(self, batch_id: _Optional[int] = ..., verdicts: _Optional[_Iterable[str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListTradeVerdictsReply(_message.Message):
    __slots__ = ("verdicts", "next_page_token")
    VERDICTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    verdicts: _containers.RepeatedCompositeFieldContainer[TradeVerdict]
    next_page_token: str
    def __init__(self, verdicts: _Optional[_Iterable[_Union[TradeVerdict, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class TradeVerdict(_message.Message):
    __slots__ = ("batch_id", "trade_id", "audio_name", "call_id", "verdict", "reason", "decided_at", "fields", "evidence")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    TRADE_ID_FIELD_NUMBER: _ClassVar[int]
    AUDIO_NAME_FIELD_NUMBER: _ClassVar[int]
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DECIDED_AT_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_FIELD_NUMBER: _ClassVar[int]
    batch_id: int
    trade_id: str
    audio_name: str
    call_id: int
    verdict: str
    reason: str
    decided_at: _timestamp_pb2.Timestamp
    fields: _containers.RepeatedCompositeFieldContainer[VerdictField]
    evidence: _containers.RepeatedCompositeFieldContainer[EvidenceSegment]
    def __init__(self, batch_id: _Optional[int] = ..., trade_id: _Optional[str] = ..., audio_name: _Optional[str] = ..., call_id: _Optional[int] = ..., verdict: _Optional[str] = ..., reason: _Optional[str] = ..., decided_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., fields: _Optional[_Iterable[_Union[VerdictField, _Mapping]]] = ..., evidence: _Optional[_Iterable[_Union[EvidenceSegment, _Mapping]]] = ...) -> None: ...

class VerdictField(_message.Message):
    __slots__ = ("field", "booked", "heard", "agree", "note")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    BOOKED_FIELD_NUMBER: _ClassVar[int]
    HEARD_FIELD_NUMBER: _ClassVar[int]
    AGREE_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    field: str
    booked: str
    heard: str
    agree: bool
    note: str
    def __init__(self, field: _Optional[str] = ..., booked: _Optional[str] = ..., heard: _Optional[str] = ..., agree: _Optional[bool] = ..., note: _Optional[str] = ...) -> None: ...

class EvidenceSegment(_message.Message):
    __slots__ = ("start", "end", "text")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    start: float
    end: float
    text: str
    def __init__(self, start: _Optional[float] = ..., end: _Optional[float] = ..., text: _Optional[str] = ...) -> None: ...

class GetEvidenceRequest(_message.Message):
    __slots__ = ("trade_id", "batch_id")
    TRADE_ID_FIELD_NUMBER: _ClassVar[int]
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    trade_id: str
    batch_id: int
    def __init__(self, trade_id: _Optional[str] = ..., batch_id: _Optional[int] = ...) -> None: ...

class EvidenceChunk(_message.Message):
    __slots__ = ("header", "data")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    header: EvidenceHeader
    data: EvidenceData
    def __init__(self, header: _Optional[_Union[EvidenceHeader, _Mapping]] = ..., data: _Optional[_Union[EvidenceData, _Mapping]] = ...) -> None: ...

class EvidenceHeader(_message.Message):
    __slots__ = ("batch_id", "trade_id", "audio_name", "verdict", "files")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    TRADE_ID_FIELD_NUMBER: _ClassVar[int]
    AUDIO_NAME_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    batch_id: int
    trade_id: str
    audio_name: str
    verdict: str
    files: _containers.RepeatedCompositeFieldContainer[EvidenceFile]
    def __init__(self, batch_id: _Optional[int] = ..., trade_id: _Optional[str] = ..., audio_name: _Optional[str] = ..., verdict: _Optional[str] = ..., files: _Optional[_Iterable[_Union[EvidenceFile, _Mapping]]] = ...) -> None: ...

class EvidenceFile(_message.Message):
    __slots__ = ("name", "size_bytes", "sha256")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    name: str
    size_bytes: int
    sha256: str
    def __init__(self, name: _Optional[str] = ..., size_bytes: _Optional[int] = ..., sha256: _Optional[str] = ...) -> None: ...

class EvidenceData(_message.Message):
    __slots__ = ("file_index", "offset", "data")
    FILE_INDEX_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    file_index: int
    offset: int
    data: bytes
    def __init__(self, file_index: _Optional[int] = ..., offset: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...
