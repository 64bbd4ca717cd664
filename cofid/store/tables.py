"""The schema: the seed's twelve tables plus what the seed implies without showing.

This module is the single source of truth for table and column names (the seed's names
are a contract with the systems that read these tables). The MySQL migrations in
sql/migrations/ must add up to it (tests/store/test_upgrade_path.py compares them on
MariaDB); `cofid db ddl` prints its DDL.

Unique keys make re-runs idempotent: one fileDistribution / call row per batch+file, one
transcript row per call+segment, one auditAnswer row per call+question, one
tradeAudioMapping row per batch+trade. Indexes serve the pipelines' queries and the seed's
five monitoring queries.
"""

from __future__ import annotations

import sqlalchemy as sa

from cofid.store.column_types import Flag, Millis, Money, Seconds, utc_timestamp
from cofid.store.field_map import FieldMap, field_name, to_fields  # noqa: F401 (t.field_name, t.to_fields)

# The tables of version 1 are sql/migrations/0001_initial.sql (history: never edited); a
# table added later says so in its info["schema_version"] and lands in that version's
# migration; a change to an existing table is a new migration of ALTER TABLE statements
# (3: UTC server defaults, batchExecutionLog.id AUTO_INCREMENT, status 'partial';
# 4: recordingDigest, lidStatus.detectedLanguage).
# SQLite follows these definitions directly (cofid/store/sqlite_upgrade.py).
SCHEMA_VERSION = 4

metadata = sa.MetaData()

STAGE_STATUS = ("Pending", "InProgress", "Complete")


def _stage_status(name: str) -> sa.Column:
    return sa.Column(name, sa.String(16), nullable=False, server_default="Pending")


def _flag(name: str) -> sa.Column:
    return sa.Column(name, Flag, nullable=False, server_default="0")


batch_status = sa.Table(
    "batchStatus",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("batchDate", sa.Date, nullable=False),
    sa.Column("batchNumber", sa.Integer, nullable=False),
    sa.Column("status", sa.String(32), nullable=False, server_default="Pending"),
    _stage_status("dbInsertionStatus"),
    _flag("callmetadataStatus"),
    _flag("trademetadataStatus"),
    _stage_status("denoiseStatus"),
    _stage_status("ivrStatus"),
    _stage_status("lidStatus"),
    _stage_status("triagingStatus"),
    _stage_status("sttStatus"),
    _stage_status("llm1Status"),
    _stage_status("llm2Status"),
    sa.Column("totalFiles", sa.Integer, nullable=False, server_default="0"),
    # cofi's additions: where the batch came from and which question set it audits with.
    sa.Column("source", sa.String(16), nullable=False, server_default="batch"),
    sa.Column("sourceDir", sa.String(1024), nullable=True),
    # sha256 of sourceDir: a directory becomes exactly one batch (MySQL cannot put a
    # unique index on a 1024-character utf8mb4 column).
    sa.Column("sourceKey", sa.String(64), nullable=True),
    sa.Column("processId", sa.Integer, nullable=False, server_default="1"),
    sa.Column("categoryMappingId", sa.Integer, nullable=False, server_default="1"),
    # The enabled optional stages, as JSON, frozen at creation so a resume runs the same plan.
    sa.Column("pipeline", sa.JSON, nullable=True),
    utc_timestamp("createdAt"),
    sa.Column("completedAt", Millis, nullable=True),
    sa.UniqueConstraint("batchDate", "batchNumber", name="uq_batch_date_number"),
    sa.UniqueConstraint("sourceKey", name="uq_batch_source"),
    sa.Index("ix_batch_status", "status"),
)

file_distribution = sa.Table(
    "fileDistribution",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("batchId", sa.Integer, sa.ForeignKey("batchStatus.id"), nullable=False),
    sa.Column("file", sa.String(255), nullable=False),
    sa.Column("gpuIp", sa.String(50), nullable=True),
    _flag("denoiseDone"),
    _flag("ivrDone"),
    _flag("lidDone"),
    _flag("sttDone"),
    _flag("llm1Done"),
    _flag("llm2Done"),
    # cofi's additions: the file's path, the IVR trim offset, and a failure the resume
    # logic respects (a file failed for a stage is not retried by a restart, only by a
    # reaudit of that stage).
    sa.Column("filePath", sa.String(1024), nullable=False, server_default=""),
    sa.Column("ivrTrimOffset", sa.Float, nullable=True),
    sa.Column("failedStage", sa.String(32), nullable=True),
    sa.Column("failureReason", sa.Text, nullable=True),
    utc_timestamp("updatedAt", updated=True),
    sa.UniqueConstraint("batchId", "file", name="uq_fd_batch_file"),
)

