"""Event records: one batch_execution_log row each, as plain data.

Payloads and responses are JSON text; audio bytes never appear, and any string longer
than TEXT_LIMIT characters is cut (with a marker) so one chatty model reply cannot bloat
the log or a subscriber's buffer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cofid.domain.model import EventStatus, EventType

TEXT_LIMIT = 4000
PAYLOAD_LIMIT = 60_000  # MySQL TEXT holds 65,535 bytes


# Slots: a 100,000-file distribution holds 200,000 of them until they are published.
@dataclass(slots=True)
class Event:
    batch_id: int
    stage: str
    event_type: str
    status: str | None = None
    file_name: str | None = None
    gpu: str | None = None
    payload: Any = None
    response: Any = None
    error_message: str | None = None
    total_files: int | None = None
    processed_files: int | None = None
    metadata: dict[str, Any] | None = None
    timestamp: datetime | None = None
    id: int = 0  # assigned by the bus when the event is committed
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    def values(self) -> tuple[Any, ...]:
        """The batch_execution_log row but its id (the database gives it), in the order
        of VALUE_FIELDS."""
        return (
            self.batch_id,
            self.timestamp,
            self.stage,
            self.event_type,
            self.file_name,
            self.gpu,
            to_json_text(self.payload),
            to_json_text(self.response),
            self.status,
            truncate(self.error_message, TEXT_LIMIT),
            self.total_files,
            self.processed_files,
            self.metadata,
        )

    def row(self) -> dict[str, Any]:
        """The batch_execution_log row, by field name (the store maps them to the seed's
        columns with cofid.store.tables.to_columns)."""
        return {"id": self.id, **dict(zip(VALUE_FIELDS, self.values(), strict=True))}


# The batch_execution_log fields of Event.values(), by field name.
VALUE_FIELDS = ("batch_id", "timestamp", "stage", "event_type", "file_name", "gpu_ip",
                "payload", "response", "status", "error_message", "total_files",
                "processed_files", "metadata")


def stage_outcome(ok: int, failed: int) -> EventStatus:
    """The status of every stage_complete event, defined here only.

    `ok` counts what the stage handled without failing (files done or gated by a rule,
    CSV rows accepted), `failed` what it failed for (files after their retries, CSV rows
    refused). 'success': nothing failed; 'failed': something failed and nothing
    succeeded; 'partial': some of each (the event's metadata carries the counts).
    """
    if failed == 0:
        return EventStatus.SUCCESS
    return EventStatus.FAILED if ok == 0 else EventStatus.PARTIAL


def batch_status_event(batch_id: int, status: str) -> Event:
    """batchStatus.status took `status`: one event per value of its walk (domain.pipeline
    rule 8) but 'Completed', which the run's finished event reports (both carry
    metadata.batch_status)."""
    return Event(batch_id=batch_id, stage="pipeline", event_type=EventType.INFO,
                 status=EventStatus.SUCCESS, metadata={"batch_status": status})


def truncate(text: str | None, limit: int) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return text[:limit] + f"… [{len(text) - limit} more characters]"


def _shorten(value: Any) -> Any:
    if isinstance(value, str):
        return truncate(value, TEXT_LIMIT)
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, dict):
        return {k: _shorten(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_shorten(v) for v in value]
    return value


def to_json_text(value: Any) -> str | None:
    if value is None:
        return None
    try:
        # Most payloads are small plain JSON: encoded as they are, no string in them can
        # be longer than the whole text, so shortening would change nothing.
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):  # bytes, or a value only default=str can write
        pass
    else:
        if len(text) <= TEXT_LIMIT:
            return text
    text = json.dumps(_shorten(value), ensure_ascii=False, default=str)
    return truncate(text, PAYLOAD_LIMIT)
