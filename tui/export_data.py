"""Events as CSV or JSON lines (what the export screen writes): formula-safe cells."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict
from typing import Any

from cofid.ctl.escape import csv_row
from tui.model import EventRecord

EXPORT_FIELDS: tuple[str, ...] = (
    "id",
    "batch_id",
    "timestamp",
    "stage",
    "event_type",
    "file_name",
    "gpu_ip",
    "status",
    "error_message",
    "total_files",
    "processed_files",
    "payload",
    "response",
    "metadata_json",
)


def _export_row(ev: EventRecord) -> dict[str, Any]:
    row = asdict(ev)
    row["timestamp"] = ev.timestamp.isoformat() if ev.timestamp else ""
    return {k: row[k] for k in EXPORT_FIELDS}


def to_csv(events: list[EventRecord]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=EXPORT_FIELDS, lineterminator="\n")
    w.writeheader()
    for ev in events:
        w.writerow(csv_row(_export_row(ev)))  # formula-safe cells (cofid.ctl.escape)
    return buf.getvalue()


def to_jsonl(events: list[EventRecord]) -> str:
    return "".join(json.dumps(_export_row(ev), ensure_ascii=False) + "\n" for ev in events)