call = sa.Table(
    "call",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("batchId", sa.Integer, sa.ForeignKey("batchStatus.id"), nullable=False),
    sa.Column("audioName", sa.String(255), nullable=False),
    sa.Column("status", sa.String(32), nullable=False, server_default="Pending"),
    sa.Column("lang", sa.String(16), nullable=False, server_default="unknown"),
    sa.Column("languageId", sa.Integer, nullable=False, server_default="0"),
    sa.Column("audioDuration", sa.Float, nullable=False, server_default="0"),
    sa.Column("processId", sa.Integer, nullable=False, server_default="1"),
    sa.Column("categoryMappingId", sa.Integer, nullable=False, server_default="1"),
    utc_timestamp("createdAt"),
    utc_timestamp("updatedAt", updated=True),
    sa.UniqueConstraint("batchId", "audioName", name="uq_call_batch_audio"),
    sa.Index("ix_call_audio", "audioName"),
    sa.Index("ix_call_batch_status", "batchId", "status"),
)

call_metadata = sa.Table(
    "callMetadata",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("batchId", sa.Integer, sa.ForeignKey("batchStatus.id"), nullable=False),
    sa.Column("audioName", sa.String(255), nullable=False),
    sa.Column("clientCode", sa.String(64), nullable=False),
    sa.Column("agentId", sa.String(64), nullable=False),
    sa.Column("callStartTime", Seconds, nullable=False),
    sa.Column("callEndTime", Seconds, nullable=True),
    sa.Column("extra", sa.JSON, nullable=True),
    sa.UniqueConstraint("batchId", "audioName", name="uq_cm_batch_audio"),
    sa.Index("ix_cm_client", "batchId", "clientCode"),
)

trade_metadata = sa.Table(
    "tradeMetadata",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("batchId", sa.Integer, sa.ForeignKey("batchStatus.id"), nullable=False),
    sa.Column("tradeId", sa.String(64), nullable=False),
    sa.Column("clientCode", sa.String(64), nullable=False),
    sa.Column("symbol", sa.String(64), nullable=False),
    sa.Column("side", sa.String(8), nullable=False),
    sa.Column("quantity", Money, nullable=False),
    sa.Column("price", Money, nullable=False),
    sa.Column("tradeTime", Seconds, nullable=False),
    # Filled by triaging: the call the trade was mapped to.
    sa.Column("audioName", sa.String(255), nullable=True),
    sa.Column("extra", sa.JSON, nullable=True),
    sa.UniqueConstraint("batchId", "tradeId", name="uq_tm_batch_trade"),
    sa.Index("ix_tm_audio", "batchId", "audioName"),
)

trade_audio_mapping = sa.Table(
    "tradeAudioMapping",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("batchId", sa.Integer, sa.ForeignKey("batchStatus.id"), nullable=False),
    sa.Column("tradeId", sa.String(64), nullable=False),
    sa.Column("audioName", sa.String(255), nullable=False),
    sa.Column("callId", sa.Integer, sa.ForeignKey("call.id"), nullable=True),
    sa.Column("distanceSeconds", sa.Float, nullable=False, server_default="0"),
    sa.UniqueConstraint("batchId", "tradeId", name="uq_tam_batch_trade"),
    sa.Index("ix_tam_call", "callId"),
)

lid_status = sa.Table(
    "lidStatus",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("batchId", sa.Integer, sa.ForeignKey("batchStatus.id"), nullable=False),
    sa.Column("callId", sa.Integer, sa.ForeignKey("call.id"), nullable=False),
    sa.Column("audioName", sa.String(255), nullable=False),
    sa.Column("language", sa.String(16), nullable=False),
    sa.Column("confidence", sa.Float, nullable=True),
    sa.Column("audioDuration", sa.Float, nullable=False),
    utc_timestamp("createdAt"),
    # Version 4 (last, where ADD COLUMN puts it): the detector's own code ("fr" where
    # `language` is 'other'), if a short code (cofid.domain.language.detected_code).
    sa.Column("detectedLanguage", sa.String(16), nullable=True),
    # One row per identification: a reaudit of lid adds a row, so the history stays.
    sa.Index("ix_lid_call", "callId"),
)

