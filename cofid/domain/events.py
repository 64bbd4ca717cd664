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

    def row(self) -> dict[str, Any]:
        """The batch_execution_log row, by field name (the store maps them to the seed's
        columns with cofid.store.tables.to_columns)."""
        return {
            "id": self.id,
            "batch_id": self.batch_id,
            "timestamp": self.timestamp,
            "stage": self.stage,
            "event_type": self.event_type,
            "file_name": self.file_name,
            "gpu_ip": self.gpu,
            "payload": to_json_text(self.payload),
            "response": to_json_text(self.response),
            "status": self.status,
            "error_message": truncate(self.error_message, TEXT_LIMIT),
            "total_files": self.total_files,
            "processed_files": self.processed_files,
            "metadata": self.metadata,
        }


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
    text = json.dumps(_shorten(value), ensure_ascii=False, default=str)
    return truncate(text, PAYLOAD_LIMIT)