transcript = sa.Table(
    "transcript",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("callId", sa.Integer, sa.ForeignKey("call.id"), nullable=False),
    sa.Column("segmentIndex", sa.Integer, nullable=False),
    sa.Column("startTime", sa.Float, nullable=False),
    sa.Column("endTime", sa.Float, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("speaker", sa.String(32), nullable=True),
    sa.Column("avgLogprob", sa.Float, nullable=True),
    sa.Column("noSpeechProb", sa.Float, nullable=True),
    sa.Column("language", sa.String(16), nullable=True),
    sa.UniqueConstraint("callId", "segmentIndex", name="uq_transcript_call_segment"),
)

call_conversation = sa.Table(
    "callConversation",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("callId", sa.Integer, sa.ForeignKey("call.id"), nullable=False),
    sa.Column("tradeIndex", sa.Integer, nullable=False),
    sa.Column("tradeId", sa.String(64), nullable=True),
    sa.Column("symbol", sa.String(64), nullable=True),
    sa.Column("side", sa.String(8), nullable=True),
    sa.Column("quantity", Money, nullable=True),
    sa.Column("price", Money, nullable=True),
    sa.Column("orderType", sa.String(16), nullable=True),
    sa.Column("evidence", sa.Text, nullable=True),
    utc_timestamp("createdAt"),
    sa.UniqueConstraint("callId", "tradeIndex", name="uq_conv_call_trade"),
)

audit_question = sa.Table(
    "auditQuestion",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("processId", sa.Integer, nullable=False),
    sa.Column("categoryMappingId", sa.Integer, nullable=False),
    sa.Column("questionOrder", sa.Integer, nullable=False),
    sa.Column("questionId", sa.String(64), nullable=False),
    sa.Column("question", sa.Text, nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.UniqueConstraint("processId", "categoryMappingId", "questionId", name="uq_aq_set_question"),
)

audit_answer = sa.Table(
    "auditAnswer",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("callId", sa.Integer, sa.ForeignKey("call.id"), nullable=False),
    sa.Column("questionId", sa.String(64), nullable=False),
    sa.Column("questionOrder", sa.Integer, nullable=False),
    sa.Column("question", sa.Text, nullable=False),
    sa.Column("answer", sa.Text, nullable=False),
    sa.Column("evidence", sa.Text, nullable=True),
    # "triaging" for the 'No trade data found' answers, "llm2" for the model's.
    sa.Column("source", sa.String(16), nullable=False, server_default="llm2"),
    utc_timestamp("createdAt"),
    sa.UniqueConstraint("callId", "questionId", name="uq_answer_call_question"),
)

processing_logs = sa.Table(
    "processing_logs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("batch_id", sa.Integer, nullable=False),
    sa.Column("call_id", sa.Integer, nullable=True),
    sa.Column("file_name", sa.String(255), nullable=True),
    sa.Column("stage_name", sa.String(32), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # success | failed | retry
    sa.Column("attempt", sa.Integer, nullable=False, server_default="1"),
    sa.Column("error_message", sa.Text, nullable=True),
    sa.Column("details", sa.JSON, nullable=True),
    sa.Column("duration_ms", sa.Integer, nullable=True),
    utc_timestamp("created_at"),
    sa.Index("ix_pl_batch_status_stage", "batch_id", "status", "stage_name"),
    sa.Index("ix_pl_call", "call_id"),
)

EVENT_TYPES = (
    "stage_start",
    "stage_progress",
    "stage_complete",
    "file_start",
    "file_complete",
    "error",
    "info",
)
# The seed's four, and cofi's "partial" for a stage_complete (cofid.domain.events.stage_outcome).
EVENT_STATUSES = ("pending", "processing", "success", "failed", "partial")

batch_execution_log = sa.Table(
    "batchExecutionLog",
    metadata,
    # AUTO_INCREMENT as in the seed, so other writers insert without an id; cofid reads
    # back the ids its inserts got (cofid.store.writes), in commit order.
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    # 0 for events that belong to no batch (a reaudit spanning batches, daemon info):
    # hence no foreign key, unlike the seed's sketch.
    sa.Column("batchId", sa.Integer, nullable=False),
    utc_timestamp("timestamp"),
    sa.Column("stage", sa.String(50), nullable=False),
    sa.Column("eventType", sa.Enum(*EVENT_TYPES, name="event_type", create_constraint=False)),
    sa.Column("fileName", sa.String(255)),
    sa.Column("gpuIp", sa.String(50)),
    sa.Column("payload", sa.Text),
    sa.Column("response", sa.Text),
    sa.Column("status", sa.Enum(*EVENT_STATUSES, name="event_status", create_constraint=False)),
    sa.Column("errorMessage", sa.Text),
    sa.Column("totalFiles", sa.Integer),
    sa.Column("processedFiles", sa.Integer),
    sa.Column("metadata", sa.JSON),
    sa.Index("ix_bel_batch_stage", "batchId", "stage", "eventType", "status"),
    sa.Index("ix_bel_timestamp", "timestamp"),
)

task = sa.Table(
    "task",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),  # batch | upload | reaudit
    sa.Column("state", sa.String(16), nullable=False),  # queued | running | completed | failed | cancelled
    sa.Column("batchId", sa.Integer, nullable=True),
    sa.Column("request", sa.JSON, nullable=False),
    sa.Column("result", sa.JSON, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    utc_timestamp("createdAt"),
    utc_timestamp("updatedAt", updated=True),
    sa.Index("ix_task_state", "state"),
)

# Version 2 (sql/migrations/0002_trade_verdict.sql): the verdict per booked trade, the
# answer the compliance officer signs. Additive: the seed's tables are untouched. One row
# per batch+trade (uq_tv_batch_trade), replaced whenever the call behind it reaches a
# deciding state, in the same transaction as the stage result that decided it.
trade_verdict = sa.Table(
    "tradeVerdict",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("batchId", sa.Integer, sa.ForeignKey("batchStatus.id"), nullable=False),
    sa.Column("tradeId", sa.String(64), nullable=False),
    # Null when the trade maps to no call.
    sa.Column("audioName", sa.String(255), nullable=True),
    sa.Column("callId", sa.Integer, sa.ForeignKey("call.id"), nullable=True),
    # confirmed | mismatch | no_call | call_unusable | pending
    sa.Column("verdict", sa.String(16), nullable=False),
    # Why: the failed stage or the call status for call_unusable, the disagreeing fields
    # for mismatch.
    sa.Column("reason", sa.Text, nullable=True),
    # Per field (symbol, side, quantity, price / order type): booked, heard, agrees.
    sa.Column("fields", sa.JSON, nullable=True),
    # The transcript segments ({text, start, end}) where the client states or confirms it.
    sa.Column("evidence", sa.JSON, nullable=True),
    # UTC, written by cofid (not a server default: a resumed run rewrites it).
    sa.Column("decidedAt", Millis, nullable=False),
    sa.UniqueConstraint("batchId", "tradeId", name="uq_tv_batch_trade"),
    sa.Index("ix_tv_batch_verdict", "batchId", "verdict"),
    info={"schema_version": 2},
)

# Version 4 (sql/migrations/0004_*.sql): each recording's SHA-256 as cofid first took it
# in (distribution, upload), for the evidence bundle. Written once per batch+file, never
# updated (store.batches.record_digests): a file changed later cannot replace it.
recording_digest = sa.Table(
    "recordingDigest",
    metadata,
    sa.Column("batchId", sa.Integer, sa.ForeignKey("batchStatus.id"), primary_key=True,
              autoincrement=False),
    sa.Column("audioName", sa.String(255), primary_key=True),
    sa.Column("sha256", sa.String(64), nullable=False),  # lowercase hex
    sa.Column("sizeBytes", sa.BigInteger, nullable=False),
    utc_timestamp("storedAt"),  # UTC: cofid writes utcnow(), the server default is UTC
    info={"schema_version": 4},
)

schema_version = sa.Table(
    "schemaVersion",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    utc_timestamp("appliedAt"),
)

# The seed's twelve tables, in the order their rows are first written.
SEED_TABLES = (
    batch_status,
    file_distribution,
    call,
    call_metadata,
    trade_metadata,
    trade_audio_mapping,
    lid_status,
    transcript,
    call_conversation,
    audit_answer,
    processing_logs,
    batch_execution_log,
)

for _table in metadata.tables.values():
    _table.dialect_kwargs["mysql_engine"] = "InnoDB"
    _table.dialect_kwargs["mysql_charset"] = "utf8mb4"
    _table.dialect_kwargs["mysql_collate"] = "utf8mb4_bin"

TABLES_BY_NAME = dict(metadata.tables)


# ---- the one map between the seed's names and the names the rest of cofid uses --------
# (cofid.store.field_map: snake_case field names derived from the seed's names.)

_FIELDS = FieldMap(metadata)
TABLE_BY_FIELD = _FIELDS.tables
table_of = _FIELDS.table_of
column_of = _FIELDS.column_of
to_columns = _FIELDS.to_columns
